// The seam between the scheduler and the model (types only). The engine loop glues:
//   out = scheduler.schedule(); logits = await runner.execute(out);
//   samples = sampler.sample(logits.logits, logits.vocabSize, out.logitsRequests.map(s => s.request));
//   results = scheduler.update(out, samples.map(s => s.tokenId), samples.map(s => s.logprobs));

import type { SchedulerOutput } from "./scheduler.ts";
import type { TokenBitmaskBatch } from "./structured.ts";

/** fp32 logits, one row of `vocabSize` per entry of `SchedulerOutput.logitsRequests`, in that order. */
export interface LogitsOutput {
  logits: Float32Array;
  vocabSize: number;
  numRows: number;
  /**
   * Device sampling (src/engine/device-sampler.ts): sampling row i with onDevice[i] = 1 was
   * sampled on the device as tokenIds[i] and its logits row is NOT on the host; the other rows
   * (and every prompt-logprob row) are in `logits`. Absent: every row is in `logits`.
   */
  device?: { tokenIds: Int32Array; onDevice: Uint8Array };
}

export interface ModelRunner {
  readonly vocabSize: number;
  /**
   * Runs one step: writes K/V of every scheduled token at `slotMapping` (for all scheduled tokens
   * of a layer before that layer's attention, since prefix-cache hits may point at blocks written
   * in the same step), attends over each request's `blockTable` up to `contextLen`, and returns
   * logits for the tokens at `logitsIndices`. Every step returned by schedule() must be executed.
   * Requests named in `preemptedRequestIds` / `finishedRequestIds` no longer own their blocks.
   * `bitmask` (structured outputs): grammar masks applied to the logits on the device (disallowed
   * tokens -inf) before they are returned.
   */
  execute(output: SchedulerOutput, bitmask?: TokenBitmaskBatch | null): LogitsOutput | Promise<LogitsOutput>;
}
