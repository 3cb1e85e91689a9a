// GPU-suite cases for the decode plan (planned decode attention: plan edge cases, GQA 1..8,
// capture + replay with a changed plan, stale plans, bad block ids) and for KV cache dtypes
// (kv_write converting to f16/bf16/fp8 with a scale, decode and prefill reading them).
//
// References: a cache of kv_dtype holds exactly the values fp8Round/roundTo give for
// value / scale (RNE, fp8 saturating), and attention over it equals float64 attention over
// the dequantized cache (stored * scale). The CPU backend runs the same cases with the same
// kv_dtype and scales (csrc/cpu/attn_span.c), so CUDA is compared with it as with any case.
import type { Device } from "../../src/native/device.ts";
import { GraphSet } from "../../src/native/graphs.ts";
import { DECODE_PLANNED, DType, KvDType, Ops, type DTypeCode, type KvDTypeCode, type PagedCache } from "../../src/native/ops.ts";
import type { OpCase } from "./cases.ts";
import { Buffers, esize, fromBf16Bits, fromF16Bits, type Rng, roundTo, toBf16Bits, toF16Bits } from "./common.ts";
import { refDecode, refPrefill, type PagedKv } from "./ref.ts";

export const KV_NAMES: Record<number, string> = { 0: "f32", 1: "f16", 2: "bf16", 3: "fp8_e4m3", 4: "fp8_e5m2" };

