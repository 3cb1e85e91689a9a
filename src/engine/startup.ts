// Engine start-up, in the order the memory model demands ("capture first, size last"):
//   1. open the device and take the instance's first snapshot
//   2. load weights (measured by the allocator)
//   3. reserve a virtual range for the largest possible KV cache (no physical memory)
//   4. profile run at the maximum batch (peak activation measured; skipped with
//      --kv-cache-memory-bytes)
//   5. capture graphs against the real KV addresses (measured; 0 until graphs exist)
//   6. map physical memory for exactly what is left into the KV range, in whole blocks
import { Device } from "../native/index.ts";
import { Ops } from "../native/ops.ts";
import { LlamaModel, attentionWorkspaceBytes } from "../model/llama.ts";
import { COMPUTE_DTYPE_BYTES, COMPUTE_DTYPE_CODE, resolveDtypes, type ComputeDtype, type DtypeFlag } from "../model/dtype.ts";
import {
  KV_DTYPE_BYTES,
  KV_DTYPE_CODE,
  resolveKvCacheDtype,
  unitKvScales,
  type KvCacheDtype,
  type KvCacheDtypeFlag,
  type KvScales,
} from "../model/kv-dtype.ts";
import { modelNotes, openModel, type OpenedModel } from "../model/load.ts";
import { probeKvCacheDtype } from "./kv-probe.ts";
import { uploadWeights, type LoadedWeights } from "../model/upload.ts";
import { deviceBytes, quantizedTensors } from "../model/weights.ts";
import { MemoryProfiler, type MemoryProfilingResult } from "../memory/profiling.ts";
import {
  StartupMemoryError,
  bytesForOneSequence,
  fmtBytes,
  numSlices,
  roundUp,
  safetyMarginBytes,
  sizeKvCache,
  sliceBytesPerBlock,
  type KvCacheSpec,
  type KvSizing,
} from "../memory/kv-sizing.ts";
import { batchLimitsFor, kvSpecFor, planMemory, type MemoryPlan, type OffloadPlacement } from "../memory/planner.ts";
import { OffloadManager } from "./offload.ts";
import { takeSnapshot } from "../memory/snapshot.ts";
import { DecodeGraphs, resolveCaptureSizes, type GraphWarmup, type GraphsReport } from "./graph-runner.ts";
import { DeviceSampler } from "./device-sampler.ts";
import type { BatchLimits } from "../model/arena.ts";

export interface EngineOptions {
  model: string | null;
  /** --chat-template FILE|STRING (null = the model's own). */
  chatTemplate?: string | null;
  /** --generation-config auto|none|DIR. */
  generationConfig?: string;
  device: "auto" | "cpu" | "cuda";
  /**
   * Compute dtype of weights, activations and the KV cache (logits stay fp32): auto (default) =
   * float32 on the CPU backend, bfloat16 on CUDA. bfloat16/float16 on the CPU backend store the
   * matrix weights in 16 bits; activations, norms, biases and the KV cache stay fp32 there.
   */
  dtype?: DtypeFlag;
  /** KV cache element type (--kv-cache-dtype): auto (default) = the compute dtype; fp8 = fp8_e4m3. */
  kvCacheDtype?: KvCacheDtypeFlag;
  /** CPU backend capacity (bytes); null = backend default. */
  deviceMemory: number | null;
  /** CPU backend: which simulated device (instances on one ordinal share it). */
  deviceOrdinal?: number;
  gpuMemoryUtilization: number;
  kvCacheMemoryBytes: number | null;
  maxModelLen: number | null;
  maxNumSeqs: number;
  maxNumBatchedTokens: number | null;
  /**
   * Chunked prefill paced by time (src/engine/step-pacer.ts): a step in which sequences decode
   * may take this many times a plain decode step of the served batch. 0 = off (the token budget
   * alone); null/unset = the backend's default (defaultStepTimeFactor).
   */
  stepTimeFactor?: number | null;
  /** Floor of a paced step's tokens (--min-step-tokens); null/unset = CPU_MIN_STEP_TOKENS. */
  minStepTokens?: number | null;
  blockSize: number;
  enforceEager: boolean;
  /** Engine-side waiting limit; unset (as `serve` runs it) = none: request limits are checked once, in the frontend. */
  maxWaiting?: number;
  servedModelName: string | null;
  /** CPU op threads (0 = default). */
  numThreads?: number;
  /** Decode batch sizes to capture as graphs (null/undefined = default list); ignored with enforceEager. */
  cudagraphCaptureSizes?: number[] | null;
  /** Largest size to capture (null/undefined = no bound beyond the largest decode batch). */
  maxCudagraphCaptureSize?: number | null;
  /** Weight offload (DESIGN.md "Conditional weight offload"): GiB of layer weights kept in host memory. */
  cpuOffloadGb?: number;
  /** Weights go to the device until its usage reaches this percent of total (0–100); null = off. */
  cpuOffloadTriggerPercent?: number | null;
  /** Device staging slots for offloaded layers (default 2). */
  offloadPrefetchLayers?: number;
  /**
   * Sample on the device, inside the decode step (default true; src/engine/device-sampler.ts).
   * false: every logits row is copied to the host and sampled there (tests and benches compare).
   */
  deviceSampling?: boolean;
  /** Run each graph size once eagerly before capturing it (default: on for CUDA, off for CPU). */
  graphWarmup?: boolean;
}

