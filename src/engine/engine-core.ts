// The synchronous engine: scheduler → model runner → sampler → scheduler.update, one step at a
// time, plus the stats and memory reports. It runs inside the engine worker (worker.ts), never
// on the HTTP thread, and works on token ids only (text is the frontend's, src/frontend).
import { memoryBreakdown } from "../memory/breakdown.ts";
import type { AllocatorReport, MemoryReport, OffloadReport } from "../memory/report-schema.ts";
import { bytesPerBlock, fmtBytes } from "../memory/kv-sizing.ts";
import { takeSnapshot } from "../memory/snapshot.ts";
import type { EngineStats, GenerateRequest, ModelDescription, TokenEvent, TokenLogprob } from "./api.ts";
import { graphsPayload } from "./graph-runner.ts";
import { KVCacheManager } from "./kv-cache-manager.ts";
import { LlamaRunner } from "./model-runner.ts";
import { Request, type SampleLogprobs } from "./request.ts";
import { Sampler, computeLogprobs } from "./sampler.ts";
import type { LogitsOutput } from "./runner.ts";
import { Scheduler, SchedulerError, type RequestOutput, type SchedulerOutput } from "./scheduler.ts";
import type { StartedEngine } from "./startup.ts";
import { StepPacer } from "./step-pacer.ts";
import { StructuredOutputs } from "./structured.ts";

export interface EngineCoreOptions {
  maxNumSeqs: number;
  /** Engine-side waiting limit (requests); unset = none: the frontend's admission bounds the queue. */
  maxWaiting?: number;
  servedModelName: string | null;
  enablePrefixCaching?: boolean;
}

/** An error the server maps to an HTTP status by its `code`. */
export class EngineRequestError extends Error {
  constructor(
    readonly code: "queue_full" | "invalid_request" | "prompt_too_long",
    message: string,
  ) {
    super(message);
    this.name = "EngineRequestError";
  }
}

export class EngineCore {
  /** When the current step was scheduled (its measured time feeds the scheduler's pacer). */
  private stepStart = 0;
  readonly scheduler: Scheduler;
  readonly kv: KVCacheManager;
  private readonly sampler = new Sampler();
  readonly runner: LlamaRunner;
  private generated = 0;
  private prompts = 0;
  private readonly window: { t: number; n: number }[] = [];
  /** Grammar matchers of constrained requests (created on the first one). */
  private structured: StructuredOutputs | null = null;

  constructor(
    readonly started: StartedEngine,
    private readonly opts: EngineCoreOptions,
  ) {
    this.kv = new KVCacheManager({
      numBlocks: started.kv.numBlocks,
      blockSize: started.kvSpec.blockSize,
      enablePrefixCaching: opts.enablePrefixCaching ?? true,
    });
    this.scheduler = new Scheduler(
      {
        maxNumSeqs: started.limits.maxSeqs,
        maxNumBatchedTokens: started.limits.maxTokens,
        maxModelLen: started.maxModelLen,
        maxWaitingRequests: opts.maxWaiting,
        pacer: started.stepTimeFactor > 0 ? new StepPacer({ factor: started.stepTimeFactor, minStepTokens: started.minStepTokens }) : null,
      },
      this.kv,
    );
    this.runner = new LlamaRunner(started.model, started.deviceSampler);
  }

  model(): ModelDescription {
    const cfg = this.started.opened.config;
    return {
      id: this.opts.servedModelName ?? cfg.name,
      maxModelLen: this.started.maxModelLen,
      vocabSize: cfg.vocabSize,
      randomWeights: cfg.randomWeights === true,
      samplingDefaults: this.started.opened.generationConfig.defaults,
    };
  }

  hasWork(): boolean {
    return this.scheduler.hasUnfinishedRequests();
  }

