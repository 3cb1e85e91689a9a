// Chat request fields that shape the prompt (add_generation_prompt, continue_final_message,
// chat_template_kwargs, tools, tool_calls) over the real server and engine: the stories260K HF
// folder copied with a chat_template.jinja that prints what it was given, so the prompt token
// count tells which text was rendered; template errors and conflicting fields are 400s.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { createEngine } from "../../src/engine/index.ts";
import { Tokenizer } from "../../src/model/tokenizer.ts";
import { defaultServeOptions, type ServeOptions } from "../../src/server/options.ts";
import { HAVE_MODELS, HF_DIR, warnIfNoModels } from "../model/helpers.ts";
import { postJson, startTestServer, type TestServer } from "./helpers.ts";

warnIfNoModels("chat-template-request");

const TEMPLATE =
  "{% for m in messages %}{% if m.role == 'system' and m.content == 'raise' %}{{ raise_exception('no system please') }}{% endif %}" +
  "<{{ m.role }}>{{ m.content }}{% if m.tool_calls %} call {{ m.tool_calls[0].function.name }} in {{ m.tool_calls[0].function.arguments.city }}{% endif %}" +
  "{% if m.tool_call_id %} for {{ m.tool_call_id }}{% endif %}</{{ m.role }}>{% endfor %}" +
  "{% if tools %} tools: {{ tools|map(attribute='function')|map(attribute='name')|join(',') }}{% endif %}" +
  "{% if enable_thinking is defined and not enable_thinking %} no thinking{% endif %}" +
  "{% if add_generation_prompt %}<assistant>{% endif %}";

const TOOLS = [
  { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } },
];

interface ChatResponse {
  usage: { prompt_tokens: number };
  error?: { message: string; param: string | null };
}

describe.skipIf(!HAVE_MODELS)("chat template request fields (real engine)", () => {
  const dir = mkdtempSync(join(tmpdir(), "headroom-chat-req-"));
  let s: TestServer;
  let tok: Tokenizer;
  const promptTokens = (text: string) => tok.encode(text).length;
  const chat = async (body: Record<string, unknown>) => {
    const res = await postJson(`${s.url}/v1/chat/completions`, { max_tokens: 1, temperature: 0, ...body });
    return { status: res.status, body: (await res.json()) as ChatResponse };
  };

  beforeAll(async () => {
    cpSync(HF_DIR, dir, { recursive: true });
    writeFileSync(join(dir, "chat_template.jinja"), TEMPLATE);
    tok = Tokenizer.fromFolder(dir);
    const options: ServeOptions = {
      ...defaultServeOptions(),
      host: "127.0.0.1",
      port: 0,
      device: "cpu",
      deviceMemory: 256 * 2 ** 20,
      maxModelLen: 256,
      maxNumSeqs: 4,
      maxNumBatchedTokens: 256,
      model: dir,
    };
    const engine = createEngine(options);
    await engine.ready();
    s = await startTestServer({ engine, options });
  });
  afterAll(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const user = { role: "user", content: "Hello there" };

  test("chat_template.jinja is used; add_generation_prompt defaults to true and can be turned off", async () => {
    expect((await chat({ messages: [user] })).body.usage.prompt_tokens).toBe(promptTokens("<user>Hello there</user><assistant>"));
    expect((await chat({ messages: [user], add_generation_prompt: false })).body.usage.prompt_tokens).toBe(
      promptTokens("<user>Hello there</user>"),
    );
  });

  test("chat_template_kwargs reach the template", async () => {
    const r = await chat({ messages: [user], chat_template_kwargs: { enable_thinking: false } });
    expect(r.body.usage.prompt_tokens).toBe(promptTokens("<user>Hello there</user> no thinking<assistant>"));
  });

  test("tools (tool_choice none), tool calls with parsed arguments, tool results", async () => {
    const r = await chat({
      messages: [
        user,
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "c1", type: "function", function: { name: "get_weather", arguments: '{"city": "Paris"}' } }],
        },
        { role: "tool", tool_call_id: "c1", content: "sunny" },
      ],
      tools: TOOLS,
      tool_choice: "none",
    });
    expect(r.status).toBe(200);
    expect(r.body.usage.prompt_tokens).toBe(
      promptTokens(
        "<user>Hello there</user><assistant> call get_weather in Paris</assistant><tool>sunny for c1</tool> tools: get_weather<assistant>",
      ),
    );
  });

  test("continue_final_message ends the prompt inside the last assistant message", async () => {
    const r = await chat({
      messages: [user, { role: "assistant", content: "Once upon" }],
      add_generation_prompt: false,
      continue_final_message: true,
    });
    expect(r.body.usage.prompt_tokens).toBe(promptTokens("<user>Hello there</user><assistant>Once upon"));
  });

  test("400s: both prompt options, tools when the template shows no tool-call format, reserved kwargs, bad arguments, a raising template", async () => {
    const cases: [Record<string, unknown>, RegExp, string][] = [
      [
        { messages: [user, { role: "assistant", content: "x" }], continue_final_message: true },
        /Cannot set both/,
        "continue_final_message",
      ],
      [
        { messages: [user], add_generation_prompt: false, continue_final_message: true },
        /last message to be the assistant/,
        "continue_final_message",
      ],
      [{ messages: [user], tools: TOOLS }, /shows no tool-call format/, "tool_choice"],
      [{ messages: [user], tools: TOOLS, tool_choice: "auto" }, /shows no tool-call format/, "tool_choice"],
      [{ messages: [user], chat_template_kwargs: { messages: [] } }, /chat_template_kwargs.messages/, "chat_template_kwargs"],
      [
        {
          messages: [
            user,
            { role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{oops" } }] },
          ],
        },
        /not valid JSON/,
        "messages[1].tool_calls",
      ],
    ];
    for (const [body, re, param] of cases) {
      const r = await chat(body);
      expect(`${r.status} ${r.body.error?.message}`).toMatch(new RegExp(`^400 .*${re.source}`));
      expect(r.body.error?.param).toBe(param);
    }
    const raised = await chat({ messages: [{ role: "system", content: "raise" }, user] });
    expect(raised.status).toBe(400);
    expect(raised.body.error?.message).toBe("The chat template cannot render these messages: no system please");
  });
});