/** OCP FP8 rounding of a float32 value: nearest even, saturating to the finite max, NaN stays. */
export function fp8Round(x: number, kind: 3 | 4): number {
  if (Number.isNaN(x)) return NaN;
  const [mbits, minExp, max] = kind === 3 ? [3, -6, 448] : [2, -14, 57344];
  const a = Math.abs(x),
    sign = x < 0 || Object.is(x, -0) ? -1 : 1;
  if (a === 0) return sign * 0;
  if (a >= max) return sign * max;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  if (e < minExp) e = minExp; // subnormals share the smallest exponent
  const quantum = 2 ** (e - mbits);
  const r = a / quantum,
    fl = Math.floor(r),
    frac = r - fl;
  const n = frac > 0.5 || (frac === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  return sign * Math.min(n * quantum, max);
}

/** fp8 bits of a value fp8Round already produced (for uploading a cache). */
function fp8Bits(v: number, kind: 3 | 4): number {
  if (Number.isNaN(v)) return 0x7f;
  const [mbits, bias] = kind === 3 ? [3, 7] : [2, 15];
  const s = v < 0 || Object.is(v, -0) ? 0x80 : 0;
  const a = Math.abs(v);
  if (a === 0) return s;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const minExp = 1 - bias;
  if (e < minExp) return s | Math.round(a / 2 ** (minExp - mbits)); // subnormal
  const m = Math.round((a / 2 ** e - 1) * 2 ** mbits);
  return s | ((e + bias) << mbits) | m;
}
function fp8Value(b: number, kind: 3 | 4): number {
  const [mbits, bias] = kind === 3 ? [3, 7] : [2, 15];
  const s = b & 0x80 ? -1 : 1,
    e = (b >> mbits) & (kind === 3 ? 0xf : 0x1f),
    m = b & ((1 << mbits) - 1);
  if (kind === 3 && (b & 0x7f) === 0x7f) return NaN;
  if (kind === 4 && e === 0x1f) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** (1 - bias - mbits);
  return s * (1 + m / 2 ** mbits) * 2 ** (e - bias);
}

/** What a cache of kv_dtype stores for x / scale (float32 division, then the cache rounding). */
export function kvStore(x: number, scale: number, kv: number): number {
  const v = Math.fround(Math.fround(x) / Math.fround(scale));
  if (kv === KvDType.FP8_E4M3 || kv === KvDType.FP8_E5M2) return fp8Round(v, kv);
  if (kv === KvDType.F16) return fromF16Bits(toF16Bits(v));
  if (kv === KvDType.BF16) return fromBf16Bits(toBf16Bits(v));
  return v;
}
const kvSize = (kv: number) => (kv === KvDType.F32 ? 4 : kv >= KvDType.FP8_E4M3 ? 1 : 2);

/** Uploads stored cache values (already representable) as kv_dtype. */
export function uploadKv(b: Buffers, kv: number, stored: Float32Array): bigint {
  let raw: Float32Array | Uint16Array | Uint8Array;
  if (kv === KvDType.F32) raw = stored;
  else if (kv === KvDType.F16) raw = Uint16Array.from(stored, (x) => toF16Bits(x));
  else if (kv === KvDType.BF16) raw = Uint16Array.from(stored, (x) => toBf16Bits(x));
  else raw = Uint8Array.from(stored, (x) => fp8Bits(x, kv as 3 | 4));
  const p = b.alloc(raw.byteLength);
  b.dev.copyToDevice(p, raw);
  return p;
}
function readKv(b: Buffers, kv: number, p: bigint, n: number): Float32Array {
  b.dev.synchronize();
  if (kv === KvDType.F32) return b.read(DType.F32, p, n);
  if (kv === KvDType.F16 || kv === KvDType.BF16) return b.read(kv, p, n);
  const raw = new Uint8Array(n);
  b.dev.copyFromDevice(raw, p);
  return Float32Array.from(raw, (x) => fp8Value(x, kv as 3 | 4));
}

/** Every backend reads every kv_dtype now (the CPU backend since its span kernels). */
const cpuStoresKvAsIs = (_dev: Device) => false;

interface KvCache {
  cache: PagedCache;
  /** dequantized values the reference attends over */
  kv: PagedKv;
}
/** A paged cache of kv_dtype with scales; random values quantized as kv_write would store them. */
function kvCache(
  b: Buffers,
  rng: Rng,
  lens: number[],
  hk: number,
  d: number,
  bs: number,
  kvDtype: number,
  ks: number,
  vs: number,
  maxbPad = 1,
): KvCache & { nb: number; maxb: number; bt: Int32Array } {
  const need = lens.map((l) => Math.ceil(l / bs));
  const maxb = Math.max(...need) + maxbPad;
  const nb = need.reduce((a, x) => a + x, 0) + 3;
  const perm = rng.perm(nb);
  const bt = new Int32Array(lens.length * maxb).fill(0x7fffffff); // never read
  let next = 0;
  for (let s = 0; s < lens.length; s++) for (let j = 0; j < need[s]!; j++) bt[s * maxb + j] = perm[next++]!;
  const n = nb * bs * hk * d;
  // inputs spread over the scale so fp8 uses its range: |x| up to 4 * scale
  const k = rng.floats(n, 4 * ks).map((x) => kvStore(x, ks, kvDtype));
  const v = rng.floats(n, 4 * vs).map((x) => kvStore(x, vs, kvDtype));
  const deqK = k.map((x) => Math.fround(x * ks)),
    deqV = v.map((x) => Math.fround(x * vs));
  const asIs = cpuStoresKvAsIs(b.dev);
  const cache: PagedCache = {
    kCache: asIs ? b.values(DType.F32, deqK) : uploadKv(b, kvDtype, k),
    vCache: asIs ? b.values(DType.F32, deqV) : uploadKv(b, kvDtype, v),
    numBlocks: nb,
    blockSize: bs,
    numKvHeads: hk,
    headDim: d,
    kvDtype: (asIs ? DType.F32 : kvDtype) as KvDTypeCode,
    kScale: asIs ? 1 : ks,
    vScale: asIs ? 1 : vs,
  };
  return { cache, kv: { k: deqK, v: deqV, bs, hk, d }, nb, maxb, bt };
}

// ---- kv_write into every cache dtype ----
const kvWriteDtype = (kv: number, T: number, hk: number, d: number, nb: number, bs: number, ks: number, vs: number): OpCase => ({
  name: `kv_write kv_dtype=${KV_NAMES[kv]} k_scale=${ks} v_scale=${vs} T=${T} hk=${hk} d=${d} blocks=${nb}x${bs}`,
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const row = hk * d,
        nslots = nb * bs;
      const perm = rng.perm(nslots);
      const slots = new Int32Array(T).map((_, t) => (t % 5 === 4 ? -1 : perm[t]!));
      // values up to 600 * scale: fp8 e4m3 saturates above 448 * scale
      const key = roundTo(roundAs, rng.floats(T * row, 600 * ks));
      const val = roundTo(roundAs, rng.floats(T * row, 600 * vs));
      key[0] = NaN; // NaN stays NaN in every cache type
      const kc = b.alloc(nslots * row * kvSize(kv)),
        vc = b.alloc(nslots * row * kvSize(kv));
      dev.memset(kc, 0xff, nslots * row * kvSize(kv)); // NaN in every format
      dev.memset(vc, 0xff, nslots * row * kvSize(kv));
      const cache: PagedCache = { kCache: kc, vCache: vc, numBlocks: nb, blockSize: bs, numKvHeads: hk, headDim: d };
      cache.kvDtype = kv as KvDTypeCode;
      cache.kScale = ks;
      cache.vScale = vs;
      new Ops(dev, dtype as DTypeCode).kvWrite(cache, b.values(dtype, key), b.values(dtype, val), b.ints(slots), T);
      const refK = new Float64Array(nslots * row).fill(NaN),
        refV = new Float64Array(nslots * row).fill(NaN);
      for (let t = 0; t < T; t++) {
        if (slots[t]! < 0) continue;
        for (let i = 0; i < row; i++) {
          refK[slots[t]! * row + i] = kvStore(key[t * row + i]!, ks, kv);
          refV[slots[t]! * row + i] = kvStore(val[t * row + i]!, vs, kv);
        }
      }
      return [
        { what: "k_cache", got: readKv(b, kv, kc, nslots * row), ref: refK, scale: 0, exact: true },
        { what: "v_cache", got: readKv(b, kv, vc, nslots * row), ref: refV, scale: 0, exact: true },
      ];
    } finally {
      b.freeAll();
    }
  },
});

