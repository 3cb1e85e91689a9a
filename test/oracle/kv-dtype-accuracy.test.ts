// Accuracy of the narrower KV caches (--kv-cache-dtype) against the float32 KV cache, on real
// weights (stories260K) and on the llama.cpp oracle's models (test/oracle/cases.ts: every
// architecture the project checks). Same engine, same weights, fp32 compute; only the cache's
// element type differs. Per model and kv dtype, greedy for the case's steps from the case's prompt:
//   - max and mean |Δ logprob| over the fp32 run's top-5 at every step both runs agree on,
//   - greedy agreement: steps equal before the first difference (all of them when none),
// printed as a table, and bounded (BOUNDS below; README "KV cache dtype" has the figures).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import type { KvCacheDtypeFlag } from "../../src/model/kv-dtype.ts";
import { HAVE_MODELS, MODELS_DIR } from "../model/helpers.ts";
import { writeTinyModel } from "../util/tiny-models.ts";
import { CASES, TOP_K } from "./cases.ts";
import { compareContinuations, type Continuation } from "./compare.ts";
import { openInHeadroom } from "./headroom.ts";

/**
 * Bounds, from the measured maxima over every model below (README "KV cache dtype" has the
 * table) with margin: max |Δ logprob| about 1.5-2x the largest seen, mean |Δ logprob| about 1.5x.
 * Why the sizes differ: a cache element is rounded with relative error up to 2^-(m+1) (f16 m = 10:
 * 4.9e-4, bf16 m = 7: 3.9e-3, E4M3 m = 3: 6.3e-2, E5M2 m = 2: 0.125); an error in K moves a score
 * by about that fraction of |q||k| scale, one in V the output by that fraction, and the remaining
 * layers carry it to the logits. So each format sits ~8x (f16 -> bf16 -> E4M3) or 2x (E4M3 ->
 * E5M2) above the previous one, which is what the measurements show. Greedy tokens may differ
 * only at a near-tie of the fp32 run (top-2 gap below twice the max bound), the oracle's rule;
 * for fp8 that rule is loose (the errors are large for these tiny models, whose logits are
 * nearly flat), so fp8 also has a floor on greedy agreement on stories260K's real weights.
 */
const BOUNDS: Record<Exclude<KvCacheDtypeFlag, "auto" | "fp8">, { max: number; mean: number; storiesAgreed: number }> = {
  float16: { max: 0.05, mean: 0.004, storiesAgreed: 64 },
  bfloat16: { max: 0.25, mean: 0.025, storiesAgreed: 64 },
  fp8_e4m3: { max: 2.0, mean: 0.7, storiesAgreed: 32 },
  fp8_e5m2: { max: 6.0, mean: 0.9, storiesAgreed: 13 },
};
/**
 * Rows with block-quantized weights are left out: their matmuls quantize the activations to int8
 * per row (csrc/cpu/matmul_q8.c), which turns any perturbation of the activations into whole
 * int8 steps, so the deltas there measure that path (measured: f16 KV max 0.2-0.4 on every
 * quantized stories260K row vs 0.01-0.03 on the F32 file), not the KV cache.
 */
const QUANTIZED = /\bQ[0-9]|quantiz/;
/** The case whose greedy agreement is floored (real weights, plain prompt). */
const STORIES = CASES[0]!.name;

interface Stats {
  max: number;
  mean: number;
  n: number;
  agreed: number;
  steps: number;
}

/** |Δ logprob| of the fp32 run's top-k tokens found in the other run's top-k, over the agreed steps. */
function deltas(ref: Continuation, got: Continuation): Stats {
  let max = 0;
  let sum = 0;
  let n = 0;
  let agreed = 0;
  for (let i = 0; i < ref.tokens.length; i++) {
    const other = new Map((got.top[i] ?? []).map((e) => [e.tokenId, e.logprob]));
    for (const e of ref.top[i] ?? []) {
      const o = other.get(e.tokenId);
      if (o === undefined) continue;
      const d = Math.abs(o - e.logprob);
      max = Math.max(max, d);
      sum += d;
      n++;
    }
    if (ref.tokens[i] !== got.tokens[i]) break;
    agreed++;
  }
  return { max, mean: n ? sum / n : 0, n, agreed, steps: ref.tokens.length };
}

const skip = !HAVE_MODELS ? `../shared/models not found (${MODELS_DIR})` : null;
if (skip) console.warn(`[kv dtype accuracy] skipped: ${skip}`);

describe.skipIf(skip !== null)("KV cache dtype accuracy vs the fp32 KV cache", () => {
  const tmp = mkdtempSync(join(tmpdir(), "headroom-kvacc-"));
  const rows: string[] = [];
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
    console.log(`[kv dtype accuracy] model | kv dtype | max |Δ logprob| | mean |Δ logprob| | greedy agreement\n${rows.join("\n")}`);
  });

  for (const [i, c] of CASES.entries()) {
    if (QUANTIZED.test(c.name)) continue;
    test(c.name, () => {
      const path = "file" in c.source ? c.source.file : join(tmp, `case${i}.gguf`);
      if ("spec" in c.source) writeTinyModel(path, c.source.spec);
      else if ("write" in c.source) c.source.write(path);
      const maxLen = 256;
      // one ordinal for every run (each is closed before the next opens): the oracle's counter would run out
      const base = openInHeadroom(path, maxLen, c.maxNumBatchedTokens, undefined, { deviceOrdinal: 63 });
      let ref: Continuation;
      let prompt: number[];
      try {
        const bos = base.engine.opened.config.bosTokenId;
        const ids = base.tokenize(c.prompt);
        prompt = c.bos && bos !== null ? [bos, ...ids] : ids;
        expect(base.engine.kvDtype).toBe("f32");
        ref = base.greedy(prompt, c.steps, TOP_K);
      } finally {
        base.close();
      }
      // every kv dtype measured first (so the table is complete), then bounded
      const results: { flag: string; bound: (typeof BOUNDS)[keyof typeof BOUNDS]; s: Stats; problems: string[] }[] = [];
      for (const [flag, bound] of Object.entries(BOUNDS) as [keyof typeof BOUNDS, (typeof BOUNDS)[keyof typeof BOUNDS]][]) {
        const hr = openInHeadroom(path, maxLen, c.maxNumBatchedTokens, undefined, { kvCacheDtype: flag, deviceOrdinal: 63 });
        try {
          expect(hr.engine.kvDtype).toBe(flag === "float16" ? "f16" : flag === "bfloat16" ? "bf16" : flag);
          const got = hr.greedy(prompt, c.steps, TOP_K);
          const s = deltas(ref, got);
          rows.push(`${c.name.slice(0, 60)} | ${flag} | ${s.max.toExponential(2)} | ${s.mean.toExponential(2)} | ${s.agreed}/${s.steps}`);
          results.push({ flag, bound, s, problems: compareContinuations(ref, got, bound.max, 2 * bound.max).problems });
        } finally {
          hr.close();
        }
      }
      for (const { flag, bound, s, problems } of results) {
        expect({ flag, problems }).toEqual({ flag, problems: [] });
        expect({ flag, max: s.max, mean: s.mean }).toEqual({ flag, max: Math.min(s.max, bound.max), mean: Math.min(s.mean, bound.mean) });
        if (c.name === STORIES) expect({ flag, agreed: s.agreed >= bound.storiesAgreed }).toEqual({ flag, agreed: true });
      }
    }, 600_000);
  }
});
