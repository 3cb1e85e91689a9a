// Upload a weight set into device memory through the caching allocator, in the engine's compute
// dtype (dtype.ts: f32 on CPU, bf16/f16 on CUDA), matrix weights in the weight dtype (16-bit on
// CPU with --dtype bfloat16/float16). A tensor whose file dtype is the compute
// dtype goes straight from the mmap view to the device (no JS copy; permuted rows are gathered
// as raw bytes); F16/BF16 -> f32, f32 -> bf16/f16 (round to nearest even), permuted (GGUF Q/K)
// and generated tensors are converted in bounded chunks through reusable scratch buffers.
// Fused projections (weight-layout.ts): each part is written straight into its rows of the
// fused device tensor, so fusing costs no host copy beyond the chunk scratch.
import { HostBuffer } from "../native/copy-engine.ts";
import type { Device } from "../native/device.ts";
import type { ModelConfig } from "./config.ts";
import { COMPUTE_DTYPE_BYTES, f32ToHalfBits, type ComputeDtype } from "./dtype.ts";
import { dequantizeRow, quantTensorBytes, type QuantType } from "./quant.ts";
import { storedWeightBytes, weightLayout, type LayoutTensor, type WeightBufferLayout } from "./weight-layout.ts";
import {
  convertToF32,
  isMatrixWeight,
  numel,
  quantizedTensors,
  readRowsF32,
  rowCount,
  rowLength,
  tensorToF32,
  type TensorSource,
  type WeightSet,
} from "./weights.ts";

/** Tensors the forward pass reads on the host as well (kept in fp32 whatever the compute dtype). */
const HOST_F32_TENSORS = ["rope_freqs.weight"];

export interface LoadedTensor {
  /** Device address. */
  ptr: bigint;
  shape: number[];
  /** The dtype the tensor was converted to: the compute dtype, or the weight dtype for a matrix
   * weight (16-bit on CPU with --dtype bfloat16/float16); when quantized, the ops' dtype it feeds. */
  dtype: ComputeDtype;
  /** Kept block-quantized (GGUF): the device holds the file's bytes; ops take quant.code as the weight type. */
  quant?: QuantType;
  /** numel × element size of `dtype`, or the quantized bytes. */
  bytes: number;
}

export interface LoadedWeights {
  config: ModelConfig;
  /** The engine's compute dtype: the element type of every device tensor but the matrix weights. */
  dtype: ComputeDtype;
  /** Element type of the (unquantized) matrix weights: `dtype`, or 16-bit on CPU (isMatrixWeight). */
  weightDtype: ComputeDtype;
  /** Every canonical tensor of the weight set (a part of a fused tensor is a view of its rows). */
  tensors: Map<string, LoadedTensor>;
  /**
   * The fused tensors (weight-layout.ts: model.layers.<i>.self_attn.qkv_proj.weight / .bias,
   * mlp.gate_up_proj.weight) of the layers where they apply; their parts are in `tensors`.
   */
  fused: Map<string, LoadedTensor>;
  /**
   * fp32 host copies of the small tensors read on the host (rope_freqs.weight -> inv_freq), so
   * a 16-bit compute dtype does not round them. The device copies exist as well.
   */
  hostF32: Map<string, Float32Array>;
  /**
   * The buffers holding the tensors (weight-layout.ts): resident, then one per layer. An
   * offloaded layer's buffer is a host buffer (`host` set, `ptr` a host address); its tensors'
   * ptr are host addresses too (the forward pass reads them from a staging slot).
   */
  buffers: (WeightBufferLayout & { ptr: bigint; host: HostBuffer | null })[];
  /** Device bytes requested for the weights (sum of tensor sizes, before allocator rounding). */
  totalBytes: number;
  /** Bytes read from the source (file dtype). */
  sourceBytes: number;
  /** Wall time of the upload, ms. */
  uploadMs: number;
  get(name: string): LoadedTensor;
  /** Frees every tensor (idempotent). */
  free(): void;
}

export interface UploadOptions {
  /** Device element type (default f32, the CPU backend's; the engine passes its compute dtype). */
  dtype?: ComputeDtype;
  /** Element type of the matrix weights (default `dtype`); narrower than `dtype` only on CPU. */
  weightDtype?: ComputeDtype;
  /** Scratch size for converted chunks (bytes, default 4 MiB). */
  chunkBytes?: number;
  /** Called after each tensor (progress). */
  onTensor?: (name: string, done: number, total: number) => void;
  /** Weight offload: layers >= this index go to host buffers (hr_host_alloc) instead of the device. */
  firstHostLayer?: number;
  /** Fuse q|k|v and gate|up where the layout can (default true; false: tests and benchmarks compare). */
  fuse?: boolean;
}

