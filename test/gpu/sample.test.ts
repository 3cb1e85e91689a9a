// CUDA sampling kernels (csrc/cuda/ops_sample.cu) against the CPU executor (the reference of
// headroom.h "sampling", itself tested in test/c/test_sample.c and test/ops-sample.test.ts).
//
// Both backends compute the same integer weights (csrc/core/sample_rule.h), so the token ids
// must be EQUAL on every row, not just close. Inputs: fresh random logits (seed printed on
// failure) at several scales, heavy ties, masked (-inf/NaN) entries; vocab 1 / 37 / 1000 /
// 32000 / 128256 / 151936 with 1..300 rows; per-row temperature (incl. greedy 0, 1e-6, NaN),
// top-k (off, 1, 20, 50, vocab), top-p (1, 0.9, 0.5, 0.1, 0), u (0, 0.999999, 1, NaN, random).
// Outputs are poisoned (-1) first; every row is checked. Also hr_op_argmax and a CUDA graph
// that captures hr_op_sample and replays it on new inputs.
//
// Without a GPU the CUDA part skips with a visible "skipped: no GPU" line; the harness itself
// (CPU backend, small cases, ids in range and independent of the thread count) runs everywhere.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";

import type { Device } from "../../src/native/device.ts";
import { GraphSet } from "../../src/native/graphs.ts";
import { Ops } from "../../src/native/ops.ts";
import { announce, Buffers, freshSeed, noGpu, openCpu, openCuda, Rng } from "./common.ts";

announce("test/gpu/sample.test.ts (CUDA sampling vs the CPU executor)");
const SEED = freshSeed();

interface SampleInputs {
  rows: number;
  vocab: number;
  logits: Float32Array;
  temp: Float32Array;
  topK: Int32Array;
  topP: Float32Array;
  u: Float32Array;
}

type Gen = "uniform" | "wide" | "ties" | "masked";

function makeInputs(rng: Rng, rows: number, vocab: number, gen: Gen): SampleInputs {
  const logits = new Float32Array(rows * vocab);
  for (let i = 0; i < logits.length; i++) {
    let x = rng.f() * (gen === "wide" ? 30 : 4);
    if (gen === "ties") x = Math.round(rng.f() * 3) * 0.5;
    if (gen === "masked") {
      const c = rng.int(10);
      if (c < 3) x = Number.NEGATIVE_INFINITY;
      else if (c === 3) x = NaN;
    }
    logits[i] = x;
  }
  const temps = [0, 0.7, 1, 1.5, 1e-6, 0.7, NaN, 1];
  const ks = [0, 1, 50, vocab, 20];
  const ps = [1, 0.9, 0.1, 0, 0.5];
  const us = [0, 0.999999, 1, NaN];
  const temp = new Float32Array(rows),
    topP = new Float32Array(rows),
    u = new Float32Array(rows);
  const topK = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    temp[r] = temps[(r + rng.int(3)) % temps.length]!;
    topK[r] = ks[rng.int(ks.length)]!;
    topP[r] = ps[rng.int(ps.length)]!;
    u[r] = r < us.length ? us[r]! : (rng.u32() & 0xffffff) / 16777216;
  }
  return { rows, vocab, logits, temp, topK, topP, u };
}

/** Runs hr_op_sample and hr_op_argmax on `dev`; returns [sampled ids, argmax ids]. */
function runOn(dev: Device, x: SampleInputs): [Int32Array, Int32Array] {
  const b = new Buffers(dev);
  const ops = new Ops(dev);
  try {
    const out = b.alloc(x.rows * 4),
      outAm = b.alloc(x.rows * 4);
    dev.memset(out, 0xff, x.rows * 4); // -1
    dev.memset(outAm, 0xff, x.rows * 4);
    const logits = b.floats32(x.logits);
    ops.sample(out, logits, b.floats32(x.temp), b.ints(x.topK), b.floats32(x.topP), b.floats32(x.u), x.rows, x.vocab);
    ops.argmax(outAm, logits, x.rows, x.vocab);
    dev.synchronize();
    const got = new Int32Array(x.rows),
      am = new Int32Array(x.rows);
    dev.copyFromDevice(got, out);
    dev.copyFromDevice(am, outAm);
    return [got, am];
  } finally {
    b.freeAll();
  }
}

function describeRow(x: SampleInputs, r: number): string {
  return `row ${r} (T ${x.temp[r]}, top_k ${x.topK[r]}, top_p ${x.topP[r]}, u ${x.u[r]})`;
}