/** The offload plan as the engine runs it, with the start-up measurements. */
export interface EngineOffload {
  manager: OffloadManager;
  placement: OffloadPlacement;
  /** Host→device bandwidth measured at start-up through the copy engine (bytes/s). */
  bandwidthBytesPerS: number;
  /** One-sequence decode step with copies skipped (compute only), ms. */
  computeMs: number;
  /** Offloaded bytes ÷ bandwidth, ms. */
  copyMs: number;
  /** max(compute, copy), ms. */
  predictedStepMs: number;
  /** The same decode step with the copies, ms. */
  measuredStepMs: number;
}

export interface StartedEngine {
  dev: Device;
  ops: Ops;
  /** The compute dtype (weights, activations). */
  dtype: ComputeDtype;
  /** The KV cache's element type and per-layer scales (1 unless the checkpoint has them). */
  kvDtype: KvCacheDtype;
  kvScales: KvScales;
  opened: OpenedModel;
  weights: LoadedWeights;
  model: LlamaModel;
  limits: BatchLimits;
  /** Resolved --step-time-factor (0 = prompt chunks limited by the token budget alone). */
  stepTimeFactor: number;
  /** Resolved --min-step-tokens (the pacer's floor). */
  minStepTokens: number;
  maxModelLen: number;
  kvSpec: KvCacheSpec;
  kv: KvSizing;
  kvBase: bigint;
  profile: MemoryProfilingResult;
  plan: MemoryPlan;
  suggestions: { kvCacheMemoryBytesForRequest: number; kvCacheMemoryBytesFullDevice: number; safetyMarginBytes: number };
  startupLine: string;
  startupMs: number;
  /** Planned vs measured differences (empty when the plan was exact). */
  planMismatches: string[];
  /** Weight offload, null when every layer is on the device. */
  offload: EngineOffload | null;
  /** Captured decode graphs (null = eager: --enforce-eager, no sizes, or offload). */
  graphs: GraphsReport | null;
  decodeGraphs: DecodeGraphs | null;
  /** Why graphs are off ("" when on). */
  graphsOffReason: string;
  /** Device sampling (null: every logits row is sampled on the host). */
  deviceSampler: DeviceSampler | null;
  close(): void;
}

/**
 * CPU default token budget per step: the hard cap on a step (it sizes the activation arena and
 * bounds the sequences decoded per step, min(max-num-seqs, this)). How many prompt tokens a step
 * actually takes while sequences decode is the time pacer's call (CPU_DEFAULT_STEP_TIME_FACTOR);
 * this cap is what a step takes when nothing decodes (a burst of prompts on an idle server),
 * llama.cpp's default micro-batch. Without the pacer a fixed 128 was the best compromise (a
 * 512-token chunk inside a decode step gave an inter-token p99 of 7× llama-server's), at the cost
 * of TTFT under bursts (bench/RESULTS.md "Peer: llama.cpp").
 */
export const CPU_DEFAULT_MAX_NUM_BATCHED_TOKENS = 512;