// ---- planned decode ----
interface PlanCfg {
  lens: number[];
  hq: number;
  hk: number;
  d: number;
  bs: number;
  kv?: number;
  ks?: number;
  vs?: number;
  /** extra block-table columns (the engine's real max_blocks_per_seq is far above the context) */
  maxbPad?: number;
  /** forced partition (tokens); 0 = the plan chooses */
  part?: number;
  window?: number;
  softcap?: number;
}
const planName = (c: PlanCfg) =>
  `attention_decode planned B=${c.lens.length} hq=${c.hq} hk=${c.hk} (GQA ${c.hq / c.hk}) d=${c.d} bs=${c.bs} ` +
  `ctx=${Math.min(...c.lens)}..${Math.max(...c.lens)}${c.maxbPad ? ` max_blocks+${c.maxbPad}` : ""}` +
  `${c.kv !== undefined ? ` kv=${KV_NAMES[c.kv]}` : ""}${c.part ? ` part=${c.part}` : ""}` +
  `${c.window ? ` window=${c.window}` : ""}${c.softcap ? ` softcap=${c.softcap}` : ""}`;

const decodePlanned = (c: PlanCfg, big = false): OpCase => ({
  name: planName(c),
  big,
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const B = c.lens.length;
      const kvDt = c.kv ?? roundAs;
      const p = kvCache(b, rng, c.lens, c.hk, c.d, c.bs, kvDt, c.ks ?? 1, c.vs ?? 1, c.maxbPad ?? 1);
      const q = roundTo(roundAs, rng.floats(B * c.hq * c.d));
      const ops = new Ops(dev, dtype as DTypeCode);
      const wsBytes = ops.decodePlanWorkspaceBytes(B, c.hq, p.cache, p.maxb);
      const ws = b.alloc(wsBytes);
      const lens = Int32Array.from(c.lens);
      ops.decodePlan(lens, B, c.hq, p.cache, p.maxb, ws, wsBytes, c.part ?? 0);
      const out = b.poisoned(dtype, B * c.hq * c.d);
      const scale = 1 / Math.sqrt(c.d);
      ops.attentionDecode(
        out,
        b.values(dtype, q),
        p.cache,
        b.ints(p.bt),
        b.ints(lens),
        ws,
        wsBytes,
        B,
        c.hq,
        p.maxb,
        DECODE_PLANNED,
        scale,
        0,
        c.window ?? 0,
        c.softcap ?? 0,
      );
      const ref = refDecode(q, p.kv, p.bt, lens, B, c.hq, p.maxb, scale, c.hq * c.d, c.window ?? 0, c.softcap ?? 0);
      return [{ what: "out", got: b.read(dtype, out, B * c.hq * c.d), ref, scale: dtype === DType.F32 ? 1 : 0.1, rtolF32: 2e-5 }];
    } finally {
      b.freeAll();
    }
  },
});

