// Tensor-core prefill attention (csrc/cuda/ops_attention_prefill_tc.cu) on a GPU: every case
// runs in f16 and bf16 through the default path (the tensor-core kernel for head_dim 64/128/256)
// AND with HEADROOM_CUDA_PREFILL=simt (the CUDA-core kernel), each against a float64 reference
// that also returns the terms of the error bound. The two kernels must not give bit-identical
// outputs on the cases marked `differs` (thousands of outputs over >= 64 keys: the tensor-core
// kernel rounds P to 16 bits, so identical bits mean the switch or the dispatch is broken and
// the tensor-core kernel never ran).
//
// Error bound of the tensor-core kernel, per output element (u = unit roundoff of the
// activation type: 2^-8 bf16, 2^-11 f16), derived from where it rounds:
//   P rounded to 16 bits for the PV product:   u * sum_j p_j |v_j| / l        ("mag")
//   output rounded to 16 bits:                 u * |ref|
//   K and V rounded to 16 bits while staged (only f32 caches, and f16 caches under bf16):
//     V: u * mag; K: each score moves by <= eps = u * scale * k_scale * max_j sum_e |q_e k_je|
//     (tanh of softcap has slope <= 1), which moves the output by <= eps * 2 max_j |v_j|
//   Q, K (same-dtype and fp8 caches: fp8 -> 16 bit is exact), the products (exact in fp32),
//   fp32 accumulation and ex2.approx (~2^-22): covered by 1e-5 * (1 + |ref|).
// The test allows twice the sum. The CUDA-core kernel rounds only its output (and converts
// nothing): RTOL * (|ref| + 0.1) as in ops.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";

import type { Device } from "../../src/native/device.ts";
import { DType, KvDType, Ops, type DTypeCode, type KvDTypeCode, type PagedCache } from "../../src/native/ops.ts";
import { withCEnv } from "../util/c-env.ts";
import { KV_NAMES, kvStore, uploadKv } from "./cases-kv.ts";
import { announce, Buffers, freshSeed, noGpu, openCuda, Rng, roundTo, RTOL } from "./common.ts";

announce("test/gpu/prefill-tc.test.ts (tensor-core prefill attention vs float64 and the CUDA-core kernel)");
const SEED = freshSeed();

interface Cfg {
  seqs: { cached: number; fresh: number }[];
  hq: number;
  hk: number;
  d: number;
  bs: number;
  pad?: number; // rows past qsl[B]: must stay untouched
  qPad?: number; // extra elements per token in q (q_stride, as in a fused QKV buffer)
  window?: number;
  softcap?: number;
  kv?: number; // cache dtype (default: the activation dtype)
  ks?: number;
  vs?: number;
  bad?: { seq: number; block: number; id: number }[]; // block table entries made bad
  differs?: boolean;
}

