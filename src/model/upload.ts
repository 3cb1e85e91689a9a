// Upload a weight set into device memory through the caching allocator. The device copy is the
// backend's compute dtype (fp32): F32 tensors without a row permutation go straight from the
// mmap view to the device (no JS copy); F16/BF16, permuted (GGUF Q/K) and generated tensors are
// converted in bounded chunks through one reusable scratch buffer.
import { HostBuffer } from "../native/copy-engine.ts";
import type { Device } from "../native/device.ts";
import type { ModelConfig } from "./config.ts";
import { weightLayout, type WeightBufferLayout } from "./weight-layout.ts";
import { readRowsF32, numel, rowCount, rowLength, type TensorSource, type WeightSet } from "./weights.ts";

export interface LoadedTensor {
  /** Device address. */
  ptr: bigint;
  shape: number[];
  dtype: "f32";
  bytes: number;
}

export interface LoadedWeights {
  config: ModelConfig;
  tensors: Map<string, LoadedTensor>;
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
  /** Scratch size for converted chunks (bytes, default 4 MiB). */
  chunkBytes?: number;
  /** Called after each tensor (progress). */
  onTensor?: (name: string, done: number, total: number) => void;
  /** Weight offload: layers >= this index go to host buffers (hr_host_alloc) instead of the device. */
  firstHostLayer?: number;
}

export function uploadWeights(dev: Device, ws: WeightSet, opts: UploadOptions = {}): LoadedWeights {
  const t0 = performance.now();
  const chunkElems = Math.max(1024, Math.floor((opts.chunkBytes ?? 4 << 20) / 4));
  let scratch = new Float32Array(0);
  const tensors = new Map<string, LoadedTensor>();
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
    if (first) throw first;
  };
  // Writes f32 data at byte `at` of a tensor placed at `ptr` (device) or `hostAt` of `host`.
  const put = (ptr: bigint, host: HostBuffer | null, hostAt: number, at: number, data: Uint8Array | Float32Array) => {
    if (host) host.view(hostAt + at, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    else dev.copyToDevice(ptr + BigInt(at), data);
  };
  const copyTensor = (t: TensorSource, ptr: bigint, host: HostBuffer | null, hostAt: number) => {
    const n = numel(t.shape);
    if (n === 0) return;
    if (t.data && t.dtype === "f32" && !t.rowPerm) {
      put(ptr, host, hostAt, 0, t.data);
      return;
    }
    const rl = rowLength(t.shape);
    const rows = rowCount(t.shape);
    const rowsPerChunk = Math.max(1, Math.floor(chunkElems / rl));
    const need = Math.min(rows, rowsPerChunk) * rl;
    if (scratch.length < need) scratch = new Float32Array(need);
    for (let r = 0; r < rows; r += rowsPerChunk) {
      const nr = Math.min(rowsPerChunk, rows - r);
      const view = scratch.subarray(0, nr * rl);
      readRowsF32(t, r, nr, view);
      put(ptr, host, hostAt, r * rl * 4, view);
    }
  };
  try {
    let done = 0;
    for (const layout of weightLayout(ws.config, 4)) {
      const host = layout.layer !== null && layout.layer >= firstHost ? HostBuffer.alloc(dev, Math.max(layout.bytes, 1)) : null;
      const base = host ? host.ptr : dev.alloc(Math.max(layout.bytes, 1));
      buffers.push({ ...layout, ptr: base, host });
      for (const lt of layout.tensors) {
        const t = ws.tensors.get(lt.name);
        if (!t) throw new Error(`uploadWeights: tensor "${lt.name}" missing from the weight set`);
        const ptr = base + BigInt(lt.offset);
        tensors.set(t.name, { ptr, shape: [...t.shape], dtype: "f32", bytes: lt.bytes });
        totalBytes += lt.bytes;
        sourceBytes += t.data?.byteLength ?? 0;
        copyTensor(t, ptr, host, lt.offset);
        opts.onTensor?.(t.name, ++done, ws.tensors.size);
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
    tensors,
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

/** Reads a device tensor back to the host (tests, debugging). */
export function downloadTensor(dev: Device, t: LoadedTensor): Float32Array {
  const out = new Float32Array(t.bytes / 4);
  dev.copyFromDevice(out, t.ptr);
  return out;
}
