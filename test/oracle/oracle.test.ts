// llama.cpp as the oracle: every row of CASES runs the same GGUF file in llama.cpp (node-llama-cpp
// 3.21.1, prebuilt CPU binary) and in headroom (CPU backend, float32), and compares the prompt's
// token ids, the greedy continuation token by token and the top-k log-probabilities of every
// compared step (rule and tolerances: compare.ts, cases.ts).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { HAVE_MODELS, MODELS_DIR } from "../model/helpers.ts";
import { writeTinyModel } from "../util/tiny-models.ts";
import { CASES, MIN_COMPARED_STEPS, TOP_K, tieGap } from "./cases.ts";
import { compareContinuations } from "./compare.ts";
import { openInHeadroom } from "./headroom.ts";
import { loadOracle, openInLlamaCpp } from "./llama-cpp.ts";

const oracle = await loadOracle();
const skip = typeof oracle === "string" ? oracle : !HAVE_MODELS ? `../shared/models not found (${MODELS_DIR})` : null;
if (skip) console.warn(`[oracle: llama.cpp] skipped: ${skip}`);

describe.skipIf(skip !== null)("llama.cpp oracle: same GGUF, same greedy tokens and logprobs", () => {
  const tmp = mkdtempSync(join(tmpdir(), "headroom-oracle-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  test("the oracle is node-llama-cpp 3.21.1 on the CPU (the pinned version, no GPU)", () => {
    if (typeof oracle === "string") throw new Error(oracle);
    expect(oracle.version).toBe("3.21.1");
    expect(oracle.llama.gpu).toBe(false);
  });

  for (const [i, c] of CASES.entries()) {
    test(c.name, async () => {
      if (typeof oracle === "string") throw new Error(oracle);
      const path = "file" in c.source ? c.source.file : join(tmp, `case${i}.gguf`);
      if ("spec" in c.source) writeTinyModel(path, c.source.spec);
      else if ("write" in c.source) c.source.write(path);
      const maxLen = 256;
      const ref = await openInLlamaCpp(oracle, path, maxLen);
      const hr = openInHeadroom(path, maxLen, c.maxNumBatchedTokens);
      try {
        const ids = ref.tokenize(c.prompt);
        expect(hr.tokenize(c.prompt)).toEqual(ids);
        const bos = hr.engine.opened.config.bosTokenId;
        expect(bos).toBe(ref.model.tokens.bos as number | null);
        const prompt = c.bos && bos !== null ? [bos, ...ids] : ids;
        if (c.maxNumBatchedTokens !== undefined) expect(prompt.length).toBeGreaterThan(2 * c.maxNumBatchedTokens);
        const a = await ref.greedy(prompt, c.steps, TOP_K);
        const b = hr.greedy(prompt, c.steps, TOP_K);
        const r = compareContinuations(a, b, c.tol, tieGap(c.tol));
        console.log(
          `[oracle] ${c.name}: ${r.stepsCompared}/${c.steps} steps equal${r.divergedAt === null ? "" : ` (near-tie at ${r.divergedAt})`}, ` +
            `max |Δ logprob| ${r.maxLogprobDelta.toExponential(2)} (tol ${c.tol}), min top-2 gap ${r.minTopGap.toFixed(3)}`,
        );
        expect(r.problems).toEqual([]);
        expect(r.stepsCompared).toBeGreaterThanOrEqual(MIN_COMPARED_STEPS);
      } finally {
        hr.close();
        await ref.dispose();
      }
    }, 240_000); // the 128K/152K-vocabulary rows took up to 60 s each on a heavily loaded 2-core machine
  }
});
