// ggml's reference quantizers for the 32-element block types (ggml-quants.c
// quantize_row_{q4_0,q4_1,q5_0,q5_1,q8_0}_ref, which llama-quantize uses without an importance
// matrix), ported operation by operation in fp32 (f32.ts). `x` holds whole blocks; the result is
// the blocks' bytes exactly as ggml lays them out.
import { f, toHalfBits } from "./f32.ts";

const QK = 32;

function blocks(x: Float32Array, blockBytes: number): { n: number; out: Uint8Array; dv: DataView } {
  if (x.length % QK !== 0) throw new RangeError(`needs a multiple of ${QK} elements (got ${x.length})`);
  const n = x.length / QK;
  const out = new Uint8Array(n * blockBytes);
  return { n, out, dv: new DataView(out.buffer) };
}

/** The element of largest magnitude (the first one on ties), sign kept. */
function signedAbsMax(x: Float32Array, at: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < QK; j++) {
    const v = x[at + j]!;
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

function minMax(x: Float32Array, at: number): [number, number] {
  let min = Number.MAX_VALUE;
  let max = -Number.MAX_VALUE;
  for (let j = 0; j < QK; j++) {
    const v = x[at + j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/** Q4_0 (18 bytes): d = max / -8, q = min(15, trunc(x / d + 8.5)); element j and j + 16 share a byte. */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  const { n, out, dv } = blocks(x, 18);
  for (let i = 0; i < n; i++) {
    const at = i * QK;
    const d = f(signedAbsMax(x, at) / -8);
    const id = d ? f(1 / d) : 0;
    dv.setUint16(i * 18, toHalfBits(d), true);
    for (let j = 0; j < QK / 2; j++) {
      const x0 = f(x[at + j]! * id);
      const x1 = f(x[at + QK / 2 + j]! * id);
      const q0 = Math.min(15, Math.trunc(f(x0 + 8.5)));
      const q1 = Math.min(15, Math.trunc(f(x1 + 8.5)));
      out[i * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/** Q4_1 (20 bytes): d = (max - min) / 15, m = min, q = min(15, trunc((x - min) / d + 0.5)). */
export function quantizeQ4_1(x: Float32Array): Uint8Array {
  const { n, out, dv } = blocks(x, 20);
  for (let i = 0; i < n; i++) {
    const at = i * QK;
    const [min, max] = minMax(x, at);
    const d = f(f(max - min) / 15);
    const id = d ? f(1 / d) : 0;
    dv.setUint16(i * 20, toHalfBits(d), true);
    dv.setUint16(i * 20 + 2, toHalfBits(min), true);
    for (let j = 0; j < QK / 2; j++) {
      const x0 = f(f(x[at + j]! - min) * id);
      const x1 = f(f(x[at + QK / 2 + j]! - min) * id);
      const q0 = Math.min(15, Math.trunc(f(x0 + 0.5)));
      const q1 = Math.min(15, Math.trunc(f(x1 + 0.5)));
      out[i * 20 + 4 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/** Packs 5-bit quants: low nibbles as Q4_*, the fifth bits of elements 0..31 into a u32 (qh). */
function pack5(q0: number, q1: number, j: number, qs: Uint8Array, at: number, qh: number): number {
  qs[at + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
  return (qh | (((q0 & 0x10) >> 4) << j) | (((q1 & 0x10) >> 4) << (j + QK / 2))) >>> 0;
}

/** Q5_0 (22 bytes: d, qh u32, 16 bytes): d = max / -16, q = min(31, trunc(x / d + 16.5)). */
export function quantizeQ5_0(x: Float32Array): Uint8Array {
  const { n, out, dv } = blocks(x, 22);
  for (let i = 0; i < n; i++) {
    const at = i * QK;
    const d = f(signedAbsMax(x, at) / -16);
    const id = d ? f(1 / d) : 0;
    dv.setUint16(i * 22, toHalfBits(d), true);
    let qh = 0;
    for (let j = 0; j < QK / 2; j++) {
      const q0 = Math.min(31, Math.trunc(f(f(x[at + j]! * id) + 16.5)));
      const q1 = Math.min(31, Math.trunc(f(f(x[at + QK / 2 + j]! * id) + 16.5)));
      qh = pack5(q0, q1, j, out, i * 22 + 6, qh);
    }
    dv.setUint32(i * 22 + 2, qh, true);
  }
  return out;
}

/** Q5_1 (24 bytes: d, m, qh u32, 16 bytes): d = (max - min) / 31, q = (uint8) trunc((x - min) / d + 0.5). */
export function quantizeQ5_1(x: Float32Array): Uint8Array {
  const { n, out, dv } = blocks(x, 24);
  for (let i = 0; i < n; i++) {
    const at = i * QK;
    const [min, max] = minMax(x, at);
    const d = f(f(max - min) / 31);
    const id = d ? f(1 / d) : 0;
    dv.setUint16(i * 24, toHalfBits(d), true);
    dv.setUint16(i * 24 + 2, toHalfBits(min), true);
    let qh = 0;
    for (let j = 0; j < QK / 2; j++) {
      const q0 = Math.trunc(f(f(f(x[at + j]! - min) * id) + 0.5)) & 0xff;
      const q1 = Math.trunc(f(f(f(x[at + QK / 2 + j]! - min) * id) + 0.5)) & 0xff;
      qh = pack5(q0, q1, j, out, i * 24 + 8, qh);
    }
    dv.setUint32(i * 24 + 4, qh, true);
  }
  return out;
}

/** Q8_0 (34 bytes): d = amax / 127, q = roundf(x / d) (half away from zero). */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const { n, out, dv } = blocks(x, 34);
  for (let i = 0; i < n; i++) {
    const at = i * QK;
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[at + j]!));
    const d = f(amax / 127);
    const id = d ? f(1 / d) : 0;
    dv.setUint16(i * 34, toHalfBits(d), true);
    for (let j = 0; j < QK; j++) {
      const v = f(x[at + j]! * id);
      dv.setInt8(i * 34 + 2 + j, Math.sign(v) * Math.round(Math.abs(v)));
    }
  }
  return out;
}
