// Continuous-batching scheduler (vLLM v1's Scheduler is the anchor, with decode-first ordering).
//
// Each step:
//  1. running requests get tokens from the per-step token budget: those decoding (one token left
//     to compute) first, then those still prefilling (chunked: a long prompt takes whatever budget
//     is left and continues next step). When the KV pool cannot supply blocks, the lowest-priority
//     (latest-arrived) running request is preempted by recompute: its blocks are freed and it goes
//     back to the front of the waiting queue with its generated tokens appended to what it must
//     recompute (its own freed blocks usually come back as prefix-cache hits).
//  2. if nobody was preempted, waiting requests are admitted (FCFS) while seats (maxNumSeqs),
//     budget and blocks last, starting from their longest cached prefix.
// With a StepPacer (step-pacer.ts; the CPU default), prompt chunks are also sized by time: a
// step in which sequences decode may take at most factor × a plain decode step of the served
// batch (a cost model fitted from the engine's step timings, fed through observeStep()), and at
// least minStepTokens tokens; a step in which nothing decodes takes prompt tokens up to the
// token budget. And first tokens come one prompt at a time: a step that ends one prompt starts
// no other unless all of that one costs less than a step's fixed part (short prompts share a step). maxNumBatchedTokens stays
// the hard cap either way. Prompts are chunked in arrival order, so one prompt's prefill
// finishes before the next starts (the earliest first token for the earliest arrival).
// `numComputedTokens` advances at schedule time; the runner must execute every step it is given,
// writing a layer's K/V for all scheduled tokens before that layer's attention reads the cache.
// After the runner and sampler, update() appends the sampled tokens and applies stop rules
// (EOS, stop token ids, length; stop strings are matched by the frontend, which aborts).

import type { KVCacheManager, KVCacheStats } from "./kv-cache-manager.ts";
import type { FinishReason, Request, SampleLogprobs } from "./request.ts";
import { chunkPairs, shapeOf, type StepPacer, type StepShape } from "./step-pacer.ts";

export interface SchedulerConfig {
  /** Most requests running at once (default 256). */
  maxNumSeqs?: number;
  /** Token budget per step (default 2048). */
  maxNumBatchedTokens?: number;
  /** Cap on prompt + output tokens of any request. */
  maxModelLen: number;
  /** Split long prefills across steps (default true). When off, maxNumBatchedTokens must be >= maxModelLen. */
  enableChunkedPrefill?: boolean;
  /** Waiting-queue limit: addRequest throws SchedulerError('queue_full') beyond it (default unlimited). */
  maxWaitingRequests?: number;
  /** Sizes prompt chunks by predicted step time (needs chunked prefill); null/unset = token budget only. */
  pacer?: StepPacer | null;
}

export type SchedulerErrorCode = "queue_full" | "invalid_request" | "duplicate_request";

export class SchedulerError extends Error {
  constructor(
    readonly code: SchedulerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "SchedulerError";
  }
}

/** One request's share of a step. Typed arrays are views into the flat arrays of the output. */
export interface ScheduledRequest {
  request: Request;
  requestId: string;
  /** Tokens already in the KV cache before this step (the cached context). */
  numComputedBefore: number;
  numNewTokens: number;
  /** numComputedBefore + numNewTokens: the sequence length attention sees after this step. */
  contextLen: number;
  /** Token ids fed this step. */
  tokenIds: Int32Array;
  /** Their positions (numComputedBefore …). */
  positions: Int32Array;
  /** Their KV slots (blockId × blockSize + offset). */
  slotMapping: Int32Array;
  /** The request's blocks, in token order (covers contextLen tokens). */
  blockTable: number[];
  /** True when this chunk ends at the last known token: the runner must return its logits row. */
  needsLogits: boolean;
  /** Row of this request in the logits the runner returns (-1 when needsLogits is false). */
  logitsRow: number;
  /** Offset of this request's tokens in the flat arrays. */
  queryStart: number;
  /** A single decode token (not a prompt/recompute chunk). */
  isDecode: boolean;
}

