// Sampling on the device, as the tail of every step (ISSUE 16 item 3): only token ids cross to
// the host, except for the rows the device path does not carry.
//
// The tail, after the logits:
//   1. hr_op_apply_token_bitmask: structured-output masks (staged mask rows + row indices);
//   2. hr_op_add_logit_bias: logit_bias and min_tokens bans as sparse (row, token, bias)
//      entries in a fixed-size staging buffer (unused entries have row -1);
//   3. hr_op_sample: per-row temperature / top_k / top_p / uniform arrays (headroom.h
//      "sampling": temperature -> top-k -> top-p, renormalized, one inverse-CDF draw).
// The tail is launched on its own, after the forward pass (eager or a decode-graph replay) was
// launched: a step is launch forward (asynchronous on CUDA) -> grammar masks on the host
// meanwhile -> stage masks / bias / parameters -> launch the tail -> read the ids
// (EngineCore.stepAsync, LlamaRunner.launch/finish). Inside the decode graph the tail would
// make the masks inputs of the launch, so their computation could not overlap the forward
// pass. Eager rather than a second captured graph: three kernel launches, only the ops the
// step needs (no mask op without masks, no bias op without entries) over its real rows, and
// no second graph set to account for. Staging still keeps every slot past the current step
// neutral (greedy, no mask, no bias), so whatever runs over more rows never sees stale inputs.
//
// The rule (hostSamplingReason): a sampling row runs on the device unless it needs what the
// device path does not carry, and then its logits row alone is copied to the host and sampled
// there by the engine's sampler (src/engine/sampler.ts), exactly as before:
//   - logprobs (the log-softmax of the raw logits and the top-n need the row);
//   - penalties (repetition / frequency / presence need the token history);
//   - min_p with temperature > 0 (not in hr_op_sample);
//   - a logit_bias naming one token twice (the op needs distinct entries; the host adds them
//     in order), or entries that do not fit the staging buffer's remaining room.
// Prompt-logprob rows are never sampled; they are always copied.
// vLLM's order stays: bans and bias, then (host rows) penalties, then temperature, min-p,
// top-k, top-p. The device rows' uniform is the host sampler's seeded uniform (same seed and
// output index), rounded to float32, so a seed gives the same tokens on either path except
// where the draw lands within ~1e-7 of a boundary of the cumulative distribution (the device
// rule's fixed-point float32 weights vs the host's float64 ones; test/ops-sample.test.ts).
import type { Device } from "../native/device.ts";
import type { Ops } from "../native/ops.ts";
import type { LlamaModel } from "../model/llama.ts";
import { logitBiasCapacity } from "../model/arena.ts";
import { GREEDY_EPS, seededUniform, type SamplerRequest } from "./sampler.ts";
import type { TokenBitmaskBatch } from "./structured.ts";

export type HostSamplingReason = "logprobs" | "penalties" | "min_p" | "logit_bias_duplicates" | "bias_capacity";

/** Why a sampling row must be sampled on the host; null = the device path carries it. Ignores capacity. */
export function hostSamplingReason(req: SamplerRequest): HostSamplingReason | null {
  const sp = req.sampling;
  if (sp.logprobs !== null) return "logprobs";
  if (sp.repetitionPenalty !== 1 || sp.frequencyPenalty !== 0 || sp.presencePenalty !== 0) return "penalties";
  if (sp.minP > 0 && sp.temperature >= GREEDY_EPS) return "min_p";
  if (sp.logitBias.length > 1 && new Set(sp.logitBias.map(([t]) => t)).size !== sp.logitBias.length) return "logit_bias_duplicates";
  return null;
}

/**
 * The (token, bias) entries a device row needs, in the host sampler's terms: min_tokens bans
 * (EOS unless ignore_eos, and the stop ids) as -inf, then logit_bias. A token both banned and
 * biased gets one -inf entry (the host's -inf + b is -inf for any finite b). Tokens >= vocab
 * are skipped, as the host does.
 */
export function biasEntriesOf(req: SamplerRequest, vocab: number): [number, number][] {
  const sp = req.sampling;
  const banned = new Set<number>();
  if (req.outputTokenIds.length < sp.minTokens) {
    if (req.eosTokenId !== null && !sp.ignoreEos && req.eosTokenId < vocab) banned.add(req.eosTokenId);
    for (const t of sp.stopTokenIds) if (t < vocab) banned.add(t);
  }
  const out: [number, number][] = [...banned].map((t) => [t, Number.NEGATIVE_INFINITY]);
  for (const [t, b] of sp.logitBias) if (t < vocab && !banned.has(t)) out.push([t, b]);
  return out;
}

