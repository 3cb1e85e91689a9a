// The real server over the real engine (worker + CPU backend): the official openai client,
// streaming, cancellation freeing KV blocks within a step, 200 concurrent streams without a
// leaked block, the memory routes with real numbers, and the planner route.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

import type { EngineStats } from "../../src/engine/api.ts";
import { Value } from "@sinclair/typebox/value";
import { createEngine } from "../../src/engine/index.ts";
import { loadTextModel } from "../../src/frontend/text-model.ts";
import { AllocatorReport, MemoryReport } from "../../src/memory/report-schema.ts";
import { defaultServeOptions, type ServeOptions } from "../../src/server/options.ts";
import { postJson, startTestServer, waitFor, type TestServer } from "./helpers.ts";

const MODELS = process.env.HEADROOM_MODELS_DIR ?? resolve(import.meta.dir, "../../../shared/models");
const GGUF = resolve(MODELS, "stories260K/stories260K.gguf");
const HAVE = existsSync(GGUF);
if (!HAVE) console.warn("[real-engine] stories260K tests skipped: ../shared/models not found");

const MiB = 2 ** 20;

async function start(over: Partial<ServeOptions>): Promise<TestServer> {
  const options: ServeOptions = {
    ...defaultServeOptions(),
    host: "127.0.0.1",
    port: 0,
    device: "cpu",
    deviceMemory: 256 * MiB,
    maxModelLen: 256,
    maxNumSeqs: 64,
    maxNumBatchedTokens: 256,
    ...over,
  };
  const engine = createEngine(options);
  await engine.ready();
  return startTestServer({ engine, options });
}

async function stats(s: TestServer): Promise<EngineStats> {
  return await s.engine.stats();
}

