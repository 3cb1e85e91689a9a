// The planner: from a model config and the serving limits, predict device memory without a
// device — weights, activation arena, graph buffers, KV blocks/tokens, max concurrency, and
// whether (and how much) weight offload is needed. `headroom plan` and POST /v1/memory/plan
// call it; the engine's start-up compares its prediction with the measurement.
import { planArena, type BatchLimits } from "../model/arena.ts";
import type { ModelConfig } from "../model/config.ts";
import { weightLayout } from "../model/weight-layout.ts";
import { simulateAllocations } from "./allocator-model.ts";
import { bytesForOneSequence, safetyMarginBytes, sizeKvCache, type KvCacheSpec } from "./kv-sizing.ts";

export type PlanBackend = "cpu" | "cuda";

export interface PlanInput {
  config: ModelConfig;
  backend: PlanBackend;
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
}

export interface MemoryPlan {
  backend: PlanBackend;
  computeDtype: "f32" | "f16";
  computeDtypeBytes: number;
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
  /** Weights that must stay in host memory for one max_model_len sequence to fit (0 = none). */
  offloadBytes: number;
  offloadLayers: number;
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

/** Allocation sizes start-up makes, in order: weight buffers (resident, layers), then the arena. */
export function startupAllocations(cfg: ModelConfig, dtypeBytes: number, arenaBytes: number): number[] {
  return [...weightLayout(cfg, dtypeBytes).map((b) => Math.max(1, b.bytes)), arenaBytes];
}

export function planMemory(p: PlanInput): MemoryPlan {
  const dtypeBytes = p.backend === "cpu" ? 4 : 2;
  const notes: string[] = [];
  const limits = batchLimitsFor(p.maxModelLen, p.maxNumSeqs, p.maxNumBatchedTokens, p.blockSize);
  const arenaRequest = planArena(p.config, limits, dtypeBytes, p.attentionWorkspaceBytes).totalBytes;
  const sizes = startupAllocations(p.config, dtypeBytes, arenaRequest);
  let fp: ReturnType<typeof simulateAllocations>;
  try {
    fp = simulateAllocations(sizes, p.freeMemoryBytes ?? p.deviceMemoryBytes);
  } catch {
    fp = simulateAllocations(sizes); // does not fit at all: report the unconstrained footprint
    notes.push("weights and activation arena do not fit in free device memory");
  }
  const weightsBytes = fp.blocks.slice(0, -1).reduce((a, b) => a + b, 0);
  const arena = fp.blocks.at(-1)!;
  const perLayer = p.config.numLayers > 0 ? fp.blocks[1]! : 0;
  const w = { total: weightsBytes, perLayer, resident: fp.blocks[0]! };
  const nonAlloc = p.nonAllocatorEstimateBytes ?? (p.backend === "cuda" ? 600 * MiB : 0);
  if (nonAlloc > 0) notes.push(`non-allocator memory is an estimate (${nonAlloc} B); start-up measures it`);
  const slack = fp.reserved - fp.allocated;
  const nonKv = fp.reserved + nonAlloc;
  const requested = Math.floor(p.deviceMemoryBytes * p.gpuMemoryUtilization);
  const margin = safetyMarginBytes(p.deviceMemoryBytes);
  const granularity = p.backend === "cpu" ? 4096 : 2 * MiB;
  const spec = kvSpecFor(p.config, p.blockSize, dtypeBytes);
  const budget = p.kvCacheMemoryBytes ?? requested - nonKv - margin;
  const kv = sizeKvCache(budget, spec, granularity, p.maxModelLen);
  const oneSeq = bytesForOneSequence(spec, granularity, p.maxModelLen);
  const fits = kv.numBlocks >= Math.ceil(p.maxModelLen / p.blockSize);
  let offloadBytes = 0;
  let offloadLayers = 0;
  if (!fits && p.kvCacheMemoryBytes == null) {
    offloadBytes = Math.max(0, nonKv + margin + oneSeq - requested);
    offloadLayers = Math.ceil(offloadBytes / Math.max(1, w.perLayer));
    if (offloadLayers > p.config.numLayers) {
      notes.push(`even with every layer offloaded the device share cannot hold the arena, resident weights and one ${p.maxModelLen}-token sequence`);
    } else {
      notes.push(`weights do not fit with one ${p.maxModelLen}-token sequence: offload ${offloadLayers} of ${p.config.numLayers} layers (${offloadBytes} B)`);
    }
  }
  if (p.captureSizes.length === 0) notes.push("graphs off (eager)");
  return {
    backend: p.backend,
    computeDtype: dtypeBytes === 4 ? "f32" : "f16",
    computeDtypeBytes: dtypeBytes,
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
    kvBytesPerBlock: 2 * p.config.numLayers * p.blockSize * p.config.numKvHeads * p.config.headDim * dtypeBytes,
    kvGranularityBytes: granularity,
    kvBlocks: kv.numBlocks,
    kvTokens: kv.tokens,
    kvMappedBytes: kv.mappedBytes,
    maxConcurrency: kv.maxConcurrency,
    kvBytesForOneSequence: oneSeq,
    fits,
    offloadBytes,
    offloadLayers,
    notes,
  };
}