  /** Queues a request; throws EngineRequestError for requests that can never run. */
  add(req: GenerateRequest): void {
    // A constrained request needs its matcher first (addAsync); queuing it here would run it free.
    if (req.params.structured && !this.structured?.has(req.requestId))
      throw new Error(`request ${req.requestId} has a structured-output grammar: queue it with addAsync()`);
    const p = req.params;
    const cfg = this.started.opened.config;
    const n = req.promptTokenIds.length;
    if (n >= this.started.maxModelLen) {
      throw new EngineRequestError(
        "prompt_too_long",
        `This model's maximum context length is ${this.started.maxModelLen} tokens; the prompt has ${n} tokens (prompt + at least 1 completion token must fit).`,
      );
    }
    for (const t of req.promptTokenIds) {
      if (!Number.isInteger(t) || t < 0 || t >= cfg.vocabSize) {
        throw new EngineRequestError("invalid_request", `prompt token id ${t} is outside the vocabulary (size ${cfg.vocabSize})`);
      }
    }
    const [eos, ...moreEos] = cfg.eosTokenIds;
    let request: Request;
    try {
      request = new Request({
        requestId: req.requestId,
        promptTokenIds: req.promptTokenIds,
        eosTokenId: eos ?? null,
        sampling: {
          temperature: p.temperature,
          topP: p.topP,
          topK: p.topK,
          minP: p.minP,
          seed: p.seed ?? null,
          maxTokens: p.maxTokens,
          stopTokenIds: p.ignoreEos ? p.stopTokenIds : [...p.stopTokenIds, ...moreEos],
          ignoreEos: p.ignoreEos,
          logprobs: p.logprobs ?? null,
          presencePenalty: p.presencePenalty,
          frequencyPenalty: p.frequencyPenalty,
          repetitionPenalty: p.repetitionPenalty,
          minTokens: p.minTokens ?? 0,
          logitBias: p.logitBias ?? [],
          promptLogprobs: p.promptLogprobs ?? null,
        },
      });
      this.scheduler.addRequest(request);
    } catch (e) {
      if (e instanceof SchedulerError) {
        throw new EngineRequestError(e.code === "queue_full" ? "queue_full" : "invalid_request", e.message);
      }
      if (e instanceof RangeError) throw new EngineRequestError("invalid_request", e.message);
      throw e;
    }
    this.prompts += n;
  }

  /**
   * Queues a request, first compiling its grammar when it has one (structured outputs). Resolves
   * once it is queued (or dropped: aborted while its grammar compiled).
   */
  async addAsync(req: GenerateRequest): Promise<void> {
    const spec = req.params.structured;
    if (!spec) return this.add(req);
    const so = this.structuredOutputs();
    const cfg = this.started.opened.config;
    const stops = [...(req.params.ignoreEos ? [] : cfg.eosTokenIds), ...req.params.stopTokenIds];
    let ok: boolean;
    try {
      ok = await so.register(req.requestId, spec, stops);
    } catch (e) {
      throw new EngineRequestError("invalid_request", (e as Error).message);
    }
    if (!ok) return;
    try {
      this.add(req);
    } catch (e) {
      so.release(req.requestId);
      throw e;
    }
  }

  private structuredOutputs(): StructuredOutputs {
    this.structured ??= new StructuredOutputs(this.started.opened.tokenizer, this.started.opened.config.vocabSize);
    return this.structured;
  }

  /** True when prepareStep() has work (a constrained request needs its next mask). */
  needsPrepare(): boolean {
    return this.structured?.needsPrepare() ?? false;
  }

  /** Computes the grammar masks the next step needs (between steps, off the step itself). */
  async prepareStep(): Promise<void> {
    await this.structured?.prepare();
  }

  /** Cancels a request; its blocks are free when this returns. */
  abort(requestId: string): TokenEvent | null {
    if (this.structured?.cancel(requestId)) return null;
    this.structured?.release(requestId);
    const out = this.scheduler.abort(requestId);
    return out ? this.toEvent(out) : null;
  }

  /**
   * Runs one step; returns the events it produced. With constrained requests, their masks must
   * be ready (needsPrepare() false: await prepareStep() first), or use stepAsync().
   */
  step(): TokenEvent[] {
    const t0 = performance.now();
    const out = this.scheduler.schedule();
    if (out.scheduled.length === 0) return [];
    this.stepStart = t0;
    const so = this.structured;
    const bitmask = so && so.size > 0 ? so.batch(out.logitsRequests.map((s) => s.request.requestId)) : null;
    const logits = this.runner.execute(out, bitmask);
    return this.afterForward(out, logits);
  }

  /**
   * One step with the grammar masks it needs (what the engine loop calls). The forward pass is
   * launched first (on CUDA it is asynchronous: kernels or a graph replay), then the matchers
   * produce the masks on this thread, then the step finishes: with device sampling the masks,
   * bias entries and parameters are staged and the sampling tail (mask -> bias -> sample) is
   * launched, and the ids read back; without, the masks are applied on the device and the
   * logits read back. On a GPU the matchers are thus off the critical path either way (on the
   * CPU backend the forward pass runs on this thread, so the two add up).
   */
  async stepAsync(): Promise<TokenEvent[]> {
    const so = this.structured;
    if (!so || so.size === 0) return this.step();
    this.stepStart = performance.now();
    const out = this.scheduler.schedule();
    if (out.scheduled.length === 0) return [];
    this.runner.launch(out);
    const rec = this.runner.recorder;
    rec?.("masks_begin");
    await so.prepare();
    rec?.("masks_end");
    const logits = this.runner.finish(out, so.batch(out.logitsRequests.map((s) => s.request.requestId)));
    return this.afterForward(out, logits);
  }

