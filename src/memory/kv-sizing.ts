// KV-cache sizing: from a byte budget to whole blocks, and the start-up checks that explain
// which knob to turn when it does not fit.

export interface KvCacheSpec {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  blockSize: number;
  /** bytes per element of the KV cache (--kv-cache-dtype: 4 f32, 2 f16/bf16, 1 fp8). */
  dtypeBytes: number;
}

export interface KvSizing {
  numBlocks: number;
  /** Bytes mapped per slice (one slice per layer and K/V), a multiple of the granularity. */
  bytesPerSlice: number;
  /** Bytes mapped in total (all slices). */
  mappedBytes: number;
  tokens: number;
  /** Sequences of max_model_len that fit at once. */
  maxConcurrency: number;
}

/** Bytes one block occupies in one slice: [block_size, num_kv_heads, head_dim]. */
export function sliceBytesPerBlock(s: KvCacheSpec): number {
  return s.blockSize * s.numKvHeads * s.headDim * s.dtypeBytes;
}

/** Bytes one block occupies over all layers, K and V. */
export function bytesPerBlock(s: KvCacheSpec): number {
  return 2 * s.numLayers * sliceBytesPerBlock(s);
}

export function numSlices(s: KvCacheSpec): number {
  return 2 * s.numLayers;
}

/**
 * Explicit safety margin kept free after start-up: 0.5 % of the device, at most 256 MiB. It
 * leaves room for backend state created lazily after start-up (cuBLAS handles, driver
 * bookkeeping) and is shown in every suggestion. Slice rounding (at most one granularity per
 * slice) comes on top and is reported separately.
 */
export function safetyMarginBytes(totalBytes: number): number {
  return Math.min(256 * 2 ** 20, Math.floor(totalBytes * 0.005));
}

/** The largest whole-block KV cache within `budgetBytes`, mapped at `granularity`. */
export function sizeKvCache(budgetBytes: number, spec: KvCacheSpec, granularity: number, maxModelLen: number): KvSizing {
  const slices = numSlices(spec);
  const perBlock = sliceBytesPerBlock(spec);
  const perSliceBudget = Math.max(0, Math.floor(budgetBytes / slices));
  // Blocks that fit once each slice's mapping is rounded up to the granularity.
  let numBlocks = Math.floor(perSliceBudget / perBlock);
  while (numBlocks > 0 && roundUp(numBlocks * perBlock, granularity) > perSliceBudget) numBlocks--;
  const bytesPerSlice = numBlocks > 0 ? roundUp(numBlocks * perBlock, granularity) : 0;
  const tokens = numBlocks * spec.blockSize;
  const blocksPerSeq = Math.ceil(maxModelLen / spec.blockSize);
  return {
    numBlocks,
    bytesPerSlice,
    mappedBytes: bytesPerSlice * slices,
    tokens,
    maxConcurrency: blocksPerSeq > 0 ? numBlocks / blocksPerSeq : 0,
  };
}

export function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/** Bytes the KV cache needs to hold one sequence of max_model_len (incl. slice rounding). */
export function bytesForOneSequence(spec: KvCacheSpec, granularity: number, maxModelLen: number): number {
  const blocks = Math.ceil(maxModelLen / spec.blockSize);
  return roundUp(blocks * sliceBytesPerBlock(spec), granularity) * numSlices(spec);
}

export class StartupMemoryError extends Error {
  override readonly name = "StartupMemoryError";
}

const GiB = 2 ** 30;
export function fmtBytes(b: number): string {
  const a = Math.abs(b);
  if (a >= GiB) return `${(b / GiB).toFixed(2)} GiB`;
  if (a >= 2 ** 20) return `${(b / 2 ** 20).toFixed(1)} MiB`;
  if (a >= 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${b} B`;
}
