// The model families of test/model/arch.test.ts on the CUDA backend: each tiny random-weight
// model (HF folder) through the real forward pass (chunked prefill past the sliding window,
// then decode steps) in f32, f16 and bf16, compared with the independent float64 reference
// and with the CPU backend. Skips visibly without a GPU.
//
// Bounds (max |logit - reference| / max |reference logit|): f32 1e-4 (cuBLAS fp32 accumulation
// order; the CPU run meets 1e-5); bf16 5e-2 and f16 2e-2: weights, activations and the KV cache
// are rounded to 8 (bf16) or 11 (f16) significant bits at every op of 3 layers, ~0.4% / 0.05%
// per rounding compounding over ~15 roundings; a semantic error (missed window, softcap, norm
// offset, RoPE table) moves logits by more than 10% of their range in these models.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import type { ComputeDtype } from "../../src/model/dtype.ts";
import { loadHfWeights } from "../../src/model/hf-model.ts";
import type { Device } from "../../src/native/device.ts";
import { asFloat64, FAMILIES, randomWeights, writeHfFolder } from "../model/arch-models.ts";
import { refForward } from "../model/arch-ref.ts";
import { runModel } from "../model/arch-run.ts";
import { prng } from "../model/helpers.ts";
import { announce, noGpu, openCpu, openCuda } from "./common.ts";

announce("model families on CUDA");
const BOUND: Record<ComputeDtype, number> = { f32: 1e-4, f16: 2e-2, bf16: 5e-2 };
const tmp = mkdtempSync(join(tmpdir(), "headroom-gpu-arch-"));
let cuda: Device | null = null;
let cpu: Device | null = null;
afterAll(() => {
  cuda?.close();
  cpu?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(noGpu)("model families on CUDA vs float64 reference and CPU backend", () => {
  FAMILIES.forEach((fam, fi) => {
    for (const dtype of ["f32", "f16", "bf16"] as ComputeDtype[]) {
      test(`${fam.name} [${dtype}]`, () => {
        cuda ??= openCuda();
        cpu ??= openCpu();
        const weights = randomWeights(fam.cfg, 2000 + fi);
        const dir = join(tmp, `hf-${fi}`);
        writeHfFolder(dir, fam.cfg, weights);
        const r = prng(3 + fi);
        const prompt = Array.from({ length: 30 }, () => 3 + Math.floor(r() * (fam.cfg.vocab_size - 3)));
        const run = runModel(cuda, loadHfWeights(dir), prompt, [11, 7, 12], 6, 64, dtype);
        // the reference and the CPU backend follow the CUDA run's tokens (greedy picks may differ in 16-bit)
        const ref = refForward(fam.cfg, asFloat64(weights), run.seq);
        let err = 0,
          range = 0;
        for (const [pos, logits] of run.rows) {
          for (let i = 0; i < logits.length; i++) {
            err = Math.max(err, Math.abs(logits[i]! - ref[pos]![i]!));
            range = Math.max(range, Math.abs(ref[pos]![i]!));
          }
        }
        console.log(`[gpu arch] ${fam.name} ${dtype}: max |err| ${err.toExponential(2)} (range ${range.toFixed(2)})`);
        expect(err / range).toBeLessThan(BOUND[dtype]);
        if (dtype === "f32") {
          const c = runModel(cpu, loadHfWeights(dir), prompt, [11, 7, 12], 6, 64, "f32");
          expect(c.seq).toEqual(run.seq);
        }
      }, 120_000);
    }
  });
});