/**
 * CPU default --step-time-factor: while sequences decode, a step carrying prompt tokens may take
 * 4× a plain decode step of the served batch, and takes at least CPU_MIN_STEP_TOKENS tokens.
 * Why 4: llama-server puts a whole arriving prompt into its next step, so its inter-token p99
 * under 16 streaming clients is about a step of one 128-token prompt plus the decodes, which on
 * s110m measures ~4× a 16-sequence decode step; 4× keeps ours within 2× of that with our decode
 * no slower than llama.cpp's. A factor of 2 (or 3) was measured: chunks of 25–60 tokens on this
 * compute-bound CPU, half the seats empty, throughput −20 % and TTFT p50 ×4 (×1.7) against the
 * fixed 128-token budget (bench/peer, 16 clients; README "Chunked prefill paced by time").
 * CUDA: off. A GPU decode step is bound by weight reads and launches, and prompt tokens up to
 * thousands add little to it until the matmuls turn compute-bound (not the linear cost the
 * pacer fits); the 2048-token budget already keeps CUDA's inter-token latency near a decode
 * step's, and the pacer can be turned on there with the flag.
 */
export const CPU_DEFAULT_STEP_TIME_FACTOR = 4;

/**
 * Floor of the paced steps (StepPacer.minStepTokens): the fixed CPU budget that was the default
 * before the pacer, so pacing only ever makes prompt chunks larger than it did.
 */
export const CPU_MIN_STEP_TOKENS = 128;

/** Default --step-time-factor: CPU_DEFAULT_STEP_TIME_FACTOR on the CPU backend, 0 (off) on CUDA. */
export function defaultStepTimeFactor(backend: string): number {
  return backend === "cpu" ? CPU_DEFAULT_STEP_TIME_FACTOR : 0;
}

/** Default token budget per step: vLLM-like on GPUs, 512 on the CPU backend (paced by time within it). */
export function defaultMaxNumBatchedTokens(backend: string, maxModelLen: number): number {
  return backend === "cpu"
    ? Math.min(CPU_DEFAULT_MAX_NUM_BATCHED_TOKENS, Math.max(maxModelLen, 64))
    : Math.max(2048, Math.min(maxModelLen, 8192));
}

/** Start-up progress for the terminal display: stage, done of total (unit). */
export type StartupProgressFn = (p: { stage: string; done: number; total: number; unit?: string; message?: string }) => void;