/** Bad block ids (past the cache, negative; deep inside a long context) make exactly their sequence NaN. */
const decodeBadBlocks: OpCase = {
  name: "attention_decode planned: bad block ids (deep in the context, negative) -> NaN for their sequence only",
  gpuOnly: true, // the CPU backend reports them as HR_E_INVALID instead (test/c/test_ops.c)
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const lens = [300, 2000, 50, 700],
        hq = 8,
        hk = 2,
        d = 128,
        bs = 16,
        B = lens.length;
      const p = kvCache(b, rng, lens, hk, d, bs, roundAs, 1, 1);
      p.bt[1 * p.maxb + 37] = p.nb + 5; // sequence 1: a block in the middle of its context
      p.bt[3 * p.maxb + 0] = -3; // sequence 3: its first block
      const q = roundTo(roundAs, rng.floats(B * hq * d));
      const ops = new Ops(dev, dtype as DTypeCode);
      const wsBytes = ops.decodePlanWorkspaceBytes(B, hq, p.cache, p.maxb);
      const ws = b.alloc(wsBytes);
      const L = Int32Array.from(lens);
      ops.decodePlan(L, B, hq, p.cache, p.maxb, ws, wsBytes);
      const out = b.poisoned(dtype, B * hq * d);
      const scale = 1 / Math.sqrt(d);
      ops.attentionDecode(out, b.values(dtype, q), p.cache, b.ints(p.bt), b.ints(L), ws, wsBytes, B, hq, p.maxb, DECODE_PLANNED, scale);
      const good = p.bt.map((x) => (x < 0 || x >= p.nb ? 0 : x));
      const ref = refDecode(q, p.kv, good, L, B, hq, p.maxb, scale, hq * d);
      ref.fill(NaN, 1 * hq * d, 2 * hq * d);
      ref.fill(NaN, 3 * hq * d, 4 * hq * d);
      return [{ what: "out", got: b.read(dtype, out, B * hq * d), ref, scale: dtype === DType.F32 ? 1 : 0.1, rtolF32: 2e-5 }];
    } finally {
      b.freeAll();
    }
  },
};

/** A plan made for other lengths: CUDA writes NaN for the sequences whose partitions changed. */
const decodeStalePlan: OpCase = {
  name: "attention_decode planned: stale plan (seq_lens changed after planning) -> NaN for the changed sequence",
  gpuOnly: true, // the CPU backend refuses a stale plan with HR_E_INVALID (test/attn-plan.test.ts)
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const planned = [100, 300],
        real = [100, 500],
        hq = 4,
        hk = 4,
        d = 64,
        bs = 16,
        B = 2;
      const p = kvCache(b, rng, real, hk, d, bs, roundAs, 1, 1);
      const q = roundTo(roundAs, rng.floats(B * hq * d));
      const ops = new Ops(dev, dtype as DTypeCode);
      const wsBytes = ops.decodePlanWorkspaceBytes(B, hq, p.cache, p.maxb);
      const ws = b.alloc(wsBytes);
      ops.decodePlan(Int32Array.from(planned), B, hq, p.cache, p.maxb, ws, wsBytes, 64);
      const out = b.poisoned(dtype, B * hq * d);
      const L = Int32Array.from(real);
      const scale = 1 / Math.sqrt(d);
      ops.attentionDecode(out, b.values(dtype, q), p.cache, b.ints(p.bt), b.ints(L), ws, wsBytes, B, hq, p.maxb, DECODE_PLANNED, scale);
      const ref = refDecode(q, p.kv, p.bt, L, B, hq, p.maxb, scale, hq * d);
      ref.fill(NaN, hq * d, 2 * hq * d);
      return [{ what: "out", got: b.read(dtype, out, B * hq * d), ref, scale: dtype === DType.F32 ? 1 : 0.1, rtolF32: 2e-5 }];
    } finally {
      b.freeAll();
    }
  },
};

