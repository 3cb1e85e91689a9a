// CUDA kernels against the float64 reference and the CPU backend (bun test test/gpu).
//
// Every case (test/gpu/cases.ts) runs with fresh random inputs (uniform in [-1, 1), never
// zero; the seed is printed on failure), outputs poisoned with NaN beforehand, and every
// element is checked:
//   |gpu - ref| <= rtol * (|ref| + scale)   rtol: f32 1e-5 (attention 2e-5), f16 1e-2, bf16 2e-2
//   scale: matmul/logits sum_k |x w| (fp32 accumulation error grows with it), attention 1
//   (f32) / 0.1 (f16, bf16) (outputs are convex mixes of values in [-1, 1)), elementwise 0.1,
//   copies (embedding, kv_write) exact. NaN in the reference = must stay NaN (untouched rows
//   and cache slots).
// The same case also runs on the CPU backend (fp32, same rounded inputs) and the CUDA result
// must match it within the same bound. Shapes include odd sizes, head_dim 40/64/80/96/128/
// 256, block sizes 4/5/7/16, GQA ratios 1/2/4/8/12, split-K partitions and 32k contexts.
//
// Without a GPU the CUDA part skips with a visible "skipped: no GPU" line; the reference
// harness (CPU backend vs float64, small cases) runs everywhere.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";

import type { Device } from "../../src/native/device.ts";
import { DType } from "../../src/native/ops.ts";
import { CASES, type Check } from "./cases.ts";
import { announce, DTYPES, freshSeed, noGpu, openCpu, openCuda, Rng, RTOL } from "./common.ts";

announce("test/gpu/ops.test.ts (CUDA kernels vs float64 reference and CPU backend)");
const SEED = freshSeed();

function verify(c: Check, rtol: number, seed: number, against = "reference"): void {
  const { got, ref } = c;
  expect(got.length).toBe(ref.length);
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!,
      r = ref[i]!;
    const sc = typeof c.scale === "number" ? c.scale : c.scale[i]!;
    let ok: boolean;
    if (Number.isNaN(r)) ok = Number.isNaN(g);
    else if (c.exact) ok = g === r;
    else ok = Number.isFinite(g) && Math.abs(g - r) <= rtol * (Math.abs(r) + sc);
    if (!ok)
      throw new Error(`${c.what}[${i}] = ${g}, ${against} ${r} (bound ${c.exact ? "exact" : `${rtol} * (|ref| + ${sc})`}) [seed ${seed}]`);
  }
}

const caseSeed = (i: number) => (SEED + i * 7919) >>> 0;

describe("op references: CPU backend vs float64 (runs everywhere)", () => {
  let cpu: Device;
  beforeAll(() => {
    cpu = openCpu();
  });
  afterAll(() => cpu?.close());
  CASES.forEach((c, i) => {
    if (c.big || c.gpuOnly) return;
    test(c.name, () => {
      for (const chk of c.run(cpu, DType.F32, new Rng(caseSeed(i)))) verify(chk, chk.rtolF32 ?? RTOL[DType.F32]!, caseSeed(i));
    });
  });
});

describe.skipIf(noGpu)("CUDA ops vs float64 reference and CPU backend", () => {
  let cpu: Device, gpu: Device;
  beforeAll(() => {
    cpu = openCpu();
    gpu = openCuda();
  });
  afterAll(() => {
    gpu?.close();
    cpu?.close();
  });
  CASES.forEach((c, i) => {
    for (const dt of DTYPES) {
      test(`${c.name} [${dt.name}]`, () => {
        const seed = caseSeed(i);
        const rtolOf = (chk: Check) => (dt.code === DType.F32 ? (chk.rtolF32 ?? RTOL[DType.F32]!) : RTOL[dt.code]!);
        const g = c.run(gpu, dt.code, new Rng(seed));
        for (const chk of g) verify(chk, rtolOf(chk), seed);
        if (c.gpuOnly) return;
        // The CPU backend (fp32) on exactly the inputs the CUDA run saw (rounded to its dtype).
        const cpuChecks = c.run(cpu, DType.F32, new Rng(seed), dt.code);
        g.forEach((chk, j) => verify({ ...chk, ref: Float64Array.from(cpuChecks[j]!.got) }, 2 * rtolOf(chk), seed, "CPU backend"));
      }, 120_000);
    }
  });
});
