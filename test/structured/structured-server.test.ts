// Structured outputs end to end: the real server over the real engine (worker + CPU backend),
// over loopback HTTP with the official openai client. The models are tiny (stories260K: a
// children's-story model; the demo model: random weights), so their free text is never JSON:
// everything that parses here does so because the grammar's bitmask constrained the logits.
// Outputs are validated with ajv (an independent JSON-schema validator).
import { afterAll, beforeAll, describe, expect, test as bunTest } from "bun:test";
import Ajv from "ajv";
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

import { createEngine } from "../../src/engine/index.ts";
import { defaultServeOptions, type ServeOptions } from "../../src/server/options.ts";
import { postJson, startTestServer, type TestServer } from "../server/helpers.ts";

const MODELS = process.env.HEADROOM_MODELS_DIR ?? resolve(import.meta.dir, "../../../shared/models");
const GGUF = resolve(MODELS, "stories260K/stories260K.gguf");
const HAVE = existsSync(GGUF);
if (!HAVE) console.warn("[structured] stories260K tests skipped: ../shared/models not found (the demo-model tests still run)");

const MiB = 2 ** 20;
// Whole generations on a shared CPU: seconds each under load (a per-test limit, not a global one).
const test = (name: string, fn: () => Promise<void>) => bunTest(name, fn, 120_000);

async function start(over: Partial<ServeOptions>): Promise<TestServer> {
  const options: ServeOptions = {
    ...defaultServeOptions(),
    host: "127.0.0.1",
    port: 0,
    device: "cpu",
    deviceMemory: 256 * MiB,
    maxModelLen: 512,
    maxNumSeqs: 16,
    maxNumBatchedTokens: 512,
    ...over,
  };
  const engine = createEngine(options);
  await engine.ready();
  return startTestServer({ engine, options });
}

const ajv = new Ajv({ strict: false });

const PERSON = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 12 },
    age: { type: "integer", minimum: 0, maximum: 120 },
    mood: { enum: ["happy", "sad"] },
    pets: { type: "array", items: { type: "string", maxLength: 6 }, maxItems: 2 },
  },
  required: ["name", "age", "mood", "pets"],
  additionalProperties: false,
} as const;

// The random-weights demo model: no free-text strings. xgrammar 0.1.27 lets a byte-level vocab
// put bytes that are not valid UTF-8 inside a JSON string (they reach the client as U+FFFD, so
// maxLength counts differ); stories260K's byte-fallback vocab never samples those.
const SETTINGS = {
  type: "object",
  properties: {
    level: { type: "integer", minimum: -5, maximum: 500 },
    mood: { enum: ["happy", "sad", "calm"] },
    on: { type: "boolean" },
    tags: { type: "array", items: { enum: ["a", "b", "c"] }, maxItems: 3 },
  },
  required: ["level", "mood", "on", "tags"],
  additionalProperties: false,
} as const;

function expectValid(schema: object, text: string): unknown {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`output is not JSON: ${JSON.stringify(text)} (${(e as Error).message})`);
  }
  const validate = ajv.compile(schema);
  if (!validate(v)) throw new Error(`output ${text} fails the schema: ${ajv.errorsText(validate.errors)}`);
  return v;
}

