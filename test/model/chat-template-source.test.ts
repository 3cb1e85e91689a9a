// Which chat template a model gets: --chat-template (file or text) > chat_template.jinja >
// tokenizer_config.json (string or named list; "tool_use" when tools are given) > fallback
// (with a start-up warning); and the files' problems named in the error.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chatTemplateForFolder, chatTemplateFromConfig, readChatTemplateOption } from "../../src/model/chat-template-source.ts";
import { ChatTemplateError } from "../../src/model/chat-template.ts";

const dir = mkdtempSync(join(tmpdir(), "headroom-tmpl-src-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const msgs = [{ role: "user", content: "hi" }];
const named = (name: string) => `${name}:{{ messages[0].content }}{% if tools %}+{{ tools|length }}{% endif %}`;

describe("chat template sources", () => {
  test("order: --chat-template, chat_template.jinja, tokenizer_config.json, fallback", () => {
    const cfg = { chat_template: named("config"), bos_token: "<s>" };
    const empty = join(dir, "empty");
    const withJinja = join(dir, "jinja");
    for (const d of [empty, withJinja]) Bun.spawnSync(["mkdir", "-p", d]);
    writeFileSync(join(withJinja, "chat_template.jinja"), named("jinja"));
    const file = join(dir, "override.jinja");
    writeFileSync(file, named("file"));

    expect(chatTemplateForFolder(empty, {}).isFallback).toBe(true);
    expect(chatTemplateForFolder(empty, cfg).render(msgs)).toBe("config:hi");
    expect(chatTemplateForFolder(withJinja, cfg).render(msgs)).toBe("jinja:hi");
    expect(chatTemplateForFolder(withJinja, cfg, file).render(msgs)).toBe("file:hi");
    expect(chatTemplateForFolder(withJinja, cfg, named("text")).render(msgs)).toBe("text:hi");
    expect(() => chatTemplateForFolder(withJinja, cfg, "/no/such/template.jinja")).toThrow(
      /no such file, and the value is not a Jinja template/,
    );
    expect(readChatTemplateOption(file).origin).toBe(file);
  });

  test("named templates: default, and tool_use when the request has tools", () => {
    const t = chatTemplateFromConfig({
      chat_template: [
        { name: "default", template: named("default") },
        { name: "tool_use", template: named("tool_use") },
      ],
    });
    expect(t.templateNames).toEqual(["tool_use"]);
    expect(t.render(msgs)).toBe("default:hi");
    expect(t.render(msgs, { tools: [{ type: "function", function: { name: "f" } }] })).toBe("tool_use:hi+1");
    expect(() => chatTemplateFromConfig({ chat_template: [{ name: "tool_use", template: "x" }] }, "cfg.json")).toThrow(
      /cfg.json.*none named "default"/,
    );
    expect(() => chatTemplateFromConfig({ chat_template: [{ name: 3 }] }, "cfg.json")).toThrow(/cfg.json.*chat_template\[0\]/);
    expect(() => chatTemplateFromConfig({ chat_template: 42 }, "cfg.json")).toThrow(/cfg.json.*string or a list/);
  });

  test("render options: generation prompt, continue_final_message, kwargs, errors", () => {
    const t = chatTemplateFromConfig({
      chat_template: "{% for m in messages %}[{{ m.content }}]{% endfor %}{% if add_generation_prompt %}>{% endif %}{{ x }}",
    });
    expect(t.render(msgs)).toBe("[hi]>");
    expect(t.render(msgs, { addGenerationPrompt: false, kwargs: { x: "!" } })).toBe("[hi]!");
    expect(t.render([{ role: "assistant", content: "Once upon " }], { addGenerationPrompt: false, continueFinalMessage: true })).toBe(
      "[Once upon ",
    ); // kept: the template kept the space (transformers)
    expect(() => t.render(msgs, { addGenerationPrompt: true, continueFinalMessage: true })).toThrow(ChatTemplateError);
    expect(() => t.render(msgs, { kwargs: { messages: [] } })).toThrow(/may not set 'messages'/);
    const bad = chatTemplateFromConfig({ chat_template: "{{ no_such_function() }}" });
    expect(() => bad.render(msgs)).toThrow(ChatTemplateError);
  });
});

test("start-up notes: a warning when the built-in default template is used; the sources used otherwise", async () => {
  const { modelNotes, openModel } = await import("../../src/model/load.ts");
  const { HAVE_MODELS, HF_DIR, GGUF_PATH } = await import("./helpers.ts");
  if (!HAVE_MODELS) return console.warn("[chat-template-source] start-up notes skipped: ../shared/models not found");
  expect(modelNotes(openModel(GGUF_PATH)).join("\n")).toMatch(/^warning: the model has no chat template .*built-in ChatML default/);
  const dir = mkdtempSync(join(tmpdir(), "headroom-notes-"));
  try {
    Bun.spawnSync(["cp", "-r", `${HF_DIR}/.`, dir]);
    writeFileSync(join(dir, "chat_template.jinja"), "{{ messages[0].content }}");
    writeFileSync(join(dir, "generation_config.json"), JSON.stringify({ eos_token_id: [2, 3], temperature: 0.7 }));
    const notes = modelNotes(openModel(dir)).join("\n");
    expect(notes).toContain(`chat template: ${join(dir, "chat_template.jinja")}`);
    expect(notes).toContain(
      `generation config: ${join(dir, "generation_config.json")}; stop token ids 2, 3; request defaults temperature=0.7`,
    );
    expect(modelNotes(openModel(dir, { chatTemplate: "{{ 'x' }}" })).join("\n")).toContain("chat template: --chat-template");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
