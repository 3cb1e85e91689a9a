// hr_op_argmax / hr_op_sample through the FFI binding (src/native/ops.ts) on the CPU backend.
// The exhaustive tests are the C ones (test/c/test_sample.c); this suite checks the FFI path
// (argument order, int32/float32 device arrays, errors) against a JS port of the exact rule of
// headroom.h "sampling" (float32 steps emulated with Math.fround, which is exact for + and *;
// integer weights below 2^53 for these vocab sizes), and measures agreement with the engine's
// TypeScript sampler (src/engine/sampler.ts), whose float64 weights may differ at boundaries.
import { afterEach, describe, expect, test } from "bun:test";

import { Sampler } from "../src/engine/sampler.ts";
import { Device, HeadroomError, Status } from "../src/native/index.ts";
import { Ops } from "../src/native/ops.ts";

const MiB = 1 << 20;
const opened: Device[] = [];
function setup(): { d: Device; ops: Ops } {
  const d = Device.open({ device: "cpu", ordinal: 3, cpuCapacityBytes: 64 * MiB });
  opened.push(d);
  return { d, ops: new Ops(d) };
}
afterEach(() => {
  while (opened.length) opened.pop()!.close();
});

let seed = 987654321;
function rnd(): number {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return ((seed >>> 8) + 0.5) / 16777216; // (0, 1)
}
function upload(d: Device, a: Float32Array | Int32Array): bigint {
  const p = d.alloc(Math.max(4, a.byteLength));
  d.copyToDevice(p, a);
  return p;
}

// ---- JS port of the rule (csrc/core/sample_rule.h), for vocab <= 8192 (sums < 2^53) ----
const f = Math.fround;
const C = [1.98412701e-4, 1.38888892e-3, 8.33333377e-3, 4.16666679e-2, 1.66666672e-1, 0.5, 1, 1].map(f);
function e32(z: number): number {
  if (!(z >= -32)) return 0;
  if (z > 0) z = 0;
  const t = f(z * f(1.4426950408889634));
  const n = Math.trunc(f(t - 0.5));
  let r = f(z - f(n * f(0.693145751953125)));
  r = f(r - f(n * f(1.428606765330187e-6)));
  let p = C[0]!;
  for (let i = 1; i < C.length; i++) p = f(f(p * r) + C[i]!);
  return f(p * 2 ** n);
}
const key = (l: number) => (Number.isNaN(l) ? Number.NEGATIVE_INFINITY : l);
function weight(l: number, m: number, invT: number): number {
  if (!(l >= -3.4028234663852886e38)) return 0;
  return Math.trunc(f(e32(f(f(l - m) * invT)) * 2 ** 40));
}
function refSample(l: Float32Array, temp: number, topK: number, topP: number, u: number): number {
  const V = l.length;
  const ord = Array.from({ length: V }, (_, i) => i).sort((a, b) => key(l[b]!) - key(l[a]!) || a - b);
  const am = ord[0]!;
  const m = key(l[am]!);
  if (!(temp >= f(1e-5)) || !Number.isFinite(m)) return am;
  const invT = f(1 / temp);
  const q = Array.from(l, (x) => weight(x, m, invT));
  const k = topK <= 0 || topK >= V ? V : topK;
  let qk = 0;
  for (let j = 0; j < k; j++) qk += q[ord[j]!]!;
  let n = k;
  if (topP < 1) {
    let target = topP > 0 ? Math.ceil(topP * qk) : 1;
    target = Math.min(Math.max(target, 1), qk);
    let acc = 0;
    for (n = 0; n < k; ) {
      acc += q[ord[n++]!]!;
      if (acc >= target) break;
    }
  }
  const keep = new Uint8Array(V);
  let total = 0;
  for (let j = 0; j < n; j++) {
    keep[ord[j]!] = 1;
    total += q[ord[j]!]!;
  }
  const r = u > 0 ? Math.min(Math.floor(u * total), total - 1) : 0;
  let acc = 0;
  for (let i = 0; i < V; i++)
    if (keep[i]) {
      acc += q[i]!;
      if (acc > r) return i;
    }
  throw new Error("refSample: nothing drawn");
}

