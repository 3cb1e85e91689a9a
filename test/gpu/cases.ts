// Op cases shared by the GPU suite (CUDA vs float64 reference vs CPU backend) and by the
// harness check that runs everywhere (CPU backend vs float64 reference), so the references
// and the plumbing are exercised even where no GPU is present.
//
// A case builds its inputs from its own seeded Rng (identical on every backend), rounds them
// to the dtype, runs the op on a device through the public ABI with poisoned outputs, reads
// every output element back and returns what to compare with the reference.
import type { Device } from "../../src/native/device.ts";
import { DType, MATMUL_Q_GEMM_MIN_M, Ops, RopeLayout, type DTypeCode, type PagedCache, type Workspace } from "../../src/native/ops.ts";
import { ARCH_CASES } from "./cases-arch.ts";
import { KV_CASES } from "./cases-kv.ts";
import { Buffers, esize, type Rng, roundTo } from "./common.ts";
import { dequantizeRow, quantRowBytes, quantTypeByName, type QuantType } from "../../src/model/quant.ts";
import { withExactQuantMatmul } from "../util/c-env.ts";
import { llama3InvFreq, refDecode, refEmbedding, refMatmul, refPrefill, refRmsNorm, refRope, refSiluMul, type PagedKv } from "./ref.ts";

export interface Check {
  what: string;
  got: Float32Array;
  ref: Float64Array;
  /** error scale per element (see expectClose); NaN references must come back NaN */
  scale: number | Float64Array;
  /** relative bound override for f32 (default RTOL[f32]) */
  rtolF32?: number;
  /** exact copy: bit-for-bit value equality */
  exact?: boolean;
}

export interface OpCase {
  name: string;
  /** too large for the CPU-only harness run in CI (runs with the GPU suite) */
  big?: boolean;
  /** CUDA vs the float64 reference only: the CPU backend does not run it (yet) or fails it on purpose */
  gpuOnly?: boolean;
  /** Inputs are rounded to `roundAs` (default: dtype), so an fp32 backend can run the exact
   * inputs a 16-bit run sees. */
  run(dev: Device, dtype: number, rng: Rng, roundAs?: number): Check[];
}

function vals(rng: Rng, dtype: number, n: number, scale = 1): Float32Array {
  return roundTo(dtype, rng.floats(n, scale));
}

// ---- embedding ----
const embedding = (T: number, rows: number, dim: number): OpCase => ({
  name: `embedding T=${T} rows=${rows} dim=${dim}`,
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const table = vals(rng, roundAs, rows * dim);
      const ids = new Int32Array(T).map(() => rng.int(rows));
      const out = b.poisoned(dtype, T * dim);
      new Ops(dev, dtype as DTypeCode).embedding(out, b.values(dtype, table), b.ints(ids), T, rows, dim);
      return [{ what: "out", got: b.read(dtype, out, T * dim), ref: refEmbedding(table, ids, dim), scale: 0, exact: true }];
    } finally {
      b.freeAll();
    }
  },
});

// ---- quantized weights (GGUF blocks): reference = float64 over src/model/quant.ts's dequantization ----
function quantBlocks(rng: Rng, q: QuantType, rows: number, k: number): { raw: Uint8Array; deq: Float32Array } {
  const rb = quantRowBytes(q, k);
  const raw = new Uint8Array(rows * rb).map(() => rng.int(256));
  const dv = new DataView(raw.buffer);
  const scale = () => (rng.int(2) << 15) | ((7 + rng.int(4)) << 10) | rng.int(1024); // finite fp16, 2^-8..2^-5
  for (let at = 0; at < raw.length; at += q.blockBytes) {
    if (q.name === "Q6_K") dv.setUint16(at + 208, scale(), true);
    else {
      dv.setUint16(at, scale(), true);
      if (["Q4_1", "Q5_1", "Q4_K", "Q5_K"].includes(q.name)) dv.setUint16(at + 2, scale(), true);
    }
  }
  const deq = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) dequantizeRow(q, raw, r * rb, k, deq, r * k);
  return { raw, deq };
}

function rawBuffer(b: Buffers, raw: Uint8Array): bigint {
  const p = b.alloc(raw.byteLength);
  b.dev.copyToDevice(p, raw);
  return p;
}

