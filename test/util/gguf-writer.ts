// A GGUF v3 writer for tests, written from the format spec (ggml docs/gguf.md), independent of
// src/model/gguf.ts: metadata of every value type (arrays of any element type, nested arrays),
// F32/F16/BF16 tensors from Float32Array (F16 via the platform's Float16Array, BF16 rounded to
// nearest even here), and a chosen alignment (written as general.alignment when not 32).
import { closeSync, openSync, writeSync } from "node:fs";

/** gguf_type (ggml/include/gguf.h). */
export const GgufType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufScalarType = Exclude<(typeof GgufType)[keyof typeof GgufType], 9>;

/** A metadata value with its type written out (no guessing from JS values). */
export type GgufMeta =
  | { type: GgufScalarType; value: number | bigint | boolean | string }
  | { type: typeof GgufType.ARRAY; elem: GgufScalarType; value: (number | bigint | boolean | string)[] }
  | { type: typeof GgufType.ARRAY; elem: typeof GgufType.ARRAY; value: GgufMeta[] };

export const meta = {
  u8: (v: number): GgufMeta => ({ type: GgufType.UINT8, value: v }),
  i8: (v: number): GgufMeta => ({ type: GgufType.INT8, value: v }),
  u16: (v: number): GgufMeta => ({ type: GgufType.UINT16, value: v }),
  i16: (v: number): GgufMeta => ({ type: GgufType.INT16, value: v }),
  u32: (v: number): GgufMeta => ({ type: GgufType.UINT32, value: v }),
  i32: (v: number): GgufMeta => ({ type: GgufType.INT32, value: v }),
  u64: (v: number | bigint): GgufMeta => ({ type: GgufType.UINT64, value: v }),
  i64: (v: number | bigint): GgufMeta => ({ type: GgufType.INT64, value: v }),
  f32: (v: number): GgufMeta => ({ type: GgufType.FLOAT32, value: v }),
  f64: (v: number): GgufMeta => ({ type: GgufType.FLOAT64, value: v }),
  bool: (v: boolean): GgufMeta => ({ type: GgufType.BOOL, value: v }),
  str: (v: string): GgufMeta => ({ type: GgufType.STRING, value: v }),
  arr: (elem: GgufScalarType, value: (number | bigint | boolean | string)[]): GgufMeta => ({ type: GgufType.ARRAY, elem, value }),
  arrOfArr: (value: GgufMeta[]): GgufMeta => ({ type: GgufType.ARRAY, elem: GgufType.ARRAY, value }),
};

/** ggml_type ids of the tensor types this writer produces. */
export const GgmlType = { F32: 0, F16: 1, BF16: 30 } as const;
export type TensorType = keyof typeof GgmlType;
const ELEM_BYTES: Record<TensorType, number> = { F32: 4, F16: 2, BF16: 2 };