export interface SchedulerOutput {
  step: number;
  /** In batch order: decodes, then continuing prefills, then newly admitted requests. */
  scheduled: ScheduledRequest[];
  /** Scheduled requests that need logits, in logits-row order. */
  logitsRequests: ScheduledRequest[];
  /** Flat, concatenated over `scheduled`. */
  inputIds: Int32Array;
  positions: Int32Array;
  slotMapping: Int32Array;
  /** Prefix sums of numNewTokens, length scheduled.length + 1. */
  queryStartLoc: Int32Array;
  /** contextLen per scheduled request. */
  seqLens: Int32Array;
  /**
   * Extra logits rows after the sampling rows (row logitsRequests.length + i): prompt position
   * `position` of `request`, whose row predicts prompt token position + 1 (prompt logprobs).
   */
  promptLogprobRows: { request: Request; position: number }[];
  /** Flat token index whose hidden state gives each logits row (sampling rows, then prompt rows). */
  logitsIndices: Int32Array;
  numScheduledTokens: number;
  numPrefillTokens: number;
  numDecodeTokens: number;
  /** Requests preempted while building this step (their KV is gone; runner state may be dropped). */
  preemptedRequestIds: string[];
  /** Requests finished or aborted since the previous step (runner state may be dropped). */
  finishedRequestIds: string[];
}

export interface RequestOutput {
  requestId: string;
  /** Tokens generated this step (includes an EOS / stop token id that ended the request). */
  newTokenIds: number[];
  newLogprobs: SampleLogprobs[] | null;
  finished: boolean;
  finishReason: FinishReason | null;
  /** The stop token id that ended the request (null for EOS, length, abort). */
  stopReason: number | null;
  numPromptTokens: number;
  numOutputTokens: number;
  /** Prompt tokens that came from the prefix cache at first scheduling. */
  numCachedTokens: number;
  /** Prompt logprobs (entry 0 null), on the request's first output when it asked for them. */
  promptLogprobs?: (SampleLogprobs | null)[];
}

export interface SchedulerStats {
  numRunning: number;
  numWaiting: number;
  numPreemptions: number;
  numSteps: number;
  kv: KVCacheStats;
}

export class Scheduler {
  readonly maxNumSeqs: number;
  readonly maxNumBatchedTokens: number;
  readonly maxModelLen: number;
  readonly enableChunkedPrefill: boolean;
  readonly maxWaitingRequests: number;
  readonly pacer: StepPacer | null;

  /** Running requests, ordered by arrival (priority). */
  private running: Request[] = [];
  private waiting: Request[] = [];
  private readonly requests = new Map<string, Request>();
  private finishedIds: string[] = [];
  private stepCount = 0;
  private preemptionCount = 0;

  constructor(
    config: SchedulerConfig,
    readonly kv: KVCacheManager,
  ) {
    this.maxNumSeqs = config.maxNumSeqs ?? 256;
    this.maxNumBatchedTokens = config.maxNumBatchedTokens ?? 2048;
    this.maxModelLen = config.maxModelLen;
    this.enableChunkedPrefill = config.enableChunkedPrefill ?? true;
    this.maxWaitingRequests = config.maxWaitingRequests ?? Number.POSITIVE_INFINITY;
    this.pacer = this.enableChunkedPrefill ? (config.pacer ?? null) : null;
    const int = (name: string, v: number, min: number) => {
      if (!Number.isInteger(v) || v < min) throw new RangeError(`Scheduler: ${name}=${v} must be an integer >= ${min}`);
    };
    int("maxNumSeqs", this.maxNumSeqs, 1);
    int("maxNumBatchedTokens", this.maxNumBatchedTokens, 1);
    int("maxModelLen", this.maxModelLen, 2);
    if (!(this.maxWaitingRequests >= 0)) throw new RangeError(`Scheduler: maxWaitingRequests=${this.maxWaitingRequests}`);
    if (!this.enableChunkedPrefill && this.maxNumBatchedTokens < this.maxModelLen) {
      throw new RangeError(
        `Scheduler: without chunked prefill maxNumBatchedTokens (${this.maxNumBatchedTokens}) must be >= maxModelLen (${this.maxModelLen}), or a preempted request could never be recomputed`,
      );
    }
  }