describe.skipIf(!HAVE)("real engine, stories260K", () => {
  let s: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    s = await start({ model: GGUF, servedModelName: "stories" });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none" });
  });
  afterAll(async () => await s.close());

  test("completions with the openai client: greedy text is the published story", async () => {
    const r = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 30, temperature: 0 });
    expect(r.choices[0]!.text.startsWith(", there was a little girl named Lily. She loved to play outside in the park.")).toBe(true);
    expect(r.usage?.prompt_tokens).toBe(5);
    expect(r.usage?.completion_tokens).toBe(30);
    expect(r.choices[0]!.finish_reason).toBe("length");
  });

  test("the first generated token keeps its leading space (SentencePiece), also in echo and logprobs", async () => {
    const prompt = "Lily and Tom went to the";
    const r = await client.completions.create({ model: "stories", prompt, max_tokens: 8, temperature: 0, logprobs: 1 });
    const text = r.choices[0]!.text;
    expect(text.startsWith(" ")).toBe(true); // was "park…" (prompt + text = "…to thepark")
    // prompt text + completion text is the decode of prompt ids + completion ids, as llama-server / vLLM give it
    const tok = loadTextModel(GGUF).tokenizer;
    const ids = tok.encode(prompt + text);
    expect(tok.decode(ids)).toBe(prompt + text);
    expect(ids.length).toBeLessThanOrEqual(tok.encode(prompt).length + 8);
    const lp = r.choices[0]!.logprobs!;
    expect(lp.tokens!.join("")).toBe(text);
    expect(lp.tokens![0]!.startsWith(" ")).toBe(true);
    expect(lp.text_offset![0]).toBe(0);
    lp.tokens!.forEach((t, i) => expect(text.slice(lp.text_offset![i]!, lp.text_offset![i]! + t.length)).toBe(t));
    const echo = await client.completions.create({ model: "stories", prompt: "Once", max_tokens: 3, temperature: 0, echo: true });
    expect(echo.choices[0]!.text.startsWith("Once upon")).toBe(true); // was "Onceupon"
    const stream = await client.completions.create({ model: "stories", prompt, max_tokens: 8, temperature: 0, stream: true });
    let streamed = "";
    for await (const c of stream) streamed += c.choices[0]?.text ?? "";
    expect(streamed).toBe(text);
  });

  test("a stop string ends the text and the engine frees the request at once", async () => {
    const full = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 30, temperature: 0 });
    const before = (await stats(s)).generatedTokens;
    const r = await client.completions.create({
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 240,
      temperature: 0,
      stop: ["Lily"],
      ...({ ignore_eos: true } as object),
    });
    const cut = full.choices[0]!.text.indexOf("Lily");
    expect(cut).toBeGreaterThan(0);
    expect(r.choices[0]!.text).toBe(full.choices[0]!.text.slice(0, cut));
    expect(r.choices[0]!.finish_reason).toBe("stop");
    expect(r.usage!.completion_tokens).toBeLessThan(30);
    await waitFor(async () => (await stats(s)).running === 0 && (await stats(s)).blocksUsed === 0, 5000, "the request to leave the engine");
    // aborted by the frontend: the engine did not run on to max_tokens (it may run a few steps
    // past the stop while the abort travels, as in vLLM)
    expect((await stats(s)).generatedTokens - before).toBeLessThan(240);
  });

  test("chat streaming with the openai client, usage included", async () => {
    const stream = await client.chat.completions.create({
      model: "stories",
      messages: [{ role: "user", content: "Tell me a story" }],
      max_tokens: 20,
      temperature: 0.8,
      seed: 7,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: { completion_tokens: number } | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(usage?.completion_tokens).toBe(20);
  });

  test("logprobs and seeds through the real sampler", async () => {
    const a = await client.completions.create({
      model: "stories",
      prompt: "The dog",
      max_tokens: 8,
      temperature: 1,
      seed: 123,
      logprobs: 3,
    });
    const b = await client.completions.create({
      model: "stories",
      prompt: "The dog",
      max_tokens: 8,
      temperature: 1,
      seed: 123,
      logprobs: 3,
    });
    expect(a.choices[0]!.text).toBe(b.choices[0]!.text);
    const lp = a.choices[0]!.logprobs!;
    expect(lp.token_logprobs!.length).toBe(8);
    for (const v of lp.token_logprobs!) expect(v).toBeLessThanOrEqual(0);
    expect(Object.keys(lp.top_logprobs![0]!).length).toBeGreaterThanOrEqual(1);
  });

  test("a client that disconnects mid-stream frees its KV blocks within a step", async () => {
    const ac = new AbortController();
    const res = await fetch(`${s.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "stories", prompt: "Once upon a time", max_tokens: 200, stream: true, ignore_eos: true }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    await waitFor(async () => (await stats(s)).blocksUsed > 0, 5000, "blocks in use");
    ac.abort();
    await waitFor(async () => (await stats(s)).blocksUsed === 0 && (await stats(s)).running === 0, 5000, "blocks freed");
  });

  test("200 concurrent streaming requests: no error, no leaked block", async () => {
    const one = async (i: number) => {
      const stream = await client.completions.create({
        model: "stories",
        prompt: `Story ${i}:`,
        max_tokens: 12,
        temperature: 0.7,
        seed: i,
        stream: true,
      });
      let n = 0;
      let finish: string | null = null;
      for await (const c of stream) {
        n += c.choices[0]?.text ? 1 : 0;
        finish = c.choices[0]?.finish_reason ?? finish;
      }
      return { n, finish };
    };
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => one(i)));
    for (const r of results) expect(["length", "stop"]).toContain(r.finish!);
    const st = await stats(s);
    expect(st.blocksUsed).toBe(0);
    expect(st.running + st.waiting).toBe(0);
  }, 30_000); // 200 streams through the engine process: seconds on a loaded 2-core machine

  test("memory routes report the real start-up profile", async () => {
    const m = (await (await fetch(`${s.url}/v1/memory`)).json()) as Record<string, Record<string, number>>;
    expect(m.profile!.weights).toBeGreaterThan(1_000_000);
    expect(m.snapshot!.total).toBe(256 * MiB);
    const b = m.breakdown!;
    const sum = Object.values(b).reduce((a, v) => a + v, 0);
    expect(Math.abs(sum - m.snapshot!.total!)).toBeLessThan(64 * 1024); // categories cover the device
    // The typed schemas describe the engine's payloads exactly: nothing is stripped on the way.
    const raw = await s.engine.memory();
    expect([...Value.Errors(MemoryReport, raw)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
    expect(Object.keys(m).sort()).toEqual(Object.keys(raw).sort());
    const rawAlloc = await s.engine.allocator();
    expect([...Value.Errors(AllocatorReport, rawAlloc)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
    const a = (await (await fetch(`${s.url}/v1/memory/allocator`)).json()) as {
      stats: { reservedBytes: { current: number } };
      segments: unknown[];
    };
    expect(a).toEqual(JSON.parse(JSON.stringify(await s.engine.allocator())));
    expect(a.stats.reservedBytes.current).toBe(m.snapshot!.allocator_reserved!);
    expect(a.segments.length).toBeGreaterThan(0);
  });

  test("POST /v1/memory/plan predicts what this server measured", async () => {
    const r = await postJson(`${s.url}/v1/memory/plan`, {
      backend: "cpu",
      device_memory_bytes: 256 * MiB,
      max_model_len: 256,
      max_num_seqs: 64,
      max_num_batched_tokens: 256,
    });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { plan: Record<string, number> };
    const m = (await (await fetch(`${s.url}/v1/memory`)).json()) as Record<string, Record<string, number>>;
    expect(body.plan.weightsBytes).toBe(m.profile!.weights!);
    expect(body.plan.activationArenaBytes).toBe(m.profile!.peak_activation!);
    expect(Math.abs(body.plan.kvBlocks! - m.kv!.blocks!)).toBeLessThanOrEqual(1);
    const bad = await postJson(`${s.url}/v1/memory/plan`, { device_memory_bytes: 1, model: "/nonexistent" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain("/nonexistent");
  });
});

describe("real engine, demo model", () => {
  test("serves the built-in demo model, labelled as random weights", async () => {
    const s = await start({ model: null, deviceMemory: 128 * MiB, maxModelLen: 128 });
    try {
      const models = (await (await fetch(`${s.url}/v1/models`)).json()) as { data: { id: string }[] };
      expect(models.data[0]!.id).toContain("random weights");
      const r = await postJson(`${s.url}/v1/completions`, { model: models.data[0]!.id, prompt: "hi", max_tokens: 5 });
      expect(r.status).toBe(200);
      const long = await postJson(`${s.url}/v1/completions`, { model: models.data[0]!.id, prompt: "x".repeat(400), max_tokens: 5 });
      expect(long.status).toBe(400);
      expect(((await long.json()) as { error: { message: string } }).error.message).toMatch(/128/);
    } finally {
      await s.close();
    }
  });
});
