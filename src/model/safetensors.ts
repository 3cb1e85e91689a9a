// safetensors: 8-byte little-endian header length, a JSON header {name: {dtype, shape,
// data_offsets: [begin, end]}, "__metadata__": {...}}, then the data. Read by mmap; every
// length and offset is checked against the file size before any tensor byte is touched.
import { statSync } from "node:fs";

import type { SourceDtype } from "./config.ts";
import { ModelFileError } from "./errors.ts";
import { DTYPE_BYTES, numel } from "./weights.ts";

export interface SafetensorsEntry {
  name: string;
  dtype: SourceDtype;
  shape: number[];
  /** View into the mmap (no copy). */
  data: Uint8Array;
}

export interface SafetensorsFile {
  path: string;
  metadata: Record<string, string>;
  tensors: Map<string, SafetensorsEntry>;
}

const SUPPORTED: Record<string, SourceDtype> = { F32: "f32", F16: "f16", BF16: "bf16" };
const KNOWN_UNSUPPORTED = new Set([
  "F64",
  "I64",
  "I32",
  "I16",
  "I8",
  "U8",
  "U16",
  "U32",
  "U64",
  "BOOL",
  "F8_E4M3",
  "F8_E5M2",
  "F8_E8M0",
  "F6_E2M3",
  "F6_E3M2",
  "F4",
  "C64",
]);
/** Header size limit (the reference implementation uses 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Maps a file read-only (MAP_PRIVATE); errors (missing, empty, a directory) become ModelFileError. */
export function mapFile(path: string): Uint8Array {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new ModelFileError(path, "is not a regular file");
    size = st.size;
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
    throw new ModelFileError(path, `cannot be opened: ${(e as Error).message}`);
  }
  if (size === 0) throw new ModelFileError(path, "file is empty");
  try {
    return Bun.mmap(path, { shared: false });
  } catch (e) {
    throw new ModelFileError(path, `cannot be mapped: ${(e as Error).message}`);
  }
}

/** Parses a safetensors file already mapped into `buf`. */
export function parseSafetensors(path: string, buf: Uint8Array): SafetensorsFile {
  const size = buf.byteLength;
  if (size < 8) throw new ModelFileError(path, `truncated: ${size} bytes, smaller than the 8-byte header length`);
  const dv = new DataView(buf.buffer, buf.byteOffset, size);
  const hlen = dv.getBigUint64(0, true);
  if (hlen > BigInt(size - 8))
    throw new ModelFileError(path, `header length ${hlen} extends beyond the file (${size} bytes): truncated or corrupt`);
  if (hlen > BigInt(MAX_HEADER_BYTES)) throw new ModelFileError(path, `header length ${hlen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (hlen < 2n) throw new ModelFileError(path, `header length ${hlen} is too small for a JSON header`);
  const headerLen = Number(hlen);
  const dataStart = 8 + headerLen;
  const dataLen = size - dataStart;
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(8, dataStart)));
  } catch (e) {
    throw new ModelFileError(path, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw new ModelFileError(path, "header is not a JSON object");

  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsEntry>();
  const spans: [number, number, string][] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (raw && typeof raw === "object" && !Array.isArray(raw)) {
        for (const [k, v] of Object.entries(raw)) if (typeof v === "string") metadata[k] = v;
      }
      continue;
    }
    if (typeof raw !== "object" || raw === null || Array.isArray(raw))
      throw new ModelFileError(path, "header entry is not an object", name);
    const e = raw as Record<string, unknown>;
    const dtypeName = e.dtype;
    if (typeof dtypeName !== "string") throw new ModelFileError(path, `has no dtype`, name);
    const dtype = SUPPORTED[dtypeName];
    if (!dtype) {
      const what = KNOWN_UNSUPPORTED.has(dtypeName)
        ? `dtype ${dtypeName} is not supported (supported: F32, F16, BF16)`
        : `unknown dtype ${JSON.stringify(dtypeName)}`;
      throw new ModelFileError(path, what, name);
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || shape.length > 8 || !shape.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0)) {
      throw new ModelFileError(path, `invalid shape ${JSON.stringify(shape)}`, name);
    }
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)) {
      throw new ModelFileError(path, `invalid data_offsets ${JSON.stringify(offs)}`, name);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end) throw new ModelFileError(path, `data_offsets [${begin}, ${end}] are reversed`, name);
    if (end > dataLen)
      throw new ModelFileError(
        path,
        `data_offsets [${begin}, ${end}] extend beyond the data section (${dataLen} bytes): file truncated or corrupt`,
        name,
      );
    const elems = numel(shape as number[]);
    const want = elems * DTYPE_BYTES[dtype];
    if (!Number.isSafeInteger(want) || want !== end - begin) {
      throw new ModelFileError(
        path,
        `shape [${shape.join(", ")}] × ${dtypeName} needs ${want} bytes but data_offsets span ${end - begin}`,
        name,
      );
    }
    spans.push([begin, end, name]);
    tensors.set(name, { name, dtype, shape: shape as number[], data: buf.subarray(dataStart + begin, dataStart + end) });
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1]!;
    const cur = spans[i]!;
    if (cur[0] < prev[1] && cur[1] > cur[0]) throw new ModelFileError(path, `data overlaps tensor "${prev[2]}"`, cur[2]);
  }
  return { path, metadata, tensors };
}

export function readSafetensors(path: string): SafetensorsFile {
  return parseSafetensors(path, mapFile(path));
}

// ---- writer (tests, bench, fixtures)

export interface TensorToWrite {
  name: string;
  dtype: "F32" | "F16" | "BF16";
  shape: number[];
  data: Uint8Array;
}

/** Serializes tensors to safetensors bytes (header padded to 8 bytes, as the reference writer does). */
export function serializeSafetensorsHeader(
  tensors: readonly Omit<TensorToWrite, "data">[],
  byteLengths: readonly number[],
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  tensors.forEach((t, i) => {
    const n = byteLengths[i]!;
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  });
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const jb = new Uint8Array(Math.ceil(raw.length / 8) * 8).fill(0x20);
  jb.set(raw);
  const out = new Uint8Array(8 + jb.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(jb.length), true);
  out.set(jb, 8);
  return out;
}

export function serializeSafetensors(tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const head = serializeSafetensorsHeader(
    tensors,
    tensors.map((t) => t.data.byteLength),
    metadata,
  );
  const total = head.length + tensors.reduce((a, t) => a + t.data.byteLength, 0);
  const out = new Uint8Array(total);
  out.set(head, 0);
  let at = head.length;
  for (const t of tensors) {
    out.set(t.data, at);
    at += t.data.byteLength;
  }
  return out;
}