  get numRunning(): number {
    return this.running.length;
  }
  get numWaiting(): number {
    return this.waiting.length;
  }
  /** Running requests that have produced at least `minTokens` output tokens. */
  numRunningWithOutput(minTokens: number): number {
    let n = 0;
    for (const r of this.running) if (r.numOutputTokens >= minTokens) n++;
    return n;
  }
  hasUnfinishedRequests(): boolean {
    return this.running.length + this.waiting.length > 0;
  }
  /** False when addRequest would throw 'queue_full' (e.g. answer HTTP 503). */
  canAcceptRequest(): boolean {
    return this.waiting.length < this.maxWaitingRequests;
  }
  getRequest(requestId: string): Request | undefined {
    return this.requests.get(requestId);
  }
  runningRequestIds(): string[] {
    return this.running.map((r) => r.requestId);
  }
  waitingRequestIds(): string[] {
    return this.waiting.map((r) => r.requestId);
  }

  /** Queues a request. Throws SchedulerError ('queue_full', 'invalid_request', 'duplicate_request'). */
  addRequest(request: Request): void {
    if (this.requests.has(request.requestId)) {
      throw new SchedulerError("duplicate_request", `request ${request.requestId} is already queued or running`);
    }
    if (request.status !== "waiting" || request.numOutputTokens > 0) {
      throw new SchedulerError("invalid_request", `request ${request.requestId} is not a fresh request`);
    }
    const n = request.numPromptTokens;
    if (n >= this.maxModelLen) {
      throw new SchedulerError(
        "invalid_request",
        `request ${request.requestId}: prompt has ${n} tokens; maxModelLen is ${this.maxModelLen} (prompt + at least 1 output token must fit)`,
      );
    }
    // The KV needed by the request at its longest (the last sampled token is never computed).
    const maxTokens = Math.min(n + request.sampling.maxTokens, this.maxModelLen) - 1;
    const need = this.kv.blocksFor(maxTokens);
    if (need > this.kv.numBlocks) {
      throw new SchedulerError(
        "invalid_request",
        `request ${request.requestId}: up to ${maxTokens} tokens of KV need ${need} blocks of ${this.kv.blockSize}; the cache has ${this.kv.numBlocks} blocks`,
      );
    }
    if (request.sampling.promptLogprobs !== null && !this.enableChunkedPrefill) {
      throw new SchedulerError(
        "invalid_request",
        `request ${request.requestId}: prompt logprobs need chunked prefill (their logits rows are limited per step)`,
      );
    }
    if (!this.canAcceptRequest()) {
      throw new SchedulerError("queue_full", `waiting queue is full (${this.waiting.length} requests)`);
    }
    this.requests.set(request.requestId, request);
    this.waiting.push(request);
  }

  /**
   * Cancels a request: its blocks are freed at once. Returns its final output (finish reason
   * 'abort'), or null when the request is unknown or already finished. Safe between schedule()
   * and update(): update() skips it.
   */
  abort(requestId: string): RequestOutput | null {
    const r = this.requests.get(requestId);
    if (r === undefined || r.isFinished) return null;
    const wi = this.waiting.indexOf(r);
    if (wi >= 0) this.waiting.splice(wi, 1);
    this.finish(r, "abort", null);
    return this.makeOutput(r, [], null);
  }