/** float64 attention per output element plus the bound terms (see the header). */
function reference(
  c: Cfg,
  q: Float32Array,
  qs: number,
  K: Float32Array,
  V: Float32Array,
  bt: Int32Array,
  maxb: number,
  T: number,
  badSeqs: Set<number>,
) {
  const { hq, hk, d, bs } = c,
    g = hq / hk,
    scale = 1 / Math.sqrt(d);
  const n = T * hq * d;
  const ref = new Float64Array(n).fill(NaN),
    mag = new Float64Array(n),
    eps = new Float64Array(n),
    vmax = new Float64Array(n);
  let row = 0;
  c.seqs.forEach((s, b) => {
    const L = s.cached + s.fresh;
    for (let i = 0; i < s.fresh; i++, row++) {
      const pos = L - s.fresh + i;
      for (let h = 0; h < hq; h++) {
        const o = (row * hq + h) * d;
        if (badSeqs.has(b)) continue; // NaN row
        const kvh = Math.floor(h / g),
          q0 = row * qs + h * d;
        const lo = c.window ? Math.max(0, pos - c.window + 1) : 0;
        const sc: number[] = [],
          off: number[] = [];
        let mx = -Infinity,
          qk = 0;
        for (let t = lo; t <= pos; t++) {
          const base = ((bt[b * maxb + Math.floor(t / bs)]! * bs + (t % bs)) * hk + kvh) * d;
          let dot = 0,
            adot = 0;
          for (let e = 0; e < d; e++) {
            dot += q[q0 + e]! * K[base + e]!;
            adot += Math.abs(q[q0 + e]! * K[base + e]!);
          }
          let x = dot * scale;
          if (c.softcap) x = c.softcap * Math.tanh(x / c.softcap);
          sc.push(x);
          off.push(base);
          mx = Math.max(mx, x);
          qk = Math.max(qk, adot * scale);
        }
        const p = sc.map((x) => Math.exp(x - mx)),
          l = p.reduce((a, x) => a + x, 0);
        for (let e = 0; e < d; e++) {
          let acc = 0,
            am = 0,
            vm = 0;
          for (let j = 0; j < p.length; j++) {
            const v = V[off[j]! + e]!;
            acc += p[j]! * v;
            am += p[j]! * Math.abs(v);
            vm = Math.max(vm, Math.abs(v));
          }
          ref[o + e] = acc / l;
          mag[o + e] = am / l;
          eps[o + e] = qk;
          vmax[o + e] = vm;
        }
      }
    }
  });
  return { ref, mag, eps, vmax };
}

/** Runs one case on dev in dtype: the default path, then HEADROOM_CUDA_PREFILL=simt. */
function runCase(dev: Device, c: Cfg, dtype: DTypeCode, rng: Rng) {
  const b = new Buffers(dev);
  try {
    const { hq, hk, d, bs } = c,
      B = c.seqs.length,
      kv = c.kv ?? dtype,
      ks = c.ks ?? 1,
      vs = c.vs ?? 1;
    const lens = c.seqs.map((s) => s.cached + s.fresh);
    const qsl = new Int32Array(B + 1);
    for (let s = 0; s < B; s++) qsl[s + 1] = qsl[s]! + c.seqs[s]!.fresh;
    const T = qsl[B]! + (c.pad ?? 0),
      qs = hq * d + (c.qPad ?? 0);
    // paged cache: each sequence's blocks at random places, one spare table column
    const need = lens.map((l) => Math.ceil(l / bs));
    const maxb = Math.max(...need) + 1,
      nb = need.reduce((a, x) => a + x, 0) + 3;
    const perm = rng.perm(nb),
      bt = new Int32Array(B * maxb).fill(0x7fffffff);
    let next = 0;
    for (let s = 0; s < B; s++) for (let j = 0; j < need[s]!; j++) bt[s * maxb + j] = perm[next++]!;
    const stored = (sc: number) => rng.floats(nb * bs * hk * d).map((x) => kvStore(x, sc, kv));
    const Ks = stored(ks),
      Vs = stored(vs);
    const K = Ks.map((x) => Math.fround(x * ks)),
      V = Vs.map((x) => Math.fround(x * vs));
    const badSeqs = new Set<number>();
    for (const x of c.bad ?? []) {
      bt[x.seq * maxb + x.block] = x.id;
      badSeqs.add(x.seq);
    }
    const q = roundTo(dtype, rng.floats(T * qs));
    const cache: PagedCache = {
      kCache: uploadKv(b, kv, Ks),
      vCache: uploadKv(b, kv, Vs),
      numBlocks: nb,
      blockSize: bs,
      numKvHeads: hk,
      headDim: d,
      kvDtype: kv as KvDTypeCode,
      kScale: ks,
      vScale: vs,
    };
    const qBuf = b.values(dtype, q),
      btBuf = b.ints(bt),
      lensBuf = b.ints(Int32Array.from(lens)),
      qslBuf = b.ints(qsl);
    const ops = new Ops(dev, dtype);
    const run = () => {
      const out = b.poisoned(dtype, T * hq * d);
      ops.attentionPrefill(
        out,
        qBuf,
        cache,
        btBuf,
        lensBuf,
        qslBuf,
        B,
        T,
        hq,
        maxb,
        1 / Math.sqrt(d),
        c.qPad ? qs : 0,
        c.window ?? 0,
        c.softcap ?? 0,
      );
      return b.read(dtype, out, T * hq * d);
    };
    const tc = run();
    const simt = withCEnv("HEADROOM_CUDA_PREFILL", "simt", run);
    return { tc, simt, ...reference(c, q, qs, K, V, bt, maxb, T, badSeqs) };
  } finally {
    b.freeAll();
  }
}

