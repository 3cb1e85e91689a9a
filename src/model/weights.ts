// The common tensor-source abstraction: canonical tensor name -> {dtype, shape, bytes view into
// an mmap (or a generator for the demo model)}, plus the fp32 row reader shared by upload and
// tests, and the check of a tensor set against what the config says the model needs.
import type { ModelConfig, SourceDtype } from "./config.ts";
import type { KvScales } from "./kv-dtype.ts";
import { expectedTensors } from "./config.ts";
import { ModelFileError } from "./errors.ts";
import { dequantizeRow, quantRowBytes, quantTensorBytes, type QuantType } from "./quant.ts";

export const DTYPE_BYTES: Record<SourceDtype, number> = { f32: 4, f16: 2, bf16: 2 };

export interface TensorSource {
  /** Canonical (HF Llama) name. */
  name: string;
  /** Row-major shape, outermost first. */
  shape: number[];
  dtype: SourceDtype;
  /** Block-quantized (GGUF) tensor: uploaded as the file's bytes, read on the host by dequantizing. */
  quant?: QuantType;
  /** Where it came from, for error messages. */
  file: string;
  /** Name as written in the file. */
  fileName: string;
  /** The tensor's bytes: a view into the file's mmap (no copy). Absent for generated tensors. */
  data?: Uint8Array;
  /** Destination row r is source row rowPerm[r] (GGUF Q/K -> rotate-half layout). Rows = shape[0]. */
  rowPerm?: Int32Array;
  /** Read as w + 1 (Gemma's RMSNorm weights in HF checkpoints, applied as 1 + w). */
  addOne?: boolean;
  /** Generated tensors (demo model): writes elements [start, start+out.length) as fp32. */
  generate?: (start: number, out: Float32Array) => void;
}