  schedule(): SchedulerOutput {
    const step = this.stepCount++;
    let budget = this.maxNumBatchedTokens;
    const sched = new Map<Request, number>();
    const preempted: string[] = [];
    // Logits rows are limited (the arena holds min(maxNumSeqs, maxNumBatchedTokens)): a request
    // that wants prompt logprobs gets a chunk whose rows fit next to one row per request that
    // may still be scheduled this step.
    const rowCap = Math.min(this.maxNumSeqs, this.maxNumBatchedTokens);
    const potential = Math.min(this.maxNumSeqs, this.running.length + this.waiting.length);
    let rowsUsed = 0;
    const fitRows = (r: Request, start: number, numNew: number): number => {
      if (r.pendingPromptRows === 0) return numNew;
      const allowed = rowCap - rowsUsed - Math.max(0, potential - (sched.size + 1));
      return Math.min(numNew, this.rowsFit(r, start, numNew, allowed));
    };

    // Time pacing of prompt chunks (null pacer: the token budget alone). The step's shape so far
    // is recomputed from `sched` (a preemption may have taken entries out).
    const served = Math.min(this.maxNumSeqs, this.running.length + this.waiting.length);
    const pace = (r: Request, start: number, numNew: number): number => {
      const pacer = this.pacer;
      if (pacer === null || numNew <= 0) return numNew;
      const st = this.stepShape(sched);
      // First tokens one prompt at a time: a step that already ends a prompt starts no other
      // (that prompt's first token would wait for it), unless all of it is cheaper than a step
      // and fits the step's time.
      const grouping = st.promptsEnded > 0;
      if (grouping && !(start + numNew === r.numTokens && pacer.groupable(st, start, numNew, this.rowsOf(r, start, numNew)))) return 0;
      if (st.decodeRows === 0) return numNew;
      // The floor: what a fixed budget of minStepTokens would give this chunk.
      const floor = Math.min(numNew, Math.max(0, pacer.minStepTokens - st.tokens));
      const target = pacer.targetMs(st.decodeRows, st.decodePairs, served);
      let n: number;
      if (target === null) n = st.prefillTokens === 0 ? Math.max(floor, Math.min(numNew, pacer.minChunk)) : floor;
      else n = Math.max(floor, pacer.chunk(st, start, numNew, this.rowsOf(r, start, numNew), target, st.prefillTokens));
      if (grouping && n < numNew) return 0;
      // Cut short of the prompt's end: a chunk without its sampling row must not need one.
      return n < numNew ? fitRows(r, start, n) : n;
    };

    // 1. running requests: decodes first, then continuing prefills, each in arrival order.
    const decodes: Request[] = [];
    const prefills: Request[] = [];
    for (const r of this.running) (r.numTokens - r.numComputedTokens === 1 ? decodes : prefills).push(r);
    for (const r of [...decodes, ...prefills]) {
      if (budget === 0) break;
      if (r.status !== "running") continue; // preempted while making room for another
      let numNew = r.numTokens - r.numComputedTokens;
      if (numNew <= 0) continue;
      if (!this.enableChunkedPrefill && numNew > budget) continue;
      numNew = fitRows(r, r.numComputedTokens, Math.min(numNew, budget));
      if (numNew > 1 || r.numOutputTokens === 0) numNew = pace(r, r.numComputedTokens, numNew);
      if (numNew <= 0) continue;
      let ok = false;
      for (;;) {
        if (this.kv.allocateSlots(r, numNew) !== null) {
          ok = true;
          break;
        }
        const victim = this.lowestPriorityRunning();
        const refund = sched.get(victim);
        if (refund !== undefined) {
          sched.delete(victim);
          budget += refund;
        }
        this.preempt(victim);
        preempted.push(victim.requestId);
        if (victim === r) break;
      }
      if (!ok) continue;
      sched.set(r, numNew);
      rowsUsed += this.rowsOf(r, r.numComputedTokens, numNew);
      budget -= numNew;
    }

    // 2. waiting requests, unless this step had to preempt (the pool is tight).
    if (preempted.length === 0) {
      while (budget > 0 && this.running.length < this.maxNumSeqs) {
        const r = this.waiting[0];
        if (r === undefined) break;
        // Cached prompt tokens have no logits: a request still owing prompt logprobs computes them all.
        const hit = r.pendingPromptRows > 0 ? { blocks: [], numComputedTokens: 0 } : this.kv.getComputedBlocks(r);
        let numNew = r.numTokens - hit.numComputedTokens;
        if (!this.enableChunkedPrefill && numNew > budget) break;
        numNew = fitRows(r, hit.numComputedTokens, Math.min(numNew, budget));
        numNew = pace(r, hit.numComputedTokens, numNew);
        if (numNew <= 0) break;
        if (this.kv.allocateSlots(r, numNew, hit.blocks) === null) break;
        this.waiting.shift();
        r.numComputedTokens = hit.numComputedTokens;
        if (r.numCachedTokens < 0) r.numCachedTokens = hit.numComputedTokens;
        r.status = "running";
        this.insertRunning(r);
        sched.set(r, numNew);
        rowsUsed += this.rowsOf(r, hit.numComputedTokens, numNew);
        budget -= numNew;
      }
    }

    return this.buildOutput(step, sched, preempted);
  }

