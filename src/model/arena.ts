// The activation arena: every intermediate of a forward pass lives in one allocation whose
// layout is a pure function of the model shape and the batch limits. No allocation happens
// per step, and the planner predicts the arena to the byte (the profile run checks it).
import type { ModelConfig } from "./config.ts";

export interface BatchLimits {
  /** max_num_batched_tokens: tokens in one step. */
  maxTokens: number;
  /** max_num_seqs: sequences in one step (and logits rows). */
  maxSeqs: number;
  /** Blocks in one sequence's block table: ceil(max_model_len / block_size). */
  maxBlocksPerSeq: number;
}

/** Names of the arena's buffers (int32 index arrays first, then fp32 activations). */
export type ArenaBuffer =
  | "inputIds"
  | "positions"
  | "slotMapping"
  | "queryStartLoc"
  | "seqLens"
  | "blockTables"
  | "logitsIndices"
  | "tokenBitmask"
  | "bitmaskRows"
  | "sampleParams"
  | "sampledIds"
  | "logitBias"
  | "invFreq"
  | "invFreqLocal"
  | "x"
  | "h"
  | "qkv"
  | "attn"
  | "o"
  | "gateUp"
  | "act"
  | "logits"
  | "workspace"
  | "dequant";

export interface ArenaLayout {
  totalBytes: number;
  offsets: Record<ArenaBuffer, number>;
  bytes: Record<ArenaBuffer, number>;
}

/** Logit-bias staging entries per sequence (on average over the batch); rows that do not fit sample on the host. */
export const LOGIT_BIAS_ENTRIES_PER_SEQ = 32;

/** Entries of the arena's logit-bias staging buffer for a batch of `maxSeqs` sequences. */
export function logitBiasCapacity(maxSeqs: number): number {
  return LOGIT_BIAS_ENTRIES_PER_SEQ * maxSeqs;
}

/** Every buffer starts on a 256-byte boundary (SIMD loads on CPU, coalescing on CUDA). */
export const ARENA_ALIGN = 256;

/**
 * Lays out the arena for `cfg` and `limits`. `actBytes` is the activation element size (4 on
 * CPU); `attentionWorkspaceBytes` comes from hr_paged_attention_workspace_bytes for the
 * largest decode batch; `dequantBytes` is the quantized-matmul workspace (dequant-workspace.ts,
 * CUDA only; absent = 0 bytes).
 */
export function planArena(
  cfg: ModelConfig,
  limits: BatchLimits,
  actBytes: number,
  attentionWorkspaceBytes: number,
  dequantBytes = 0,
): ArenaLayout {
  const T = limits.maxTokens;
  const S = limits.maxSeqs;
  const D = cfg.hiddenSize;
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const I = cfg.intermediateSize;
  const sizes: [ArenaBuffer, number][] = [
    ["inputIds", 4 * T],
    ["positions", 4 * T],
    ["slotMapping", 4 * T],
    ["queryStartLoc", 4 * (S + 1)],
    ["seqLens", 4 * S],
    ["blockTables", 4 * S * limits.maxBlocksPerSeq],
    ["logitsIndices", 4 * S],
    // Structured outputs: one grammar bitmask row per logits row (int32 words) and its target row.
    ["tokenBitmask", 4 * S * Math.ceil(cfg.vocabSize / 32)],
    ["bitmaskRows", 4 * S],
    // Device sampling (src/engine/device-sampler.ts): per-row temperature/top_k/top_p/uniform
    // (four [S] arrays of 4 bytes), the sampled ids, and the logit-bias staging entries
    // (hr_logit_bias_entry, 16 bytes, LOGIT_BIAS_ENTRIES_PER_SEQ per sequence on average).
    ["sampleParams", 16 * S],
    ["sampledIds", 4 * S],
    ["logitBias", 16 * logitBiasCapacity(S)],
    ["invFreq", 4 * (cfg.headDim / 2)],
    // Gemma 3's sliding layers rotate with their own base; absent (0 bytes) for other models.
    ["invFreqLocal", cfg.ropeLocalTheta != null ? 4 * (cfg.headDim / 2) : 0],
    ["x", actBytes * T * D],
    ["h", actBytes * T * D],
    // q|k|v and gate|up outputs: one fused matmul's [T, q + 2 kv] / [T, 2 I] rows, or (a layer
    // whose parts differ in storage type) the separate [T, q], [T, kv], [T, kv] / [T, I], [T, I].
    ["qkv", actBytes * T * (qDim + 2 * kvDim)],
    ["attn", actBytes * T * qDim],
    ["o", actBytes * T * D],
    ["gateUp", actBytes * T * 2 * I],
    ["act", actBytes * T * I],
    ["logits", 4 * S * cfg.vocabSize],
    ["workspace", attentionWorkspaceBytes],
    ["dequant", dequantBytes],
  ];
  const offsets = {} as Record<ArenaBuffer, number>;
  const bytes = {} as Record<ArenaBuffer, number>;
  let at = 0;
  for (const [name, n] of sizes) {
    offsets[name] = at;
    bytes[name] = n;
    if ((name === "invFreqLocal" || name === "dequant") && n === 0) continue; // optional buffers: no space when absent
    at += Math.ceil(Math.max(n, 1) / ARENA_ALIGN) * ARENA_ALIGN;
  }
  return { totalBytes: at, offsets, bytes };
}

/** Allocator size of a request (512 B rounding, as csrc/core/allocator.c does). */
export function allocatorRounded(bytes: number): number {
  return Math.max(512, Math.ceil(bytes / 512) * 512);
}
