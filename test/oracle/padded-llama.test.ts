// The K-quant oracle rows quantize stories260K zero-padded to 256-wide rows
// (test/util/padded-llama.ts), claimed to compute the same function as stories260K. llama.cpp
// checks the claim on its own: the padded F32 file and the original give the same 64 greedy
// tokens and the same top-5 logprobs within the F32 tolerance.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { readGguf } from "../../src/model/gguf.ts";
import { HAVE_MODELS, MODELS_DIR } from "../model/helpers.ts";
import { STORIES_K_QUANT_SHAPE, writePaddedLlama } from "../util/padded-llama.ts";
import { QUANT_PROMPTS, TOL_F32, TOP_K, tieGap } from "./cases.ts";
import { compareContinuations } from "./compare.ts";
import { loadOracle, openInLlamaCpp } from "./llama-cpp.ts";

const oracle = await loadOracle();
const skip = typeof oracle === "string" ? oracle : !HAVE_MODELS ? `../shared/models not found (${MODELS_DIR})` : null;
if (skip) console.warn(`[oracle: padded stories260K] skipped: ${skip}`);

describe.skipIf(skip !== null)("stories260K zero-padded to 256-wide rows is still stories260K", () => {
  const tmp = mkdtempSync(join(tmpdir(), "headroom-padded-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  test("every weight row is whole K-quant super-blocks; llama.cpp gives the original's tokens and logprobs", async () => {
    if (typeof oracle === "string") throw new Error(oracle);
    const original = join(MODELS_DIR, "stories260K/stories260K.gguf");
    const padded = join(tmp, "padded.gguf");
    writePaddedLlama(original, padded, STORIES_K_QUANT_SHAPE);
    for (const t of readGguf(padded).tensors.values()) expect(t.dims[0]! % 256, t.name).toBe(0);
    const [a, b] = [await openInLlamaCpp(oracle, original, 256), await openInLlamaCpp(oracle, padded, 256)];
    try {
      for (const text of [QUANT_PROMPTS[0], QUANT_PROMPTS[9]]) {
        const prompt = [a.model.tokens.bos as number, ...a.tokenize(text)];
        const r = compareContinuations(await a.greedy(prompt, 64, TOP_K), await b.greedy(prompt, 64, TOP_K), TOL_F32, tieGap(TOL_F32));
        console.log(
          `[oracle] padded stories260K: ${r.stepsCompared}/64 steps equal, max |Δ logprob| ${r.maxLogprobDelta.toExponential(2)}`,
        );
        expect(r.problems).toEqual([]);
        expect(r.stepsCompared).toBe(64);
      }
    } finally {
      await a.dispose();
      await b.dispose();
    }
  }, 60_000);
});
