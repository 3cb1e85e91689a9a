// The real chat templates (../shared/models/chat-templates) rendered by our renderer must equal,
// byte for byte, what Python Jinja2 renders with transformers' environment. The expected
// renders are committed (test/fixtures/chat-templates/<template>.json), produced by
// `python3 scripts/render-chat-templates.py` from the inputs in cases.json.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";

import { ChatTemplate, ChatTemplateError, type ChatMessage } from "../../src/model/chat-template.ts";
import { pythonStrftime } from "../../src/model/python-strftime.ts";
import { MODELS_DIR } from "./helpers.ts";

const FIXTURES = resolve(import.meta.dir, "../fixtures/chat-templates");
const TEMPLATES = resolve(MODELS_DIR, "chat-templates");
const HAVE_TEMPLATES = existsSync(TEMPLATES);
if (!HAVE_TEMPLATES) console.warn(`[chat-template-oracle] skipped: ${TEMPLATES} not found; set HEADROOM_MODELS_DIR`);

interface Case {
  name: string;
  messages: ChatMessage[];
  add_generation_prompt?: boolean;
  continue_final_message?: boolean;
  tools?: boolean;
  chat_template_kwargs?: Record<string, unknown>;
}
interface Spec {
  now: string;
  templates: Record<string, { bos_token: string | null; eos_token: string | null }>;
  tools: unknown[];
  cases: Case[];
}
type Expected = { text: string } | { error: string; kind: string };

const spec = JSON.parse(readFileSync(resolve(FIXTURES, "cases.json"), "utf8")) as Spec;
const now = new Date(spec.now); // no zone suffix: local time, as Python's datetime.now()

describe.skipIf(!HAVE_TEMPLATES)("real chat templates render exactly as Python Jinja2 (transformers)", () => {
  for (const [name, tokens] of Object.entries(spec.templates)) {
    test(name, () => {
      const source = readFileSync(resolve(TEMPLATES, `${name}.jinja`), "utf8");
      const expected = JSON.parse(readFileSync(resolve(FIXTURES, `${name}.json`), "utf8")) as Record<string, Expected>;
      const tmpl = new ChatTemplate(source, tokens.bos_token, tokens.eos_token, name);
      const mismatches: string[] = [];
      for (const c of spec.cases) {
        const want = expected[c.name];
        if (want === undefined) throw new Error(`${name}.json has no render for case ${c.name}: rerun scripts/render-chat-templates.py`);
        let got: Expected;
        try {
          const text = tmpl.render(c.messages, {
            addGenerationPrompt: c.add_generation_prompt ?? true,
            continueFinalMessage: c.continue_final_message ?? false,
            tools: c.tools ? spec.tools : null,
            kwargs: c.chat_template_kwargs ?? {},
            now: () => now,
          });
          got = { text };
        } catch (e) {
          if (!(e instanceof ChatTemplateError)) throw e;
          got = { error: e.message, kind: "raised" };
        }
        if ("text" in want) {
          if (!("text" in got) || got.text !== want.text)
            mismatches.push(`${c.name}: ${JSON.stringify(got).slice(0, 4000)}\n   expected ${JSON.stringify(want.text).slice(0, 4000)}`);
        } else if (!("error" in got)) mismatches.push(`${c.name}: rendered, but Python raised ${want.kind}: ${want.error}`);
        // raise_exception's message is the template's own text; other Python errors (TypeError...) only need to fail too.
        else if (want.kind === "raise_exception" && got.error !== want.error)
          mismatches.push(`${c.name}: raised "${got.error}", Python raised "${want.error}"`);
      }
      expect(mismatches).toEqual([]);
    });
  }
});

test("strftime_now formats like Python's datetime.strftime (C locale)", () => {
  const expected = JSON.parse(readFileSync(resolve(FIXTURES, "strftime.json"), "utf8")) as Record<string, string>;
  expect(Object.keys(expected).length).toBeGreaterThan(3);
  for (const [fmt, want] of Object.entries(expected)) expect(`${fmt} -> ${pythonStrftime(now, fmt)}`).toBe(`${fmt} -> ${want}`);
});

test("expressions print and behave as in Python Jinja2 (True/None, reprs, Undefined)", () => {
  const expected = JSON.parse(readFileSync(resolve(FIXTURES, "expressions.json"), "utf8")) as Record<string, Expected>;
  expect(Object.keys(expected).length).toBe((spec as unknown as { expressions: string[] }).expressions.length);
  const got: Record<string, Expected> = {};
  for (const src of Object.keys(expected)) {
    try {
      got[src] = {
        text: new ChatTemplate(src, null, null, "expr").render([{ role: "user", content: "hi" }], { addGenerationPrompt: false }),
      };
    } catch (e) {
      got[src] = { error: (e as Error).message, kind: "raised" };
    }
  }
  expect(got).toEqual(expected);
});