  private afterForward(out: SchedulerOutput, logits: LogitsOutput): TokenEvent[] {
    const so = this.structured;
    const V = logits.vocabSize;
    const requests = out.logitsRequests.map((s) => s.request);
    const dev = logits.device;
    // Rows sampled on the device come back as ids; the others are sampled here.
    const samples = dev
      ? requests.map((r, i) =>
          dev.onDevice[i]
            ? { tokenId: dev.tokenIds[i]!, logprobs: null }
            : this.sampler.sampleRow(logits.logits.subarray(i * V, (i + 1) * V), r),
        )
      : this.sampler.sample(logits.logits, V, requests);
    // Prompt logprobs: the rows after the sampling rows; row of position p scores prompt token p + 1.
    out.promptLogprobRows.forEach(({ request: r, position: p }, j) => {
      const row = out.logitsRequests.length + j;
      r.promptLogprobs[p + 1] = computeLogprobs(
        logits.logits.subarray(row * V, (row + 1) * V),
        r.promptTokenIds[p + 1]!,
        r.sampling.promptLogprobs ?? 0,
      );
    });
    const results = this.scheduler.update(
      out,
      samples.map((s) => s.tokenId),
      samples.map((s) => s.logprobs),
    );
    // The pacer's cost model learns from every step (schedule → forward → sampling → update).
    this.scheduler.observeStep(out, performance.now() - this.stepStart);
    if (so && so.size > 0) {
      for (const r of results) {
        if (!so.has(r.requestId)) continue;
        so.accept(r.requestId, r.newTokenIds);
        if (r.finishReason !== null) so.release(r.requestId);
      }
    }
    const events = results.map((r) => this.toEvent(r));
    let n = 0;
    for (const e of events) n += e.tokenIds.length;
    this.generated += n;
    const now = performance.now();
    this.window.push({ t: now, n });
    while (this.window.length > 0 && now - this.window[0]!.t > 5000) this.window.shift();
    return events;
  }

  private toEvent(r: RequestOutput): TokenEvent {
    return {
      requestId: r.requestId,
      tokenIds: r.newTokenIds,
      logprobs: r.newLogprobs ? r.newLogprobs.map((l) => this.toLogprob(l)) : undefined,
      ...(r.promptLogprobs ? { promptLogprobs: r.promptLogprobs.map((l) => (l ? this.toLogprob(l) : null)) } : {}),
      finishReason: r.finishReason,
      promptTokens: r.numPromptTokens,
      completionTokens: r.numOutputTokens,
    };
  }

  private toLogprob(l: SampleLogprobs): TokenLogprob {
    return { tokenId: l.tokenId, logprob: l.logprob, top: l.top.map((t) => ({ tokenId: t.tokenId, logprob: t.logprob })) };
  }

  /** Running requests that have produced at least `minTokens` output tokens (fault.ts StepView). */
  runningWithOutput(minTokens: number): number {
    return this.scheduler.numRunningWithOutput(minTokens);
  }

  stats(): EngineStats {
    const s = this.scheduler.stats();
    const kv = s.kv;
    const span = this.window.length > 1 ? (this.window.at(-1)!.t - this.window[0]!.t) / 1000 : 0;
    const tokens = this.window.reduce((a, w) => a + w.n, 0);
    return {
      running: s.numRunning,
      waiting: s.numWaiting,
      blocksTotal: kv.numBlocks,
      blocksUsed: kv.usedBlocks,
      blocksFree: kv.freeBlocks,
      // Free blocks still holding a reusable prefix (not every registered block: those in use are counted as used).
      blocksCached: kv.cachedFreeBlocks,
      blockSize: kv.blockSize,
      kvCacheDtype: this.started.kvDtype,
      kvBytesPerBlock: bytesPerBlock(this.started.kvSpec),
      kvScalesFromCheckpoint: this.started.kvScales.fromCheckpoint,
      prefixCacheQueries: kv.prefixCacheQueries,
      prefixCacheHits: kv.prefixCacheHits,
      prefixCacheHitRate: kv.prefixCacheHitRate,
      generatedTokens: this.generated,
      promptTokens: this.prompts,
      tokensPerSecond: span > 0 ? tokens / span : 0,
      preemptions: s.numPreemptions,
      steps: s.numSteps,
    };
  }