// A dequantization workspace of `rows` weight rows (hr_op_matmul_q_ws): on CUDA, m above
// MATMUL_Q_GEMM_MIN_M runs dequantize-to-dtype chunks of `rows` rows + the tensor-core GEMM
// (rows < n: several chunks, the last one short); the CPU backend ignores it.
function dequantWorkspace(b: Buffers, dtype: number, rows: number | undefined, k: number): Workspace | undefined {
  if (!rows) return undefined;
  const bytes = rows * k * esize(dtype);
  return { ptr: b.poisoned(dtype, rows * k), bytes };
}

const matmulQ = (type: string, m: number, n: number, k: number, bias: boolean, wsRows?: number): OpCase => ({
  name: `matmul_q ${type} m=${m} n=${n} k=${k}${bias ? " +bias" : ""}${wsRows ? ` workspace ${wsRows} rows${m > MATMUL_Q_GEMM_MIN_M ? " (GEMM)" : ""}` : ""}`,
  run(dev, dtype, rng, roundAs = dtype) {
    const q = quantTypeByName(type)!;
    const b = new Buffers(dev);
    try {
      const { raw, deq } = quantBlocks(rng, q, n, k);
      const x = vals(rng, roundAs, m * k),
        bs = bias ? vals(rng, roundAs, n) : null;
      const y = b.poisoned(dtype, m * n);
      const xs = b.values(dtype, x),
        wq = rawBuffer(b, raw),
        bsb = bs ? b.values(dtype, bs) : 0n;
      const ws = dequantWorkspace(b, dtype, wsRows, k);
      withExactQuantMatmul(() => new Ops(dev, dtype as DTypeCode).matmul(y, xs, wq, bsb, m, n, k, q.code, ws));
      const ref = refMatmul(x, null, deq, bs, m, n, k);
      return [{ what: "y", got: b.read(dtype, y, m * n), ref: ref.y, scale: ref.mag }];
    } finally {
      b.freeAll();
    }
  },
});

const logitsQ = (type: string, rows: number, hiddenRows: number, vocab: number, dim: number, wsRows?: number): OpCase => ({
  name: `logits_q ${type} rows=${rows}/${hiddenRows} vocab=${vocab} dim=${dim}${wsRows ? ` workspace ${wsRows} rows` : ""}`,
  run(dev, dtype, rng, roundAs = dtype) {
    const q = quantTypeByName(type)!;
    const b = new Buffers(dev);
    try {
      const { raw, deq } = quantBlocks(rng, q, vocab, dim);
      const h = vals(rng, roundAs, hiddenRows * dim);
      const ids = new Int32Array(rows).map(() => rng.int(hiddenRows));
      const out = b.poisoned(DType.F32, rows * vocab);
      const hs = b.values(dtype, h),
        idb = b.ints(ids),
        wq = rawBuffer(b, raw);
      const ws = dequantWorkspace(b, dtype, wsRows, dim);
      withExactQuantMatmul(() => new Ops(dev, dtype as DTypeCode).logits(out, hs, idb, rows, hiddenRows, wq, vocab, dim, q.code, ws));
      const ref = refMatmul(h, ids, deq, null, rows, vocab, dim);
      return [{ what: "logits", got: b.read(DType.F32, out, rows * vocab), ref: ref.y, scale: ref.mag }];
    } finally {
      b.freeAll();
    }
  },
});

const embeddingQ = (type: string, T: number, rows: number, dim: number): OpCase => ({
  name: `embedding_q ${type} T=${T} rows=${rows} dim=${dim}`,
  run(dev, dtype, rng) {
    const q = quantTypeByName(type)!;
    const b = new Buffers(dev);
    try {
      const { raw, deq } = quantBlocks(rng, q, rows, dim);
      const ids = new Int32Array(T).map(() => rng.int(rows));
      const out = b.poisoned(dtype, T * dim);
      new Ops(dev, dtype as DTypeCode).embedding(out, rawBuffer(b, raw), b.ints(ids), T, rows, dim, q.code);
      // f32: the dequantized values exactly; f16/bf16: one rounding of them
      return [{ what: "out", got: b.read(dtype, out, T * dim), ref: refEmbedding(deq, ids, dim), scale: 0, exact: dtype === DType.F32 }];
    } finally {
      b.freeAll();
    }
  },
});

