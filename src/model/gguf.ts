// GGUF (v2/v3) reader: header, metadata key/values, tensor infos, alignment, F32/F16/BF16 tensor
// data as views into the mmap. Every count and length is checked against the bytes left in the
// file before it is used, so loops are bounded by the file size and corrupt files fail with one
// ModelFileError. Also a small writer (tests and fixtures).
import { ModelFileError } from "./errors.ts";
import type { SourceDtype } from "./config.ts";
import { mapFile } from "./safetensors.ts";
import { DTYPE_BYTES, numel } from "./weights.ts";
import { QUANT_TYPE_NAMES, quantTensorBytes, quantTypeOfGgml, type QuantType } from "./quant.ts";

export type GgufValue = number | bigint | boolean | string | GgufValue[];

export const enum GgufValueType {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
}

/** ggml_type ids -> names (ggml.h). */
export const GGML_TYPE_NAMES: Record<number, string> = {
  0: "F32",
  1: "F16",
  2: "Q4_0",
  3: "Q4_1",
  6: "Q5_0",
  7: "Q5_1",
  8: "Q8_0",
  9: "Q8_1",
  10: "Q2_K",
  11: "Q3_K",
  12: "Q4_K",
  13: "Q5_K",
  14: "Q6_K",
  15: "Q8_K",
  16: "IQ2_XXS",
  17: "IQ2_XS",
  18: "IQ3_XXS",
  19: "IQ1_S",
  20: "IQ4_NL",
  21: "IQ3_S",
  22: "IQ2_S",
  23: "IQ4_XS",
  24: "I8",
  25: "I16",
  26: "I32",
  27: "I64",
  28: "F64",
  29: "IQ1_M",
  30: "BF16",
  34: "TQ1_0",
  35: "TQ2_0",
  39: "MXFP4",
};
const SUPPORTED_TYPES: Record<number, SourceDtype> = { 0: "f32", 1: "f16", 30: "bf16" };
export const GGML_TYPE_ID: Record<string, number> = Object.fromEntries(Object.entries(GGML_TYPE_NAMES).map(([k, v]) => [v, Number(k)]));

export interface GgufTensorInfo {
  name: string;
  ggmlType: number;
  /** Element type of a plain tensor; for a quantized one, the dtype it dequantizes to (f32). */
  dtype: SourceDtype;
  /** Set for block-quantized tensors (kept quantized on the device). */
  quant?: QuantType;
  /** ne[] as stored: innermost (columns) first. */
  dims: number[];
  /** Row-major shape, outermost first (dims reversed). */
  shape: number[];
  /** Offset relative to the data section. */
  offset: number;
  data: Uint8Array;
}

export interface GgufFile {
  path: string;
  version: number;
  metadata: Map<string, GgufValue>;
  /** Value type of each key (and the element type of arrays). */
  metadataTypes: Map<string, [GgufValueType, GgufValueType?]>;
  tensors: Map<string, GgufTensorInfo>;
  alignment: number;
  dataStart: number;
}

const MAGIC = 0x46554747; // "GGUF" little-endian
const MAX_DIMS = 4;
const MAX_STRING = 1 << 30;
const MAX_DEPTH = 4;