  /** GET /v1/memory: snapshot, start-up profile, breakdown by category, suggestions, plan. */
  memory(): MemoryReport {
    const st = this.started;
    const snap = takeSnapshot(st.dev);
    const p = st.profile;
    const kvStats = this.kv.stats();
    const perBlock = bytesPerBlock(st.kvSpec);
    const kvUsed = kvStats.usedBlocks * perBlock;
    return {
      device: { name: st.dev.info().name, backend: st.dev.backend, total_bytes: snap.totalBytes },
      snapshot: {
        timestamp: snap.timestamp,
        total: snap.totalBytes,
        free: snap.freeBytes,
        used: snap.usedBytes,
        allocator_reserved: snap.reservedBytes,
        allocator_allocated: snap.allocatedBytes,
        allocator_peak: snap.peakAllocatedBytes,
        kv_mapped: snap.kvMappedBytes,
        non_allocator: snap.nonAllocatorBytes,
      },
      profile: {
        weights: p.weightsBytes,
        peak_activation: p.peakActivationBytes,
        non_allocator_increase: p.nonAllocatorIncreaseBytes,
        cuda_graph: p.graphBytes,
        allocator_slack: p.allocatorSlackBytes,
        non_kv_total: p.nonKvBytes,
        requested: p.requestedBytes,
        kv_budget: p.kvBudgetBytes,
        profile_time_ms: p.profileTimeMs,
        profile_skipped: p.profileSkipped,
        baseline_used: p.baseline.usedBytes,
        baseline_free: p.baseline.freeBytes,
      },
      breakdown: memoryBreakdown(snap, p, kvUsed),
      kv: {
        blocks: st.kv.numBlocks,
        block_size: st.kvSpec.blockSize,
        bytes_per_block: perBlock,
        tokens: st.kv.tokens,
        mapped_bytes: st.kv.mappedBytes,
        max_concurrency: st.kv.maxConcurrency,
        max_model_len: st.maxModelLen,
      },
      suggestions: {
        kv_cache_memory_bytes_fits_request: st.suggestions.kvCacheMemoryBytesForRequest,
        kv_cache_memory_bytes_full_device: st.suggestions.kvCacheMemoryBytesFullDevice,
        safety_margin_bytes: st.suggestions.safetyMarginBytes,
        text:
          `--kv-cache-memory-bytes=${st.suggestions.kvCacheMemoryBytesForRequest} fits the request; ` +
          `--kv-cache-memory-bytes=${st.suggestions.kvCacheMemoryBytesFullDevice} uses the whole device ` +
          `(keeps a ${fmtBytes(st.suggestions.safetyMarginBytes)} margin)`,
      },
      offload: this.offload(),
      graphs: graphsPayload(st.graphs, st.graphsOffReason),
      plan: st.plan,
      plan_mismatches: st.planMismatches,
      startup_line: st.startupLine,
    };
  }

  /** The `offload` object of GET /v1/memory: placement, slots, link and step-time figures. */
  offload(): OffloadReport {
    const o = this.started.offload;
    const L = this.started.opened.config.numLayers;
    if (!o) return { enabled: false, layers_on_device: L, layers_in_host_memory: 0, reason: this.started.plan.offload.reason };
    const s = o.manager.stats();
    return {
      enabled: true,
      mode: o.placement.mode,
      reason: o.placement.reason,
      layers_on_device: s.layersOnDevice,
      layers_in_host_memory: s.layersOffloaded,
      first_offloaded_layer: o.placement.firstOffloadedLayer,
      host_bytes: s.hostBytes,
      slots: s.slots,
      slot_bytes: s.slotBytes,
      bytes_per_step: s.bytesPerStep,
      measured_bandwidth_bytes_per_s: o.bandwidthBytesPerS,
      compute_step_ms: o.computeMs,
      copy_step_ms: o.copyMs,
      predicted_step_ms: o.predictedStepMs,
      measured_step_ms: o.measuredStepMs,
      copied_bytes: s.copy.bytes,
      copies: s.copy.copies,
      achieved_bandwidth_bytes_per_s: s.achievedBandwidthBytesPerS,
      overlap: s.overlap,
      wait_seconds: s.copy.waitSeconds,
      copy_busy_seconds: s.copy.busySeconds,
    };
  }

  /** GET /v1/memory/allocator: PyTorch-style stats and the segment/block snapshot. */
  allocator(): AllocatorReport {
    const dev = this.started.dev;
    const segments = dev.snapshot().map((s) => ({
      address: `0x${s.address.toString(16)}`,
      size: s.size,
      pool: s.pool,
      blocks: s.blocks.map((b) => ({ address: `0x${b.address.toString(16)}`, size: b.size, allocated: b.allocated })),
    }));
    return { stats: dev.stats(), segments };
  }
}