/** float32 of a uniform in [0, 1), kept below 1 (rounding to nearest could give 1). */
export function uniformF32(u: number): number {
  const f = Math.fround(u);
  return f < 1 ? f : 1 - 2 ** -24;
}

/** One step's sampling rows as staged. */
export interface DeviceSamplingPlan {
  /** Sampling rows (logits rows 0 .. rows-1). */
  rows: number;
  /** 1 = sampled on the device; 0 = its logits row is copied and sampled on the host. */
  onDevice: Uint8Array;
  numDevice: number;
  /** Why each host row is on the host (null for device rows). */
  reasons: (HostSamplingReason | null)[];
  /** Staged mask rows and bias entries (what an eager tail applies). */
  maskRows: number;
  biasEntries: number;
}

const NEUTRAL_TOP_P = 1;

export class DeviceSampler {
  /** Logit-bias staging entries (the arena's buffer). */
  readonly biasCapacity: number;
  private readonly maxRows: number;
  private readonly vocab: number;
  private readonly words: number;
  // Host mirrors of the staging buffers.
  private readonly params: Uint8Array;
  private readonly temp: Float32Array;
  private readonly topK: Int32Array;
  private readonly topP: Float32Array;
  private readonly uniform: Float32Array;
  private readonly entryBytes: Uint8Array;
  private readonly entryI32: Int32Array;
  private readonly entryF64: Float64Array;
  private readonly maskRowIdx: Int32Array;
  // What the device holds beyond the current step (reset to neutral when a step stages less).
  private stagedRows: number;
  private stagedEntries: number;
  private stagedMaskRows: number;
  /** Host bytes written to the device by stage() (all steps). */
  stagedBytes = 0;

  constructor(
    private readonly dev: Device,
    private readonly ops: Ops,
    private readonly model: LlamaModel,
  ) {
    const S = model.limits.maxSeqs;
    this.maxRows = S;
    this.vocab = model.cfg.vocabSize;
    this.words = Math.ceil(this.vocab / 32);
    this.biasCapacity = logitBiasCapacity(S);
    this.params = new Uint8Array(16 * S);
    this.temp = new Float32Array(this.params.buffer, 0, S);
    this.topK = new Int32Array(this.params.buffer, 4 * S, S);
    this.topP = new Float32Array(this.params.buffer, 8 * S, S);
    this.uniform = new Float32Array(this.params.buffer, 12 * S, S);
    this.entryBytes = new Uint8Array(16 * this.biasCapacity);
    this.entryI32 = new Int32Array(this.entryBytes.buffer);
    this.entryF64 = new Float64Array(this.entryBytes.buffer);
    this.maskRowIdx = new Int32Array(S);
    // Everything neutral on the device (the arena's contents are undefined until staged).
    this.stagedRows = S;
    this.stagedEntries = this.biasCapacity;
    this.stagedMaskRows = S;
    this.stageNeutral();
  }

  private get logits(): bigint {
    return this.model.buf("logits");
  }

  /** Writes neutral values to every staging slot (start-up). */
  stageNeutral(): void {
    this.stagedRows = this.maxRows;
    this.stagedEntries = this.biasCapacity;
    this.stagedMaskRows = this.maxRows;
    this.stageParams(0, []);
    this.stageEntries(0);
    this.stageMask(null);
  }

  /**
   * Decides each sampling row's path and stages the device rows' parameters, bias entries and
   * the batch's grammar masks (masks apply to every row: host rows are copied after them, as
   * before). `requests[i]` owns logits row i.
   */
  stage(requests: readonly SamplerRequest[], bitmask: TokenBitmaskBatch | null): DeviceSamplingPlan {
    const rows = requests.length;
    if (rows > this.maxRows) throw new RangeError(`device sampling: ${rows} rows exceed the arena's ${this.maxRows}`);
    const onDevice = new Uint8Array(rows);
    const reasons: (HostSamplingReason | null)[] = [];
    let numDevice = 0;
    let n = 0;
    for (let i = 0; i < rows; i++) {
      const req = requests[i]!;
      let reason = hostSamplingReason(req);
      let entries: [number, number][] = [];
      if (reason === null) {
        entries = biasEntriesOf(req, this.vocab);
        if (n + entries.length > this.biasCapacity) reason = "bias_capacity";
      }
      reasons.push(reason);
      if (reason !== null) continue;
      onDevice[i] = 1;
      numDevice++;
      for (const [t, b] of entries) {
        this.entryI32[4 * n] = i;
        this.entryI32[4 * n + 1] = t;
        this.entryF64[2 * n + 1] = b;
        n++;
      }
    }
    this.stageParams(rows, requests, onDevice);
    this.stageEntries(n);
    const maskRows = this.stageMask(bitmask);
    return { rows, onDevice, numDevice, reasons, maskRows, biasEntries: n };
  }