const QUANT_CASES: OpCase[] = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"].flatMap((t, i) => [
  matmulQ(t, 1, 37, 512, i % 2 === 0),
  matmulQ(t, 11, 64, 768, i % 2 === 1),
  // prefill through the workspace (CUDA: GEMV at m <= 32, dequantize + GEMM above), odd n:
  // m = 1 and 7 stay on the GEMV kernel with a workspace given; m = 64 in 3 chunks (50+50+29);
  // m = 300 with room for 77 rows: chunks of 64 (rounded down to 64 rows) + 13
  matmulQ(t, 1, 129, 256, i % 2 === 1, 50),
  matmulQ(t, 7, 129, 256, i % 2 === 0, 50),
  matmulQ(t, 64, 129, 512, i % 2 === 1, 50),
  matmulQ(t, 300, 77, 256, i % 2 === 0, 77),
  logitsQ(t, 3, 7, 300, 256),
  logitsQ(t, 40, 45, 301, 256, 128),
  embeddingQ(t, 9, 40, 512),
]);

// ---- rms_norm ----
const rmsNorm = (rows: number, dim: number, residual: boolean, inPlace = false): OpCase => ({
  name: `rms_norm rows=${rows} dim=${dim}${residual ? " +residual" : ""}${inPlace ? " in-place" : ""}`,
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const x = vals(rng, roundAs, rows * dim),
        w = vals(rng, roundAs, dim);
      const r = residual ? vals(rng, roundAs, rows * dim) : null;
      const xp = b.values(dtype, x);
      const out = inPlace ? xp : b.poisoned(dtype, rows * dim);
      new Ops(dev, dtype as DTypeCode).rmsNorm(out, xp, r ? b.values(dtype, r) : 0n, b.values(dtype, w), rows, dim, 1e-5);
      const ref = refRmsNorm(x, r, w, rows, dim, 1e-5);
      const checks: Check[] = [{ what: "out", got: b.read(dtype, out, rows * dim), ref: ref.out, scale: 0.1 }];
      if (residual && !inPlace) checks.push({ what: "x (x + residual)", got: b.read(dtype, xp, rows * dim), ref: ref.x, scale: 0 });
      return checks;
    } finally {
      b.freeAll();
    }
  },
});

// per-head norms inside fused QKV rows [T, (hq + 2 hk) d]: the q heads (or the k heads) are
// normalized in place; every other element of the row must come back unchanged
const rmsNormStrided = (T: number, hq: number, hk: number, d: number, kHeads: boolean): OpCase => ({
  name: `rms_norm_strided T=${T} hq=${hq} hk=${hk} d=${d} (${kHeads ? "k" : "q"} heads of a fused QKV, in place)`,
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const S = (hq + 2 * hk) * d,
        H = kHeads ? hk : hq,
        off = kHeads ? hq * d : 0;
      const x = vals(rng, roundAs, T * S),
        w = vals(rng, roundAs, d);
      const xp = b.values(dtype, x);
      const e = esize(dtype);
      new Ops(dev, dtype as DTypeCode).rmsNormStrided(xp + BigInt(off * e), xp + BigInt(off * e), b.values(dtype, w), T, H, d, S, 1e-6);
      const rows = new Float32Array(T * H * d);
      for (let t = 0; t < T; t++) rows.set(x.subarray(t * S + off, t * S + off + H * d), t * H * d);
      const normed = refRmsNorm(rows, null, w, T * H, d, 1e-6).out;
      const ref = Float64Array.from(x);
      const scale = new Float64Array(T * S);
      for (let t = 0; t < T; t++)
        for (let i = 0; i < H * d; i++) {
          ref[t * S + off + i] = normed[t * H * d + i]!;
          scale[t * S + off + i] = 0.1;
        }
      return [{ what: "fused qkv", got: b.read(dtype, xp, T * S), ref, scale }];
    } finally {
      b.freeAll();
    }
  },
});

