// The planner: from a model config and the serving limits, predict device memory without a
// device — weights, activation arena, graph buffers, KV blocks/tokens, max concurrency, and
// whether (and how much) weight offload is needed. `headroom plan` and POST /v1/memory/plan
// call it; the engine's start-up compares its prediction with the measurement.
import { planArena, type BatchLimits } from "../model/arena.ts";
import { dequantWorkspaceBytes } from "../model/dequant-workspace.ts";
import type { ModelConfig } from "../model/config.ts";
import { COMPUTE_DTYPE_BYTES, defaultComputeDtype, type ComputeDtype } from "../model/dtype.ts";
import { KV_DTYPE_BYTES, type KvCacheDtype } from "../model/kv-dtype.ts";
import { storedWeightBytes, weightLayout, type QuantizedTensors } from "../model/weight-layout.ts";
import { simulateAllocations } from "./allocator-model.ts";
import { bytesForOneSequence, safetyMarginBytes, sizeKvCache, type KvCacheSpec } from "./kv-sizing.ts";

export type PlanBackend = "cpu" | "cuda";

export interface PlanInput {
  config: ModelConfig;
  backend: PlanBackend;
  /**
   * Element type of weights, activations and KV (default: the backend's, f32 on CPU and bf16
   * on CUDA, as the engine's --dtype auto). Logits are fp32 either way.
   */
  computeDtype?: ComputeDtype;
  /**
   * Element type of the matrix weights (projections, embedding, LM head); default computeDtype.
   * 16-bit under fp32 compute on the CPU backend (--dtype bfloat16/float16 there).
   */
  weightDtype?: ComputeDtype;
  /** Element type of the KV cache (--kv-cache-dtype; default: the compute dtype). */
  kvCacheDtype?: KvCacheDtype;
  /** Total device memory (bytes). */
  deviceMemoryBytes: number;
  /** Free device memory at start (default: all of it). */
  freeMemoryBytes?: number;
  gpuMemoryUtilization: number;
  maxModelLen: number;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  blockSize: number;
  /** Graph capture sizes (empty = eager). */
  captureSizes: number[];
  /** Decode-attention workspace bytes for the largest batch (hr_paged_attention_workspace_bytes). */
  attentionWorkspaceBytes: number;
  /** Explicit KV size (--kv-cache-memory-bytes). */
  kvCacheMemoryBytes?: number | null;
  /** Memory outside the allocator the backend needs (CUDA context, cuBLAS); measured at start-up. */
  nonAllocatorEstimateBytes?: number;
  /** Weight offload limits (default: automatic, 2 staging slots). */
  offload?: OffloadRequest;
  /** Tensors kept block-quantized (GGUF), by name: bytes and type (weights.ts quantizedTensors). */
  quantized?: QuantizedTensors;
}

/**
 * Which limit decides how many decoder layers stay in host memory (the last layers are the
 * ones offloaded; embeddings, final norm and LM head always stay resident):
 *   layers            exactly this many (the engine re-plans with its own placement)
 *   cpuOffloadGb      at least G GiB of layer weights (vLLM's --cpu-offload-gb)
 *   triggerPercent    layers go to the device until its usage (others' memory at start +
 *                     this instance's weights and staging slots) would pass P % of total
 *   otherwise         automatic: the fewest layers for weights + arena + one max_model_len
 *                     sequence to fit the requested share (none when they fit)
 */
export interface OffloadRequest {
  layers?: number | null;
  cpuOffloadGb?: number;
  triggerPercent?: number | null;
  /** Device staging slots (--offload-prefetch-layers, default 2). */
  prefetchLayers?: number;
}

export type OffloadMode = "auto" | "cpu-offload-gb" | "trigger-percent" | "layers";

export interface OffloadPlacement {
  mode: OffloadMode;
  layersOnDevice: number;
  layersOffloaded: number;
  /** Layers on the device are 0 … layersOnDevice − 1; the rest live in host memory. */
  firstOffloadedLayer: number;
  /** Host bytes of the offloaded layer buffers. */
  hostBytes: number;
  /** Staging slots (min(prefetch layers, offloaded layers)), each one layer buffer. */
  slots: number;
  slotBytes: number;
  /** Why this many layers are offloaded (logged at start-up). */
  reason: string;
}

