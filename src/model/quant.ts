// GGUF block-quantized tensor types that stay quantized on the device (csrc/core/quant.c has the
// C side). A tensor of one of these types is uploaded as the file's bytes; its device size is
// rows × (k / blockElems) × blockBytes, exactly what the file holds. dequantizeRow is a second,
// independent implementation of ggml's rule (the C one is the kernels' reference), used for host
// reads of quantized tensors and to cross-check the library in tests.

export interface QuantType {
  /** ggml type id (ggml.h). */
  ggmlType: number;
  name: string;
  blockElems: number;
  blockBytes: number;
  /** The library's weight-type code: HR_QTYPE_* = 100 + ggml type id (headroom.h). */
  code: number;
}

const TYPES: QuantType[] = [
  { ggmlType: 2, name: "Q4_0", blockElems: 32, blockBytes: 18, code: 102 },
  { ggmlType: 3, name: "Q4_1", blockElems: 32, blockBytes: 20, code: 103 },
  { ggmlType: 6, name: "Q5_0", blockElems: 32, blockBytes: 22, code: 106 },
  { ggmlType: 7, name: "Q5_1", blockElems: 32, blockBytes: 24, code: 107 },
  { ggmlType: 8, name: "Q8_0", blockElems: 32, blockBytes: 34, code: 108 },
  { ggmlType: 12, name: "Q4_K", blockElems: 256, blockBytes: 144, code: 112 },
  { ggmlType: 13, name: "Q5_K", blockElems: 256, blockBytes: 176, code: 113 },
  { ggmlType: 14, name: "Q6_K", blockElems: 256, blockBytes: 210, code: 114 },
];

export const QUANT_TYPE_NAMES = TYPES.map((t) => t.name);

/** The quantized type of a ggml type id, or undefined when it is not one we keep quantized. */
export function quantTypeOfGgml(ggmlType: number): QuantType | undefined {
  return TYPES.find((t) => t.ggmlType === ggmlType);
}

export function quantTypeByName(name: string): QuantType | undefined {
  return TYPES.find((t) => t.name === name.toUpperCase());
}

/** Bytes of a [rows, k] tensor (shape outermost first); k must be a multiple of the block size. */
export function quantTensorBytes(q: QuantType, shape: readonly number[]): number {
  const k = shape[shape.length - 1] ?? 1;
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return rows * quantRowBytes(q, k);
}

export function quantRowBytes(q: QuantType, k: number): number {
  if (k % q.blockElems !== 0) throw new RangeError(`${q.name} rows need a multiple of ${q.blockElems} elements (got ${k})`);
  return (k / q.blockElems) * q.blockBytes;
}