  /**
   * Applies one step's sampled tokens. `sampledTokenIds[i]` (and `logprobs[i]`) belong to
   * `output.logitsRequests[i]`. Returns one output per request that got a token (or finished).
   */
  update(output: SchedulerOutput, sampledTokenIds: ArrayLike<number>, logprobs?: ReadonlyArray<SampleLogprobs | null>): RequestOutput[] {
    if (sampledTokenIds.length !== output.logitsRequests.length) {
      throw new RangeError(`Scheduler.update: ${sampledTokenIds.length} sampled tokens for ${output.logitsRequests.length} logits rows`);
    }
    const results: RequestOutput[] = [];
    for (let i = 0; i < output.logitsRequests.length; i++) {
      const sr = output.logitsRequests[i] as ScheduledRequest;
      const r = sr.request;
      if (r.status !== "running") continue; // aborted after schedule()
      const tok = sampledTokenIds[i] as number;
      r.appendOutputToken(tok);
      const sp = r.sampling;
      const nOut = r.numOutputTokens;
      const checkStops = nOut >= sp.minTokens;
      let reason: FinishReason | null = null;
      let stopReason: number | null = null;

      if (checkStops && tok === r.eosTokenId && !sp.ignoreEos) {
        reason = "stop";
      } else if (checkStops && sp.stopTokenIds.includes(tok)) {
        reason = "stop";
        stopReason = tok;
      }
      if (reason === null && (nOut >= sp.maxTokens || r.numTokens >= this.maxModelLen)) reason = "length";
      if (reason !== null) this.finish(r, reason, stopReason);
      const lp = logprobs?.[i] ?? null;
      results.push(this.makeOutput(r, [tok], lp === null ? null : [lp]));
    }
    return results;
  }

  /** Feeds one executed step's measured time to the pacer's cost model (no-op without a pacer). */
  observeStep(output: SchedulerOutput, ms: number): void {
    this.pacer?.model.observe(shapeOf(output), ms);
  }

  stats(): SchedulerStats {
    return {
      numRunning: this.running.length,
      numWaiting: this.waiting.length,
      numPreemptions: this.preemptionCount,
      numSteps: this.stepCount,
      kv: this.kv.stats(),
    };
  }

  // ---------------------------------------------------------------------------------------------

  /** Prompt positions in [start, start + numNew) that still owe a prompt-logprob row. */
  private promptRowRange(r: Request, start: number, numNew: number): [number, number] {
    if (r.sampling.promptLogprobs === null) return [0, 0];
    const lo = Math.max(start, r.promptLogprobsDone);
    const hi = Math.min(start + numNew, r.numPromptTokens - 1);
    return hi > lo ? [lo, hi] : [0, 0];
  }