for (const [label, model, name, SCHEMA] of [
  ["stories260K", GGUF, "stories", PERSON],
  ["demo model (random weights)", "", "demo", SETTINGS],
] as const) {
  describe.skipIf(model !== "" && !HAVE)(`structured outputs, ${label}`, () => {
    let s: TestServer;
    let client: OpenAI;
    beforeAll(async () => {
      s = await start({ model: model === "" ? null : model, servedModelName: name });
      client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none" });
    });
    afterAll(async () => await s.close());

    test("free text is not JSON (the control)", async () => {
      const r = await client.completions.create({ model: name, prompt: "Once upon a time", max_tokens: 40, temperature: 0 });
      expect(() => JSON.parse(r.choices[0]!.text)).toThrow();
    });

    test("response_format json_schema: every sampled output parses and validates (greedy and sampled)", async () => {
      for (const temperature of [0, 1]) {
        const r = await client.chat.completions.create({
          model: name,
          messages: [{ role: "user", content: "Tell me about a person." }],
          max_tokens: 200,
          temperature,
          seed: 7,
          n: 3,
          response_format: { type: "json_schema", json_schema: { name: "person", schema: SCHEMA, strict: true } },
        });
        for (const c of r.choices) {
          expect(c.finish_reason).toBe("stop");
          expectValid(SCHEMA, c.message.content ?? "");
        }
      }
    });

    test("response_format json_object: a JSON object", async () => {
      const r = await client.chat.completions.create({
        model: name,
        messages: [{ role: "user", content: "JSON please" }],
        max_tokens: 400,
        temperature: 0.8,
        seed: 3,
        n: 6,
        response_format: { type: "json_object" },
      });
      for (const c of r.choices) {
        if (c.finish_reason !== "stop") continue; // an open-ended object may run out of tokens (checked below)
        const v = JSON.parse(c.message.content ?? "") as unknown;
        expect(typeof v === "object" && v !== null && !Array.isArray(v)).toBe(true);
      }
      for (const c of r.choices) expect(c.message.content?.startsWith("{")).toBe(true);
      // stories260K fills open-ended strings with story text until max_tokens; the random model stops.
      if (name === "demo") expect(r.choices.some((c) => c.finish_reason === "stop")).toBe(true);
    });

    test("guided_choice returns one of the choices; guided_regex matches (completions, vLLM fields)", async () => {
      const choices = ["yes", "no", "maybe later"];
      for (const seed of [1, 2, 3, 4]) {
        const res = await postJson(`${s.url}/v1/completions`, {
          model: name,
          prompt: "Answer:",
          max_tokens: 20,
          temperature: 1,
          seed,
          guided_choice: choices,
        });
        const body = (await res.json()) as { choices: { text: string; finish_reason: string }[] };
        expect(res.status).toBe(200);
        expect(choices).toContain(body.choices[0]!.text);
        expect(body.choices[0]!.finish_reason).toBe("stop");
      }
      const pattern = "[0-9]{3}-[a-z]{2,5}";
      for (const seed of [5, 6, 7]) {
        const res = await postJson(`${s.url}/v1/completions`, {
          model: name,
          prompt: "Code:",
          max_tokens: 20,
          temperature: 1,
          seed,
          guided_regex: pattern,
        });
        const body = (await res.json()) as { choices: { text: string }[] };
        expect(res.status).toBe(200);
        expect(body.choices[0]!.text).toMatch(new RegExp(`^${pattern}$`));
      }
    });

    test("structured_outputs {grammar} (EBNF) and {json} (JSON text), streamed", async () => {
      const grammar = 'root ::= "(" num ("+" num)* ")"\nnum ::= [1-9] [0-9]?';
      // structured_outputs is a vLLM extension: not in the client's types, sent as given.
      const params = {
        model: name,
        prompt: "Sum:",
        max_tokens: 40,
        temperature: 1,
        seed: 11,
        stream: true,
        structured_outputs: { grammar },
      };
      const stream = await client.completions.create(params as OpenAI.CompletionCreateParamsStreaming);
      let text = "";
      for await (const ch of stream) text += ch.choices[0]?.text ?? "";
      expect(text).toMatch(/^\([1-9][0-9]?(\+[1-9][0-9]?)*\)$/);
      const res = await postJson(`${s.url}/v1/chat/completions`, {
        model: name,
        messages: [{ role: "user", content: "x" }],
        max_tokens: 200,
        temperature: 0,
        structured_outputs: { json: JSON.stringify(SCHEMA) },
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { choices: { message: { content: string } }[] };
      expectValid(SCHEMA, body.choices[0]!.message.content);
    });

    test("a batch mixing constrained and free requests: free outputs are exactly the solo outputs", async () => {
      const free = (i: number) =>
        client.completions.create({ model: name, prompt: `Once upon a time ${i}`, max_tokens: 24, temperature: 0 });
      const solo = await Promise.all([0, 1, 2, 3].map(async (i) => (await free(i)).choices[0]!.text));
      const mixed = await Promise.all(
        [0, 1, 2, 3, 4, 5, 6, 7].map(async (i) => {
          if (i % 2 === 0) return (await free(i / 2)).choices[0]!.text;
          const r = await client.chat.completions.create({
            model: name,
            messages: [{ role: "user", content: `request ${i}` }],
            max_tokens: 200,
            temperature: 1,
            seed: i,
            response_format: { type: "json_schema", json_schema: { name: "s", schema: SCHEMA } },
          });
          return r.choices[0]!.message.content ?? "";
        }),
      );
      for (let i = 0; i < 8; i++) {
        if (i % 2 === 0) expect(mixed[i]).toBe(solo[i / 2]!);
        else expectValid(SCHEMA, mixed[i]!);
      }
    });
  });
}

describe("structured outputs: requests refused with a 400 naming the problem", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await start({ model: null, servedModelName: "demo" });
  });
  afterAll(async () => await s.close());

  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    [
      "unknown type in a schema",
      {
        response_format: {
          type: "json_schema",
          json_schema: { name: "x", schema: { type: "object", properties: { a: { type: "nosuch" } } } },
        },
      },
      "response_format.json_schema.schema",
      /nosuch/,
    ],
    ["guided_json that is not JSON", { guided_json: "{not json" }, "guided_json", /not valid JSON/],
    ["a regex that does not parse", { guided_regex: "[a-" }, "guided_regex", /Unclosed/],
    ["an EBNF grammar that does not parse", { guided_grammar: "root ::= " }, "guided_grammar", /EBNF/],
    ["two constraints", { guided_regex: "a+", response_format: { type: "json_object" } }, "guided_regex", /Only one/],
    ["json_schema without json_schema", { response_format: { type: "json_schema" } }, "response_format.json_schema", /required/],
    ["another backend", { guided_choice: ["a"], guided_decoding_backend: "outlines" }, "guided_decoding_backend", /xgrammar/],
    [
      "an option we do not implement",
      { structured_outputs: { regex: "a", whitespace_pattern: " " } },
      "structured_outputs.whitespace_pattern",
      /not supported/,
    ],
    ["ignore_eos with a grammar", { guided_choice: ["a", "b"], ignore_eos: true }, "ignore_eos", /ignore_eos/],
  ];
  for (const [what, extra, param, msg] of cases) {
    test(what, async () => {
      const res = await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: "user", content: "hi" }], max_tokens: 8, ...extra });
      const body = (await res.json()) as { error: { message: string; param: string | null } };
      expect(res.status).toBe(400);
      expect(body.error.param).toBe(param);
      expect(body.error.message).toMatch(msg);
    });
  }

  test("a schema that compiled once is cached: the second request skips compilation", async () => {
    const schema = { type: "object", properties: { n: { type: "integer", minimum: 0, maximum: 9 } }, required: ["n"] };
    const body = { messages: [{ role: "user", content: "hi" }], max_tokens: 30, temperature: 0, guided_json: schema };
    const t0 = performance.now();
    expect((await postJson(`${s.url}/v1/chat/completions`, body)).status).toBe(200);
    const first = performance.now() - t0;
    const t1 = performance.now();
    const res = await postJson(`${s.url}/v1/chat/completions`, body);
    const second = performance.now() - t1;
    expect(res.status).toBe(200);
    const text = ((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    expect(JSON.parse(text)).toEqual({ n: expect.any(Number) });
    expect(second).toBeLessThan(first);
  });
});

describe.skipIf(!HAVE)("the openai client's chat.completions.parse", () => {
  let s: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    s = await start({ model: GGUF, servedModelName: "stories" });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none" });
  });
  afterAll(async () => await s.close());

  test("zodResponseFormat: the parsed message is a typed, schema-valid object", async () => {
    const Story = z.object({
      title: z.string().max(20),
      hero: z.string().max(12),
      happy: z.boolean(),
      chapters: z.number().int().min(1).max(9),
    });
    const r = await client.chat.completions.parse({
      model: "stories",
      messages: [{ role: "user", content: "A short story as JSON." }],
      max_tokens: 200,
      temperature: 0.7,
      seed: 1,
      response_format: zodResponseFormat(Story, "story"),
    });
    const parsed = r.choices[0]!.message.parsed;
    expect(parsed).not.toBeNull();
    expect(Story.parse(parsed)).toEqual(parsed!);
    expect(typeof parsed!.happy).toBe("boolean");
  });
});
