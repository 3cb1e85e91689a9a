// Tool calling over loopback HTTP with the official `openai` client: the fake engine emits
// exactly the bytes of a Hermes tool-call turn (the demo tokenizer is byte-level), the server
// parses them (--tool-call-parser hermes), non-streaming and streamed as OpenAI streams them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import type { ChatCompletionTool } from "openai/resources/chat/completions";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { postJson, startTestServer, type TestServer } from "./helpers.ts";

const MODELS = process.env.HEADROOM_MODELS_DIR ?? resolve(import.meta.dir, "../../../shared/models");
const QWEN = resolve(MODELS, "chat-templates/Qwen-Qwen2.5-7B-Instruct.jinja");

const OUTPUT =
  'I will look.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "°C"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>';
const BYTES = new TextEncoder().encode(OUTPUT).length;
const tools: ChatCompletionTool[] = [
  {
    type: "function",
    function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" }, unit: { type: "string" } } } },
  },
  { type: "function", function: { name: "get_time", parameters: { type: "object", properties: {} } } },
];
const user = { role: "user" as const, content: "Weather in Paris?" };

let s: TestServer;
let auto: TestServer;
let client: OpenAI;

async function error(p: Promise<unknown>): Promise<{ status: number; message: string; param: unknown }> {
  const e = (await p.then(
    () => null,
    (x: unknown) => x,
  )) as { status: number; error: { message: string; param: unknown } } | null;
  if (!e) throw new Error("expected an error");
  return { status: e.status, message: e.error.message, param: e.error.param };
}

