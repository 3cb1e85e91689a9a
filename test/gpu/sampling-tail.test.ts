// The device-sampling tail (src/engine/device-sampler.ts): token bitmask -> logit bias ->
// sample, launched eagerly after the forward pass as the engine does, and captured once and
// replayed with restaged inputs, against the CPU executors run eagerly on the same inputs (each op is checked against its own reference in
// test/c and in test/gpu/{cases,sample,token-bitmask}.ts; this checks the chain and its staging).
// The logits after mask + bias must be bit-identical and the sampled ids equal on every row.
//
// Inputs per replay: fresh random logits (seed printed on failure), masks on some rows (row
// indices with -1 padding), distinct bias entries with -inf bans and padding, per-row
// temperature (greedy and not), top-k, top-p, uniform. The CPU part (op-list graph vs eager on
// the CPU backend) runs everywhere; the CUDA part skips visibly without a GPU.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";

import type { Device } from "../../src/native/device.ts";
import { GraphSet } from "../../src/native/graphs.ts";
import { Ops } from "../../src/native/ops.ts";
import { announce, Buffers, freshSeed, noGpu, openCpu, openCuda, Rng } from "./common.ts";

announce("test/gpu/sampling-tail.test.ts (CUDA sampling tail in a graph vs the CPU executors)");
const SEED = freshSeed();

interface TailInputs {
  rows: number;
  vocab: number;
  logits: Float32Array;
  mask: Int32Array;
  maskIdx: Int32Array;
  entries: Uint8Array;
  numEntries: number;
  params: Uint8Array; // [temperature f32 | top_k i32 | top_p f32 | uniform f32], rows each
}

function makeInputs(rng: Rng, rows: number, vocab: number, numEntries: number): TailInputs {
  const words = Math.ceil(vocab / 32);
  const logits = rng.floats(rows * vocab, 6);
  const mask = new Int32Array(rows * words);
  for (let i = 0; i < mask.length; i++) mask[i] = rng.u32() | 0; // about half allowed
  const maskIdx = new Int32Array(rows).fill(-1);
  for (let r = 0; r < Math.floor(rows / 3); r++) maskIdx[r] = rows - 1 - 2 * r; // some rows masked, the rest padding
  const raw = new ArrayBuffer(16 * numEntries);
  const i32 = new Int32Array(raw);
  const f64 = new Float64Array(raw);
  const used = new Set<number>();
  for (let k = 0; k < numEntries; k++) {
    let row = rng.int(rows + 1) - 1;
    const tok = rng.int(vocab);
    if (row >= 0 && used.has(row * vocab + tok)) row = -1;
    if (row >= 0) used.add(row * vocab + tok);
    i32[4 * k] = row;
    i32[4 * k + 1] = tok;
    f64[2 * k + 1] = rng.int(6) === 0 ? Number.NEGATIVE_INFINITY : rng.f() * 10;
  }
  const params = new ArrayBuffer(16 * rows);
  const temp = new Float32Array(params, 0, rows);
  const topK = new Int32Array(params, 4 * rows, rows);
  const topP = new Float32Array(params, 8 * rows, rows);
  const u = new Float32Array(params, 12 * rows, rows);
  const temps = [0, 0.7, 1, 1.3];
  const ks = [0, 1, 20, 50];
  const ps = [1, 0.9, 0.5];
  for (let r = 0; r < rows; r++) {
    temp[r] = temps[rng.int(temps.length)]!;
    topK[r] = ks[rng.int(ks.length)]!;
    topP[r] = ps[rng.int(ps.length)]!;
    u[r] = (rng.u32() & 0xffffff) / 16777216;
  }
  return { rows, vocab, logits, mask, maskIdx, entries: new Uint8Array(raw), numEntries, params: new Uint8Array(params) };
}

/** Device buffers of the tail (fixed addresses: a graph captures them). */
class TailBuffers {
  readonly b: Buffers;
  readonly logits: bigint;
  readonly mask: bigint;
  readonly maskIdx: bigint;
  readonly entries: bigint;
  readonly params: bigint;
  readonly ids: bigint;
  constructor(
    readonly dev: Device,
    readonly rows: number,
    readonly vocab: number,
    readonly numEntries: number,
  ) {
    this.b = new Buffers(dev);
    this.logits = this.b.alloc(rows * vocab * 4);
    this.mask = this.b.alloc(rows * Math.ceil(vocab / 32) * 4);
    this.maskIdx = this.b.alloc(rows * 4);
    this.entries = this.b.alloc(16 * numEntries);
    this.params = this.b.alloc(16 * rows);
    this.ids = this.b.alloc(rows * 4);
  }
  stage(x: TailInputs): void {
    const d = this.dev;
    d.copyToDevice(this.logits, x.logits);
    d.copyToDevice(this.mask, x.mask);
    d.copyToDevice(this.maskIdx, x.maskIdx);
    d.copyToDevice(this.entries, x.entries);
    d.copyToDevice(this.params, x.params);
    d.memset(this.ids, 0xff, this.rows * 4);
  }
  /** The tail as DeviceSampler.runTail issues it with every mask slot and entry in use. */
  issue(ops: Ops): void {
    const { rows, vocab } = this;
    const p = this.params;
    ops.applyTokenBitmask(this.logits, rows, this.mask, this.maskIdx, rows, vocab);
    ops.addLogitBias(this.logits, rows, this.entries, this.numEntries, vocab);
    ops.sample(this.ids, this.logits, p, p + BigInt(4 * rows), p + BigInt(8 * rows), p + BigInt(12 * rows), rows, vocab);
  }
  read(): { logits: Float32Array; ids: Int32Array } {
    this.dev.synchronize();
    const logits = new Float32Array(this.rows * this.vocab);
    const ids = new Int32Array(this.rows);
    this.dev.copyFromDevice(logits, this.logits);
    this.dev.copyFromDevice(ids, this.ids);
    return { logits, ids };
  }
}

