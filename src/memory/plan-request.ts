// One entry point for "what if" memory plans: a model (path, synthetic spec or an HF
// config.json object) plus serving limits → MemoryPlan. Backs `headroom plan` and
// POST /v1/memory/plan.
import { parseHfConfig } from "../model/hf-config.ts";
import { openModel } from "../model/load.ts";
import type { QuantizedTensors } from "../model/weight-layout.ts";
import { quantizedTensors } from "../model/weights.ts";
import type { ModelConfig } from "../model/config.ts";
import { loadLibrary } from "../native/library.ts";
import { resolveDtypes, type ComputeDtype } from "../model/dtype.ts";
import { resolveKvCacheDtype, type KvCacheDtype } from "../model/kv-dtype.ts";
import { resolveCaptureSizes } from "../engine/graph-runner.ts";
import { defaultMaxNumBatchedTokens } from "../engine/startup.ts";
import { defaultServeOptions, type PlanKey, type ServeOptions } from "../options/table.ts";
import { batchLimitsFor, planMemory, type MemoryPlan, type PlanBackend } from "./planner.ts";

/**
 * What a plan is computed from. The serving limits are the option rows marked `plan` in
 * src/options/table.ts (same names and meanings as `headroom serve`), except that the device
 * is named by `backend` (cuda or cpu) and its size by `deviceMemoryBytes`.
 */
export type PlanRequest = Partial<Omit<Pick<ServeOptions, PlanKey>, "model" | "device" | "deviceMemory">> & {
  /** HF folder, .gguf file or synthetic:… spec (server side paths). */
  model?: string | null;
  /** An HF config.json object (instead of `model`). */
  config?: Record<string, unknown> | null;
  /** An already opened model config (instead of `model`/`config`; see plan-source.ts). */
  modelConfig?: PlanModelConfig;
  backend?: PlanBackend;
  deviceMemoryBytes: number;
};

export interface PlanResponse {
  model: { name: string; architecture: string; layers: number; hidden_size: number; heads: number; kv_heads: number; vocab_size: number };
  inputs: {
    backend: PlanBackend;
    device_memory_bytes: number;
    gpu_memory_utilization: number;
    max_model_len: number;
    max_num_seqs: number;
    max_num_batched_tokens: number;
    block_size: number;
    capture_sizes: number[];
  };
  plan: MemoryPlan;
}

export class PlanRequestError extends Error {
  override readonly name = "PlanRequestError";
  readonly code = "invalid_request";
}

/** A model opened for planning: its config and its block-quantized tensors (GGUF: bytes and types). */
export type PlanModelConfig = ModelConfig & { quantized?: QuantizedTensors };

/** Opens a model (path or synthetic spec) for planning. */
export function openPlanModel(path: string): PlanModelConfig {
  const opened = openModel(path);
  return Object.assign(opened.config, { quantized: quantizedTensors(opened.weights) });
}

function configOf(req: PlanRequest): PlanModelConfig {
  if (req.modelConfig) return req.modelConfig;
  if (req.config) return parseHfConfig(req.config, "request body config", String(req.config._name_or_path ?? "config"));
  if (req.model) return openPlanModel(req.model);
  throw new PlanRequestError("a plan needs `model` (path or synthetic:… spec) or `config` (an HF config.json object)");
}

/** Decode-attention workspace (the same formula the engine uses), from the CPU library. */
function workspaceBytes(cfg: ModelConfig, maxSeqs: number, maxBlocksPerSeq: number, blockSize: number): number {
  const lib = loadLibrary("cpu");
  const out = new BigUint64Array(1);
  lib.check(
    lib.sym.hr_attention_decode_workspace_bytes(maxSeqs, cfg.numHeads, cfg.numKvHeads, cfg.headDim, blockSize, maxBlocksPerSeq, out),
    "hr_attention_decode_workspace_bytes",
  );
  return Number(out[0]);
}