export function startEngine(
  opts: EngineOptions,
  log: (msg: string) => void = () => {},
  progress: StartupProgressFn = () => {},
): StartedEngine {
  const t0 = performance.now();
  const dev = Device.open({ device: opts.device, ordinal: opts.deviceOrdinal ?? 0, cpuCapacityBytes: opts.deviceMemory ?? 0, log });
  let weights: LoadedWeights | null = null;
  let model: LlamaModel | null = null;
  let kvBase = 0n;
  let offload: OffloadManager | null = null;
  let decodeGraphs: DecodeGraphs | null = null;
  try {
    // The dtypes first (a bad flag fails before anything is loaded). On CPU a 16-bit --dtype
    // stores the matrix weights in 16 bits and computes in fp32 (dtype.ts resolveDtypes).
    const { compute: dtype, weights: weightDtype } = resolveDtypes(opts.dtype, dev.backend);
    const dtypeBytes = COMPUTE_DTYPE_BYTES[dtype];
    const profiler = new MemoryProfiler(dev);
    const base = profiler.baseline;
    const requested = Math.floor(base.totalBytes * opts.gpuMemoryUtilization);
    if (opts.kvCacheMemoryBytes === null && base.freeBytes < requested) {
      throw new StartupMemoryError(
        `free device memory ${fmtBytes(base.freeBytes)} of ${fmtBytes(base.totalBytes)} is less than the requested ` +
          `${fmtBytes(requested)} (--gpu-memory-utilization ${opts.gpuMemoryUtilization}); other users of the device hold ` +
          `${fmtBytes(base.usedBytes)}. Lower --gpu-memory-utilization to at most ${(base.freeBytes / base.totalBytes).toFixed(3)} or free the device.`,
      );
    }
    const ops = new Ops(dev, COMPUTE_DTYPE_CODE[dtype]);
    if (opts.numThreads) ops.setNumThreads(opts.numThreads);
    const opened = openModel(opts.model, { chatTemplate: opts.chatTemplate ?? null, generationConfig: opts.generationConfig ?? "auto" });
    for (const line of modelNotes(opened)) log(line);
    const cfg = opened.config;
    // The KV cache dtype: refused here (not mid-request) when the backend lacks its kernels.
    const kvDtype = resolveKvCacheDtype(opts.kvCacheDtype, dtype);
    probeKvCacheDtype(dev, ops, cfg, kvDtype, opts.blockSize);
    const kvScales = opened.weights.kvScales ?? unitKvScales(cfg.numLayers);
    if (kvScales.fromCheckpoint > 0) log(`KV cache scales: k_scale/v_scale of ${kvScales.fromCheckpoint} layers from the checkpoint`);
    const maxModelLen = opts.maxModelLen ?? cfg.maxPositionEmbeddings;
    if (maxModelLen > cfg.maxPositionEmbeddings) {
      log(`warning: --max-model-len ${maxModelLen} exceeds the model's max_position_embeddings ${cfg.maxPositionEmbeddings}`);
    }
    const maxTokens = opts.maxNumBatchedTokens ?? defaultMaxNumBatchedTokens(dev.backend, maxModelLen);
    const stepTimeFactor = opts.stepTimeFactor ?? defaultStepTimeFactor(dev.backend);
    if (!(stepTimeFactor === 0 || stepTimeFactor > 1))
      throw new RangeError(`--step-time-factor ${stepTimeFactor}: 0 (off) or a factor above 1`);
    const minStepTokens = opts.minStepTokens ?? CPU_MIN_STEP_TOKENS;
    if (!Number.isInteger(minStepTokens) || minStepTokens < 1)
      throw new RangeError(`--min-step-tokens ${minStepTokens}: a whole number of tokens, at least 1`);
    // The floor belongs to the pacer: with the pacer off it would do nothing, so say so.
    if (opts.minStepTokens != null && stepTimeFactor === 0)
      throw new RangeError(
        `--min-step-tokens ${minStepTokens}: applies only to steps paced by time, and --step-time-factor is 0 (off${opts.stepTimeFactor == null ? ` by default on ${dev.backend}` : ""}); set --step-time-factor too`,
      );
    const limits = batchLimitsFor(maxModelLen, opts.maxNumSeqs, maxTokens, opts.blockSize);
    const kvSpec = kvSpecFor(cfg, opts.blockSize, KV_DTYPE_BYTES[kvDtype]);

    // 2. weights
    const stage = <T>(what: string, knob: string, fn: () => T): T => {
      try {
        return fn();
      } catch (e) {
        if ((e as { code?: number }).code !== -2) throw e;
        const free = dev.memInfo().free;
        throw new StartupMemoryError(
          `${what} does not fit in device memory (${fmtBytes(free)} free of ${fmtBytes(base.totalBytes)}): ${knob}. (${(e as Error).message})`,
        );
      }
    };
    // Placement: which layers stay in host memory (automatic unless a flag says otherwise).
    const prefetch = Math.max(1, opts.offloadPrefetchLayers ?? 2);
    const capture = resolveCaptureSizes(opts, limits);
    const planInput = {
      config: cfg,
      backend: (dev.backend === "cuda" ? "cuda" : "cpu") as "cuda" | "cpu",
      computeDtype: dtype,
      weightDtype,
      kvCacheDtype: kvDtype,
      deviceMemoryBytes: base.totalBytes,
      freeMemoryBytes: base.freeBytes,
      gpuMemoryUtilization: opts.gpuMemoryUtilization,
      maxModelLen,
      maxNumSeqs: opts.maxNumSeqs,
      maxNumBatchedTokens: maxTokens,
      blockSize: opts.blockSize,
      captureSizes: capture.sizes,
      attentionWorkspaceBytes: attentionWorkspaceBytes(ops, cfg, limits, opts.blockSize),
      kvCacheMemoryBytes: opts.kvCacheMemoryBytes,
      quantized: quantizedTensors(opened.weights),
    };
    const placement = planMemory({
      ...planInput,
      offload: { cpuOffloadGb: opts.cpuOffloadGb ?? 0, triggerPercent: opts.cpuOffloadTriggerPercent ?? null, prefetchLayers: prefetch },
    }).offload;
    const nOff = placement.layersOffloaded;
    if (nOff > 0 || placement.mode !== "auto") log(`offload: ${placement.reason}`);
    weights = stage(
      `the model's weights (${fmtBytes(opened.weights.tensors.size ? deviceBytes(opened.weights, dtypeBytes, COMPUTE_DTYPE_BYTES[weightDtype]) : 0)}, ${weightDtype})`,
      "use a device with more memory or offload weights to host memory (--cpu-offload-gb)",
      () =>
        profiler.measureWeights(() => {
          const onTensor = (_name: string, done: number, total: number) =>
            progress({ stage: "load_weights", done, total, unit: "tensors" });
          const w = uploadWeights(
            dev,
            opened.weights,
            nOff > 0 ? { dtype, weightDtype, firstHostLayer: placement.firstOffloadedLayer, onTensor } : { dtype, weightDtype, onTensor },
          );
          if (nOff > 0) {
            try {
              offload = new OffloadManager(dev, w, placement.slots);
            } catch (e) {
              w.free();
              throw e;
            }
          }
          return w;
        }),
    );
    const om = offload as OffloadManager | null;
    const bandwidth = om ? om.measureBandwidth() : 0;
    // 3. KV address range: any final size fits (the library bounds each slice by its share of
    //    the device, so the whole KV cache reserves about one device of address space).
    const region = dev.reserveRegion(base.totalBytes, numSlices(kvSpec));
    kvBase = region.base;
    model = new LlamaModel(dev, ops, cfg, weights, limits, opts.blockSize);
    model.setKvFormat(KV_DTYPE_CODE[kvDtype], kvScales);
    if (om) model.setOffload(om);
    const m = model;
    // 4. profile run (or just the arena with an explicit KV size)
    const arenaKnob = "lower --max-num-batched-tokens or --max-num-seqs";
    if (opts.kvCacheMemoryBytes !== null) {
      stage(`the activation arena (${fmtBytes(m.arenaBytes)})`, arenaKnob, () => profiler.skipProfile(() => m.allocateArena()));
    } else {
      progress({ stage: "profile", done: 0, total: 1, message: "profile run at the maximum batch" });
      stage(`the profile run at the maximum batch (arena ${fmtBytes(m.arenaBytes)} + its KV blocks)`, arenaKnob, () =>
        profiler.profileRun(() => {
          m.allocateArena();
          profileStep(dev, m, kvSpec, region.base, region.sliceStride, region.granularity);
        }),
      );
      progress({ stage: "profile", done: 1, total: 1 });
    }
    dev.emptyCache();
    // Device sampling stages its inputs in the arena (planned with it: no allocation here).
    const deviceSampler = opts.deviceSampling === false ? null : new DeviceSampler(dev, ops, m);
    // 5. graphs: whole decode steps captured largest first against the reserved, still unmapped
    //    KV range (CPU capture only records ops, CUDA capture queues nothing: KV is not touched)
    const graphsOffReason = opts.enforceEager
      ? "--enforce-eager"
      : capture.sizes.length === 0
        ? "no capture size fits the largest decode batch"
        : "";
    if (capture.sizes.length > 0) {
      // With offload, the per-layer copies, waits and slot releases go through the op
      // dispatcher too, so each graph replays its layers' copies in order (graphs stay on).
      if (capture.dropped.length > 0) {
        log(
          `graphs: sizes ${capture.dropped.join(",")} exceed the largest decode batch ` +
            `(${Math.min(limits.maxSeqs, limits.maxTokens)} sequences) and are not captured`,
        );
      }
      const kvCapture = {
        base: region.base,
        sliceStride: region.sliceStride,
        blockSize: opts.blockSize,
        numBlocks: Math.floor(region.sliceStride / sliceBytesPerBlock(kvSpec)),
      };
      // Eager warm-up of each size: block 0 of the KV range mapped while the sizes are captured.
      const warmBytes = roundUp(sliceBytesPerBlock(kvSpec), region.granularity);
      const warmup: GraphWarmup | null =
        (opts.graphWarmup ?? dev.backend === "cuda")
          ? {
              kv: {
                base: region.base,
                sliceStride: region.sliceStride,
                blockSize: opts.blockSize,
                numBlocks: Math.floor(warmBytes / sliceBytesPerBlock(kvSpec)),
              },
              map: () => dev.mapRegion(region.base, warmBytes),
              unmap: () => dev.mapRegion(region.base, 0),
            }
          : null;
      progress({ stage: "capture_graphs", done: 0, total: capture.sizes.length, unit: "graphs" });
      stage(`graph capture (${capture.sizes.length} sizes)`, "use --enforce-eager or fewer --cudagraph-capture-sizes", () =>
        profiler.measureGraphs(() => {
          decodeGraphs = new DecodeGraphs(dev, m, capture.sizes);
          (decodeGraphs as DecodeGraphs).capture(kvCapture, capture.dropped, warmup);
        }),
      );
      progress({ stage: "capture_graphs", done: capture.sizes.length, total: capture.sizes.length, unit: "graphs" });
      const dg = decodeGraphs as DecodeGraphs | null;
      if (dg) {
        const gi = dg.setInfo();
        profiler.recordGraphPool(gi.poolReserved, gi.poolAllocated);
        m.decodeGraphs = dg;
      }
    } else {
      profiler.measureGraphs(() => {});
    }
    // 6. size the KV cache last
    const profile = profiler.result(opts.gpuMemoryUtilization);
    const margin = safetyMarginBytes(base.totalBytes);
    const budget = opts.kvCacheMemoryBytes ?? profile.kvBudgetBytes - margin;
    const kv = sizeKvCache(budget, kvSpec, region.granularity, maxModelLen);
    const blocksPerSeq = Math.ceil(maxModelLen / opts.blockSize);
    if (kv.numBlocks < blocksPerSeq) {
      const need = bytesForOneSequence(kvSpec, region.granularity, maxModelLen);
      const missing = need - Math.max(0, budget);
      const util = Math.min(1, (profile.nonKvBytes + margin + need) / base.totalBytes);
      const fitLen = Math.floor(Math.max(0, budget) / ((2 * cfg.numLayers * sliceBytesPerBlock(kvSpec)) / opts.blockSize));
      throw new StartupMemoryError(
        `the KV cache budget ${fmtBytes(Math.max(0, budget))} holds ${kv.tokens} tokens, but one ${maxModelLen}-token ` +
          `sequence needs ${fmtBytes(need)} (missing ${fmtBytes(missing)}; non-KV memory is ${fmtBytes(profile.nonKvBytes)}). ` +
          (opts.kvCacheMemoryBytes !== null
            ? `Raise --kv-cache-memory-bytes to at least ${need} or lower --max-model-len to at most ${fitLen}.`
            : `Raise --gpu-memory-utilization to at least ${util.toFixed(3)}, lower --max-model-len to at most ${fitLen}, ` +
              `or lower --max-num-batched-tokens (activation arena ${fmtBytes(profile.peakActivationBytes)}).`),
      );
    }
    try {
      progress({ stage: "kv_cache", done: 0, total: kv.mappedBytes, unit: "bytes" });
      dev.mapRegion(region.base, kv.bytesPerSlice);
      progress({ stage: "kv_cache", done: kv.mappedBytes, total: kv.mappedBytes, unit: "bytes" });
    } catch (e) {
      throw new StartupMemoryError(`mapping the KV cache (${fmtBytes(kv.mappedBytes)}) failed: ${(e as Error).message}`);
    }
    model.setKvCache({ base: region.base, sliceStride: region.sliceStride, numBlocks: kv.numBlocks, blockSize: opts.blockSize });

    const plan = planMemory({
      ...planInput,
      nonAllocatorEstimateBytes: profile.nonAllocatorIncreaseBytes,
      offload: { layers: nOff, prefetchLayers: prefetch },
    });
    plan.offload = { ...plan.offload, mode: placement.mode, reason: placement.reason };
    const planMismatches: string[] = [];
    if (plan.weightsBytes !== profile.weightsBytes)
      planMismatches.push(`weights: planned ${plan.weightsBytes}, measured ${profile.weightsBytes}`);
    if (plan.activationArenaBytes !== profile.peakActivationBytes) {
      planMismatches.push(`activation: planned ${plan.activationArenaBytes}, measured peak ${profile.peakActivationBytes}`);
    }
    for (const mm of planMismatches) log(`plan vs measurement: ${mm}`);

    const now = takeSnapshot(dev);
    const fullDevice = Math.max(0, kv.mappedBytes + now.freeBytes - margin);
    const suggestions = {
      kvCacheMemoryBytesForRequest: kv.mappedBytes,
      kvCacheMemoryBytesFullDevice: fullDevice,
      safetyMarginBytes: margin,
    };
    let engineOffload: EngineOffload | null = null;
    if (om) {
      const t = timeDecodeStep(m, om);
      const copyMs = bandwidth > 0 ? ((om.layersOffloaded * om.layerBytes) / bandwidth) * 1000 : 0;
      engineOffload = {
        manager: om,
        placement: plan.offload,
        bandwidthBytesPerS: bandwidth,
        computeMs: t.computeMs,
        copyMs,
        predictedStepMs: Math.max(t.computeMs, copyMs),
        measuredStepMs: t.stepMs,
      };
    }
    const startupMs = performance.now() - t0;
    let startupLine =
      `memory: free at start ${fmtBytes(base.freeBytes)} of ${fmtBytes(base.totalBytes)}; requested ${fmtBytes(profile.requestedBytes)} ` +
      `(utilization ${opts.gpuMemoryUtilization}); weights ${fmtBytes(profile.weightsBytes)} (${weightDtype}), peak activation ${fmtBytes(profile.peakActivationBytes)}, ` +
      `non-allocator ${fmtBytes(profile.nonAllocatorIncreaseBytes)}, graphs ${fmtBytes(profile.graphBytes)}, allocator slack ${fmtBytes(profile.allocatorSlackBytes)}; ` +
      `KV cache ${fmtBytes(kv.mappedBytes)} (${kvDtype}) = ${kv.numBlocks} blocks × ${opts.blockSize} = ${kv.tokens} tokens, max concurrency ` +
      `${kv.maxConcurrency.toFixed(2)} at ${maxModelLen} tokens; --kv-cache-memory-bytes=${kv.mappedBytes} fits this request, ` +
      `--kv-cache-memory-bytes=${fullDevice} uses the whole device (margin ${fmtBytes(margin)})` +
      (profile.profileSkipped ? "; profile run skipped (explicit KV size)" : `; profile run ${profile.profileTimeMs.toFixed(0)} ms`) +
      (engineOffload
        ? `; offload: ${engineOffload.placement.layersOffloaded} of ${cfg.numLayers} layers in host memory ` +
          `(${fmtBytes(engineOffload.placement.hostBytes)}, ${engineOffload.placement.mode}), ${engineOffload.placement.slots} staging slots ` +
          `(${fmtBytes(engineOffload.placement.slotBytes)}), link ${(engineOffload.bandwidthBytesPerS / 1e9).toFixed(2)} GB/s, predicted decode step ` +
          `max(compute ${engineOffload.computeMs.toFixed(2)} ms, copy ${engineOffload.copyMs.toFixed(2)} ms) = ${engineOffload.predictedStepMs.toFixed(2)} ms ` +
          `(measured ${engineOffload.measuredStepMs.toFixed(2)} ms)`
        : "");
    const dgs = decodeGraphs as DecodeGraphs | null;
    const graphsReport = dgs ? dgs.report() : null;
    startupLine += graphsReport
      ? `; graphs (${graphsReport.kind}): ${graphsReport.sizes.length} sizes ${graphsReport.sizes[0]}..${graphsReport.sizes.at(-1)} ` +
        `captured in ${graphsReport.captureMs.toFixed(0)} ms${graphsReport.warmupMs > 0 ? ` (eager warm-up ${graphsReport.warmupMs.toFixed(0)} ms)` : ""}, ${fmtBytes(graphsReport.totalBytes)} in all (pool ${fmtBytes(graphsReport.poolReserved)}, ` +
        `executables ${fmtBytes(graphsReport.execBytes)}), largest ${fmtBytes(graphsReport.perGraphBytes.at(-1) ?? 0)}`
      : `; graphs off (${graphsOffReason})`;
    log(startupLine);
    const w = weights;
    const mdl = model;
    return {
      dev,
      ops,
      dtype,
      kvDtype,
      kvScales,
      opened,
      weights: w,
      model: mdl,
      limits,
      stepTimeFactor,
      minStepTokens,
      maxModelLen,
      kvSpec,
      kv,
      kvBase: region.base,
      profile,
      plan,
      suggestions,
      startupLine,
      startupMs,
      planMismatches,
      offload: engineOffload,
      graphs: graphsReport,
      decodeGraphs: dgs,
      graphsOffReason,
      deviceSampler,
      close() {
        dgs?.destroy();
        mdl.freeArena();
        dev.releaseRegion(region.base);
        om?.destroy();
        w.free();
        dev.close();
      },
    };
  } catch (e) {
    try {
      (decodeGraphs as DecodeGraphs | null)?.destroy();
      model?.freeArena();
      if (kvBase) dev.releaseRegion(kvBase);
      (offload as OffloadManager | null)?.destroy();
      weights?.free();
    } finally {
      dev.close();
    }
    throw e;
  }
}