/** The CPU executors run eagerly on `x`. */
function eagerCpu(cpu: Device, x: TailInputs): { logits: Float32Array; ids: Int32Array } {
  const t = new TailBuffers(cpu, x.rows, x.vocab, x.numEntries);
  try {
    t.stage(x);
    t.issue(new Ops(cpu));
    return t.read();
  } finally {
    t.b.freeAll();
  }
}

function expectSame(
  what: string,
  got: { logits: Float32Array; ids: Int32Array },
  want: { logits: Float32Array; ids: Int32Array },
  seed: number,
): void {
  const g = new Uint32Array(got.logits.buffer);
  const w = new Uint32Array(want.logits.buffer);
  for (let i = 0; i < g.length; i++)
    if (g[i] !== w[i]) throw new Error(`${what}: logit ${i}: ${got.logits[i]} vs CPU ${want.logits[i]} [seed ${seed}]`);
  for (let r = 0; r < got.ids.length; r++)
    if (got.ids[r] !== want.ids[r]) throw new Error(`${what}: row ${r}: id ${got.ids[r]} vs CPU ${want.ids[r]} [seed ${seed}]`);
}

/** Captures the tail on `dev` and replays it on three fresh inputs, each compared with the CPU executors run eagerly. */
function graphVsCpu(dev: Device, cpu: Device, rows: number, vocab: number, numEntries: number, seed: number): void {
  const rng = new Rng(seed);
  const t = new TailBuffers(dev, rows, vocab, numEntries);
  const set = GraphSet.create(dev, [rows]);
  try {
    set.capture(rows, () => t.issue(new Ops(dev)));
    for (let rep = 0; rep < 3; rep++) {
      const x = makeInputs(rng, rows, vocab, numEntries);
      t.stage(x);
      set.replay(rows);
      const got = t.read();
      for (const id of got.ids) expect(id >= 0 && id < vocab).toBe(true);
      expectSame(`replay ${rep}`, got, eagerCpu(cpu, x), seed);
    }
  } finally {
    t.b.freeAll();
    set.destroy();
  }
}

/** Launches the tail eagerly on `dev` (the engine's path) for three fresh inputs, each compared with the CPU executors. */
function eagerVsCpu(dev: Device, cpu: Device, rows: number, vocab: number, numEntries: number, seed: number): void {
  const rng = new Rng(seed);
  const t = new TailBuffers(dev, rows, vocab, numEntries);
  try {
    for (let rep = 0; rep < 3; rep++) {
      const x = makeInputs(rng, rows, vocab, numEntries);
      t.stage(x);
      t.issue(new Ops(dev));
      const got = t.read();
      for (const id of got.ids) expect(id >= 0 && id < vocab).toBe(true);
      expectSame(`eager ${rep}`, got, eagerCpu(cpu, x), seed);
    }
  } finally {
    t.b.freeAll();
  }
}

describe("sampling tail on the CPU backend: op-list graph replays equal eager runs (runs everywhere)", () => {
  let cpu: Device, cpu2: Device;
  beforeAll(() => {
    cpu = openCpu();
    cpu2 = openCpu();
  });
  afterAll(() => {
    cpu2?.close();
    cpu?.close();
  });
  test("16 rows x 1000, 256 entries", () => graphVsCpu(cpu2, cpu, 16, 1000, 256, SEED));
});

describe.skipIf(noGpu)("CUDA sampling tail in a graph vs the CPU executors", () => {
  let cpu: Device, gpu: Device;
  beforeAll(() => {
    cpu = openCpu();
    gpu = openCuda();
  });
  afterAll(() => {
    gpu?.close();
    cpu?.close();
  });
  for (const [rows, vocab, n] of [
    [8, 1000, 64],
    [64, 32000, 2048],
    [33, 151936, 1056],
  ] as const) {
    test(`${rows} rows x ${vocab}, ${n} entries`, () => graphVsCpu(gpu, cpu, rows, vocab, n, (SEED + rows) >>> 0), 120_000);
    test(
      `eager (the engine's launch): ${rows} rows x ${vocab}, ${n} entries`,
      () => eagerVsCpu(gpu, cpu, rows, vocab, n, (SEED + 7 * rows) >>> 0),
      120_000,
    );
  }
});
