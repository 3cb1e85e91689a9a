// ggml's reference quantizers for the 256-element super-block types (ggml-quants.c
// quantize_row_{q4_K,q5_K,q6_K}_ref with their helpers make_qkx2_quants and make_qx_quants, which
// llama-quantize uses without an importance matrix), ported operation by operation in fp32
// (f32.ts): the same search over candidate scales, the same sums in the same order, the same
// tie-breaking, so the bytes equal ggml's.
import { f, GROUP_MAX_EPS, nearestInt, roundHalf, toHalfBits } from "./f32.ts";

const QK_K = 256;

function superBlocks(x: Float32Array, blockBytes: number): { n: number; out: Uint8Array; dv: DataView } {
  if (x.length % QK_K !== 0) throw new RangeError(`needs a multiple of ${QK_K} elements (got ${x.length})`);
  const n = x.length / QK_K;
  const out = new Uint8Array(n * blockBytes);
  return { n, out, dv: new DataView(out.buffer) };
}

const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));

/**
 * make_qkx2_quants: scale and min (returned as -min, >= 0) of n values at x[at..] with levels
 * 0..nmax in L[lAt..], minimising the weighted squared error over nstep + 1 candidate scales.
 */
function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  at: number,
  weights: Float32Array,
  L: Uint8Array,
  lAt: number,
  rmin: number,
  rdelta: number,
  nstep: number,
): { scale: number; theMin: number } {
  const Laux = new Uint8Array(n);
  let min = x[at]!;
  let max = x[at]!;
  let sumW = weights[0]!;
  let sumX = f(sumW * x[at]!);
  for (let i = 1; i < n; i++) {
    const v = x[at + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    const w = weights[i]!;
    sumW = f(sumW + w);
    sumX = f(sumX + f(w * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lAt, lAt + n);
    return { scale: 0, theMin: -min };
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = nearestInt(f(iscale * f(x[at + i]! - min)));
    L[lAt + i] = clamp(l, 0, nmax);
    const diff = f(f(f(scale * L[lAt + i]!) + min) - x[at + i]!);
    bestError = f(bestError + f(weights[i]! * f(diff * diff)));
  }
  if (nstep < 1) return { scale, theMin: -min };
  for (let is = 0; is <= nstep; is++) {
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / f(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = clamp(nearestInt(f(iscale * f(x[at + i]! - min))), 0, nmax);
      Laux[i] = l;
      const w = weights[i]!;
      sumL = f(sumL + f(w * l));
      sumL2 = f(sumL2 + f(f(w * l) * l));
      sumXL = f(sumXL + f(f(w * l) * x[at + i]!));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = f(f(f(thisScale * Laux[i]!) + thisMin) - x[at + i]!);
        curError = f(curError + f(weights[i]! * f(diff * diff)));
      }
      if (curError < bestError) {
        L.set(Laux, lAt);
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return { scale, theMin: -min };
}

/**
 * Q4_K / Q5_K share everything but the bit depth: 8 sub-blocks of 32 with a 6-bit scale and min
 * each (12 packed bytes), fp16 super-block d and dmin. Returns the levels L and writes the header.
 */
function quantizeScaleMinK(
  x: Float32Array,
  at: number,
  nmax: number,
  rmin: number,
  nstep: number,
  dv: DataView,
  blockAt: number,
): Uint8Array {
  const L = new Uint8Array(QK_K);
  const weights = new Float32Array(32);
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(x[at + 32 * j + l]! * x[at + 32 * j + l]!));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(x[at + 32 * j + l]!));
    const r = makeQkx2Quants(32, nmax, x, at + 32 * j, weights, L, 32 * j, rmin, f(0.1), nstep);
    scales[j] = r.scale;
    mins[j] = r.theMin;
    if (r.scale > maxScale) maxScale = r.scale;
    if (r.theMin > maxMin) maxMin = r.theMin;
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  const sc = new Uint8Array(12);
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(f(invScale * scales[j]!)) & 0xff);
    const lm = Math.min(63, nearestInt(f(invMin * mins[j]!)) & 0xff);
    if (j < 4) {
      sc[j] = ls;
      sc[j + 4] = lm;
    } else {
      sc[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      sc[j - 4]! |= (ls >> 4) << 6;
      sc[j]! |= (lm >> 4) << 6;
    }
  }
  const dBits = toHalfBits(f(maxScale / 63));
  const dminBits = toHalfBits(f(maxMin / 63));
  dv.setUint16(blockAt, dBits, true);
  dv.setUint16(blockAt + 2, dminBits, true);
  new Uint8Array(dv.buffer, blockAt + 4, 12).set(sc);
  const d0 = roundHalf(f(maxScale / 63));
  const dmin0 = roundHalf(f(maxMin / 63));
  for (let j = 0; j < 8; j++) {
    const s = j < 4 ? sc[j]! & 63 : (sc[j + 4]! & 0xf) | ((sc[j - 4]! >> 6) << 4);
    const m = j < 4 ? sc[j + 4]! & 63 : (sc[j + 4]! >> 4) | ((sc[j]! >> 6) << 4);
    const d = f(d0 * s);
    if (!d) continue; // keeps make_qkx2_quants' levels, as ggml does
    const dm = f(dmin0 * m);
    for (let ii = 0; ii < 32; ii++) L[32 * j + ii] = clamp(nearestInt(f(f(x[at + 32 * j + ii]! + dm) / d)), 0, nmax);
  }
  return L;
}

/** Q4_K (144 bytes: d, dmin, 12 scale bytes, 128 bytes of 4-bit quants in 64-element chunks). */
export function quantizeQ4_K(x: Float32Array): Uint8Array {
  const { n, out, dv } = superBlocks(x, 144);
  for (let i = 0; i < n; i++) {
    const L = quantizeScaleMinK(x, i * QK_K, 15, -1, 20, dv, i * 144);
    let q = i * 144 + 16;
    for (let j = 0; j < QK_K; j += 64, q += 32) for (let l = 0; l < 32; l++) out[q + l] = L[j + l]! | (L[j + l + 32]! << 4);
  }
  return out;
}

/** Q5_K (176 bytes: d, dmin, 12 scale bytes, 32 bytes of fifth bits, 128 bytes of low nibbles). */
export function quantizeQ5_K(x: Float32Array): Uint8Array {
  const { n, out, dv } = superBlocks(x, 176);
  for (let i = 0; i < n; i++) {
    const L = quantizeScaleMinK(x, i * QK_K, 31, f(-0.5), 15, dv, i * 176);
    const qh = i * 176 + 16;
    let ql = i * 176 + 48;
    let m1 = 1;
    let m2 = 2;
    for (let nn = 0; nn < QK_K; nn += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
      for (let j = 0; j < 32; j++) {
        let l1 = L[nn + j]!;
        let l2 = L[nn + j + 32]!;
        if (l1 > 15) {
          l1 -= 16;
          out[qh + j]! |= m1;
        }
        if (l2 > 15) {
          l2 -= 16;
          out[qh + j]! |= m2;
        }
        out[ql + j] = l1 | (l2 << 4);
      }
    }
  }
  return out;
}

/** make_qx_quants with rmse_type 1 and no importance weights (weights x²): the scale of 16 values, levels in L. */
function makeQxQuants(n: number, nmax: number, x: Float32Array, at: number, L: Int8Array, lAt: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[at + i]!);
    if (ax > amax) {
      amax = ax;
      max = x[at + i]!;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, lAt, lAt + n);
    return 0;
  }
  const level = (iscale: number, i: number) => clamp(nearestInt(f(iscale * x[at + i]!)), -nmax, nmax - 1);
  const sums = (iscale: number): [number, number] => {
    let sumlx = 0;
    let suml2 = 0;
    for (let i = 0; i < n; i++) {
      const l = level(iscale, i);
      const v = x[at + i]!;
      const w = f(v * v);
      sumlx = f(sumlx + f(f(w * v) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    return [sumlx, suml2];
  };
  let iscale = f(-nmax / max);
  for (let i = 0; i < n; i++) L[lAt + i] = nmax + level(iscale, i);
  let [sumlx, suml2] = sums(iscale);
  let scale = suml2 ? f(sumlx / suml2) : 0;
  let best = f(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f(-f(nmax + f(f(0.1) * is)) / max);
    [sumlx, suml2] = sums(iscale);
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      for (let i = 0; i < n; i++) L[lAt + i] = nmax + level(iscale, i);
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/** Q6_K (210 bytes: 128 bytes low nibbles, 64 bytes high 2 bits, 16 int8 scales, fp16 d). */
export function quantizeQ6_K(x: Float32Array): Uint8Array {
  const { n, out, dv } = superBlocks(x, 210);
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(16);
  for (let i = 0; i < n; i++) {
    const at = i * QK_K;
    const b = i * 210;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuants(16, 32, x, at + 16 * ib, L, 16 * ib);
      scales[ib] = scale;
      if (Math.abs(scale) > maxAbsScale) {
        maxAbsScale = Math.abs(scale);
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) continue; // an all-zero block (d = 0)
    const iscale = f(-128 / maxScale);
    dv.setUint16(b + 208, toHalfBits(f(1 / iscale)), true);
    const d0 = roundHalf(f(1 / iscale));
    for (let ib = 0; ib < 16; ib++) dv.setInt8(b + 192 + ib, Math.min(127, nearestInt(f(iscale * scales[ib]!))));
    for (let j = 0; j < 16; j++) {
      const d = f(d0 * dv.getInt8(b + 192 + j));
      if (!d) continue; // keeps make_qx_quants' levels, as ggml does
      for (let ii = 0; ii < 16; ii++) L[16 * j + ii] = clamp(nearestInt(f(x[at + 16 * j + ii]! / d)), -32, 31) + 32;
    }
    let ql = b;
    let qh = b + 128;
    for (let j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
      for (let l = 0; l < 32; l++) {
        const q1 = L[j + l]! & 0xf;
        const q2 = L[j + l + 32]! & 0xf;
        const q3 = L[j + l + 64]! & 0xf;
        const q4 = L[j + l + 96]! & 0xf;
        out[ql + l] = q1 | (q3 << 4);
        out[ql + l + 32] = q2 | (q4 << 4);
        out[qh + l] = (L[j + l]! >> 4) | ((L[j + l + 32]! >> 4) << 2) | ((L[j + l + 64]! >> 4) << 4) | ((L[j + l + 96]! >> 4) << 6);
      }
    }
  }
  return out;
}