/** One captured graph replayed over two plans with different partitions (and B = 1, ctx 1). */
const decodeGraphReplans = (lensA: number[], lensB: number[], big = false): OpCase => ({
  big,
  name: `attention_decode planned in a captured graph, replayed with a new plan: [${lensA}] then [${lensB}]`,
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const B = lensA.length,
        hq = 8,
        hk = 2,
        d = 64,
        bs = 16;
      const longest = lensA.map((x, i) => Math.max(x, lensB[i]!));
      const p = kvCache(b, rng, longest, hk, d, bs, roundAs, 1, 1, 4);
      const q = roundTo(roundAs, rng.floats(B * hq * d));
      const ops = new Ops(dev, dtype as DTypeCode);
      const wsBytes = ops.decodePlanWorkspaceBytes(B, hq, p.cache, p.maxb);
      const ws = b.alloc(wsBytes);
      const lensBuf = b.ints(Int32Array.from(lensA));
      const qBuf = b.values(dtype, q),
        btBuf = b.ints(p.bt);
      const out = b.poisoned(dtype, B * hq * d);
      const scale = 1 / Math.sqrt(d);
      const run = () => ops.attentionDecode(out, qBuf, p.cache, btBuf, lensBuf, ws, wsBytes, B, hq, p.maxb, DECODE_PLANNED, scale);
      // eager first (lazy set-up outside capture), then capture once
      ops.decodePlan(Int32Array.from(lensA), B, hq, p.cache, p.maxb, ws, wsBytes);
      run();
      dev.synchronize();
      const set = GraphSet.create(dev, [B]);
      try {
        set.capture(B, run);
        const checks = [];
        for (const lens of [lensA, lensB]) {
          const L = Int32Array.from(lens);
          dev.copyToDevice(lensBuf, L);
          ops.decodePlan(L, B, hq, p.cache, p.maxb, ws, wsBytes);
          dev.memset(out, 0xff, B * hq * d * esize(dtype));
          set.replay(B);
          const ref = refDecode(q, p.kv, p.bt, L, B, hq, p.maxb, scale, hq * d);
          checks.push({
            what: `out [${lens}]`,
            got: b.read(dtype, out, B * hq * d),
            ref,
            scale: dtype === DType.F32 ? 1 : 0.1,
            rtolF32: 2e-5,
          });
        }
        return checks;
      } finally {
        set.destroy();
      }
    } finally {
      b.freeAll();
    }
  },
});

// ---- prefill over a cache of another dtype ----
const prefillKv = (kv: number, ks: number, vs: number): OpCase => ({
  name: `attention_prefill kv=${KV_NAMES[kv]} k_scale=${ks} v_scale=${vs} B=2 hq=8 hk=2 d=128 bs=16 seqs=40+30,0+17`,
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const seqs = [
          { cached: 40, fresh: 30 },
          { cached: 0, fresh: 17 },
        ],
        hq = 8,
        hk = 2,
        d = 128,
        bs = 16,
        B = 2;
      const lens = seqs.map((s) => s.cached + s.fresh);
      const qsl = Int32Array.of(0, 30, 47);
      const T = 47;
      const p = kvCache(b, rng, lens, hk, d, bs, kv, ks, vs);
      const q = roundTo(roundAs, rng.floats(T * hq * d));
      const out = b.poisoned(dtype, T * hq * d);
      const scale = 1 / Math.sqrt(d);
      const L = Int32Array.from(lens);
      new Ops(dev, dtype as DTypeCode).attentionPrefill(
        out,
        b.values(dtype, q),
        p.cache,
        b.ints(p.bt),
        b.ints(L),
        b.ints(qsl),
        B,
        T,
        hq,
        p.maxb,
        scale,
      );
      const ref = refPrefill(q, p.kv, p.bt, L, qsl, B, T, hq, p.maxb, scale, hq * d);
      return [{ what: "out", got: b.read(dtype, out, T * hq * d), ref, scale: dtype === DType.F32 ? 1 : 0.1, rtolF32: 2e-5 }];
    } finally {
      b.freeAll();
    }
  },
});