/**
 * One forward pass at the maximum batch: max_num_batched_tokens tokens over
 * min(max_num_seqs, tokens) prompts, with just enough KV mapped for it (unmapped after).
 */
function profileStep(dev: Device, m: LlamaModel, spec: KvCacheSpec, base: bigint, sliceStride: number, granularity: number): void {
  const { maxTokens, maxSeqs, maxBlocksPerSeq } = m.limits;
  const S = Math.min(maxSeqs, maxTokens);
  const bs = spec.blockSize;
  // The scheduler can never put more than S full-length sequences in a step.
  const T = Math.min(maxTokens, S * maxBlocksPerSeq * bs);
  const lens: number[] = [];
  for (let i = 0; i < S; i++) lens.push(Math.floor(T / S) + (i < T % S ? 1 : 0));
  const blocks = lens.reduce((a, n) => a + Math.ceil(n / bs), 0);
  const inputIds = new Int32Array(T);
  const positions = new Int32Array(T);
  const slotMapping = new Int32Array(T);
  const queryStartLoc = new Int32Array(S + 1);
  const seqLens = new Int32Array(S);
  const blockTables = new Int32Array(S * maxBlocksPerSeq);
  const logitsIndices = new Int32Array(S);
  let t = 0;
  let nextBlock = 0;
  lens.forEach((n, s) => {
    queryStartLoc[s] = t;
    seqLens[s] = n;
    const nb = Math.ceil(n / bs);
    for (let b = 0; b < Math.min(nb, maxBlocksPerSeq); b++) blockTables[s * maxBlocksPerSeq + b] = nextBlock + b;
    for (let i = 0; i < n; i++, t++) {
      inputIds[t] = (t * 7919) % m.cfg.vocabSize;
      positions[t] = i;
      slotMapping[t] = (nextBlock + Math.floor(i / bs)) * bs + (i % bs);
    }
    nextBlock += nb;
    logitsIndices[s] = t - 1;
  });
  queryStartLoc[S] = t;
  dev.mapRegion(base, roundUp(Math.max(1, blocks) * sliceBytesPerBlock(spec), granularity));
  try {
    m.setKvCache({ base, sliceStride, numBlocks: blocks, blockSize: bs });
    m.stage({ inputIds, positions, slotMapping, queryStartLoc, seqLens, blockTables, logitsIndices, decodeOnly: false });
    m.forward(T, S, S, false);
    m.readLogits(S);
  } finally {
    dev.mapRegion(base, 0);
  }
}

