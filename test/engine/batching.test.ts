// Continuous batching on the real model: 32 different prompts generated together (mixed
// lengths, chunked prefill, a KV pool small enough to force preemption) give each the same
// greedy tokens as generated alone, and every block is free afterwards.
import { afterAll, describe, expect, test } from "bun:test";

import type { GenerateRequest } from "../../src/engine/api.ts";
import { EngineCore } from "../../src/engine/engine-core.ts";
import { startEngine, type StartedEngine } from "../../src/engine/startup.ts";
import { GGUF_PATH, HAVE_MODELS, prng, warnIfNoModels } from "../model/helpers.ts";
import { engineOptions, greedyParams } from "./engine-helpers.ts";

warnIfNoModels("engine batching");

const STARTS = ["Once upon a time", "The little dog", "Lily and Ben went to", "One day, a big", "Tom had a red", "The sun was"];

function request(id: string, prompt: number[], maxTokens: number): GenerateRequest {
  return {
    requestId: id,
    promptTokenIds: prompt,
    params: greedyParams(maxTokens),
  };
}

function drain(core: EngineCore): Map<string, number[]> {
  const out = new Map<string, number[]>();
  while (core.hasWork()) {
    for (const e of core.step()) out.set(e.requestId, [...(out.get(e.requestId) ?? []), ...e.tokenIds]);
  }
  return out;
}

describe.skipIf(!HAVE_MODELS)("continuous batching vs alone (stories260K)", () => {
  let started: StartedEngine | null = null;
  afterAll(() => started?.close());

  test("32 prompts together, with chunked prefill and preemption, equal 32 runs alone", () => {
    // 24 blocks of 16 tokens: far less than 32 requests need at once.
    const blockBytes = 2 * 5 * 16 * 4 * 8 * 4;
    started = startEngine(
      engineOptions(GGUF_PATH, {
        deviceOrdinal: 5,
        maxModelLen: 160,
        maxNumSeqs: 16,
        maxNumBatchedTokens: 48,
        kvCacheMemoryBytes: 24 * blockBytes,
      }),
    );
    expect(started.kv.numBlocks).toBe(24);
    const tok = started.opened.tokenizer;
    const rand = prng(42);
    const prompts: number[][] = [];
    for (let i = 0; i < 32; i++) {
      const ids = tok.encode(STARTS[i % STARTS.length]!, { addBos: true });
      const extra = Math.floor(rand() * 70); // mixed lengths: 4 .. ~75 tokens
      for (let j = 0; j < extra; j++) ids.push(3 + Math.floor(rand() * 500));
      prompts.push(ids);
    }
    const maxTokens = (i: number) => 20 + (i % 5) * 10;

    const alone = prompts.map((p, i) => {
      const core = new EngineCore(started!, { maxNumSeqs: 16, maxWaiting: 64, servedModelName: null });
      core.add(request(`a${i}`, p, maxTokens(i)));
      const toks = drain(core).get(`a${i}`)!;
      expect(core.stats().blocksUsed).toBe(0);
      return toks;
    });

    const core = new EngineCore(started, { maxNumSeqs: 16, maxWaiting: 64, servedModelName: null });
    prompts.forEach((p, i) => core.add(request(`b${i}`, p, maxTokens(i))));
    const together = drain(core);
    const stats = core.stats();
    expect(stats.preemptions).toBeGreaterThan(0);
    expect(stats.steps).toBeGreaterThan(10);
    for (let i = 0; i < 32; i++) {
      expect(together.get(`b${i}`)?.length).toBe(maxTokens(i));
      expect(together.get(`b${i}`)).toEqual(alone[i]!);
    }
    expect(stats.blocksUsed).toBe(0);
    expect(stats.running + stats.waiting).toBe(0);
  });
});