/** f32 -> bf16 bits, round to nearest even; NaN stays a (quiet) NaN. */
export function f32ToBf16Bits(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const b = u[i]!;
    if ((b & 0x7fffffff) > 0x7f800000) out[i] = (b >>> 16) | 0x40;
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** The value a tensor element really has once stored as `type` (what a reader sees). */
export function roundTo(type: TensorType, x: Float32Array): Float32Array {
  if (type === "F32") return x;
  if (type === "F16") return new Float32Array(new Float16Array(x));
  const bits = f32ToBf16Bits(x);
  const u = new Uint32Array(x.length);
  for (let i = 0; i < x.length; i++) u[i] = bits[i]! << 16;
  return new Float32Array(u.buffer);
}

function encodeTensor(type: TensorType, x: Float32Array): Uint8Array {
  if (type === "F32") return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (type === "F16") return new Uint8Array(new Float16Array(x).buffer);
  return new Uint8Array(f32ToBf16Bits(x).buffer);
}

export interface GgufTensor {
  name: string;
  /** Row-major shape, outermost first (PyTorch order); written reversed as ne[]. */
  shape: number[];
  type: TensorType;
  data: Float32Array;
}

class Bytes {
  private parts: Uint8Array[] = [];
  length = 0;
  private readonly enc = new TextEncoder();
  push(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.byteLength;
  }
  private fixed(n: number, f: (dv: DataView) => void): void {
    const b = new Uint8Array(n);
    f(new DataView(b.buffer));
    this.push(b);
  }
  u32(v: number): void {
    this.fixed(4, (d) => d.setUint32(0, v, true));
  }
  u64(v: number | bigint): void {
    this.fixed(8, (d) => d.setBigUint64(0, BigInt(v), true));
  }
  str(s: string): void {
    const b = this.enc.encode(s);
    this.u64(b.byteLength);
    this.push(b);
  }
  scalar(type: GgufScalarType, v: number | bigint | boolean | string): void {
    switch (type) {
      case GgufType.UINT8:
        return this.fixed(1, (d) => d.setUint8(0, Number(v)));
      case GgufType.INT8:
        return this.fixed(1, (d) => d.setInt8(0, Number(v)));
      case GgufType.UINT16:
        return this.fixed(2, (d) => d.setUint16(0, Number(v), true));
      case GgufType.INT16:
        return this.fixed(2, (d) => d.setInt16(0, Number(v), true));
      case GgufType.UINT32:
        return this.fixed(4, (d) => d.setUint32(0, Number(v), true));
      case GgufType.INT32:
        return this.fixed(4, (d) => d.setInt32(0, Number(v), true));
      case GgufType.FLOAT32:
        return this.fixed(4, (d) => d.setFloat32(0, Number(v), true));
      case GgufType.BOOL:
        return this.fixed(1, (d) => d.setUint8(0, v ? 1 : 0));
      case GgufType.STRING:
        return this.str(String(v));
      case GgufType.UINT64:
        return this.fixed(8, (d) => d.setBigUint64(0, BigInt(v), true));
      case GgufType.INT64:
        return this.fixed(8, (d) => d.setBigInt64(0, BigInt(v), true));
      case GgufType.FLOAT64:
        return this.fixed(8, (d) => d.setFloat64(0, Number(v), true));
    }
  }
  value(m: GgufMeta): void {
    if (m.type !== GgufType.ARRAY) return this.scalar(m.type, m.value);
    this.u32(m.elem);
    this.u64(m.value.length);
    if (m.elem === GgufType.ARRAY) {
      for (const x of m.value as GgufMeta[]) {
        if (x.type !== GgufType.ARRAY) throw new Error("an array of arrays holds arrays only");
        this.value(x);
      }
    } else for (const x of m.value as (number | bigint | boolean | string)[]) this.scalar(m.elem, x);
  }
  padTo(align: number): void {
    const n = (align - (this.length % align)) % align;
    if (n) this.push(new Uint8Array(n));
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out;
  }
}

/**
 * Writes a GGUF v3 file: header, `metadata` in insertion order, tensor infos in `tensors` order,
 * data section at `alignment` with every tensor's data aligned. Tensor data goes to the file
 * tensor by tensor (no copy of the whole model in memory). Returns the file size in bytes.
 */
export function writeGguf(path: string, metadata: Map<string, GgufMeta>, tensors: GgufTensor[], alignment = 32): number {
  if (!(alignment > 0 && (alignment & (alignment - 1)) === 0)) throw new Error(`alignment ${alignment} is not a power of two`);
  const md = new Map(metadata);
  if (alignment !== 32) md.set("general.alignment", meta.u32(alignment));
  else if (md.has("general.alignment")) md.delete("general.alignment");
  const h = new Bytes();
  h.u32(0x46554747); // "GGUF"
  h.u32(3);
  h.u64(tensors.length);
  h.u64(md.size);
  for (const [k, v] of md) {
    h.str(k);
    h.u32(v.type);
    h.value(v);
  }
  let offset = 0;
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`tensor ${t.name} twice`);
    names.add(t.name);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`${t.name}: shape [${t.shape}] has ${n} elements, data ${t.data.length}`);
    h.str(t.name);
    h.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) h.u64(d);
    h.u32(GgmlType[t.type]);
    h.u64(offset);
    offset += Math.ceil((n * ELEM_BYTES[t.type]) / alignment) * alignment;
  }
  h.padTo(alignment);
  const fd = openSync(path, "w");
  let size = 0;
  const put = (b: Uint8Array) => {
    for (let at = 0; at < b.byteLength; ) at += writeSync(fd, b, at, b.byteLength - at);
    size += b.byteLength;
  };
  try {
    put(h.concat());
    for (const t of tensors) {
      const b = encodeTensor(t.type, t.data);
      put(b);
      const pad = (alignment - (b.byteLength % alignment)) % alignment;
      if (pad) put(new Uint8Array(pad));
    }
    return size;
  } finally {
    closeSync(fd);
  }
}
