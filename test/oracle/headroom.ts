// headroom on the same file: src/model + src/engine on the CPU backend in float32, greedy through
// the real engine loop (scheduler, paged KV cache, prefill then decode steps, the sampler's
// float64 log-softmax for the top-k log-probabilities).
import { EngineCore } from "../../src/engine/engine-core.ts";
import { startEngine, type EngineOptions, type StartedEngine } from "../../src/engine/startup.ts";
import { greedyParams } from "../engine/engine-helpers.ts";
import type { Continuation } from "./compare.ts";

const MiB = 2 ** 20;
/** CPU device ordinals 40..63 in turn (each run closes its device; a later one may reuse the slot). */
let runs = 0;

export interface HeadroomRun {
  engine: StartedEngine;
  greedy(prompt: number[], steps: number, topK: number): Continuation;
  /** The tokenizer's ids for `text` without BOS. */
  tokenize(text: string): number[];
  close(): void;
}

export function openInHeadroom(
  path: string,
  maxModelLen: number,
  maxNumBatchedTokens = maxModelLen,
  deviceMemory = 512 * MiB,
  extra: Partial<EngineOptions> = {},
): HeadroomRun {
  const engine = startEngine({
    model: path,
    device: "cpu",
    dtype: "float32",
    deviceMemory,
    deviceOrdinal: 40 + (runs++ % 24),
    gpuMemoryUtilization: 0.9,
    kvCacheMemoryBytes: null,
    maxModelLen,
    maxNumSeqs: 4,
    maxNumBatchedTokens,
    blockSize: 16,
    enforceEager: true,
    maxWaiting: 8,
    servedModelName: null,
    numThreads: 2,
    ...extra,
  });
  const core = new EngineCore(engine, { maxNumSeqs: 4, maxWaiting: 8, servedModelName: null });
  let n = 0;
  return {
    engine,
    greedy(prompt, steps, topK) {
      core.add({
        requestId: `oracle-${n++}`,
        promptTokenIds: prompt,
        params: { ...greedyParams(steps), logprobs: topK },
      });
      const tokens: number[] = [];
      const top: { tokenId: number; logprob: number }[][] = [];
      while (core.hasWork()) {
        for (const e of core.step()) {
          tokens.push(...e.tokenIds);
          for (const lp of e.logprobs ?? []) top.push(lp.top.map((t) => ({ tokenId: t.tokenId, logprob: t.logprob })));
        }
      }
      if (top.length !== tokens.length) throw new Error(`headroom returned ${top.length} logprob rows for ${tokens.length} tokens`);
      return { tokens, top };
    },
    tokenize: (text) => engine.opened.tokenizer.encode(text, { addBos: false }),
    close: () => engine.close(),
  };
}