/**
 * Times a one-sequence decode step (best of a few): with the copies skipped (compute only,
 * offloaded layers read whatever their slots hold) and with them. Runs on block 0 of the
 * mapped KV cache before any request exists.
 */
function timeDecodeStep(m: LlamaModel, om: OffloadManager, reps = 3): { computeMs: number; stepMs: number } {
  const maxBlocks = m.limits.maxBlocksPerSeq;
  const blockTables = new Int32Array(maxBlocks);
  m.stage({
    inputIds: Int32Array.of(1),
    positions: Int32Array.of(0),
    slotMapping: Int32Array.of(0),
    queryStartLoc: Int32Array.of(0, 1),
    seqLens: Int32Array.of(1),
    blockTables,
    logitsIndices: Int32Array.of(0),
    decodeOnly: true,
  });
  const run = () => {
    const t = performance.now();
    m.forward(1, 1, 1, true);
    m.readLogits(1);
    return performance.now() - t;
  };
  let computeMs = Infinity;
  let stepMs = Infinity;
  run(); // warm-up
  om.skipCopies = true;
  try {
    for (let i = 0; i < reps; i++) computeMs = Math.min(computeMs, run());
  } finally {
    om.skipCopies = false;
  }
  for (let i = 0; i < reps; i++) stepMs = Math.min(stepMs, run());
  return { computeMs, stepMs };
}