// ---- rope ----
interface RopeCfg {
  T: number;
  hq: number;
  hk: number;
  d: number;
  rot: number;
  gptj: boolean;
  fused?: boolean;
}
const rope = (c: RopeCfg): OpCase => ({
  name: `rope ${c.gptj ? "GPT-J" : "NeoX"} T=${c.T} hq=${c.hq} hk=${c.hk} d=${c.d} rot=${c.rot}${c.fused ? " fused-qkv strides" : ""}`,
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const pos = new Int32Array(c.T).map(() => rng.int(32768));
      pos[0] = 32767;
      const invf = llama3InvFreq(c.rot);
      const ops = new Ops(dev, dtype as DTypeCode);
      const layout = c.gptj ? RopeLayout.GPTJ : RopeLayout.NEOX;
      if (c.fused) {
        // q and k are slices of one [T, hq + 2 hk, d] buffer (v untouched)
        const row = (c.hq + 2 * c.hk) * c.d;
        const qkv = vals(rng, roundAs, c.T * row);
        const p = b.values(dtype, qkv);
        ops.rope(p, p + BigInt(c.hq * c.d * esize(dtype)), b.ints(pos), b.floats32(invf), c.T, c.hq, c.hk, c.d, c.rot, layout, row, row);
        let ref = refRope(qkv, pos, invf, c.T, c.hq, c.d, c.rot, c.gptj, row);
        const kpart = refRope(qkv.subarray(c.hq * c.d), pos, invf, c.T, c.hk, c.d, c.rot, c.gptj, row);
        ref = Float64Array.from(ref);
        for (let t = 0; t < c.T; t++) for (let i = 0; i < c.hk * c.d; i++) ref[t * row + c.hq * c.d + i] = kpart[t * row + i]!;
        return [{ what: "qkv", got: b.read(dtype, p, c.T * row), ref, scale: 0.1 }];
      }
      const q = vals(rng, roundAs, c.T * c.hq * c.d);
      const k = c.hk ? vals(rng, roundAs, c.T * c.hk * c.d) : null;
      const qp = b.values(dtype, q),
        kp = k ? b.values(dtype, k) : 0n;
      ops.rope(qp, kp, b.ints(pos), b.floats32(invf), c.T, c.hq, c.hk, c.d, c.rot, layout);
      const checks: Check[] = [
        { what: "q", got: b.read(dtype, qp, q.length), ref: refRope(q, pos, invf, c.T, c.hq, c.d, c.rot, c.gptj, c.hq * c.d), scale: 0.1 },
      ];
      if (k)
        checks.push({
          what: "k",
          got: b.read(dtype, kp, k.length),
          ref: refRope(k, pos, invf, c.T, c.hk, c.d, c.rot, c.gptj, c.hk * c.d),
          scale: 0.1,
        });
      return checks;
    } finally {
      b.freeAll();
    }
  },
});

// ---- silu_mul ----
const siluMul = (rows: number, inter: number, merged: boolean): OpCase => ({
  name: `silu_mul rows=${rows} inter=${inter}${merged ? " merged gate_up" : ""}`,
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const out = b.poisoned(dtype, rows * inter);
      const ops = new Ops(dev, dtype as DTypeCode);
      let ref: Float64Array;
      if (merged) {
        const gu = vals(rng, roundAs, rows * 2 * inter, 4);
        const p = b.values(dtype, gu);
        ops.siluMul(out, p, p + BigInt(inter * esize(dtype)), rows, inter, 2 * inter);
        ref = refSiluMul(gu, rows, inter, 2 * inter, inter);
      } else {
        const g = vals(rng, roundAs, rows * inter, 4),
          u = vals(rng, roundAs, rows * inter);
        ops.siluMul(out, b.values(dtype, g), b.values(dtype, u), rows, inter);
        const gu = new Float32Array(rows * 2 * inter);
        for (let r = 0; r < rows; r++) {
          gu.set(g.subarray(r * inter, (r + 1) * inter), r * 2 * inter);
          gu.set(u.subarray(r * inter, (r + 1) * inter), r * 2 * inter + inter);
        }
        ref = refSiluMul(gu, rows, inter, 2 * inter, inter);
      }
      return [{ what: "out", got: b.read(dtype, out, rows * inter), ref, scale: 0.1 }];
    } finally {
      b.freeAll();
    }
  },
});

