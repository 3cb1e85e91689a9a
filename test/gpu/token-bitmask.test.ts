// The CUDA token-bitmask kernel (csrc/cuda/ops_bitmask.cu, structured outputs) against the CPU
// executor (csrc/cpu/ops_bitmask.c, itself checked against a reference in test/c/test_bitmask.c).
// The op only copies or writes -inf, so the logits must be bit-identical on both backends.
// Inputs: fresh random logits (seed printed on failure), masks of density 0 / ~3 % / ~50 % / 1,
// vocab at word boundaries up to 151936, identity rows or row indices with padding (-1, out of
// range), and a CUDA graph that captures the op and replays it with masks restaged per step.
// Without a GPU the CUDA part skips with a visible "skipped: no GPU" line; the CPU harness runs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";

import type { Device } from "../../src/native/device.ts";
import { GraphSet } from "../../src/native/graphs.ts";
import { Ops } from "../../src/native/ops.ts";
import { announce, Buffers, freshSeed, noGpu, openCpu, openCuda, Rng } from "./common.ts";

announce("test/gpu/token-bitmask.test.ts (CUDA token bitmask vs the CPU executor)");
const SEED = freshSeed();

interface MaskInputs {
  logitsRows: number;
  vocab: number;
  logits: Float32Array;
  mask: Int32Array;
  idx: Int32Array | null;
  rows: number;
}

function makeInputs(rng: Rng, logitsRows: number, vocab: number, density: number, withIdx: boolean): MaskInputs {
  const words = Math.ceil(vocab / 32);
  const logits = new Float32Array(logitsRows * vocab);
  for (let i = 0; i < logits.length; i++) logits[i] = rng.f() * 8;
  const rows = withIdx ? Math.max(1, logitsRows - 1) : logitsRows;
  const mask = new Int32Array(rows * words);
  for (let w = 0; w < mask.length; w++) {
    let bits = 0;
    for (let j = 0; j < 32; j++) {
      const x = rng.int(100);
      const on = density === 0 ? false : density === 1 ? x < 3 : density === 2 ? x < 50 : true;
      if (on) bits |= 1 << j;
    }
    mask[w] = bits;
  }
  let idx: Int32Array | null = null;
  if (withIdx) {
    idx = new Int32Array(rows);
    for (let r = 0; r < rows; r++) idx[r] = logitsRows - 1 - r; // reversed
    if (rows > 2) {
      idx[1] = -1; // padding
      idx[2] = logitsRows + 3; // out of range: skipped
    }
  }
  return { logitsRows, vocab, logits, mask, idx, rows };
}

/** Applies the op on `dev`; returns the logits after. */
function runOn(dev: Device, x: MaskInputs): Float32Array {
  const b = new Buffers(dev);
  const ops = new Ops(dev);
  try {
    const logits = b.floats32(x.logits);
    ops.applyTokenBitmask(logits, x.logitsRows, b.ints(x.mask), x.idx ? b.ints(x.idx) : 0n, x.rows, x.vocab);
    dev.synchronize();
    const out = new Float32Array(x.logits.length);
    dev.copyFromDevice(out, logits);
    return out;
  } finally {
    b.freeAll();
  }
}

function expectBitEqual(what: string, got: Float32Array, want: Float32Array, seed: number): void {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < g.length; i++)
    if (g[i] !== w[i]) throw new Error(`${what}: element ${i}: CUDA ${got[i]}, CPU ${want[i]} [seed ${seed}]`);
}

const CASES: { logitsRows: number; vocab: number; density: number; idx: boolean; big?: boolean }[] = [
  { logitsRows: 1, vocab: 1, density: 0, idx: false },
  { logitsRows: 3, vocab: 33, density: 2, idx: true },
  { logitsRows: 8, vocab: 1000, density: 1, idx: false },
  { logitsRows: 8, vocab: 1000, density: 3, idx: true },
  { logitsRows: 64, vocab: 32000, density: 1, idx: true, big: true },
  { logitsRows: 16, vocab: 128256, density: 2, idx: false, big: true },
  { logitsRows: 5, vocab: 151936, density: 0, idx: true, big: true },
];
const caseSeed = (i: number) => (SEED + i * 7919) >>> 0;

describe("token bitmask harness on the CPU backend (runs everywhere)", () => {
  let cpu: Device;
  beforeAll(() => {
    cpu = openCpu();
  });
  afterAll(() => cpu?.close());
  CASES.forEach((c, i) => {
    if (c.big) return;
    test(`${c.logitsRows}x${c.vocab} density ${c.density}${c.idx ? " with row indices" : ""}: allowed kept, others -inf`, () => {
      const x = makeInputs(new Rng(caseSeed(i)), c.logitsRows, c.vocab, c.density, c.idx);
      const got = runOn(cpu, x);
      const words = Math.ceil(c.vocab / 32);
      for (let row = 0; row < c.logitsRows; row++) {
        let r = -1;
        for (let k = 0; k < x.rows; k++) if ((x.idx ? x.idx[k]! : k) === row) r = k;
        for (let t = 0; t < c.vocab; t++) {
          const allowed = r < 0 || ((x.mask[r * words + (t >> 5)]! >>> (t & 31)) & 1) === 1;
          expect(got[row * c.vocab + t]).toBe(allowed ? x.logits[row * c.vocab + t]! : Number.NEGATIVE_INFINITY);
        }
      }
    });
  });
});

describe.skipIf(noGpu)("CUDA token bitmask vs the CPU executor (bit-identical)", () => {
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
    test(`${c.logitsRows}x${c.vocab} density ${c.density}${c.idx ? " with row indices" : ""}`, () => {
      const seed = caseSeed(i);
      const x = makeInputs(new Rng(seed), c.logitsRows, c.vocab, c.density, c.idx);
      expectBitEqual("hr_op_apply_token_bitmask", runOn(gpu, x), runOn(cpu, x), seed);
    }, 120_000);
  });

  test("a CUDA graph captures the op; replays with restaged masks equal the CPU executor", () => {
    const seed = caseSeed(99);
    const rng = new Rng(seed);
    const logitsRows = 16,
      vocab = 32000,
      words = Math.ceil(vocab / 32);
    const b = new Buffers(gpu);
    const ops = new Ops(gpu);
    const set = GraphSet.create(gpu, [logitsRows]);
    try {
      const logits = b.alloc(logitsRows * vocab * 4),
        mask = b.alloc(logitsRows * words * 4),
        idx = b.alloc(logitsRows * 4);
      set.capture(logitsRows, () => ops.applyTokenBitmask(logits, logitsRows, mask, idx, logitsRows - 1, vocab));
      for (let rep = 0; rep < 3; rep++) {
        const x = makeInputs(rng, logitsRows, vocab, 1 + rep, true);
        gpu.copyToDevice(logits, x.logits);
        gpu.copyToDevice(mask, x.mask);
        gpu.copyToDevice(idx, x.idx!);
        set.replay(logitsRows);
        gpu.synchronize();
        const got = new Float32Array(x.logits.length);
        gpu.copyFromDevice(got, logits);
        expectBitEqual(`graph replay ${rep}`, got, runOn(cpu, x), seed);
      }
    } finally {
      b.freeAll();
      set.destroy();
    }
  }, 120_000);
});
