// A few CPU ops through the FFI binding (src/native/ops.ts) against float64 references in
// JS, on fresh random inputs with NaN-poisoned outputs. The exhaustive op tests are the C
// ones (test/c/test_ops.c); this suite checks the FFI path: argument order/types, doubles
// (eps, scale), strides, and status -> HeadroomError mapping.
import { afterEach, describe, expect, test } from "bun:test";

import { Device, HeadroomError, Status } from "../src/native/index.ts";
import { DType, Ops, RopeLayout } from "../src/native/ops.ts";

const MiB = 1 << 20;
const opened: Device[] = [];
function setup(): { d: Device; ops: Ops } {
  const d = Device.open({ device: "cpu", ordinal: 2, cpuCapacityBytes: 256 * MiB });
  opened.push(d);
  return { d, ops: new Ops(d) };
}
afterEach(() => {
  while (opened.length) opened.pop()!.close();
});

let seed = 12345;
function rnd(): number {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return ((seed >>> 8) + 0.5) / 8388608 - 1; // (-1, 1), never 0
}
function randF32(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rnd();
  return a;
}
function upload(d: Device, a: Float32Array | Int32Array): bigint {
  const p = d.alloc(Math.max(4, a.byteLength));
  d.copyToDevice(p, a);
  return p;
}
function poisoned(d: Device, n: number): bigint {
  return upload(d, new Float32Array(n).fill(NaN));
}
function download(d: Device, p: bigint, n: number): Float32Array {
  const a = new Float32Array(n);
  d.copyFromDevice(a, p);
  return a;
}