export interface WeightSet {
  config: ModelConfig;
  format: "safetensors" | "gguf" | "generated";
  /** Files the weights are mapped from. */
  files: string[];
  tensors: Map<string, TensorSource>;
  /** KV cache scales the checkpoint carries (vLLM's self_attn.k_scale / v_scale); absent = none. */
  kvScales?: KvScales;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Elements per "row" for reading/permutation: product of all dims but the first (1 for 1-D). */
export function rowLength(shape: readonly number[]): number {
  return shape.length >= 2 ? numel(shape.slice(1)) : 1;
}

export function rowCount(shape: readonly number[]): number {
  return shape.length === 0 ? 1 : shape[0]!;
}

// ---- fp16 / bf16 -> fp32

let f16Table: Float32Array | null = null;
function f16ToF32Table(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  f16Table = t;
  return t;
}

/** Converts `count` elements of `dtype` from `src` (byte offset `at`) into out[outAt..]. */
export function convertToF32(dtype: SourceDtype, src: Uint8Array, at: number, count: number, out: Float32Array, outAt: number): void {
  if (dtype === "f32") {
    if ((src.byteOffset + at) % 4 === 0) {
      out.set(new Float32Array(src.buffer, src.byteOffset + at, count), outAt);
    } else {
      new Uint8Array(out.buffer, out.byteOffset + outAt * 4, count * 4).set(src.subarray(at, at + count * 4));
    }
    return;
  }
  if (dtype === "f16") {
    const t = f16ToF32Table();
    for (let i = 0, p = at; i < count; i++, p += 2) out[outAt + i] = t[src[p]! | (src[p + 1]! << 8)]!;
    return;
  }
  // bf16: the high half of an fp32.
  const u = new Uint32Array(out.buffer, out.byteOffset + outAt * 4, count);
  for (let i = 0, p = at; i < count; i++, p += 2) u[i] = ((src[p]! | (src[p + 1]! << 8)) << 16) >>> 0;
}

/**
 * Reads destination rows [row, row + nRows) of `t` as fp32 into out[0 .. nRows*rowLength),
 * applying the row permutation. The caller sizes `out`.
 */
export function readRowsF32(t: TensorSource, row: number, nRows: number, out: Float32Array): void {
  readRowsRaw(t, row, nRows, out);
  if (t.addOne) for (let i = 0, n = nRows * rowLength(t.shape); i < n; i++) out[i] = out[i]! + 1;
}

function readRowsRaw(t: TensorSource, row: number, nRows: number, out: Float32Array): void {
  const rl = rowLength(t.shape);
  if (t.generate) {
    t.generate(row * rl, out.subarray(0, nRows * rl));
    return;
  }
  const data = t.data;
  if (!data) throw new ModelFileError(t.file, "has no data", t.fileName);
  if (t.quant) {
    const rb = quantRowBytes(t.quant, rl);
    for (let r = 0; r < nRows; r++) dequantizeRow(t.quant, data, (t.rowPerm ? t.rowPerm[row + r]! : row + r) * rb, rl, out, r * rl);
    return;
  }
  const eb = DTYPE_BYTES[t.dtype];
  if (!t.rowPerm) {
    convertToF32(t.dtype, data, row * rl * eb, nRows * rl, out, 0);
    return;
  }
  for (let r = 0; r < nRows; r++) {
    const src = t.rowPerm[row + r]!;
    convertToF32(t.dtype, data, src * rl * eb, rl, out, r * rl);
  }
}

/** The whole tensor as a fresh fp32 array (tests and small tensors only). */
export function tensorToF32(t: TensorSource): Float32Array {
  const out = new Float32Array(numel(t.shape));
  readRowsF32(t, 0, rowCount(t.shape), out);
  return out;
}

/**
 * Checks a tensor set against the config: every expected tensor present with the expected shape,
 * nothing unexpected (except names in `ignorable`, which are dropped). Throws ModelFileError.
 */
export function checkTensors(
  config: ModelConfig,
  tensors: Map<string, TensorSource>,
  where: string,
  ignorable: (name: string) => boolean = () => false,
): void {
  const expected = expectedTensors(config);
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t) throw new ModelFileError(where, `tensor is missing (the config needs it, shape [${shape.join(", ")}])`, name);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ModelFileError(
        t.file,
        `shape [${t.shape.join(", ")}] does not match the config, which needs [${shape.join(", ")}]`,
        t.fileName,
      );
    }
  }
  for (const [name, t] of tensors) {
    if (expected.has(name)) continue;
    if (ignorable(name)) {
      tensors.delete(name);
      continue;
    }
    throw new ModelFileError(t.file, `unexpected tensor (not part of a ${config.architecture} model with this config)`, t.fileName);
  }
}

/**
 * Tensors that the matmul/logits/embedding ops read through a weight type (the projections and
 * the embedding / LM-head tables): on the CPU backend with a 16-bit --dtype they are stored in
 * 16 bits while every other tensor (norms, biases, RoPE factors) stays in the fp32 compute dtype.
 */
export function isMatrixWeight(name: string): boolean {
  return /_proj\.weight$/.test(name) || name === "model.embed_tokens.weight" || name === "lm_head.weight";
}

/** Bytes the device copy of one tensor takes: the file's bytes when quantized, else numel × compute element size. */
export function tensorDeviceBytes(t: Pick<TensorSource, "shape" | "quant">, computeBytes: number): number {
  return t.quant ? quantTensorBytes(t.quant, t.shape) : numel(t.shape) * computeBytes;
}

/** The tensors that stay quantized, by name: device bytes and type code (the planner's and the layout's input). */
export function quantizedTensors(ws: WeightSet): Map<string, { bytes: number; code: number }> {
  const m = new Map<string, { bytes: number; code: number }>();
  for (const t of ws.tensors.values()) if (t.quant) m.set(t.name, { bytes: quantTensorBytes(t.quant, t.shape), code: t.quant.code });
  return m;
}

/** Bytes the device copy takes in the compute dtype (fp32 on CPU), matrix weights in `weightBytes`
 * per element (2 on CPU with --dtype bfloat16/float16); quantized tensors at their file size. */
export function deviceBytes(ws: WeightSet, computeBytes = 4, weightBytes = computeBytes): number {
  let n = 0;
  for (const t of ws.tensors.values()) n += tensorDeviceBytes(t, isMatrixWeight(t.name) ? weightBytes : computeBytes);
  return n;
}