// ---- kv_write ----
interface KvwCfg {
  T: number;
  hk: number;
  d: number;
  nb: number;
  bs: number;
  fusedHq?: number;
}
const kvWrite = (c: KvwCfg): OpCase => ({
  name: `kv_write T=${c.T} hk=${c.hk} d=${c.d} blocks=${c.nb}x${c.bs}${c.fusedHq ? " fused-qkv stride" : ""}`,
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const row = c.hk * c.d,
        nslots = c.nb * c.bs;
      const perm = rng.perm(nslots);
      const slots = new Int32Array(c.T).map((_, t) => (t % 4 === 3 ? -1 : perm[t]!)); // every 4th: padding
      const stride = c.fusedHq ? (c.fusedHq + 2 * c.hk) * c.d : row;
      const src = vals(rng, roundAs, c.T * stride);
      const kc = b.poisoned(dtype, nslots * row),
        vc = b.poisoned(dtype, nslots * row);
      const sp = b.values(dtype, src);
      const kOff = c.fusedHq ? c.fusedHq * c.d : 0,
        vOff = c.fusedHq ? (c.fusedHq + c.hk) * c.d : 0;
      const vsrc = c.fusedHq ? src : vals(rng, roundAs, c.T * stride);
      const vp = c.fusedHq ? sp + BigInt(vOff * esize(dtype)) : b.values(dtype, vsrc);
      const cache: PagedCache = { kCache: kc, vCache: vc, numBlocks: c.nb, blockSize: c.bs, numKvHeads: c.hk, headDim: c.d };
      new Ops(dev, dtype as DTypeCode).kvWrite(cache, sp + BigInt(kOff * esize(dtype)), vp, b.ints(slots), c.T, c.fusedHq ? stride : 0);
      const refK = new Float64Array(nslots * row).fill(NaN),
        refV = new Float64Array(nslots * row).fill(NaN);
      for (let t = 0; t < c.T; t++) {
        if (slots[t]! < 0) continue;
        for (let i = 0; i < row; i++) {
          refK[slots[t]! * row + i] = src[t * stride + kOff + i]!;
          refV[slots[t]! * row + i] = vsrc[t * stride + vOff + i]!;
        }
      }
      return [
        { what: "k_cache", got: b.read(dtype, kc, nslots * row), ref: refK, scale: 0, exact: true },
        { what: "v_cache", got: b.read(dtype, vc, nslots * row), ref: refV, scale: 0, exact: true },
      ];
    } finally {
      b.freeAll();
    }
  },
});

// ---- matmul / logits ----
const matmul = (m: number, n: number, k: number, bias: boolean): OpCase => ({
  name: `matmul m=${m} n=${n} k=${k}${bias ? " +bias" : ""}`,
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const x = vals(rng, roundAs, m * k),
        w = vals(rng, roundAs, n * k),
        bs = bias ? vals(rng, roundAs, n) : null;
      const y = b.poisoned(dtype, m * n);
      new Ops(dev, dtype as DTypeCode).matmul(y, b.values(dtype, x), b.values(dtype, w), bs ? b.values(dtype, bs) : 0n, m, n, k);
      const ref = refMatmul(x, null, w, bs, m, n, k);
      return [{ what: "y", got: b.read(dtype, y, m * n), ref: ref.y, scale: ref.mag }];
    } finally {
      b.freeAll();
    }
  },
});

const logits = (rows: number, hiddenRows: number, vocab: number, dim: number): OpCase => ({
  name: `logits rows=${rows}/${hiddenRows} vocab=${vocab} dim=${dim}`,
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const h = vals(rng, roundAs, hiddenRows * dim),
        w = vals(rng, roundAs, vocab * dim);
      const ids = new Int32Array(rows).map(() => rng.int(hiddenRows));
      ids[0] = hiddenRows - 1;
      const out = b.poisoned(DType.F32, rows * vocab); // logits are always f32
      new Ops(dev, dtype as DTypeCode).logits(out, b.values(dtype, h), b.ints(ids), rows, hiddenRows, b.values(dtype, w), vocab, dim);
      const ref = refMatmul(h, ids, w, null, rows, vocab, dim);
      return [{ what: "logits", got: b.read(DType.F32, out, rows * vocab), ref: ref.y, scale: ref.mag }];
    } finally {
      b.freeAll();
    }
  },
});

// ---- paged caches for attention ----
interface Paged {
  kv: PagedKv;
  nb: number;
  maxb: number;
  bt: Int32Array;
}
/** A cache holding every sequence's blocks at random places; unused table entries are garbage. */
function pagedCache(rng: Rng, roundAs: number, lens: number[], hk: number, d: number, bs: number): Paged {
  const need = lens.map((l) => Math.ceil(l / bs));
  const maxb = Math.max(...need) + 1;
  const nb = need.reduce((a, x) => a + x, 0) + 3;
  const perm = rng.perm(nb);
  const bt = new Int32Array(lens.length * maxb).fill(0x7fffffff); // never read
  let next = 0;
  for (let s = 0; s < lens.length; s++) for (let j = 0; j < need[s]!; j++) bt[s * maxb + j] = perm[next++]!;
  const n = nb * bs * hk * d;
  return { kv: { k: vals(rng, roundAs, n), v: vals(rng, roundAs, n), bs, hk, d }, nb, maxb, bt };
}