interface Row {
  logits: Float32Array;
  temp: number;
  topK: number;
  topP: number;
  u: number;
}
function randomRows(rows: number, V: number, ties: boolean): Row[] {
  const temps = [0, 0.7, 1.5, 1];
  const ks = [0, 1, 50, V, 7];
  const ps = [1, 0.9, 0.1, 0.5];
  const us = [0, 0.999999];
  const out: Row[] = [];
  for (let r = 0; r < rows; r++) {
    const logits = new Float32Array(V);
    for (let i = 0; i < V; i++) logits[i] = ties ? Math.round(rnd() * 6) * 0.75 : (rnd() * 2 - 1) * 4;
    out.push({
      logits,
      temp: f(temps[r % temps.length]!),
      topK: ks[(r >> 2) % ks.length]!,
      topP: f(ps[(r >> 1) % ps.length]!),
      u: f(r < us.length ? us[r]! : rnd()),
    });
  }
  return out;
}
function runOp(ops: Ops, d: Device, rows: Row[], V: number): Int32Array {
  const flat = new Float32Array(rows.length * V);
  rows.forEach((r, i) => flat.set(r.logits, i * V));
  const out = upload(d, new Int32Array(rows.length).fill(-1));
  ops.sample(
    out,
    upload(d, flat),
    upload(
      d,
      Float32Array.from(rows, (r) => r.temp),
    ),
    upload(
      d,
      Int32Array.from(rows, (r) => r.topK),
    ),
    upload(
      d,
      Float32Array.from(rows, (r) => r.topP),
    ),
    upload(
      d,
      Float32Array.from(rows, (r) => r.u),
    ),
    rows.length,
    V,
  );
  const got = new Int32Array(rows.length);
  d.copyFromDevice(got, out);
  return got;
}

describe("sampling ops through FFI (CPU)", () => {
  test("argmax: lowest id on ties, odd vocab, NaN never wins", () => {
    const { d, ops } = setup();
    const V = 37;
    const rows = [new Float32Array(V), new Float32Array(V), new Float32Array(V)];
    for (let i = 0; i < V; i++) rows[0]![i] = Math.round(rnd() * 3);
    rows[1]!.fill(-1);
    rows[1]![30] = NaN;
    rows[1]![11] = 2;
    rows[1]![29] = 2;
    rows[2]!.fill(Number.NEGATIVE_INFINITY);
    const flat = new Float32Array(3 * V);
    rows.forEach((r, i) => flat.set(r, i * V));
    const out = upload(d, new Int32Array(3).fill(-1));
    ops.argmax(out, upload(d, flat), 3, V);
    const got = new Int32Array(3);
    d.copyFromDevice(got, out);
    expect(Array.from(got)).toEqual([rows[0]!.indexOf(Math.max(...rows[0]!)), 11, 0]);
  });

  for (const [V, ties] of [
    [37, false],
    [37, true],
    [1000, false],
    [1000, true],
  ] as const) {
    test(`sample equals the JS port of the rule (vocab ${V}${ties ? ", ties" : ""})`, () => {
      const { d, ops } = setup();
      const rows = randomRows(160, V, ties);
      const got = runOp(ops, d, rows, V);
      rows.forEach((r, i) => {
        const want = refSample(r.logits, r.temp, r.topK, r.topP, r.u);
        if (got[i] !== want) throw new Error(`row ${i} (T ${r.temp}, k ${r.topK}, p ${r.topP}, u ${r.u}): op ${got[i]}, rule ${want}`);
      });
    });
  }

  test("agrees with the engine's TypeScript sampler (float64 weights) on almost every row", () => {
    const { d, ops } = setup();
    const V = 1000;
    const rows = randomRows(400, V, false);
    const got = runOp(ops, d, rows, V);
    const sampler = new Sampler();
    let same = 0;
    rows.forEach((r, i) => {
      const x = Float32Array.from(r.logits);
      const want =
        r.temp < 1e-5
          ? x.indexOf(Math.max(...x))
          : sampler.sampleProcessed(x, { temperature: r.temp, topK: r.topK, topP: r.topP, minP: 0 }, r.u);
      if (got[i] === want) same++;
    });
    if (same < rows.length) console.log(`  op vs engine sampler: ${same}/${rows.length} rows equal`);
    expect(same).toBeGreaterThanOrEqual(rows.length - 4);
  });

  test("errors map to HeadroomError with the C message", () => {
    const { d, ops } = setup();
    const p = d.alloc(4096);
    try {
      ops.sample(p, p + 1024n, 0n, p, p, p, 1, 37);
      throw new Error("expected a HeadroomError");
    } catch (e) {
      expect(e).toBeInstanceOf(HeadroomError);
      expect((e as HeadroomError).code).toBe(Status.INVALID);
      expect((e as HeadroomError).message).toContain("temperature must not be 0");
    }
    expect(() => ops.argmax(p, p, 1, 37)).toThrow(/overlaps/);
    expect(() => ops.argmax(p, p + 1024n, 1, 0)).toThrow(/vocab/);
  });
});
