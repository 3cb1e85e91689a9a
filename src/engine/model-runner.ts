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

/**
 * The phases of one step, in the order they run (a recorder sees them: tests prove the forward
 * pass is launched before the grammar masks are computed):
 * - "forward_launched": the forward pass (kernels or a graph replay) was submitted; on CUDA it
 *   runs asynchronously from here on, on the CPU backend it has run;
 * - "masks_begin" / "masks_end": the engine computes the step's grammar masks on the host
 *   (EngineCore.stepAsync; only with constrained requests);
 * - "sampling_staged": device sampling's masks, bias entries and parameters are in the arena;
 * - "sampling_tail_launched": mask -> logit bias -> sample was submitted;
 * - "ids_read": the sampled ids are on the host;
 * - "logits_read": host rows' logits (or, without device sampling, every row) are on the host.
 */
export type StepPhase =
  | "forward_launched"
  | "masks_begin"
  | "masks_end"
  | "sampling_staged"
  | "sampling_tail_launched"
  | "ids_read"
  | "logits_read";

export type StepRecorder = (phase: StepPhase) => void;

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

  /** Whether sampling runs on the device (ids, not logits rows, come back for most rows). */
  get samplesOnDevice(): boolean {
    return this.sampler !== null;
  }

  /** Called at each phase of a step (tests, tracing); null = none. */
  recorder: StepRecorder | null = null;

  /** One whole step: launch() then finish() (with the grammar masks already computed). */
  execute(out: SchedulerOutput, bitmask?: TokenBitmaskBatch | null): LogitsOutput {
    this.launch(out);
    return this.finish(out, bitmask);
  }

  private count(bytes: number): void {
    this.copies.steps++;
    this.copies.totalBytes += bytes;
    this.copies.lastStepBytes = bytes;
  }

  /**
   * The first half of a step: stages the step's inputs and runs (CPU) or enqueues (CUDA: kernels
   * or a graph replay, asynchronous) the forward pass, which ends with the logits. The engine
   * computes grammar masks between launch() and finish(), so on CUDA they overlap the forward
   * pass, with device sampling as without. Returns true when a captured graph ran.
   */
  launch(out: SchedulerOutput): boolean {
    const S = out.scheduled.length;
    const maxBlocks = this.model.limits.maxBlocksPerSeq;
    const decodeOnly = out.numPrefillTokens === 0;
    const rows = out.logitsIndices.length;
    const replayed = this.model.step(
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
    this.recorder?.("forward_launched");
    return replayed;
  }

  /**
   * The second half of a step, after launch(): with device sampling, stages the sampling inputs
   * (grammar masks included), launches the sampling tail and reads the ids, then the logits
   * rows the device path does not carry; without, applies the masks on the device and reads
   * every logits row back.
   */
  finish(out: SchedulerOutput, bitmask?: TokenBitmaskBatch | null): LogitsOutput {
    return this.sampler ? this.finishOnDevice(this.sampler, out, bitmask ?? null) : this.finishOnHost(out, bitmask ?? null);
  }

  private finishOnDevice(sampler: DeviceSampler, out: SchedulerOutput, bitmask: TokenBitmaskBatch | null): LogitsOutput {
    const rec = this.recorder;
    const plan = sampler.stage(
      out.logitsRequests.map((s) => s.request),
      bitmask,
    );
    rec?.("sampling_staged");
    sampler.runTail(plan);
    rec?.("sampling_tail_launched");
    const V = this.vocabSize;
    let bytes = 0;
    if (plan.numDevice > 0) {
      sampler.readIds(plan.rows, this.ids);
      bytes += 4 * plan.rows;
      rec?.("ids_read");
    }
    // Host rows, then prompt-logprob rows (after the sampling rows), one copy per contiguous run.
    const total = out.logitsIndices.length;
    let i = 0;
    let copied = false;
    while (i < total) {
      if (i < plan.rows && plan.onDevice[i]) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < total && !(j < plan.rows && plan.onDevice[j])) j++;
      this.model.readLogitsRows(i, j - i, this.logits.subarray(i * V, j * V));
      bytes += (j - i) * V * 4;
      copied = true;
      i = j;
    }
    if (copied) rec?.("logits_read");
    this.count(bytes);
    return { logits: this.logits, vocabSize: V, numRows: total, device: { tokenIds: this.ids, onDevice: plan.onDevice } };
  }

  private finishOnHost(out: SchedulerOutput, bitmask: TokenBitmaskBatch | null): LogitsOutput {
    const rows = out.logitsIndices.length;
    if (bitmask) this.model.applyTokenBitmask(bitmask.mask, bitmask.rows, bitmask.count, rows);
    this.model.readLogits(rows, this.logits);
    this.recorder?.("logits_read");
    this.count(rows * this.vocabSize * 4);
    return { logits: this.logits, vocabSize: this.vocabSize, numRows: rows };
  }
}