interface DecCfg {
  lens: number[];
  hq: number;
  hk: number;
  d: number;
  bs: number;
  part: number;
  qPad?: number;
  window?: number;
  softcap?: number;
}
/** " window=W softcap=C" suffix of a case name (sliding-window / soft-capped attention). */
const attnExtras = (c: { window?: number; softcap?: number }) =>
  `${c.window ? ` window=${c.window}` : ""}${c.softcap ? ` softcap=${c.softcap}` : ""}`;
const decode = (c: DecCfg, big = false): OpCase => ({
  name: `attention_decode B=${c.lens.length} hq=${c.hq} hk=${c.hk} (GQA ${c.hq / c.hk}) d=${c.d} bs=${c.bs} part=${c.part} ctx=${Math.max(...c.lens)}${c.qPad ? " q_stride" : ""}${attnExtras(c)}`,
  big,
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const B = c.lens.length,
        qs = c.hq * c.d + (c.qPad ?? 0);
      const p = pagedCache(rng, roundAs, c.lens, c.hk, c.d, c.bs);
      const q = vals(rng, roundAs, B * qs);
      const ops = new Ops(dev, dtype as DTypeCode);
      const cache: PagedCache = {
        kCache: b.values(dtype, p.kv.k),
        vCache: b.values(dtype, p.kv.v),
        numBlocks: p.nb,
        blockSize: c.bs,
        numKvHeads: c.hk,
        headDim: c.d,
      };
      const wsBytes = ops.decodeWorkspaceBytes(B, c.hq, c.d, p.maxb, c.bs, c.part);
      const ws = wsBytes ? b.alloc(wsBytes) : 0n;
      const out = b.poisoned(dtype, B * c.hq * c.d);
      const scale = 1 / Math.sqrt(c.d);
      ops.attentionDecode(
        out,
        b.values(dtype, q),
        cache,
        b.ints(p.bt),
        b.ints(Int32Array.from(c.lens)),
        ws,
        wsBytes,
        B,
        c.hq,
        p.maxb,
        c.part,
        scale,
        c.qPad ? qs : 0,
        c.window ?? 0,
        c.softcap ?? 0,
      );
      const ref = refDecode(q, p.kv, p.bt, Int32Array.from(c.lens), B, c.hq, p.maxb, scale, qs, c.window ?? 0, c.softcap ?? 0);
      return [{ what: "out", got: b.read(dtype, out, B * c.hq * c.d), ref, scale: dtype === DType.F32 ? 1 : 0.1, rtolF32: 2e-5 }];
    } finally {
      b.freeAll();
    }
  },
});

interface PreCfg {
  seqs: { cached: number; fresh: number }[];
  pad: number;
  hq: number;
  hk: number;
  d: number;
  bs: number;
  window?: number;
  softcap?: number;
}
const prefill = (c: PreCfg, big = false): OpCase => ({
  name:
    `attention_prefill B=${c.seqs.length} hq=${c.hq} hk=${c.hk} (GQA ${c.hq / c.hk}) d=${c.d} bs=${c.bs} ` +
    `seqs=${c.seqs.map((s) => `${s.cached}+${s.fresh}`).join(",")} pad=${c.pad}${attnExtras(c)}`,
  big,
  run(dev, dtype, rng, roundAs = dtype) {
    const b = new Buffers(dev);
    try {
      const B = c.seqs.length;
      const lens = c.seqs.map((s) => s.cached + s.fresh);
      const qsl = new Int32Array(B + 1);
      for (let s = 0; s < B; s++) qsl[s + 1] = qsl[s]! + c.seqs[s]!.fresh;
      const T = qsl[B]! + c.pad; // padding rows at the end: not covered, must stay untouched
      const p = pagedCache(rng, roundAs, lens, c.hk, c.d, c.bs);
      const q = vals(rng, roundAs, T * c.hq * c.d);
      const cache: PagedCache = {
        kCache: b.values(dtype, p.kv.k),
        vCache: b.values(dtype, p.kv.v),
        numBlocks: p.nb,
        blockSize: c.bs,
        numKvHeads: c.hk,
        headDim: c.d,
      };
      const out = b.poisoned(dtype, T * c.hq * c.d);
      const scale = 1 / Math.sqrt(c.d);
      new Ops(dev, dtype as DTypeCode).attentionPrefill(
        out,
        b.values(dtype, q),
        cache,
        b.ints(p.bt),
        b.ints(Int32Array.from(lens)),
        b.ints(qsl),
        B,
        T,
        c.hq,
        p.maxb,
        scale,
        0,
        c.window ?? 0,
        c.softcap ?? 0,
      );
      const ref = refPrefill(
        q,
        p.kv,
        p.bt,
        Int32Array.from(lens),
        qsl,
        B,
        T,
        c.hq,
        p.maxb,
        scale,
        c.hq * c.d,
        c.window ?? 0,
        c.softcap ?? 0,
      );
      return [{ what: "out", got: b.read(dtype, out, T * c.hq * c.d), ref, scale: dtype === DType.F32 ? 1 : 0.1, rtolF32: 2e-5 }];
    } finally {
      b.freeAll();
    }
  },
});