  /** Per-row parameters: device rows as asked, everything else greedy (cheap, ignored). */
  private stageParams(rows: number, requests: readonly SamplerRequest[], onDevice?: Uint8Array): void {
    for (let i = 0; i < rows; i++) {
      const sp = requests[i]!.sampling;
      if (onDevice?.[i] && sp.temperature >= GREEDY_EPS) {
        const req = requests[i]!;
        this.temp[i] = Math.fround(sp.temperature);
        this.topK[i] = Math.max(sp.topK, 0); // -1 (off) -> 0
        this.topP[i] = Math.fround(sp.topP);
        this.uniform[i] = uniformF32(seededUniform(req.samplerSeed, req.outputTokenIds.length));
      } else {
        this.temp[i] = 0;
        this.topK[i] = 0;
        this.topP[i] = NEUTRAL_TOP_P;
        this.uniform[i] = 0;
      }
    }
    if (this.stagedRows > rows) {
      this.temp.fill(0, rows, this.stagedRows);
      this.topK.fill(0, rows, this.stagedRows);
      this.topP.fill(NEUTRAL_TOP_P, rows, this.stagedRows);
      this.uniform.fill(0, rows, this.stagedRows);
    }
    this.stagedRows = rows;
    // One copy of the four arrays (16 bytes a row of the arena's largest batch).
    this.dev.copyToDeviceAsync(this.model.buf("sampleParams"), this.params);
    this.stagedBytes += this.params.byteLength;
  }

  /** Bias entries 0 .. n-1 are filled; entries the device still holds past n become padding. */
  private stageEntries(n: number): void {
    for (let k = n; k < this.stagedEntries; k++) {
      this.entryI32[4 * k] = -1;
      this.entryI32[4 * k + 1] = 0;
      this.entryF64[2 * k + 1] = 0;
    }
    const upTo = Math.max(n, this.stagedEntries);
    this.stagedEntries = n;
    if (upTo === 0) return;
    this.dev.copyToDeviceAsync(this.model.buf("logitBias"), this.entryBytes.subarray(0, 16 * upTo));
    this.stagedBytes += 16 * upTo;
  }

  /** Grammar mask rows and their logits rows; indices the device still holds past them become -1. */
  private stageMask(bitmask: TokenBitmaskBatch | null): number {
    const count = bitmask?.count ?? 0;
    if (count > this.maxRows) throw new RangeError(`token bitmask of ${count} rows does not fit the arena`);
    if (bitmask && count > 0) {
      const w = count * this.words;
      if (bitmask.mask.length < w) throw new RangeError(`token bitmask of ${count} rows has ${bitmask.mask.length} words`);
      this.dev.copyToDeviceAsync(this.model.buf("tokenBitmask"), bitmask.mask.subarray(0, w));
      this.stagedBytes += 4 * w;
      this.maskRowIdx.set(bitmask.rows.subarray(0, count));
    }
    const upTo = Math.max(count, this.stagedMaskRows);
    this.maskRowIdx.fill(-1, count, upTo);
    this.stagedMaskRows = count;
    if (upTo > 0) {
      this.dev.copyToDeviceAsync(this.model.buf("bitmaskRows"), this.maskRowIdx.subarray(0, upTo));
      this.stagedBytes += 4 * upTo;
    }
    return count;
  }

  /** Launches the tail of a step whose forward pass was launched: only the ops the staged plan needs, over its rows. */
  runTail(plan: DeviceSamplingPlan): void {
    const { rows } = plan;
    if (rows === 0) return;
    const m = this.model;
    if (plan.maskRows > 0)
      this.ops.applyTokenBitmask(this.logits, rows, m.buf("tokenBitmask"), m.buf("bitmaskRows"), plan.maskRows, this.vocab);
    if (plan.numDevice === 0) return;
    if (plan.biasEntries > 0) this.ops.addLogitBias(this.logits, rows, m.buf("logitBias"), plan.biasEntries, this.vocab);
    this.sampleOps(rows);
  }

  private sampleOps(rows: number): void {
    const S = this.maxRows;
    const p = this.model.buf("sampleParams");
    this.ops.sample(
      this.model.buf("sampledIds"),
      this.logits,
      p,
      p + BigInt(4 * S),
      p + BigInt(8 * S),
      p + BigInt(12 * S),
      rows,
      this.vocab,
    );
  }

  /** Copies the sampled ids of rows 0 .. rows-1 to `out`. */
  readIds(rows: number, out: Int32Array): void {
    this.dev.copyFromDevice(out.subarray(0, rows), this.model.buf("sampledIds"));
  }
}