export function uploadWeights(dev: Device, ws: WeightSet, opts: UploadOptions = {}): LoadedWeights {
  const t0 = performance.now();
  const dtype: ComputeDtype = opts.dtype ?? "f32";
  const eb = COMPUTE_DTYPE_BYTES[dtype];
  const weightDtype: ComputeDtype = opts.weightDtype ?? dtype;
  const dtypeOf = (t: TensorSource): ComputeDtype => (!t.quant && isMatrixWeight(t.name) ? weightDtype : dtype);
  const chunkBytes = opts.chunkBytes ?? 4 << 20;
  const chunkElems = Math.max(1024, Math.floor(chunkBytes / 4));
  let scratch = new Float32Array(0); // fp32 rows (conversion source)
  let half = new Uint16Array(0); // bf16/f16 rows (conversion result)
  let raw = new Uint8Array(0); // permuted rows gathered as file bytes
  const tensors = new Map<string, LoadedTensor>();
  const fused = new Map<string, LoadedTensor>();
  const hostF32 = new Map<string, Float32Array>();
  const buffers: (WeightBufferLayout & { ptr: bigint; host: HostBuffer | null })[] = [];
  const firstHost = opts.firstHostLayer ?? Number.POSITIVE_INFINITY;
  let totalBytes = 0;
  let sourceBytes = 0;
  let freed = false;
  const freeAll = () => {
    if (freed) return;
    freed = true;
    let first: unknown;
    for (const b of buffers) {
      try {
        if (b.host) b.host.free();
        else dev.free(b.ptr);
      } catch (e) {
        first ??= e;
      }
    }
    buffers.length = 0;
    tensors.clear();
    fused.clear();
    if (first) throw first;
  };
  // Writes `data` (compute-dtype bytes) at byte `at` of a tensor placed at `ptr` (device) or `hostAt` of `host`.
  const put = (ptr: bigint, host: HostBuffer | null, hostAt: number, at: number, data: Uint8Array | Uint16Array | Float32Array) => {
    if (host) host.view(hostAt + at, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    else dev.copyToDevice(ptr + BigInt(at), data);
  };
  const copyTensor = (t: TensorSource, dtype: ComputeDtype, ptr: bigint, host: HostBuffer | null, hostAt: number) => {
    const eb = COMPUTE_DTYPE_BYTES[dtype];
    const n = numel(t.shape);
    if (n === 0) return;
    const rl = rowLength(t.shape);
    const rows = rowCount(t.shape);
    const rowsPerChunk = Math.max(1, Math.floor(chunkElems / rl));
    if (t.data && (t.quant || (t.dtype === dtype && !t.addOne))) {
      // Same dtype as the device copy, or kept quantized: the file's bytes, never converted
      // (Gemma's HF norm weights, read as w + 1, go through the converting path).
      const want = t.quant ? quantTensorBytes(t.quant, t.shape) : n * eb;
      if (t.data.byteLength !== want) {
        throw new Error(
          `uploadWeights: tensor "${t.name}" has ${t.data.byteLength} bytes, ${n} ${t.quant?.name ?? dtype} elements need ${want}`,
        );
      }
      if (!t.rowPerm) {
        put(ptr, host, hostAt, 0, t.data);
        return;
      }
      const rowBytes = t.data.byteLength / rows; // a quantized row is whole blocks, so rows permute as bytes too
      const rawRows = Math.max(1, Math.floor(chunkBytes / rowBytes));
      if (raw.length < Math.min(rows, rawRows) * rowBytes) raw = new Uint8Array(Math.min(rows, rawRows) * rowBytes);
      for (let r = 0; r < rows; r += rawRows) {
        const nr = Math.min(rawRows, rows - r);
        for (let i = 0; i < nr; i++) {
          const src = t.rowPerm[r + i]! * rowBytes;
          raw.set(t.data.subarray(src, src + rowBytes), i * rowBytes);
        }
        put(ptr, host, hostAt, r * rowBytes, raw.subarray(0, nr * rowBytes));
      }
      return;
    }
    const need = Math.min(rows, rowsPerChunk) * rl;
    if (scratch.length < need) scratch = new Float32Array(need);
    if (dtype !== "f32" && half.length < need) half = new Uint16Array(need);
    for (let r = 0; r < rows; r += rowsPerChunk) {
      const nr = Math.min(rowsPerChunk, rows - r);
      const view = scratch.subarray(0, nr * rl);
      readRowsF32(t, r, nr, view);
      if (dtype === "f32") {
        put(ptr, host, hostAt, r * rl * 4, view);
      } else {
        const h = half.subarray(0, nr * rl);
        f32ToHalfBits(dtype, view, h);
        put(ptr, host, hostAt, r * rl * 2, h);
      }
    }
  };
  try {
    let done = 0;
    const sizes = storedWeightBytes(ws.config, eb, COMPUTE_DTYPE_BYTES[weightDtype], quantizedTensors(ws));
    // One canonical tensor at byte `offset` of its buffer (alone, or as rows of a fused tensor).
    const placeTensor = (lt: Pick<LayoutTensor, "name" | "offset" | "bytes">, base: bigint, host: HostBuffer | null) => {
      const t = ws.tensors.get(lt.name);
      if (!t) throw new Error(`uploadWeights: tensor "${lt.name}" missing from the weight set`);
      const ptr = base + BigInt(lt.offset);
      const tdt = dtypeOf(t);
      tensors.set(t.name, { ptr, shape: [...t.shape], dtype: tdt, ...(t.quant ? { quant: t.quant } : {}), bytes: lt.bytes });
      sourceBytes += t.data?.byteLength ?? 0;
      copyTensor(t, tdt, ptr, host, lt.offset);
      if (HOST_F32_TENSORS.includes(t.name)) hostF32.set(t.name, tensorToF32(t));
      opts.onTensor?.(t.name, ++done, ws.tensors.size);
      return t;
    };
    for (const layout of weightLayout(ws.config, eb, sizes, opts.fuse ?? true)) {
      const host = layout.layer !== null && layout.layer >= firstHost ? HostBuffer.alloc(dev, Math.max(layout.bytes, 1)) : null;
      const base = host ? host.ptr : dev.alloc(Math.max(layout.bytes, 1));
      buffers.push({ ...layout, ptr: base, host });
      for (const lt of layout.tensors) {
        totalBytes += lt.bytes;
        if (!lt.parts) {
          placeTensor(lt, base, host);
          continue;
        }
        // the parts share one storage type (weight-layout.ts), so the first one's is the tensor's
        const first = placeTensor({ ...lt.parts[0]!, offset: lt.offset + lt.parts[0]!.offset }, base, host);
        for (const part of lt.parts.slice(1)) placeTensor({ ...part, offset: lt.offset + part.offset }, base, host);
        fused.set(lt.name, {
          ptr: base + BigInt(lt.offset),
          shape: [...lt.shape],
          dtype: dtypeOf(first),
          ...(first.quant ? { quant: first.quant } : {}),
          bytes: lt.bytes,
        });
      }
    }
  } catch (e) {
    try {
      freeAll();
    } catch {
      // the original error is the one to report
    }
    throw e;
  }
  const uploadMs = performance.now() - t0;
  return {
    config: ws.config,
    dtype,
    weightDtype,
    tensors,
    fused,
    hostF32,
    buffers,
    totalBytes,
    sourceBytes,
    uploadMs,
    get(name: string): LoadedTensor {
      const t = tensors.get(name);
      if (!t) throw new Error(`no loaded tensor "${name}"`);
      return t;
    },
    free: freeAll,
  };
}

/** Reads a device tensor back to the host as fp32 (bf16/f16 widened exactly; tests, debugging). */
export function downloadTensor(dev: Device, t: LoadedTensor): Float32Array {
  if (t.quant) {
    const bits = new Uint8Array(t.bytes);
    dev.copyFromDevice(bits, t.ptr);
    const out = new Float32Array(numel(t.shape));
    const k = t.shape[t.shape.length - 1]!;
    const rowBytes = t.bytes / (out.length / k);
    for (let r = 0; r < out.length / k; r++) dequantizeRow(t.quant, bits, r * rowBytes, k, out, r * k);
    return out;
  }
  const eb = COMPUTE_DTYPE_BYTES[t.dtype];
  const n = t.bytes / eb;
  const out = new Float32Array(n);
  if (t.dtype === "f32") {
    dev.copyFromDevice(out, t.ptr);
    return out;
  }
  const bits = new Uint8Array(t.bytes);
  dev.copyFromDevice(bits, t.ptr);
  convertToF32(t.dtype, bits, 0, n, out, 0);
  return out;
}

/** The device tensor's raw bytes in its compute dtype (tests: bit-exact checks). */
export function downloadTensorBits(dev: Device, t: LoadedTensor): Uint8Array {
  const bits = new Uint8Array(t.bytes);
  dev.copyFromDevice(bits, t.ptr);
  return bits;
}