// ---- logit bias (device sampling): exact, the reference is the rule itself in JavaScript ----
/** Sparse entries {int32 row, int32 token, float64 bias}: distinct in-range pairs, plus padding and out-of-range ones. */
const logitBias = (rows: number, vocab: number, n: number, big = false): OpCase => ({
  name: `add_logit_bias rows=${rows} vocab=${vocab} entries=${n}`,
  big,
  run(dev, _dtype, rng) {
    const b = new Buffers(dev);
    try {
      const l = rng.floats(rows * vocab, 8);
      const raw = new ArrayBuffer(16 * n);
      const i32 = new Int32Array(raw);
      const f64 = new Float64Array(raw);
      const used = new Set<number>();
      const ref = Float64Array.from(l);
      for (let k = 0; k < n; k++) {
        let row = rng.int(rows + 2) - 1; // -1 (padding) .. rows (out of range)
        const tok = rng.int(vocab + 1); // vocab: out of range
        const kind = rng.int(8);
        // a double that float32 cannot hold, so the op's double rounding is exercised
        const bias = kind === 0 ? Number.NEGATIVE_INFINITY : kind === 1 ? 100 : kind === 2 ? -100 : rng.f() * 5 + rng.f() * 2 ** -30;
        const at = row * vocab + tok;
        const inRange = row >= 0 && row < rows && tok < vocab;
        if (inRange && used.has(at))
          row = -1; // pairs must be distinct
        else if (inRange) {
          used.add(at);
          ref[at] = Math.fround(ref[at]! + bias); // JavaScript: double sum, then float32
        }
        i32[4 * k] = row;
        i32[4 * k + 1] = tok;
        f64[2 * k + 1] = bias;
      }
      const logitsPtr = b.floats32(l);
      const entries = b.alloc(16 * n);
      dev.copyToDevice(entries, new Uint8Array(raw));
      new Ops(dev).addLogitBias(logitsPtr, rows, entries, n, vocab);
      return [{ what: "logits", got: b.read(DType.F32, logitsPtr, rows * vocab), ref, scale: 0, exact: true }];
    } finally {
      b.freeAll();
    }
  },
});

