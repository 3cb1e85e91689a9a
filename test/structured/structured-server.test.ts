// Structured outputs end to end: the real server over the real engine (worker + CPU backend),
// over loopback HTTP with the official openai client. The models are tiny (stories260K: a
// children's-story model; the demo model: random weights), so their free text is never JSON:
// everything that parses here does so because the grammar's bitmask constrained the logits.
// Outputs are validated with ajv (an independent JSON-schema validator).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
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

for (const [label, model, name] of [
  ["stories260K", GGUF, "stories"],
  ["demo model (random weights)", "", "demo"],
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
          response_format: { type: "json_schema", json_schema: { name: "person", schema: PERSON, strict: true } },
        });
        for (const c of r.choices) {
          expect(c.finish_reason).toBe("stop");
          expectValid(PERSON, c.message.content ?? "");
        }
      }
    });
  });
}