const bad = (what: string, i: number, g: number, r: number, bound: number, seed: number) =>
  new Error(`${what}[${i}] = ${g}, reference ${r} (bound ${bound.toExponential(2)}) [seed ${seed}]`);

const CASES: Cfg[] = [
  // odd lengths in one batch, one-token sequences, cached prefixes with a partly filled last block
  {
    seqs: [
      { cached: 0, fresh: 1 },
      { cached: 0, fresh: 37 },
      { cached: 5, fresh: 1 },
      { cached: 100, fresh: 63 },
    ],
    hq: 4,
    hk: 4,
    d: 64,
    bs: 16,
    pad: 3,
    differs: true,
  },
  {
    seqs: [
      { cached: 0, fresh: 129 },
      { cached: 33, fresh: 1 },
      { cached: 17, fresh: 70 },
    ],
    hq: 32,
    hk: 8,
    d: 128,
    bs: 16,
    differs: true,
  },
  {
    seqs: [
      { cached: 1000, fresh: 24 },
      { cached: 0, fresh: 3 },
    ],
    hq: 16,
    hk: 2,
    d: 128,
    bs: 16,
    qPad: 2 * 2 * 128,
    differs: true,
  },
  {
    seqs: [
      { cached: 40, fresh: 9 },
      { cached: 0, fresh: 70 },
    ],
    hq: 8,
    hk: 2,
    d: 256,
    bs: 16,
    differs: true,
  },
  {
    seqs: [
      { cached: 3, fresh: 50 },
      { cached: 0, fresh: 11 },
    ],
    hq: 6,
    hk: 2,
    d: 64,
    bs: 5,
  },
  // long prompts: many K tiles, and a long one behind a cached prefix
  { seqs: [{ cached: 0, fresh: 1100 }], hq: 8, hk: 2, d: 128, bs: 16, differs: true },
  {
    seqs: [
      { cached: 1500, fresh: 300 },
      { cached: 0, fresh: 5 },
    ],
    hq: 8,
    hk: 1,
    d: 64,
    bs: 16,
    differs: true,
  },
  { seqs: [{ cached: 0, fresh: 1030 }], hq: 4, hk: 1, d: 256, bs: 16, differs: true },
  // sliding window, softcap, both
  {
    seqs: [
      { cached: 0, fresh: 300 },
      { cached: 200, fresh: 50 },
      { cached: 0, fresh: 1 },
    ],
    hq: 8,
    hk: 2,
    d: 128,
    bs: 16,
    window: 100,
    differs: true,
  },
  {
    seqs: [
      { cached: 0, fresh: 200 },
      { cached: 10, fresh: 7 },
    ],
    hq: 16,
    hk: 2,
    d: 128,
    bs: 16,
    softcap: 0.5,
    differs: true,
  },
  {
    seqs: [
      { cached: 60, fresh: 90 },
      { cached: 0, fresh: 2 },
    ],
    hq: 4,
    hk: 1,
    d: 64,
    bs: 7,
    window: 33,
    softcap: 2,
  },
  // other cache dtypes: converted while staged
  ...[KvDType.FP8_E4M3, KvDType.FP8_E5M2].map((kv) => ({
    seqs: [
      { cached: 40, fresh: 130 },
      { cached: 0, fresh: 17 },
    ],
    hq: 8,
    hk: 2,
    d: 128,
    bs: 16,
    kv,
    ks: 0.25,
    vs: 0.5,
    differs: true,
  })),
  { seqs: [{ cached: 40, fresh: 130 }], hq: 8, hk: 2, d: 128, bs: 16, kv: KvDType.F32, ks: 1, vs: 2 },
  { seqs: [{ cached: 7, fresh: 100 }], hq: 8, hk: 1, d: 64, bs: 16, kv: KvDType.F16 },
  { seqs: [{ cached: 7, fresh: 100 }], hq: 8, hk: 1, d: 64, bs: 16, kv: KvDType.BF16 },
  // bad block ids (negative, one past the cache) inside keys every new row sees -> NaN rows
  {
    seqs: [
      { cached: 0, fresh: 20 },
      { cached: 0, fresh: 5 },
      { cached: 40, fresh: 20 },
      { cached: 3, fresh: 9 },
    ],
    hq: 8,
    hk: 2,
    d: 128,
    bs: 16,
    bad: [
      { seq: 1, block: 0, id: -3 },
      { seq: 2, block: 1, id: 1 << 20 },
    ],
  },
];
const cfgName = (c: Cfg) =>
  `hq=${c.hq} hk=${c.hk} (GQA ${c.hq / c.hk}) d=${c.d} bs=${c.bs} seqs=${c.seqs.map((s) => `${s.cached}+${s.fresh}`).join(",")}` +
  `${c.window ? ` window=${c.window}` : ""}${c.softcap ? ` softcap=${c.softcap}` : ""}${c.kv !== undefined ? ` kv=${KV_NAMES[c.kv]}` : ""}` +
  `${c.qPad ? " q_stride" : ""}${c.bad ? " bad block ids" : ""}`;