export function planFromRequest(req: PlanRequest): PlanResponse {
  const cfg = configOf(req);
  const d = defaultServeOptions();
  const backend = req.backend ?? "cuda";
  const maxModelLen = req.maxModelLen ?? cfg.maxPositionEmbeddings;
  const maxNumSeqs = req.maxNumSeqs ?? d.maxNumSeqs;
  const blockSize = req.blockSize ?? d.blockSize;
  const maxTokens = req.maxNumBatchedTokens ?? defaultMaxNumBatchedTokens(backend, maxModelLen);
  if (!(req.deviceMemoryBytes > 0)) throw new PlanRequestError(`device_memory_bytes must be > 0 (got ${req.deviceMemoryBytes})`);
  const util = req.gpuMemoryUtilization ?? d.gpuMemoryUtilization;
  if (!(util > 0 && util <= 1)) throw new PlanRequestError(`gpu_memory_utilization must be in (0, 1] (got ${util})`);
  let computeDtype: ComputeDtype;
  let weightDtype: ComputeDtype;
  let kvCacheDtype: KvCacheDtype;
  try {
    ({ compute: computeDtype, weights: weightDtype } = resolveDtypes(req.dtype, backend));
    kvCacheDtype = resolveKvCacheDtype(req.kvCacheDtype, computeDtype);
  } catch (e) {
    throw new PlanRequestError((e as Error).message);
  }
  const limits = batchLimitsFor(maxModelLen, maxNumSeqs, maxTokens, blockSize);
  // The sizes the engine would capture (the same function: capped by the largest decode batch).
  const captureSizes = resolveCaptureSizes(
    {
      enforceEager: req.enforceEager ?? d.enforceEager,
      cudagraphCaptureSizes: req.cudagraphCaptureSizes ?? null,
      maxCudagraphCaptureSize: req.maxCudagraphCaptureSize ?? null,
      maxNumSeqs,
    },
    limits,
  ).sizes.sort((a, b) => a - b);
  const plan = planMemory({
    config: cfg,
    backend,
    computeDtype,
    weightDtype,
    kvCacheDtype,
    deviceMemoryBytes: req.deviceMemoryBytes,
    gpuMemoryUtilization: util,
    maxModelLen,
    maxNumSeqs,
    maxNumBatchedTokens: maxTokens,
    blockSize,
    captureSizes,
    attentionWorkspaceBytes: workspaceBytes(cfg, limits.maxSeqs, limits.maxBlocksPerSeq, blockSize),
    kvCacheMemoryBytes: req.kvCacheMemoryBytes ?? null,
    offload: {
      cpuOffloadGb: req.cpuOffloadGb ?? d.cpuOffloadGb,
      triggerPercent: req.cpuOffloadTriggerPercent ?? d.cpuOffloadTriggerPercent,
      prefetchLayers: req.offloadPrefetchLayers ?? d.offloadPrefetchLayers,
    },
    quantized: cfg.quantized,
  });
  return {
    model: {
      name: cfg.name,
      architecture: cfg.architecture,
      layers: cfg.numLayers,
      hidden_size: cfg.hiddenSize,
      heads: cfg.numHeads,
      kv_heads: cfg.numKvHeads,
      vocab_size: cfg.vocabSize,
    },
    inputs: {
      backend,
      device_memory_bytes: req.deviceMemoryBytes,
      gpu_memory_utilization: util,
      max_model_len: maxModelLen,
      max_num_seqs: maxNumSeqs,
      max_num_batched_tokens: maxTokens,
      block_size: blockSize,
      capture_sizes: captureSizes,
    },
    plan,
  };
}

/** The plan as a two-column text table (headroom plan). */
export function planTable(r: PlanResponse): string {
  const p = r.plan;
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(3)} GiB`;
  const rows: [string, string][] = [
    [
      "model",
      `${r.model.name} (${r.model.architecture}, ${r.model.layers} layers, hidden ${r.model.hidden_size}, ${r.model.heads}/${r.model.kv_heads} heads)`,
    ],
    [
      "backend / dtype / KV dtype",
      `${p.backend} / ${p.computeDtype}${p.weightDtype !== p.computeDtype ? ` (weights ${p.weightDtype})` : ""} / ${p.kvCacheDtype}`,
    ],
    ["device memory", gib(r.inputs.device_memory_bytes)],
    ["requested (utilization)", `${gib(p.requestedBytes)} (${r.inputs.gpu_memory_utilization})`],
    ["weights", gib(p.weightsBytes)],
    ["activation arena", gib(p.activationArenaBytes)],
    ["allocator slack", gib(p.allocatorSlackBytes)],
    ["graph buffers (shared)", gib(p.graphBuffersBytes)],
    ["non-allocator (estimate)", gib(p.nonAllocatorEstimateBytes)],
    ["safety margin", gib(p.safetyMarginBytes)],
    ["KV budget", gib(p.kvBudgetBytes)],
    ["KV blocks × block size", `${p.kvBlocks} × ${r.inputs.block_size} = ${p.kvTokens} tokens`],
    ["max concurrency", `${p.maxConcurrency.toFixed(2)} sequences of ${r.inputs.max_model_len} tokens`],
    [
      "weight offload",
      p.offloadLayers > 0
        ? `${p.offloadLayers} of ${r.model.layers} layers in host memory (${gib(p.offloadBytes)}, ${p.offload.mode}), ` +
          `${p.offload.slots} staging slots (${gib(p.weightsStagingBytes)}, counted in weights)`
        : "none",
    ],
    ["fits", p.fits ? "yes" : "no"],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return [...rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`), ...p.notes.map((n) => `note: ${n}`)].join("\n");
}