  /** Logits rows a chunk needs: its prompt-logprob rows, plus the sampling row at the end. */
  private rowsOf(r: Request, start: number, numNew: number): number {
    const [lo, hi] = this.promptRowRange(r, start, numNew);
    return hi - lo + (start + numNew === r.numTokens ? 1 : 0);
  }

  /** The longest chunk (<= numNew tokens) whose rows fit in `allowed`. */
  private rowsFit(r: Request, start: number, numNew: number, allowed: number): number {
    if (this.rowsOf(r, start, numNew) <= allowed) return numNew;
    if (allowed <= 0) return 0;
    // Capped below the end of the prompt: no sampling row, exactly `allowed` prompt rows.
    const lo = Math.max(start, r.promptLogprobsDone);
    return Math.min(numNew - 1, lo - start + allowed);
  }

  /** What the step holds so far (the pacer's input): its shape, decode rows and their pairs, prompt tokens. */
  private stepShape(
    sched: Map<Request, number>,
  ): StepShape & { decodeRows: number; decodePairs: number; prefillTokens: number; promptsEnded: number } {
    const st = { tokens: 0, rows: 0, attn: 0, decodeRows: 0, decodePairs: 0, prefillTokens: 0, promptsEnded: 0 };
    for (const [r, n] of sched) {
      const start = r.numComputedTokens;
      const pairs = chunkPairs(start, n);
      st.tokens += n;
      st.rows += this.rowsOf(r, start, n);
      st.attn += pairs;
      if (n === 1 && start + 1 === r.numTokens && r.numOutputTokens > 0) {
        st.decodeRows++;
        st.decodePairs += pairs;
      } else {
        st.prefillTokens += n;
        if (start + n === r.numTokens) st.promptsEnded++;
      }
    }
    return st;
  }

  private lowestPriorityRunning(): Request {
    const last = this.running[this.running.length - 1];
    if (last === undefined) throw new Error("Scheduler: no running request to preempt");
    return last;
  }

  private insertRunning(r: Request): void {
    let i = this.running.length;
    while (i > 0 && (this.running[i - 1] as Request).arrivalSeq > r.arrivalSeq) i--;
    this.running.splice(i, 0, r);
  }

  private preempt(r: Request): void {
    const i = this.running.indexOf(r);
    if (i >= 0) this.running.splice(i, 1);
    this.kv.free(r);
    r.numComputedTokens = 0;
    r.status = "preempted";
    r.numPreemptions++;
    this.preemptionCount++;
    this.waiting.unshift(r);
  }

  private finish(r: Request, reason: FinishReason, stopReason: number | null): void {
    const i = this.running.indexOf(r);
    if (i >= 0) this.running.splice(i, 1);
    this.kv.free(r);
    r.status = "finished";
    r.finishReason = reason;
    r.stopReason = stopReason;
    this.requests.delete(r.requestId);
    this.finishedIds.push(r.requestId);
  }

  private makeOutput(r: Request, newTokenIds: number[], newLogprobs: SampleLogprobs[] | null): RequestOutput {
    const finished = r.isFinished;
    let promptLogprobs: (SampleLogprobs | null)[] | undefined;
    if (r.sampling.promptLogprobs !== null && !r.promptLogprobsSent && (newTokenIds.length > 0 || finished)) {
      r.promptLogprobsSent = true;
      promptLogprobs = r.promptLogprobs;
    }
    return {
      ...(promptLogprobs ? { promptLogprobs } : {}),
      requestId: r.requestId,
      newTokenIds,
      newLogprobs,
      finished,
      finishReason: r.finishReason,
      stopReason: r.stopReason,
      numPromptTokens: r.numPromptTokens,
      numOutputTokens: r.numOutputTokens,
      numCachedTokens: Math.max(0, r.numCachedTokens),
    };
  }

