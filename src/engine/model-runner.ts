// The ModelRunner for Llama-family models: turns a SchedulerOutput into staged device inputs,
// one forward pass and fp32 logits on the host.
import type { LlamaModel } from "../model/llama.ts";
import type { LogitsOutput, ModelRunner } from "./runner.ts";
import { fillBlockTable, type SchedulerOutput } from "./scheduler.ts";
import type { TokenBitmaskBatch } from "./structured.ts";

export class LlamaRunner implements ModelRunner {
  readonly vocabSize: number;
  private readonly blockTables: Int32Array;
  private readonly logits: Float32Array;

  constructor(private readonly model: LlamaModel) {
    this.vocabSize = model.cfg.vocabSize;
    this.blockTables = new Int32Array(model.limits.maxSeqs * model.limits.maxBlocksPerSeq);
    this.logits = new Float32Array(model.limits.maxSeqs * this.vocabSize);
  }

  execute(out: SchedulerOutput, bitmask?: TokenBitmaskBatch | null): LogitsOutput {
    this.launch(out);
    return this.finish(out, bitmask);
  }

  /**
   * The first half of execute(): stages the step and runs (CPU) or enqueues (CUDA: kernels or a
   * graph replay, asynchronous) the forward pass. The engine computes grammar masks between
   * launch() and finish(), so on CUDA they overlap the forward pass.
   */
  launch(out: SchedulerOutput): void {
    const S = out.scheduled.length;
    const maxBlocks = this.model.limits.maxBlocksPerSeq;
    const decodeOnly = out.numPrefillTokens === 0;
    const rows = out.logitsIndices.length;
    this.model.step(
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

  /** The second half: applies the grammar bitmask on the device and reads the logits back. */
  finish(out: SchedulerOutput, bitmask?: TokenBitmaskBatch | null): LogitsOutput {
    const rows = out.logitsIndices.length;
    if (bitmask) this.model.applyTokenBitmask(bitmask.mask, bitmask.rows, bitmask.count, rows);
    this.model.readLogits(rows, this.logits);
    return { logits: this.logits, vocabSize: this.vocabSize, numRows: rows };
  }
}