export const CASES: OpCase[] = [
  embedding(1, 3, 1),
  embedding(7, 50, 13),
  embedding(33, 100, 4096),
  embedding(5, 9, 4097),
  rmsNorm(1, 7, false),
  rmsNorm(5, 128, true),
  rmsNorm(33, 4096, true),
  rmsNorm(3, 5000, false),
  rmsNorm(4, 1000, true, true),
  rmsNormStrided(7, 8, 2, 128, false),
  rmsNormStrided(5, 6, 3, 64, true),
  rmsNormStrided(3, 16, 8, 256, false),
  rope({ T: 5, hq: 8, hk: 2, d: 128, rot: 128, gptj: false }),
  rope({ T: 3, hq: 4, hk: 4, d: 64, rot: 32, gptj: true }),
  rope({ T: 17, hq: 6, hk: 2, d: 80, rot: 80, gptj: false, fused: true }),
  rope({ T: 2, hq: 3, hk: 0, d: 256, rot: 256, gptj: true }),
  siluMul(1, 11, false),
  siluMul(17, 1000, true),
  siluMul(4, 14336, true),
  kvWrite({ T: 9, hk: 2, d: 64, nb: 6, bs: 4 }),
  kvWrite({ T: 33, hk: 8, d: 128, nb: 10, bs: 16, fusedHq: 32 }),
  kvWrite({ T: 5, hk: 1, d: 96, nb: 3, bs: 7 }),
  matmul(1, 1, 1, false),
  matmul(1, 33, 17, true),
  matmul(7, 512, 4096, false),
  matmul(64, 129, 300, true),
  logits(3, 10, 1000, 64),
  ...QUANT_CASES,
  logits(2, 5, 32000, 128),
  decode({ lens: [1, 17, 100], hq: 8, hk: 8, d: 64, bs: 16, part: 0 }),
  decode({ lens: [1000, 3, 640, 129], hq: 32, hk: 8, d: 128, bs: 16, part: 64, qPad: 3 * 128 }),
  decode({ lens: [513, 1000], hq: 16, hk: 2, d: 128, bs: 16, part: 512 }),
  decode({ lens: [50, 300], hq: 12, hk: 1, d: 96, bs: 7, part: 14 }),
  decode({ lens: [2000, 33], hq: 4, hk: 1, d: 256, bs: 16, part: 256 }),
  decode({ lens: [7, 31, 2, 90, 45], hq: 6, hk: 3, d: 40, bs: 5, part: 0 }),
  decode({ lens: [32768], hq: 32, hk: 8, d: 128, bs: 16, part: 512 }, true),
  decode({ lens: [32768, 20000], hq: 32, hk: 4, d: 128, bs: 16, part: 0 }, true),
  prefill({ seqs: [{ cached: 0, fresh: 20 }], pad: 0, hq: 4, hk: 4, d: 64, bs: 16 }),
  prefill({
    seqs: [
      { cached: 0, fresh: 37 },
      { cached: 100, fresh: 1 },
      { cached: 33, fresh: 64 },
    ],
    pad: 3,
    hq: 32,
    hk: 8,
    d: 128,
    bs: 16,
  }),
  prefill({
    seqs: [
      { cached: 5, fresh: 17 },
      { cached: 0, fresh: 3 },
    ],
    pad: 1,
    hq: 16,
    hk: 2,
    d: 96,
    bs: 7,
  }),
  prefill({ seqs: [{ cached: 40, fresh: 9 }], pad: 0, hq: 2, hk: 1, d: 256, bs: 16 }),
  prefill({ seqs: [{ cached: 32768 - 40, fresh: 40 }], pad: 0, hq: 8, hk: 1, d: 128, bs: 16 }, true),
  // sliding window (Mistral v0.1 / Qwen2 / Gemma local layers) and Gemma 2 logit soft-capping
  decode({ lens: [1, 17, 100, 700], hq: 8, hk: 4, d: 64, bs: 16, part: 0, window: 33 }),
  decode({ lens: [1000, 3, 640, 129], hq: 32, hk: 8, d: 128, bs: 16, part: 64, window: 100, softcap: 0.5 }),
  decode({ lens: [4096, 5000], hq: 16, hk: 8, d: 256, bs: 16, part: 512, window: 4096, softcap: 50 }, true),
  decode({ lens: [50, 300], hq: 12, hk: 1, d: 96, bs: 7, part: 14, window: 1 }),
  prefill({
    seqs: [
      { cached: 0, fresh: 70 },
      { cached: 100, fresh: 1 },
      { cached: 33, fresh: 64 },
    ],
    pad: 3,
    hq: 8,
    hk: 2,
    d: 128,
    bs: 16,
    window: 20,
  }),
  prefill({
    seqs: [
      { cached: 5, fresh: 17 },
      { cached: 0, fresh: 3 },
    ],
    pad: 1,
    hq: 16,
    hk: 2,
    d: 96,
    bs: 7,
    window: 6,
    softcap: 0.3,
  }),
  prefill({ seqs: [{ cached: 4000, fresh: 200 }], pad: 0, hq: 8, hk: 4, d: 256, bs: 16, window: 4096, softcap: 50 }, true),
  ...ARCH_CASES,
  logitBias(1, 1, 1),
  logitBias(5, 1000, 64),
  logitBias(64, 32000, 2048, true),
  logitBias(3, 151936, 300, true),
  ...KV_CASES,
];