class Reader {
  pos = 0;
  private readonly dv: DataView;
  // ignoreBOM: a token may begin with U+FEFF (Gemma 4 has "\uFEFF//" next to "//"); stripping it would merge them.
  private readonly td = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  constructor(
    readonly path: string,
    readonly buf: Uint8Array,
  ) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get left(): number {
    return this.buf.byteLength - this.pos;
  }
  need(n: number, what: string): void {
    if (!(n >= 0) || n > this.left) {
      throw new ModelFileError(
        this.path,
        `truncated or corrupt: ${what} needs ${n} bytes at offset ${this.pos} but only ${this.left} remain`,
      );
    }
  }
  u8(w: string): number {
    this.need(1, w);
    return this.dv.getUint8(this.pos++);
  }
  i8(w: string): number {
    this.need(1, w);
    return this.dv.getInt8(this.pos++);
  }
  u16(w: string): number {
    this.need(2, w);
    const v = this.dv.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  i16(w: string): number {
    this.need(2, w);
    const v = this.dv.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(w: string): number {
    this.need(4, w);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(w: string): number {
    this.need(4, w);
    const v = this.dv.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f32(w: string): number {
    this.need(4, w);
    const v = this.dv.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(w: string): number {
    this.need(8, w);
    const v = this.dv.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  u64big(w: string): bigint {
    this.need(8, w);
    const v = this.dv.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  i64big(w: string): bigint {
    this.need(8, w);
    const v = this.dv.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** u64 that must be a count/size bounded by `max`. */
  count(w: string, max: number): number {
    const v = this.u64big(w);
    if (v > BigInt(max))
      throw new ModelFileError(this.path, `${w} ${v} is impossible for a ${this.buf.byteLength}-byte file (at most ${max})`);
    return Number(v);
  }
  str(w: string): string {
    const n = this.count(`${w} length`, Math.min(this.left - 8, MAX_STRING));
    this.need(n, w);
    const s = this.td.decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
}

/** The shortest decimal that rounds to the same fp32 (1e-5 rather than 9.99999974e-6). */
function shortestF32(v: number): number {
  if (!Number.isFinite(v)) return v;
  for (let p = 1; p <= 9; p++) {
    const c = Number(v.toPrecision(p));
    if (Math.fround(c) === v) return c;
  }
  return v;
}

const SCALAR_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

function readValue(r: Reader, type: number, key: string, depth: number): GgufValue {
  const w = `value of "${key}"`;
  switch (type) {
    case GgufValueType.U8:
      return r.u8(w);
    case GgufValueType.I8:
      return r.i8(w);
    case GgufValueType.U16:
      return r.u16(w);
    case GgufValueType.I16:
      return r.i16(w);
    case GgufValueType.U32:
      return r.u32(w);
    case GgufValueType.I32:
      return r.i32(w);
    case GgufValueType.F32:
      return shortestF32(r.f32(w));
    case GgufValueType.F64:
      return r.f64(w);
    case GgufValueType.BOOL: {
      const b = r.u8(w);
      if (b > 1) throw new ModelFileError(r.path, `metadata "${key}": bool value ${b} is neither 0 nor 1`);
      return b === 1;
    }
    case GgufValueType.U64: {
      const v = r.u64big(w);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    case GgufValueType.I64: {
      const v = r.i64big(w);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    case GgufValueType.STRING:
      return r.str(w);
    case GgufValueType.ARRAY: {
      if (depth >= MAX_DEPTH) throw new ModelFileError(r.path, `metadata "${key}": arrays nested deeper than ${MAX_DEPTH}`);
      const et = r.u32(`${w} element type`);
      if (!(et in SCALAR_SIZE) && et !== GgufValueType.STRING && et !== GgufValueType.ARRAY) {
        throw new ModelFileError(r.path, `metadata "${key}": unknown array element type ${et}`);
      }
      // Every element takes at least its scalar size (strings and arrays at least 8 bytes).
      const minSize = SCALAR_SIZE[et] ?? 8;
      const n = r.count(`metadata "${key}" array length`, Math.floor(Math.max(0, r.left) / minSize));
      const out: GgufValue[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = readValue(r, et, key, depth + 1);
      return out;
    }
    default:
      throw new ModelFileError(r.path, `metadata "${key}": unknown value type ${type}`);
  }
}

/** Parses a GGUF file already mapped into `buf`. */
export function parseGguf(path: string, buf: Uint8Array): GgufFile {
  const r = new Reader(path, buf);
  if (buf.byteLength < 24) throw new ModelFileError(path, `truncated: ${buf.byteLength} bytes, smaller than a GGUF header`);
  const magic = r.u32("magic");
  if (magic !== MAGIC) throw new ModelFileError(path, `not a GGUF file (magic 0x${magic.toString(16).padStart(8, "0")}, expected "GGUF")`);
  const version = r.u32("version");
  if (version !== 2 && version !== 3) throw new ModelFileError(path, `GGUF version ${version} is not supported (2 and 3 are)`);
  // A tensor info takes at least 8+1+4+8+4+8 bytes; a key/value at least 8+1+4+1.
  const nTensors = r.count("tensor count", Math.floor(buf.byteLength / 33));
  const nKv = r.count("metadata count", Math.floor(buf.byteLength / 14));
  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, [GgufValueType, GgufValueType?]>();
  for (let i = 0; i < nKv; i++) {
    const key = r.str(`metadata key #${i}`);
    const type = r.u32(`type of metadata "${key}"`);
    if (metadata.has(key)) throw new ModelFileError(path, `metadata key "${key}" appears twice`);
    const elemType =
      type === GgufValueType.ARRAY && r.left >= 4 ? new DataView(buf.buffer, buf.byteOffset + r.pos, 4).getUint32(0, true) : undefined;
    metadata.set(key, readValue(r, type, key, 0));
    metadataTypes.set(key, [type, elemType]);
  }
  let alignment = 32;
  const al = metadata.get("general.alignment");
  if (al !== undefined) {
    if (typeof al !== "number" || !Number.isSafeInteger(al) || al <= 0 || (al & (al - 1)) !== 0 || al > 1 << 20) {
      throw new ModelFileError(path, `general.alignment ${String(al)} is not a power of two`);
    }
    alignment = al;
  }
  const infos: { name: string; dims: number[]; type: number; offset: bigint }[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = r.str(`tensor #${i} name`);
    if (seen.has(name)) throw new ModelFileError(path, "tensor appears twice", name);
    seen.add(name);
    const nd = r.u32(`tensor "${name}" dimension count`);
    if (nd < 1 || nd > MAX_DIMS) throw new ModelFileError(path, `${nd} dimensions (GGUF allows 1..${MAX_DIMS})`, name);
    const dims: number[] = [];
    for (let d = 0; d < nd; d++) dims.push(r.count(`tensor "${name}" dimension`, buf.byteLength));
    const type = r.u32(`tensor "${name}" type`);
    const offset = r.u64big(`tensor "${name}" offset`);
    infos.push({ name, dims, type, offset });
  }
  const dataStart = Math.ceil(r.pos / alignment) * alignment;
  if (dataStart > buf.byteLength && nTensors > 0)
    throw new ModelFileError(path, `truncated: data section would start at ${dataStart}, beyond the file (${buf.byteLength} bytes)`);
  const dataLen = buf.byteLength - dataStart;
  const tensors = new Map<string, GgufTensorInfo>();
  const spans: [number, number, string][] = [];
  for (const t of infos) {
    const typeName = GGML_TYPE_NAMES[t.type];
    const quant = quantTypeOfGgml(t.type);
    const dtype = SUPPORTED_TYPES[t.type] ?? (quant ? "f32" : undefined);
    if (!dtype) {
      const supported = ["F32", "F16", "BF16", ...QUANT_TYPE_NAMES].join(", ");
      if (typeName) throw new ModelFileError(path, `tensor type ${typeName} is not supported (supported: ${supported})`, t.name);
      throw new ModelFileError(path, `unknown ggml type ${t.type}`, t.name);
    }
    if (quant && (t.dims[0] ?? 0) % quant.blockElems !== 0) {
      throw new ModelFileError(
        path,
        `${quant.name} tensor has rows of ${t.dims[0]} elements, not a multiple of the block size ${quant.blockElems}`,
        t.name,
      );
    }
    if (t.offset > BigInt(dataLen))
      throw new ModelFileError(path, `offset ${t.offset} is beyond the data section (${dataLen} bytes): file truncated or corrupt`, t.name);
    const offset = Number(t.offset);
    if (offset % alignment !== 0) throw new ModelFileError(path, `offset ${offset} is not aligned to ${alignment}`, t.name);
    const shape = [...t.dims].reverse();
    const bytes = quant ? quantTensorBytes(quant, shape) : numel(t.dims) * DTYPE_BYTES[dtype];
    if (!Number.isSafeInteger(bytes) || offset + bytes > dataLen) {
      throw new ModelFileError(
        path,
        `data [${offset}, ${offset + bytes}) extends beyond the data section (${dataLen} bytes): file truncated or corrupt`,
        t.name,
      );
    }
    spans.push([offset, offset + bytes, t.name]);
    tensors.set(t.name, {
      name: t.name,
      ggmlType: t.type,
      dtype,
      ...(quant ? { quant } : {}),
      dims: t.dims,
      shape,
      offset,
      data: buf.subarray(dataStart + offset, dataStart + offset + bytes),
    });
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1]!;
    const cur = spans[i]!;
    if (cur[0] < prev[1] && cur[1] > cur[0]) throw new ModelFileError(path, `data overlaps tensor "${prev[2]}"`, cur[2]);
  }
  return { path, version, metadata, metadataTypes, tensors, alignment, dataStart };
}

export function readGguf(path: string): GgufFile {
  return parseGguf(path, mapFile(path));
}

/** True when the file starts with the GGUF magic. */
export function looksLikeGguf(buf: Uint8Array): boolean {
  return buf.byteLength >= 4 && buf[0] === 0x47 && buf[1] === 0x47 && buf[2] === 0x55 && buf[3] === 0x46;
}

// ---- writer (tests and fixtures)

export interface GgufKv {
  key: string;
  type: GgufValueType;
  /** For arrays: the element type. */
  elemType?: GgufValueType;
  value: GgufValue;
}

export interface GgufTensorToWrite {
  name: string;
  /** ne[] innermost first. */
  dims: number[];
  ggmlType: number;
  data: Uint8Array;
}

class Writer {
  chunks: Uint8Array[] = [];
  len = 0;
  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.len += b.length;
  }
  num(type: GgufValueType, v: GgufValue): void {
    const size = SCALAR_SIZE[type]!;
    const b = new Uint8Array(size);
    const dv = new DataView(b.buffer);
    switch (type) {
      case GgufValueType.U8:
      case GgufValueType.BOOL:
        dv.setUint8(0, Number(v));
        break;
      case GgufValueType.I8:
        dv.setInt8(0, Number(v));
        break;
      case GgufValueType.U16:
        dv.setUint16(0, Number(v), true);
        break;
      case GgufValueType.I16:
        dv.setInt16(0, Number(v), true);
        break;
      case GgufValueType.U32:
        dv.setUint32(0, Number(v), true);
        break;
      case GgufValueType.I32:
        dv.setInt32(0, Number(v), true);
        break;
      case GgufValueType.F32:
        dv.setFloat32(0, Number(v), true);
        break;
      case GgufValueType.F64:
        dv.setFloat64(0, Number(v), true);
        break;
      case GgufValueType.U64:
        dv.setBigUint64(0, BigInt(v as number), true);
        break;
      case GgufValueType.I64:
        dv.setBigInt64(0, BigInt(v as number), true);
        break;
    }
    this.push(b);
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.num(GgufValueType.U64, b.length);
    this.push(b);
  }
  value(type: GgufValueType, v: GgufValue, elemType?: GgufValueType): void {
    if (type === GgufValueType.STRING) this.str(String(v));
    else if (type === GgufValueType.ARRAY) {
      const arr = v as GgufValue[];
      const et = elemType ?? GgufValueType.U32;
      this.num(GgufValueType.U32, et);
      this.num(GgufValueType.U64, arr.length);
      for (const x of arr) this.value(et, x);
    } else this.num(type, v);
  }
  pad(align: number): void {
    const n = (align - (this.len % align)) % align;
    if (n) this.push(new Uint8Array(n));
  }
  raw(b: Uint8Array): void {
    this.push(b);
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.len);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

export function serializeGguf(kvs: readonly GgufKv[], tensors: readonly GgufTensorToWrite[], alignment = 32): Uint8Array {
  const w = new Writer();
  w.num(GgufValueType.U32, MAGIC);
  w.num(GgufValueType.U32, 3);
  w.num(GgufValueType.U64, tensors.length);
  w.num(GgufValueType.U64, kvs.length);
  for (const kv of kvs) {
    w.str(kv.key);
    w.num(GgufValueType.U32, kv.type);
    w.value(kv.type, kv.value, kv.elemType);
  }
  let off = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    w.str(t.name);
    w.num(GgufValueType.U32, t.dims.length);
    for (const d of t.dims) w.num(GgufValueType.U64, d);
    w.num(GgufValueType.U32, t.ggmlType);
    w.num(GgufValueType.U64, off);
    offsets.push(off);
    off += Math.ceil(t.data.length / alignment) * alignment;
  }
  w.pad(alignment);
  for (const t of tensors) {
    w.raw(t.data);
    w.pad(alignment);
  }
  return w.bytes();
}

/** Re-creates the key/value list of a parsed file (types guessed from JS values; for tests). */
export function metadataToKvs(meta: Map<string, GgufValue>, types: Map<string, [GgufValueType, GgufValueType?]>): GgufKv[] {
  const out: GgufKv[] = [];
  for (const [key, value] of meta) {
    const t = types.get(key);
    if (!t) throw new Error(`no type for ${key}`);
    out.push({ key, type: t[0], elemType: t[1], value });
  }
  return out;
}