beforeAll(async () => {
  s = await startTestServer({ fake: { passage: OUTPUT, eosAfter: BYTES, maxModelLen: 1024 }, options: { toolCallParser: "hermes" } });
  // The demo model's fallback ChatML template shows no tool-call format.
  auto = await startTestServer({ fake: { passage: OUTPUT, eosAfter: BYTES, maxModelLen: 1024 } });
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
afterAll(async () => {
  await s.close();
  await auto.close();
});

describe("tool calls", () => {
  test("non-streaming: content before the calls, tool_calls, finish_reason tool_calls", async () => {
    const r = await client.chat.completions.create({ model: "fake-model", messages: [user], tools, temperature: 0 });
    const m = r.choices[0]!.message;
    expect(r.choices[0]!.finish_reason).toBe("tool_calls");
    expect(m.content).toBe("I will look.\n");
    expect(m.tool_calls?.map((c) => c.type === "function" && c.function)).toEqual([
      { name: "get_weather", arguments: '{"city": "Paris", "unit": "°C"}' },
      { name: "get_time", arguments: "{}" },
    ]);
    for (const c of m.tool_calls!) expect(c.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
    expect(new Set(m.tool_calls!.map((c) => c.id)).size).toBe(2);
  });

  test("streaming: the client's stream helper assembles the same calls; deltas as OpenAI sends them", async () => {
    const stream = client.chat.completions.stream({ model: "fake-model", messages: [user], tools, temperature: 0 });
    const deltas: unknown[] = [];
    stream.on("chunk", (c) => {
      for (const d of c.choices[0]?.delta.tool_calls ?? []) deltas.push(d);
    });
    const done: string[] = [];
    stream.on("tool_calls.function.arguments.done", (e) => done.push(`${e.name}:${e.arguments}`));
    const final = await stream.finalChatCompletion();
    const m = final.choices[0]!.message;
    expect(final.choices[0]!.finish_reason).toBe("tool_calls");
    expect(m.content).toBe("I will look.\n");
    expect(m.tool_calls?.map((c) => c.type === "function" && c.function)).toEqual([
      { name: "get_weather", arguments: '{"city": "Paris", "unit": "°C"}' },
      { name: "get_time", arguments: "{}" },
    ]);
    expect(done).toEqual(['get_weather:{"city": "Paris", "unit": "°C"}', "get_time:{}"]);
    // The first delta of a call carries id, type and name; later ones only argument fragments.
    const first = deltas[0] as { index: number; id: string; type: string; function: { name: string } };
    expect(first).toMatchObject({ index: 0, type: "function", function: { name: "get_weather" } });
    expect(deltas.filter((d) => (d as { id?: string }).id !== undefined)).toHaveLength(2);
    // Arguments arrive in several fragments (one byte token at a time).
    expect(deltas.filter((d) => (d as { index: number }).index === 0).length).toBeGreaterThan(5);
  });

  test("round trip: the calls and the tool results go back in the next request", async () => {
    const r = await client.chat.completions.create({ model: "fake-model", messages: [user], tools, temperature: 0 });
    const calls = r.choices[0]!.message.tool_calls!;
    const next = await client.chat.completions.create({
      model: "fake-model",
      messages: [user, r.choices[0]!.message, ...calls.map((c) => ({ role: "tool" as const, tool_call_id: c.id, content: "sunny, 21" }))],
      tools,
      tool_choice: "none",
      max_tokens: 5,
      temperature: 0,
    });
    expect(next.choices[0]!.message.content).toBe(OUTPUT.slice(0, 5));
    expect(next.choices[0]!.message.tool_calls).toBeUndefined();
    expect(next.choices[0]!.finish_reason).toBe("length");
  });

  test("tool_choice none: the output is plain content", async () => {
    const r = await client.chat.completions.create({ model: "fake-model", messages: [user], tools, tool_choice: "none", temperature: 0 });
    expect(r.choices[0]!.message.content).toBe(OUTPUT);
    expect(r.choices[0]!.message.tool_calls).toBeUndefined();
    expect(r.choices[0]!.finish_reason).toBe("stop");
  });

  test("parallel_tool_calls: false returns the first call", async () => {
    const r = await client.chat.completions.create({
      model: "fake-model",
      messages: [user],
      tools,
      parallel_tool_calls: false,
      temperature: 0,
    });
    expect(r.choices[0]!.message.tool_calls?.map((c) => c.type === "function" && c.function.name)).toEqual(["get_weather"]);
  });

  test("400s: a named function not in tools, strict with auto, tool_choice without tools, no recognisable format", async () => {
    const e = await error(
      client.chat.completions.create({
        model: "fake-model",
        messages: [user],
        tools,
        tool_choice: { type: "function", function: { name: "nope" } },
      }),
    );
    expect(e.message).toContain("'nope', which is not in tools");
    const strict = await error(
      client.chat.completions.create({
        model: "fake-model",
        messages: [user],
        tools: [{ type: "function", function: { name: "get_weather", strict: true } }],
      }),
    );
    expect(strict).toMatchObject({ status: 400, param: "tools.0.function.strict" });
    const noTools = await postJson(`${s.url}/v1/chat/completions`, { messages: [user], tool_choice: "auto" });
    expect(noTools.status).toBe(400);
    const a = new OpenAI({ baseURL: `${auto.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const f = await error(a.chat.completions.create({ model: "fake-model", messages: [user], tools }));
    expect(f.message).toContain("--tool-call-parser");
    // tool_choice none needs no format.
    const ok = await a.chat.completions.create({
      model: "fake-model",
      messages: [user],
      tools,
      tool_choice: "none",
      max_tokens: 3,
      temperature: 0,
    });
    expect(ok.choices[0]!.message.content).toBe(OUTPUT.slice(0, 3));
  });
});

describe.skipIf(!existsSync(QWEN))("--tool-call-parser auto", () => {
  test("recognises hermes from a real chat template (--chat-template Qwen2.5) and parses its calls", async () => {
    const q = await startTestServer({ fake: { passage: OUTPUT, eosAfter: BYTES, maxModelLen: 4096 }, options: { chatTemplate: QWEN } });
    try {
      const c = new OpenAI({ baseURL: `${q.url}/v1`, apiKey: "unused", maxRetries: 0 });
      const r = await c.chat.completions.create({ model: "fake-model", messages: [user], tools, temperature: 0 });
      expect(r.choices[0]!.finish_reason).toBe("tool_calls");
      expect(r.choices[0]!.message.tool_calls?.map((k) => k.type === "function" && k.function.name)).toEqual(["get_weather", "get_time"]);
      // The prompt carried the tools in Qwen's system block.
      expect(r.usage!.prompt_tokens).toBeGreaterThan(200);
    } finally {
      await q.close();
    }
  });
});