const ALL_KV = [KvDType.F32, KvDType.F16, KvDType.BF16, KvDType.FP8_E4M3, KvDType.FP8_E5M2];

export const KV_CASES: OpCase[] = [
  // plan edge cases
  decodePlanned({ lens: [1], hq: 4, hk: 1, d: 64, bs: 16 }),
  decodePlanned({ lens: [1, 8192, 1, 8192, 3], hq: 8, hk: 2, d: 128, bs: 16, maxbPad: 7680 }, true),
  decodePlanned({ lens: [1, 8192], hq: 4, hk: 4, d: 64, bs: 16, part: 64 }, true),
  decodePlanned({ lens: [2000, 33, 700], hq: 16, hk: 2, d: 128, bs: 16, maxbPad: 8000, window: 300, softcap: 30 }, true),
  decodePlanned({ lens: [900, 33, 200], hq: 8, hk: 2, d: 64, bs: 16, maxbPad: 2000, window: 100, softcap: 30 }),
  decodePlanned({ lens: [513, 90, 1, 257], hq: 6, hk: 3, d: 40, bs: 5 }),
  // every GQA group size 1..8 (and 12: two head batches), head_dim 64/128/256
  ...[1, 2, 3, 4, 5, 6, 7, 8, 12].map((g) => decodePlanned({ lens: [1100, 300, 77], hq: 2 * g, hk: 2, d: 128, bs: 16 })),
  decodePlanned({ lens: [4096, 17], hq: 8, hk: 1, d: 256, bs: 16 }, true),
  decodePlanned({ lens: [700, 17], hq: 4, hk: 1, d: 256, bs: 16 }),
  decodePlanned({ lens: [1000, 5], hq: 16, hk: 2, d: 64, bs: 16 }),
  decodePlanned({ lens: [600, 80], hq: 4, hk: 2, d: 96, bs: 7 }),
  // the engine's shapes at real max_blocks_per_seq (128k context, 16-token blocks)
  decodePlanned({ lens: Array.from({ length: 16 }, (_, i) => 2048 + 37 * i), hq: 32, hk: 8, d: 128, bs: 16, maxbPad: 8192 - 130 }, true),
  decodeBadBlocks,
  decodeStalePlan,
  decodeGraphReplans([1, 8192, 40, 5], [3000, 1, 1, 700], true),
  decodeGraphReplans([1, 900, 40, 5], [300, 1, 1, 700]),
  decodeGraphReplans([1], [1000]),
  // KV cache dtypes: write, decode and prefill over each
  ...ALL_KV.map((kv) => kvWriteDtype(kv, 37, 2, 64, 8, 16, kv >= KvDType.FP8_E4M3 ? 0.25 : 1, kv >= KvDType.FP8_E4M3 ? 0.5 : 1)),
  kvWriteDtype(KvDType.FP8_E4M3, 9, 3, 40, 3, 5, 2, 0.125),
  ...ALL_KV.map((kv) =>
    decodePlanned({
      lens: [700, 9, 300],
      hq: 8,
      hk: 2,
      d: 128,
      bs: 16,
      kv,
      ks: kv >= KvDType.FP8_E4M3 ? 0.25 : 1,
      vs: kv >= KvDType.FP8_E4M3 ? 0.5 : 1,
    }),
  ),
  decodePlanned({ lens: [300, 41], hq: 12, hk: 3, d: 80, bs: 16, kv: KvDType.FP8_E4M3, ks: 0.125, vs: 2 }),
  decodePlanned({ lens: [300, 41], hq: 4, hk: 1, d: 40, bs: 16, kv: KvDType.FP8_E5M2, ks: 1, vs: 1 }),
  ...ALL_KV.map((kv) => prefillKv(kv, kv >= KvDType.FP8_E4M3 ? 0.25 : 1, kv >= KvDType.FP8_E4M3 ? 0.5 : 1)),
];
