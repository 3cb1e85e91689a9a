// The ModelRunner for Llama-family models: turns a SchedulerOutput into staged device inputs,
// one forward pass and, per sampling row, either a token sampled on the device
// (device-sampler.ts: only the id crosses to the host) or its fp32 logits on the host.
import type { LlamaModel } from "../model/llama.ts";
import type { DeviceSampler } from "./device-sampler.ts";
import type { LogitsOutput, ModelRunner } from "./runner.ts";
import { fillBlockTable, type SchedulerOutput } from "./scheduler.ts";
import type { TokenBitmaskBatch } from "./structured.ts";

/** Device-to-host traffic of the steps run so far. */
export interface HostCopyStats {
  steps: number;
  /** Bytes copied device -> host over all steps (logits rows, sampled ids). */
  totalBytes: number;
  /** Bytes copied by the last step. */
  lastStepBytes: number;
}

export class LlamaRunner implements ModelRunner {
  readonly vocabSize: number;
  private readonly blockTables: Int32Array;
  private readonly logits: Float32Array;
  private readonly ids: Int32Array;
  readonly copies: HostCopyStats = { steps: 0, totalBytes: 0, lastStepBytes: 0 };

  /** `sampler` null: every logits row is copied to the host and sampled there (the old path). */
  constructor(
    private readonly model: LlamaModel,
    private readonly sampler: DeviceSampler | null = null,
  ) {
    this.vocabSize = model.cfg.vocabSize;
    this.blockTables = new Int32Array(model.limits.maxSeqs * model.limits.maxBlocksPerSeq);
    this.logits = new Float32Array(model.limits.maxSeqs * this.vocabSize);
    this.ids = new Int32Array(model.limits.maxSeqs);
  }

  /** Whether sampling runs on the device (then grammar masks are inputs of the step: see EngineCore.stepAsync). */
  get samplesOnDevice(): boolean {
    return this.sampler !== null;
  }

  execute(out: SchedulerOutput, bitmask?: TokenBitmaskBatch | null): LogitsOutput {
    if (!this.sampler) {
      this.launch(out);
      return this.finish(out, bitmask);
    }
    const plan = this.sampler.stage(
      out.logitsRequests.map((s) => s.request),
      bitmask ?? null,
    );
    if (!this.launch(out)) this.sampler.runEager(plan);
    const V = this.vocabSize;
    let bytes = 0;
    if (plan.numDevice > 0) {
      this.sampler.readIds(plan.rows, this.ids);
      bytes += 4 * plan.rows;
    }
    // Host rows, then prompt-logprob rows (after the sampling rows), one copy per contiguous run.
    const total = out.logitsIndices.length;
    let i = 0;
    while (i < total) {
      if (i < plan.rows && plan.onDevice[i]) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < total && !(j < plan.rows && plan.onDevice[j])) j++;
      this.model.readLogitsRows(i, j - i, this.logits.subarray(i * V, j * V));
      bytes += (j - i) * V * 4;
      i = j;
    }
    this.count(bytes);
    return { logits: this.logits, vocabSize: V, numRows: total, device: { tokenIds: this.ids, onDevice: plan.onDevice } };
  }

  private count(bytes: number): void {
    this.copies.steps++;
    this.copies.totalBytes += bytes;
    this.copies.lastStepBytes = bytes;
  }

  /**
   * The first half of a host-sampling execute(): stages the step and runs (CPU) or enqueues
   * (CUDA: kernels or a graph replay, asynchronous) the forward pass. Without device sampling
   * the engine computes grammar masks between launch() and finish(), so on CUDA they overlap
   * the forward pass. Returns true when a captured graph ran.
   */
  launch(out: SchedulerOutput): boolean {
    const S = out.scheduled.length;
    const maxBlocks = this.model.limits.maxBlocksPerSeq;
    const decodeOnly = out.numPrefillTokens === 0;
    const rows = out.logitsIndices.length;
    return this.model.step(
      {
        inputIds: out.inputIds,
        positions: out.positions,
        slotMapping: out.slotMapping,
        queryStartLoc: out.queryStartLoc,
        seqLens: out.seqLens,
        blockTables: fillBlockTable(out, maxBlocks, this.blockTables).subarray(0, S * maxBlocks),
        logitsIndices: out.logitsIndices,
        decodeOnly,
      },
      out.numScheduledTokens,
      S,
      rows,
    );
  }

  /** The second half of a host-sampling step: applies the grammar bitmask on the device and reads every logits row back. */
  finish(out: SchedulerOutput, bitmask?: TokenBitmaskBatch | null): LogitsOutput {
    const rows = out.logitsIndices.length;
    if (bitmask) this.model.applyTokenBitmask(bitmask.mask, bitmask.rows, bitmask.count, rows);
    this.model.readLogits(rows, this.logits);
    this.count(rows * this.vocabSize * 4);
    return { logits: this.logits, vocabSize: this.vocabSize, numRows: rows };
  }
}