export interface MemoryPlan {
  backend: PlanBackend;
  computeDtype: ComputeDtype;
  computeDtypeBytes: number;
  /** Element type of the matrix weights (= computeDtype except 16-bit weights on CPU). */
  weightDtype: ComputeDtype;
  /** The KV cache's element type and size: a narrower cache holds more tokens in the same memory. */
  kvCacheDtype: KvCacheDtype;
  kvCacheDtypeBytes: number;
  /** Allocator bytes of the weight buffers (block sizes, as the allocator counts them). */
  weightsBytes: number;
  weightsPerLayerBytes: number;
  /** Embeddings, final norm and LM head (kept resident under offload). */
  weightsResidentBytes: number;
  activationArenaBytes: number;
  /** Static graph inputs/outputs beyond the arena: 0, graphs share the arena's buffers. */
  graphBuffersBytes: number;
  /** Reserved minus allocated after weights and arena (segment rounding, predicted exactly). */
  allocatorSlackBytes: number;
  nonAllocatorEstimateBytes: number;
  nonKvBytes: number;
  requestedBytes: number;
  safetyMarginBytes: number;
  kvBudgetBytes: number;
  kvBytesPerBlock: number;
  kvGranularityBytes: number;
  kvBlocks: number;
  kvTokens: number;
  kvMappedBytes: number;
  maxConcurrency: number;
  /** KV bytes one max_model_len sequence needs. */
  kvBytesForOneSequence: number;
  fits: boolean;
  /** Bytes of decoder-layer weights kept in host memory (0 = none). */
  offloadBytes: number;
  offloadLayers: number;
  /** Allocator bytes of the device staging slots (included in weightsBytes). */
  weightsStagingBytes: number;
  offload: OffloadPlacement;
  notes: string[];
}

const MiB = 2 ** 20;

/** Defaults the CLI and the engine share. */
export function defaultCaptureSizes(maxNumSeqs: number): number[] {
  const top = Math.min(2 * maxNumSeqs, 512);
  const sizes = [1, 2, 4].filter((s) => s <= top);
  for (let s = 8; s <= top; s += 8) sizes.push(s);
  return sizes;
}

export function kvSpecFor(cfg: ModelConfig, blockSize: number, dtypeBytes: number): KvCacheSpec {
  return { numLayers: cfg.numLayers, numKvHeads: cfg.numKvHeads, headDim: cfg.headDim, blockSize, dtypeBytes };
}

export function batchLimitsFor(maxModelLen: number, maxNumSeqs: number, maxNumBatchedTokens: number, blockSize: number): BatchLimits {
  return { maxTokens: maxNumBatchedTokens, maxSeqs: maxNumSeqs, maxBlocksPerSeq: Math.ceil(maxModelLen / blockSize) };
}

/**
 * Allocation sizes start-up makes, in order: the resident buffer, the device layers' buffers,
 * the staging slots (one layer buffer each), then the arena. Offloaded layers are host memory.
 */
export function startupAllocations(
  cfg: ModelConfig,
  dtypeBytes: number,
  arenaBytes: number,
  offloadedLayers = 0,
  slots = 0,
  quantized?: QuantizedTensors,
): number[] {
  const bufs = weightLayout(cfg, dtypeBytes, quantized).map((b) => Math.max(1, b.bytes));
  const onDevice = cfg.numLayers - offloadedLayers;
  // Slots hold the largest offloaded layer (layers differ in mixed-type quantized files).
  const layerBytes = offloadedLayers > 0 ? Math.max(...bufs.slice(1 + onDevice)) : 0;
  return [...bufs.slice(0, 1 + onDevice), ...Array<number>(offloadedLayers > 0 ? slots : 0).fill(layerBytes), arenaBytes];
}

/** Staging slots for `offloaded` layers with `prefetch` requested (0 when nothing is offloaded). */
export function stagingSlots(offloaded: number, prefetch: number): number {
  return offloaded > 0 ? Math.max(1, Math.min(prefetch, offloaded)) : 0;
}