const halfView = new DataView(new ArrayBuffer(2));
function half(b: Uint8Array, at: number): number {
  halfView.setUint8(0, b[at]!);
  halfView.setUint8(1, b[at + 1]!);
  const h = halfView.getUint16(0, true);
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** 6-bit scale and min of sub-block j of a Q4_K/Q5_K block (12 packed bytes at `at`). */
function scaleMinK4(j: number, b: Uint8Array, at: number): [number, number] {
  if (j < 4) return [b[at + j]! & 63, b[at + j + 4]! & 63];
  return [(b[at + j + 4]! & 0xf) | ((b[at + j - 4]! >> 6) << 4), (b[at + j + 4]! >> 4) | ((b[at + j]! >> 6) << 4)];
}

/** Dequantizes one block starting at byte `at` into out[o .. o + blockElems) (fp32 rounding at the end, as ggml). */
function dequantizeBlock(q: QuantType, b: Uint8Array, at: number, out: Float32Array, o: number): void {
  switch (q.name) {
    case "Q8_0": {
      const d = half(b, at);
      for (let j = 0; j < 32; j++) out[o + j] = Math.fround(((b[at + 2 + j]! << 24) >> 24) * d);
      return;
    }
    case "Q4_0":
    case "Q4_1": {
      const hasMin = q.name === "Q4_1";
      const d = half(b, at);
      const m = hasMin ? half(b, at + 2) : 0;
      const qs = at + (hasMin ? 4 : 2);
      const off = hasMin ? 0 : 8;
      for (let j = 0; j < 16; j++) {
        out[o + j] = Math.fround(Math.fround(((b[qs + j]! & 0xf) - off) * d) + m);
        out[o + j + 16] = Math.fround(Math.fround(((b[qs + j]! >> 4) - off) * d) + m);
      }
      return;
    }
    case "Q5_0":
    case "Q5_1": {
      const hasMin = q.name === "Q5_1";
      const d = half(b, at);
      const m = hasMin ? half(b, at + 2) : 0;
      const p = at + (hasMin ? 4 : 2);
      const qh = (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
      const off = hasMin ? 0 : 16;
      for (let j = 0; j < 16; j++) {
        const h0 = ((qh >>> j) << 4) & 0x10;
        const h1 = (qh >>> (j + 12)) & 0x10;
        out[o + j] = Math.fround(Math.fround((((b[p + 4 + j]! & 0xf) | h0) - off) * d) + m);
        out[o + j + 16] = Math.fround(Math.fround((((b[p + 4 + j]! >> 4) | h1) - off) * d) + m);
      }
      return;
    }
    case "Q4_K":
    case "Q5_K": {
      const five = q.name === "Q5_K";
      const d = half(b, at);
      const dmin = half(b, at + 2);
      const qh = at + 16;
      let ql = at + (five ? 48 : 16);
      let u1 = 1;
      let u2 = 2;
      for (let j = 0, is = 0; j < 256; j += 64, is += 2) {
        const [sc1, m1] = scaleMinK4(is, b, at + 4);
        const [sc2, m2] = scaleMinK4(is + 1, b, at + 4);
        const d1 = Math.fround(d * sc1);
        const mm1 = Math.fround(dmin * m1);
        const d2 = Math.fround(d * sc2);
        const mm2 = Math.fround(dmin * m2);
        for (let l = 0; l < 32; l++) {
          const h1 = five && b[qh + l]! & u1 ? 16 : 0;
          const h2 = five && b[qh + l]! & u2 ? 16 : 0;
          out[o + j + l] = Math.fround(Math.fround(d1 * ((b[ql + l]! & 0xf) + h1)) - mm1);
          out[o + j + 32 + l] = Math.fround(Math.fround(d2 * ((b[ql + l]! >> 4) + h2)) - mm2);
        }
        ql += 32;
        u1 <<= 2;
        u2 <<= 2;
      }
      return;
    }
    case "Q6_K": {
      const d = half(b, at + 208);
      for (let n = 0; n < 2; n++) {
        const ql = at + 64 * n;
        const qh = at + 128 + 32 * n;
        const sc = at + 192 + 8 * n;
        for (let l = 0; l < 32; l++) {
          const is = l >> 4;
          const s = (i: number) => (b[sc + is + i]! << 24) >> 24;
          const q1 = ((b[ql + l]! & 0xf) | (((b[qh + l]! >> 0) & 3) << 4)) - 32;
          const q2 = ((b[ql + l + 32]! & 0xf) | (((b[qh + l]! >> 2) & 3) << 4)) - 32;
          const q3 = ((b[ql + l]! >> 4) | (((b[qh + l]! >> 4) & 3) << 4)) - 32;
          const q4 = ((b[ql + l + 32]! >> 4) | (((b[qh + l]! >> 6) & 3) << 4)) - 32;
          out[o + 128 * n + l] = Math.fround(Math.fround(d * s(0)) * q1);
          out[o + 128 * n + l + 32] = Math.fround(Math.fround(d * s(2)) * q2);
          out[o + 128 * n + l + 64] = Math.fround(Math.fround(d * s(4)) * q3);
          out[o + 128 * n + l + 96] = Math.fround(Math.fround(d * s(6)) * q4);
        }
      }
      return;
    }
  }
  throw new Error(`dequantize: unsupported type ${q.name}`);
}

/** Dequantizes k elements (whole blocks) from src at byte `at` into out[o ..]. */
export function dequantizeRow(q: QuantType, src: Uint8Array, at: number, k: number, out: Float32Array, o = 0): void {
  const blocks = k / q.blockElems;
  if (!Number.isInteger(blocks)) throw new RangeError(`${q.name} rows need a multiple of ${q.blockElems} elements (got ${k})`);
  for (let i = 0; i < blocks; i++) dequantizeBlock(q, src, at + i * q.blockBytes, out, o + i * q.blockElems);
}