describe.skipIf(noGpu)("tensor-core prefill attention vs float64 and the CUDA-core kernel", () => {
  let dev: Device;
  beforeAll(() => {
    dev = openCuda();
  });
  afterAll(() => dev?.close());
  CASES.forEach((c, ci) => {
    for (const [name, dt] of [
      ["f16", DType.F16],
      ["bf16", DType.BF16],
    ] as const) {
      test(`${cfgName(c)} [${name}]`, () => {
        const seed = (SEED + ci * 7919 + dt) >>> 0;
        const r = runCase(dev, c, dt, new Rng(seed));
        const u = dt === DType.BF16 ? 2 ** -8 : 2 ** -11;
        const kv = c.kv ?? dt;
        const converts = kv === KvDType.F32 || (kv === KvDType.F16 && dt === DType.BF16);
        let differ = 0;
        for (let i = 0; i < r.ref.length; i++) {
          const ref = r.ref[i]!,
            g = r.tc[i]!,
            s = r.simt[i]!;
          if (Number.isNaN(ref)) {
            if (!Number.isNaN(g)) throw bad("tensor-core out", i, g, ref, NaN, seed);
            if (!Number.isNaN(s)) throw bad("CUDA-core out", i, s, ref, NaN, seed);
            continue;
          }
          const a = Math.abs(ref);
          let tb = u * a + u * r.mag[i]!;
          if (converts) tb += u * r.mag[i]! + 2 * u * r.eps[i]! * r.vmax[i]!;
          tb = 2 * tb + 1e-5 * (1 + a);
          if (!(Math.abs(g - ref) <= tb)) throw bad("tensor-core out", i, g, ref, tb, seed);
          const sb = RTOL[dt]! * (a + 0.1);
          if (!(Math.abs(s - ref) <= sb)) throw bad("CUDA-core out", i, s, ref, sb, seed);
          if (!Object.is(g, s)) differ++;
        }
        if (c.differs) expect(differ).toBeGreaterThan(0);
      }, 300_000);
    }
  });
});