function expectEqualIds(what: string, got: Int32Array, want: Int32Array, x: SampleInputs, seed: number): void {
  for (let r = 0; r < x.rows; r++) {
    if (!(got[r]! >= 0 && got[r]! < x.vocab) || got[r] !== want[r])
      throw new Error(`${what}: ${describeRow(x, r)} of ${x.rows}x${x.vocab}: CUDA ${got[r]}, CPU ${want[r]} [seed ${seed}]`);
  }
}

const CASES: { rows: number; vocab: number; gen: Gen; big?: boolean }[] = [
  { rows: 1, vocab: 1, gen: "uniform" },
  { rows: 9, vocab: 37, gen: "uniform" },
  { rows: 9, vocab: 37, gen: "ties" },
  { rows: 16, vocab: 1000, gen: "masked" },
  { rows: 16, vocab: 1000, gen: "wide" },
  { rows: 300, vocab: 4096, gen: "uniform", big: true },
  { rows: 64, vocab: 32000, gen: "uniform", big: true },
  { rows: 64, vocab: 32000, gen: "ties", big: true },
  { rows: 32, vocab: 32000, gen: "masked", big: true },
  { rows: 8, vocab: 128256, gen: "wide", big: true },
  { rows: 5, vocab: 151936, gen: "uniform", big: true },
];
const caseSeed = (i: number) => (SEED + i * 104729) >>> 0;

describe("sampling harness on the CPU backend (runs everywhere)", () => {
  let cpu: Device;
  beforeAll(() => {
    cpu = openCpu();
  });
  afterAll(() => cpu?.close());
  CASES.forEach((c, i) => {
    if (c.big) return;
    test(`${c.rows}x${c.vocab} ${c.gen}: ids in range, same with 1 and 3 threads`, () => {
      const x = makeInputs(new Rng(caseSeed(i)), c.rows, c.vocab, c.gen);
      const ops = new Ops(cpu);
      ops.setNumThreads(1);
      const [a1, m1] = runOn(cpu, x);
      ops.setNumThreads(3);
      const [a3, m3] = runOn(cpu, x);
      ops.setNumThreads(0);
      for (let r = 0; r < x.rows; r++) expect(a1[r]! >= 0 && a1[r]! < x.vocab).toBe(true);
      expect(Array.from(a3)).toEqual(Array.from(a1));
      expect(Array.from(m3)).toEqual(Array.from(m1));
    });
  });
});

describe.skipIf(noGpu)("CUDA sampling vs the CPU executor (ids equal)", () => {
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
    test(`${c.rows}x${c.vocab} ${c.gen}`, () => {
      const seed = caseSeed(i);
      const x = makeInputs(new Rng(seed), c.rows, c.vocab, c.gen);
      const [g, gm] = runOn(gpu, x);
      const [w, wm] = runOn(cpu, x);
      expectEqualIds("hr_op_sample", g, w, x, seed);
      expectEqualIds("hr_op_argmax", gm, wm, x, seed);
    }, 120_000);
  });

  test("a CUDA graph captures hr_op_sample; replays on new inputs equal the CPU executor", () => {
    const seed = caseSeed(99);
    const rng = new Rng(seed);
    const rows = 32,
      vocab = 32000;
    const b = new Buffers(gpu);
    const ops = new Ops(gpu);
    const set = GraphSet.create(gpu, [rows]);
    try {
      const logits = b.alloc(rows * vocab * 4),
        temp = b.alloc(rows * 4),
        topK = b.alloc(rows * 4);
      const topP = b.alloc(rows * 4),
        u = b.alloc(rows * 4),
        out = b.alloc(rows * 4);
      set.capture(rows, () => ops.sample(out, logits, temp, topK, topP, u, rows, vocab));
      for (let rep = 0; rep < 3; rep++) {
        const x = makeInputs(rng, rows, vocab, rep === 1 ? "ties" : "uniform");
        gpu.copyToDevice(logits, x.logits);
        gpu.copyToDevice(temp, x.temp);
        gpu.copyToDevice(topK, x.topK);
        gpu.copyToDevice(topP, x.topP);
        gpu.copyToDevice(u, x.u);
        gpu.memset(out, 0xff, rows * 4);
        set.replay(rows);
        gpu.synchronize();
        const got = new Int32Array(rows);
        gpu.copyFromDevice(got, out);
        const [want] = runOn(cpu, x);
        expectEqualIds(`graph replay ${rep}`, got, want, x, seed);
      }
    } finally {
      b.freeAll();
      set.destroy();
    }
  }, 120_000);
});