describe("ops through FFI (CPU)", () => {
  test("matmul with bias, odd shape, vs float64", () => {
    const { d, ops } = setup();
    const [m, n, k] = [5, 129, 37];
    const x = randF32(m * k),
      w = randF32(n * k),
      b = randF32(n);
    const y = poisoned(d, m * n);
    ops.matmul(y, upload(d, x), upload(d, w), upload(d, b), m, n, k);
    const got = download(d, y, m * n);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = b[j]!,
          mag = Math.abs(b[j]!);
        for (let l = 0; l < k; l++) {
          s += x[i * k + l]! * w[j * k + l]!;
          mag += Math.abs(x[i * k + l]! * w[j * k + l]!);
        }
        expect(Math.abs(got[i * n + j]! - s)).toBeLessThanOrEqual(1e-5 * mag + 1e-6);
      }
  });

  test("fused-add RMSNorm writes x back; eps crosses as a double", () => {
    const { d, ops } = setup();
    const [rows, dim, eps] = [3, 64, 1e-5];
    const x = randF32(rows * dim),
      r = randF32(rows * dim),
      w = randF32(dim);
    const px = upload(d, x),
      out = poisoned(d, rows * dim);
    ops.rmsNorm(out, px, upload(d, r), upload(d, w), rows, dim, eps);
    const gotX = download(d, px, rows * dim),
      got = download(d, out, rows * dim);
    for (let i = 0; i < rows; i++) {
      let ss = 0;
      const xs: number[] = [];
      for (let j = 0; j < dim; j++) {
        const v = x[i * dim + j]! + r[i * dim + j]!;
        xs.push(v);
        ss += v * v;
        expect(Math.abs(gotX[i * dim + j]! - v)).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(v)));
      }
      const inv = 1 / Math.sqrt(ss / dim + eps);
      for (let j = 0; j < dim; j++) {
        const ref = xs[j]! * inv * w[j]!;
        expect(Math.abs(got[i * dim + j]! - ref)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(ref)));
      }
    }
  });

  test("RoPE (NeoX) on q and k", () => {
    const { d, ops } = setup();
    const [T, hq, hk, D] = [4, 2, 1, 8];
    const q = randF32(T * hq * D),
      k = randF32(T * hk * D);
    const pos = new Int32Array([0, 3, 17, 1000]);
    const invf = new Float32Array(D / 2).map((_, i) => 10000 ** ((-2 * i) / D));
    const pq = upload(d, q),
      pk = upload(d, k);
    ops.rope(pq, pk, upload(d, pos), upload(d, invf), T, hq, hk, D, 0, RopeLayout.NEOX);
    const gq = download(d, pq, q.length),
      gk = download(d, pk, k.length);
    const check = (src: Float32Array, got: Float32Array, heads: number) => {
      for (let t = 0; t < T; t++)
        for (let h = 0; h < heads; h++)
          for (let i = 0; i < D / 2; i++) {
            const o = (t * heads + h) * D,
              a = pos[t]! * invf[i]!;
            const x0 = src[o + i]!,
              x1 = src[o + i + D / 2]!;
            expect(Math.abs(got[o + i]! - (x0 * Math.cos(a) - x1 * Math.sin(a)))).toBeLessThan(2e-6 * 4);
            expect(Math.abs(got[o + i + D / 2]! - (x1 * Math.cos(a) + x0 * Math.sin(a)))).toBeLessThan(2e-6 * 4);
          }
    };
    check(q, gq, hq);
    check(k, gk, hk);
  });

  test("paged KV write + decode attention with split-K (GQA 2), scale as a double", () => {
    const { d, ops } = setup();
    const [nb, bs, hk, D, hq, L] = [9, 16, 2, 32, 4, 70];
    const cache = {
      kCache: poisoned(d, nb * bs * hk * D),
      vCache: poisoned(d, nb * bs * hk * D),
      numBlocks: nb,
      blockSize: bs,
      numKvHeads: hk,
      headDim: D,
    };
    const maxb = 5;
    const table = new Int32Array([7, 2, 5, 0, 3]);
    const slots = new Int32Array(L).map((_, t) => table[Math.floor(t / bs)]! * bs + (t % bs));
    const key = randF32(L * hk * D),
      val = randF32(L * hk * D);
    ops.kvWrite(cache, upload(d, key), upload(d, val), upload(d, slots), L);
    const q = randF32(hq * D),
      scale = 1 / Math.sqrt(D);
    const part = 32;
    const wsBytes = ops.decodeWorkspaceBytes(1, hq, D, maxb, bs, part);
    expect(wsBytes).toBe(hq * Math.ceil((maxb * bs) / part) * (D + 2) * 4);
    const out = poisoned(d, hq * D);
    ops.attentionDecode(
      out,
      upload(d, q),
      cache,
      upload(d, table),
      upload(d, new Int32Array([L])),
      d.alloc(wsBytes),
      wsBytes,
      1,
      hq,
      maxb,
      part,
      scale,
    );
    const got = download(d, out, hq * D);
    for (let h = 0; h < hq; h++) {
      const g = Math.floor(h / (hq / hk));
      const s: number[] = [];
      for (let t = 0; t < L; t++) {
        let dot = 0;
        for (let i = 0; i < D; i++) dot += q[h * D + i]! * key[(t * hk + g) * D + i]!;
        s.push(dot * scale);
      }
      const mx = Math.max(...s),
        e = s.map((v) => Math.exp(v - mx)),
        sum = e.reduce((a, b) => a + b, 0);
      for (let i = 0; i < D; i++) {
        let ref = 0;
        for (let t = 0; t < L; t++) ref += (e[t]! / sum) * val[(t * hk + g) * D + i]!;
        expect(Math.abs(got[h * D + i]! - ref)).toBeLessThanOrEqual(2e-5);
      }
    }
  });

  test("errors map to HeadroomError with the C message", () => {
    const { d, ops } = setup();
    const p = d.alloc(1024);
    try {
      ops.matmul(p, p + 256n, 0n, 0n, 1, 4, 4);
      throw new Error("expected a HeadroomError");
    } catch (e) {
      expect(e).toBeInstanceOf(HeadroomError);
      expect((e as HeadroomError).code).toBe(Status.INVALID);
      expect((e as HeadroomError).message).toContain("w must not be 0");
    }
    const f16 = new Ops(d, DType.F16);
    expect(() => f16.siluMul(p, p + 64n, p + 128n, 1, 4)).toThrow(/float32 only/);
    ops.setNumThreads(2);
    expect(ops.numThreads()).toBe(2);
    ops.setNumThreads(0);
    expect(ops.numThreads()).toBeGreaterThanOrEqual(1);
  });
});