  private buildOutput(step: number, sched: Map<Request, number>, preempted: string[]): SchedulerOutput {
    let total = 0;
    for (const n of sched.values()) total += n;
    const n = sched.size;
    const inputIds = new Int32Array(total);
    const positions = new Int32Array(total);
    const slotMapping = new Int32Array(total);
    const queryStartLoc = new Int32Array(n + 1);
    const seqLens = new Int32Array(n);
    const scheduled: ScheduledRequest[] = [];
    const logitsRequests: ScheduledRequest[] = [];
    const logitsIdx: number[] = [];
    const promptLogprobRows: { request: Request; position: number }[] = [];
    const promptIdx: number[] = [];
    let off = 0;
    let numPrefill = 0;
    let numDecode = 0;
    for (const [r, numNew] of sched) {
      const start = r.numComputedTokens;
      const contextLen = start + numNew;
      for (let i = 0; i < numNew; i++) {
        inputIds[off + i] = r.allTokenIds[start + i] as number;
        positions[off + i] = start + i;
      }
      this.kv.slotMapping(r, start, numNew, slotMapping, off);
      const needsLogits = contextLen === r.numTokens;
      const isDecode = numNew === 1 && needsLogits && r.numOutputTokens > 0;
      if (isDecode) numDecode += 1;
      else numPrefill += numNew;
      const sr: ScheduledRequest = {
        request: r,
        requestId: r.requestId,
        numComputedBefore: start,
        numNewTokens: numNew,
        contextLen,
        tokenIds: inputIds.subarray(off, off + numNew),
        positions: positions.subarray(off, off + numNew),
        slotMapping: slotMapping.subarray(off, off + numNew),
        blockTable: this.kv.blockTable(r),
        needsLogits,
        logitsRow: needsLogits ? logitsRequests.length : -1,
        queryStart: off,
        isDecode,
      };
      if (needsLogits) {
        logitsRequests.push(sr);
        logitsIdx.push(off + numNew - 1);
      }
      const [plo, phi] = this.promptRowRange(r, start, numNew);
      for (let p = plo; p < phi; p++) {
        promptLogprobRows.push({ request: r, position: p });
        promptIdx.push(off + (p - start));
      }
      if (phi > plo) r.promptLogprobsDone = phi;
      seqLens[scheduled.length] = contextLen;
      scheduled.push(sr);
      off += numNew;
      queryStartLoc[scheduled.length] = off;
      r.numComputedTokens = contextLen;
    }
    const finishedRequestIds = this.finishedIds;
    this.finishedIds = [];
    return {
      step,
      scheduled,
      logitsRequests,
      inputIds,
      positions,
      slotMapping,
      queryStartLoc,
      seqLens,
      promptLogprobRows,
      logitsIndices: Int32Array.from([...logitsIdx, ...promptIdx]),
      numScheduledTokens: total,
      numPrefillTokens: numPrefill,
      numDecodeTokens: numDecode,
      preemptedRequestIds: preempted,
      finishedRequestIds,
    };
  }
}

/**
 * Fills a static `[numRows, maxBlocksPerSeq]` block table (graph-friendly), padding with `pad`.
 * Throws if a request has more blocks than a row holds.
 */
export function fillBlockTable(output: SchedulerOutput, maxBlocksPerSeq: number, out?: Int32Array, pad = 0): Int32Array {
  const rows = output.scheduled.length;
  const dst = out ?? new Int32Array(rows * maxBlocksPerSeq);
  if (dst.length < rows * maxBlocksPerSeq)
    throw new RangeError(`fillBlockTable: buffer holds ${dst.length} entries, need ${rows * maxBlocksPerSeq}`);
  dst.fill(pad, 0, rows * maxBlocksPerSeq);
  output.scheduled.forEach((sr, i) => {
    if (sr.blockTable.length > maxBlocksPerSeq) {
      throw new RangeError(`fillBlockTable: request ${sr.requestId} has ${sr.blockTable.length} blocks > ${maxBlocksPerSeq}`);
    }
    dst.set(sr.blockTable, i * maxBlocksPerSeq);
  });
  return dst;
}
