// tool_choice "required" and a named function, enforced by the xgrammar path on the real engine
// (stories260K knows no tools: only the grammar makes its output a valid call) over loopback HTTP
// with the official openai client; arguments are checked against the tool's schema with ajv.
import { afterAll, beforeAll, describe, expect, test as bunTest } from "bun:test";
import Ajv from "ajv";
import OpenAI from "openai";
import type { ChatCompletionTool } from "openai/resources/chat/completions";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

import { createEngine } from "../../src/engine/index.ts";
import { defaultServeOptions, type ServeOptions } from "../../src/server/options.ts";
import { startTestServer, type TestServer } from "../server/helpers.ts";

const MODELS = process.env.HEADROOM_MODELS_DIR ?? resolve(import.meta.dir, "../../../shared/models");
const GGUF = resolve(MODELS, "stories260K/stories260K.gguf");
const HAVE = existsSync(GGUF);
if (!HAVE) console.warn("[tool-choice] stories260K tests skipped: ../shared/models not found");
const test = (name: string, fn: () => Promise<void>) => bunTest(name, fn, 120_000);

const WEATHER = {
  type: "object",
  properties: { city: { enum: ["Paris", "Rome"] }, days: { type: "integer", minimum: 1, maximum: 7 } },
  required: ["city", "days"],
  additionalProperties: false,
};
const TIME = { type: "object", properties: { zone: { enum: ["UTC", "CET"] } }, required: ["zone"], additionalProperties: false };
const tools: ChatCompletionTool[] = [
  { type: "function", function: { name: "get_weather", parameters: WEATHER } },
  { type: "function", function: { name: "get_time", parameters: TIME } },
];
const ajv = new Ajv({ strict: false });
const valid = (name: string, args: string) => ajv.validate(name === "get_weather" ? WEATHER : TIME, JSON.parse(args));
const messages = [{ role: "user" as const, content: "Once upon a time" }];

describe.skipIf(!HAVE)("tool_choice required / named (grammar-enforced, stories260K)", () => {
  let s: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    const options: ServeOptions = {
      ...defaultServeOptions(),
      host: "127.0.0.1",
      port: 0,
      device: "cpu",
      deviceMemory: 256 * 2 ** 20,
      maxModelLen: 512,
      maxNumSeqs: 8,
      maxNumBatchedTokens: 512,
      model: GGUF,
      servedModelName: "stories",
      toolCallParser: "hermes",
    };
    const engine = createEngine(options);
    await engine.ready();
    s = await startTestServer({ engine, options });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "x", maxRetries: 0 });
  });
  afterAll(async () => await s?.close());

  test("named: one call of that function, arguments valid against its schema, finish_reason stop", async () => {
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({
        model: "stories",
        messages,
        tools,
        tool_choice: { type: "function", function: { name: "get_weather" } },
        max_tokens: 80,
        seed,
      });
      const c = r.choices[0]!;
      expect(c.finish_reason).toBe("stop");
      expect(c.message.content).toBeNull();
      const call = c.message.tool_calls![0]!;
      expect(call.type === "function" && call.function.name).toBe("get_weather");
      expect(call.type === "function" && valid("get_weather", call.function.arguments)).toBe(true);
    }
  });

  test("required (parallel_tool_calls: false: one call, in the grammar): a call of a given tool with valid arguments, finish_reason tool_calls; streamed the same", async () => {
    const r = await client.chat.completions.create({
      model: "stories",
      messages,
      tools,
      tool_choice: "required",
      parallel_tool_calls: false,
      max_tokens: 160,
      temperature: 0,
    });
    const c = r.choices[0]!;
    expect(c.finish_reason).toBe("tool_calls");
    expect(c.message.tool_calls!.length).toBe(1);
    for (const k of c.message.tool_calls!) {
      if (k.type !== "function") throw new Error("not a function call");
      expect(["get_weather", "get_time"]).toContain(k.function.name);
      expect(valid(k.function.name, k.function.arguments)).toBe(true);
    }
    const stream = client.chat.completions.stream({
      model: "stories",
      messages,
      tools,
      tool_choice: "required",
      parallel_tool_calls: false,
      max_tokens: 160,
      temperature: 0,
    });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]!.finish_reason).toBe("tool_calls");
    expect(final.choices[0]!.message.tool_calls!.map((k) => k.type === "function" && k.function)).toEqual(
      c.message.tool_calls!.map((k) => k.type === "function" && k.function),
    );
  });

  test("a forced tool choice together with response_format is a 400", async () => {
    const e = (await client.chat.completions
      .create({ model: "stories", messages, tools, tool_choice: "required", response_format: { type: "json_object" } })
      .then(
        () => null,
        (x: unknown) => x,
      )) as { status: number; error: { param: string } } | null;
    expect(e?.status).toBe(400);
    expect(e?.error.param).toBe("tool_choice");
  });
});