export function planMemory(p: PlanInput): MemoryPlan {
  const computeDtype = p.computeDtype ?? defaultComputeDtype(p.backend);
  const dtypeBytes = COMPUTE_DTYPE_BYTES[computeDtype];
  const weightDtype = p.weightDtype ?? computeDtype;
  // Tensors not stored in the compute dtype: quantized ones, and 16-bit matrices on CPU.
  const stored = storedWeightBytes(p.config, dtypeBytes, COMPUTE_DTYPE_BYTES[weightDtype], p.quantized);
  const notes: string[] = [];
  const limits = batchLimitsFor(p.maxModelLen, p.maxNumSeqs, p.maxNumBatchedTokens, p.blockSize);
  const dequant = dequantWorkspaceBytes(p.config, dtypeBytes, p.quantized, limits, p.backend);
  const arenaRequest = planArena(p.config, limits, dtypeBytes, p.attentionWorkspaceBytes, dequant).totalBytes;
  const L = p.config.numLayers;
  const prefetch = Math.max(1, Math.floor(p.offload?.prefetchLayers ?? 2));
  const free = p.freeMemoryBytes ?? p.deviceMemoryBytes;
  const nonAlloc = p.nonAllocatorEstimateBytes ?? (p.backend === "cuda" ? 600 * MiB : 0);
  const requested = Math.floor(p.deviceMemoryBytes * p.gpuMemoryUtilization);
  const margin = safetyMarginBytes(p.deviceMemoryBytes);
  const granularity = p.backend === "cpu" ? 4096 : 2 * MiB;
  const kvCacheDtype = p.kvCacheDtype ?? computeDtype;
  const kvBytes = KV_DTYPE_BYTES[kvCacheDtype];
  const spec = kvSpecFor(p.config, p.blockSize, kvBytes);
  const oneSeq = bytesForOneSequence(spec, granularity, p.maxModelLen);
  const layerLayoutBytes = L > 0 ? weightLayout(p.config, dtypeBytes, stored)[1]!.bytes : 0;
  // Footprint (allocator blocks, reserved) with `n` layers offloaded; constrained by free memory.
  const footprint = (n: number, constrained: boolean) => {
    const sizes = startupAllocations(p.config, dtypeBytes, arenaRequest, n, stagingSlots(n, prefetch), stored);
    try {
      return { fp: simulateAllocations(sizes, constrained ? free : Number.POSITIVE_INFINITY), ok: true };
    } catch {
      return { fp: simulateAllocations(sizes), ok: false };
    }
  };
  const fitsWith = (n: number) => {
    const { fp, ok } = footprint(n, true);
    if (!ok) return false;
    const budget = p.kvCacheMemoryBytes ?? requested - (fp.reserved + nonAlloc) - margin;
    return sizeKvCache(budget, spec, granularity, p.maxModelLen).numBlocks >= Math.ceil(p.maxModelLen / p.blockSize);
  };
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  let n = 0;
  let mode: OffloadMode = "auto";
  let reason = "";
  const o = p.offload ?? {};
  if (o.layers != null) {
    mode = "layers";
    n = Math.max(0, Math.min(L, Math.floor(o.layers)));
    reason = `${n} layers placed in host memory by the caller`;
  } else if ((o.cpuOffloadGb ?? 0) > 0) {
    mode = "cpu-offload-gb";
    n = Math.min(L, Math.ceil((o.cpuOffloadGb! * 2 ** 30) / Math.max(1, layerLayoutBytes)));
    reason = `--cpu-offload-gb ${o.cpuOffloadGb}: ${n} of ${L} layers (${gib(n * layerLayoutBytes)}) stay in host memory`;
  } else if (o.triggerPercent != null) {
    mode = "trigger-percent";
    const limit = Math.floor((p.deviceMemoryBytes * o.triggerPercent) / 100);
    const usedAtStart = p.deviceMemoryBytes - free;
    const weightsReserved = (k: number) => {
      const sizes = startupAllocations(p.config, dtypeBytes, 1, k, stagingSlots(k, prefetch), stored).slice(0, -1);
      return simulateAllocations(sizes).reserved;
    };
    n = 0;
    while (n < L && usedAtStart + weightsReserved(n) > limit) n++;
    reason =
      n === 0
        ? `--cpu-offload-trigger-percent ${o.triggerPercent}: all weights fit below ${gib(limit)}`
        : `--cpu-offload-trigger-percent ${o.triggerPercent}: device usage would pass ${gib(limit)} (${o.triggerPercent}% of ${gib(p.deviceMemoryBytes)}); ${n} of ${L} layers stay in host memory`;
  } else if (!fitsWith(0) && p.kvCacheMemoryBytes == null) {
    // Offloading n <= slots layers saves nothing (each needs a slot): search from 0 upwards.
    n = 1;
    while (n < L && !fitsWith(n)) n++;
    reason = fitsWith(n)
      ? `weights + activation arena + one ${p.maxModelLen}-token sequence do not fit the requested ${gib(requested)}: ` +
        `offloading the fewest layers that fit, ${n} of ${L} (${gib(n * layerLayoutBytes)}), with ${stagingSlots(n, prefetch)} staging slots`
      : `even with all ${L} layers offloaded the device share cannot hold the resident weights, ${stagingSlots(L, prefetch)} staging slots, the arena and one ${p.maxModelLen}-token sequence`;
    if (!fitsWith(n)) n = 0; // nothing to gain: report the unoffloaded plan as not fitting
  }
  const slots = stagingSlots(n, prefetch);
  const { fp, ok } = footprint(n, true);
  if (!ok) notes.push("weights and activation arena do not fit in free device memory");
  const weightsBytes = fp.blocks.slice(0, -1).reduce((a, b) => a + b, 0);
  const arena = fp.blocks.at(-1)!;
  const perLayer = L > 0 ? (fp.blocks[1] ?? footprint(0, false).fp.blocks[1]!) : 0;
  const stagingBytes = fp.blocks.slice(1 + (L - n), 1 + (L - n) + (n > 0 ? slots : 0)).reduce((a, b) => a + b, 0);
  const w = { total: weightsBytes, perLayer, resident: fp.blocks[0]! };
  if (nonAlloc > 0) notes.push(`non-allocator memory is an estimate (${nonAlloc} B); start-up measures it`);
  const slack = fp.reserved - fp.allocated;
  const nonKv = fp.reserved + nonAlloc;
  const budget = p.kvCacheMemoryBytes ?? requested - nonKv - margin;
  const kv = sizeKvCache(budget, spec, granularity, p.maxModelLen);
  const fits = kv.numBlocks >= Math.ceil(p.maxModelLen / p.blockSize);
  if (reason) notes.push(`offload: ${reason}`);
  const offload: OffloadPlacement = {
    mode,
    layersOnDevice: L - n,
    layersOffloaded: n,
    firstOffloadedLayer: L - n,
    hostBytes: n * layerLayoutBytes,
    slots,
    slotBytes: stagingBytes,
    reason: reason || "weights fit on the device",
  };
  const offloadBytes = n * layerLayoutBytes;
  const offloadLayers = n;
  if (p.captureSizes.length === 0) notes.push("graphs off (eager)");
  if (p.backend === "cuda" && kvCacheDtype !== computeDtype)
    notes.push(
      `KV cache ${kvCacheDtype} with ${computeDtype} activations: start-up checks that the CUDA build has its kernels and refuses otherwise`,
    );
  return {
    backend: p.backend,
    computeDtype,
    computeDtypeBytes: dtypeBytes,
    weightDtype,
    kvCacheDtype,
    kvCacheDtypeBytes: kvBytes,
    weightsBytes: w.total,
    weightsPerLayerBytes: w.perLayer,
    weightsResidentBytes: w.resident,
    activationArenaBytes: arena,
    graphBuffersBytes: 0,
    allocatorSlackBytes: slack,
    nonAllocatorEstimateBytes: nonAlloc,
    nonKvBytes: nonKv,
    requestedBytes: requested,
    safetyMarginBytes: margin,
    kvBudgetBytes: budget,
    kvBytesPerBlock: 2 * p.config.numLayers * p.blockSize * p.config.numKvHeads * p.config.headDim * kvBytes,
    kvGranularityBytes: granularity,
    kvBlocks: kv.numBlocks,
    kvTokens: kv.tokens,
    kvMappedBytes: kv.mappedBytes,
    maxConcurrency: kv.maxConcurrency,
    kvBytesForOneSequence: oneSeq,
    fits,
    offloadBytes,
    offloadLayers,
    weightsStagingBytes: stagingBytes,
    offload,
    notes,
  };
}
