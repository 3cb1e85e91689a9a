// Chunked prefill paced by time (--step-time-factor). A step that carries prompt tokens delays
// the next token of every sequence decoding in it by the chunk's compute, so the chunk is sized
// from a cost model of step time: the step may take at most `factor` × the predicted time of a
// plain decode step of the batch being served (min(max-num-seqs, running + waiting) rows). A
// ratio, not milliseconds: when the machine is loaded or the model is larger, decode and prefill
// slow down together and the chunk stays the same size. A floor (minStepTokens, a fixed token
// budget's worth) keeps prefill fast enough to refill the seats: measured under 16 streaming
// clients, chunks of 25–60 tokens (factor 2–3 on a compute-bound CPU, where a decode step is
// mostly per-row work) left half the seats empty and lost throughput and TTFT.
//
// The cost model is linear in what a step computes — a fixed part (weights streamed once per
// step, launches, barriers), tokens (every matmul row), logits rows (the LM head) and attention
// query-key pairs — and is fitted online from the engine's own step timings (OnlineStepCost:
// exponentially weighted least squares, so it follows the machine's current load). Tests inject a
// fixed model (StepCostModel), so the scheduler's choices are deterministic there.
import type { SchedulerOutput } from "./scheduler.ts";

/** What one step computes (the cost model's features). */
export interface StepShape {
  /** Tokens computed (matmul rows). */
  tokens: number;
  /** Logits rows: one per decode, one per chunk that ends its prompt, prompt-logprob rows. */
  rows: number;
  /** Attention query-key pairs: each token attends its own position and all before it. */
  attn: number;
}

export interface StepCostModel {
  /** Predicted step time in ms; null while the model cannot predict yet. */
  predict(s: StepShape): number | null;
  /** One measured step. */
  observe(s: StepShape, ms: number): void;
}

/** Query-key pairs of `n` new tokens after `start` cached ones. */
export function chunkPairs(start: number, n: number): number {
  return n * start + (n * (n + 1)) / 2;
}

/** The shape of a step the scheduler produced. */
export function shapeOf(out: SchedulerOutput): StepShape {
  let attn = 0;
  for (const s of out.scheduled) attn += chunkPairs(s.numComputedBefore, s.numNewTokens);
  return { tokens: out.numScheduledTokens, rows: out.logitsIndices.length, attn };
}

const NF = 4;
/** Feature vector: [1, tokens, rows, attention pairs / 1024] (scaled to similar magnitudes). */
function features(s: StepShape): number[] {
  return [1, s.tokens, s.rows, s.attn / 1024];
}

/**
 * step ms ≈ c0 + c1·tokens + c2·rows + c3·pairs/1024, fitted by exponentially weighted least
 * squares (weight `decay` per later step: ~1 / (1 − decay) steps of memory), with every
 * coefficient kept ≥ 0 (a feature whose fitted cost is negative is dropped from the fit).
 * Robust to the odd step descheduled by other load: once the model predicts, an observation is
 * capped at 3× its prediction before it enters the fit.
 */
export class OnlineStepCost implements StepCostModel {
  private readonly a: number[][] = Array.from({ length: NF }, () => new Array<number>(NF).fill(0));
  private readonly b: number[] = new Array<number>(NF).fill(0);
  private coef: number[] | null = null;
  private samples = 0;
  private firstTokens = -1;
  private distinctTokens = false;

  constructor(readonly decay = 0.97) {
    if (!(decay > 0 && decay <= 1)) throw new RangeError(`OnlineStepCost: decay=${decay} must be in (0, 1]`);
  }

  /** Fitted coefficients [fixed ms, ms/token, ms/logits row, ms/1024 pairs]; null before ready. */
  coefficients(): number[] | null {
    return this.coef ? [...this.coef] : null;
  }

  predict(s: StepShape): number | null {
    const c = this.coef;
    if (!c) return null;
    const x = features(s);
    let y = 0;
    for (let i = 0; i < NF; i++) y += (c[i] as number) * (x[i] as number);
    return y;
  }

  observe(s: StepShape, ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms) || s.tokens <= 0) return;
    const p = this.predict(s);
    const y = p !== null && p > 0 ? Math.min(ms, 3 * p) : ms;
    const x = features(s);
    for (let i = 0; i < NF; i++) {
      const row = this.a[i] as number[];
      for (let j = 0; j < NF; j++) row[j] = this.decay * (row[j] as number) + (x[i] as number) * (x[j] as number);
      this.b[i] = this.decay * (this.b[i] as number) + (x[i] as number) * y;
    }
    this.samples++;
    if (this.firstTokens < 0) this.firstTokens = s.tokens;
    else if (s.tokens !== this.firstTokens) this.distinctTokens = true;
    // Ready once two step sizes have been seen: one size alone cannot split fixed from per-token.
    if (this.samples >= 3 && this.distinctTokens) this.coef = this.solve();
  }

  /** Non-negative least squares by elimination of negative coefficients (4 features: ≤ 4 rounds). */
  private solve(): number[] | null {
    const active = [true, true, true, true];
    for (let round = 0; round < NF; round++) {
      const idx = active.flatMap((on, i) => (on ? [i] : []));
      const sol = solveRidge(
        idx.map((i) => idx.map((j) => (this.a[i] as number[])[j] as number)),
        idx.map((i) => this.b[i] as number),
      );
      if (!sol) return this.coef;
      const c = new Array<number>(NF).fill(0);
      idx.forEach((i, k) => {
        c[i] = sol[k] as number;
      });
      const neg = idx.filter((i) => (c[i] as number) < 0);
      if (neg.length === 0) return c;
      for (const i of neg) active[i] = false;
    }
    return this.coef;
  }
}

/** Solves (A + εI) x = b by Gaussian elimination with partial pivoting; null when singular. */
function solveRidge(a: number[][], b: number[]): number[] | null {
  const n = b.length;
  if (n === 0) return [];
  const m = a.map((row, i) => [...row, b[i] as number]);
  for (let i = 0; i < n; i++) {
    const row = m[i] as number[];
    // A relative ridge: tokens and rows are collinear while only decodes run.
    row[i] = (row[i] as number) * (1 + 1e-6) + 1e-12;
  }
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++)
      if (Math.abs((m[r] as number[])[col] as number) > Math.abs((m[piv] as number[])[col] as number)) piv = r;
    const pr = m[piv] as number[];
    if (Math.abs(pr[col] as number) < 1e-300) return null;
    m[piv] = m[col] as number[];
    m[col] = pr;
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const rr = m[r] as number[];
      const f = (rr[col] as number) / (pr[col] as number);
      if (f === 0) continue;
      for (let k = col; k <= n; k++) rr[k] = (rr[k] as number) - f * (pr[k] as number);
    }
  }
  const x = m.map((row, i) => (row[n] as number) / (row[i] as number));
  return x.every(Number.isFinite) ? x : null;
}

export interface StepPacerConfig {
  /** A step carrying prompt tokens may take this many times a decode step of the served batch (> 1). */
  factor: number;
  /** The cost model (default: fitted online from observed steps). */
  model?: StepCostModel;
  /** Smallest prompt chunk worth a step: a step with pending prompts always gets this many (default 16). */
  minChunk?: number;
  /**
   * Floor on a step's tokens (decodes + prompt tokens, default 128): the pacer only ever makes
   * prompt chunks larger than a fixed budget of this many tokens would. Also the whole rule while
   * the model cannot predict yet.
   */
  minStepTokens?: number;
}

/** Sizes each step's prompt chunks (Scheduler calls it; the engine feeds it step timings). */
export class StepPacer {
  readonly factor: number;
  readonly model: StepCostModel;
  readonly minChunk: number;
  readonly minStepTokens: number;

  constructor(cfg: StepPacerConfig) {
    this.factor = cfg.factor;
    this.model = cfg.model ?? new OnlineStepCost();
    this.minChunk = cfg.minChunk ?? 16;
    this.minStepTokens = cfg.minStepTokens ?? 128;
    if (!(this.factor > 1)) throw new RangeError(`StepPacer: factor=${this.factor} must be > 1`);
    if (!Number.isInteger(this.minChunk) || this.minChunk < 1) throw new RangeError(`StepPacer: minChunk=${this.minChunk}`);
    if (!Number.isInteger(this.minStepTokens) || this.minStepTokens < 0)
      throw new RangeError(`StepPacer: minStepTokens=${this.minStepTokens}`);
  }

  /**
   * The step time allowed when `decodeRows` sequences decode in the step with `decodePairs`
   * attention pairs and `served` sequences are in service (running + waiting, capped by seats):
   * factor × a decode step of `served` rows at the same mean context. null = no limit (nothing
   * decodes, so no inter-token gap is at stake) or the model cannot predict yet.
   */
  targetMs(decodeRows: number, decodePairs: number, served: number): number | null {
    if (decodeRows === 0) return null;
    const n = Math.max(served, decodeRows);
    const t = this.model.predict({ tokens: n, rows: n, attn: (decodePairs / decodeRows) * n });
    return t === null ? null : this.factor * t;
  }

  /**
   * Whether a whole prompt (n tokens from `start`, `endRows` logits rows) may join a step that
   * already ends another prompt: only when it adds less than a step's fixed part (the prediction
   * for an empty step). Otherwise a step of its own serves it about as soon and does not delay
   * the other prompt's first token (shortest work first; prompts mostly cost per token on CPU).
   */
  groupable(shape: StepShape, start: number, n: number, endRows: number): boolean {
    const base = this.model.predict(shape);
    const withIt = this.model.predict({ tokens: shape.tokens + n, rows: shape.rows + endRows, attn: shape.attn + chunkPairs(start, n) });
    const fixed = this.model.predict({ tokens: 0, rows: 0, attn: 0 });
    return base !== null && withIt !== null && fixed !== null && withIt - base <= fixed;
  }

  /**
   * Most of `remaining` prompt tokens (from position `start`; `endRows` logits rows if all are
   * taken) that fit a step already holding `shape` within `target` ms. `prefillSoFar`: prompt
   * tokens already in the step (the progress floor, minChunk, applies to the first chunk only).
   */
  chunk(shape: StepShape, start: number, remaining: number, endRows: number, target: number, prefillSoFar: number): number {
    const fits = (n: number) => {
      const p = this.model.predict({
        tokens: shape.tokens + n,
        rows: shape.rows + (n === remaining ? endRows : 0),
        attn: shape.attn + chunkPairs(start, n),
      });
      return p !== null && p <= target;
    };
    let lo = 0; // fits (or 0)
    let hi = remaining + 1; // does not fit
    if (fits(remaining)) lo = remaining;
    else {
      while (hi - lo > 1) {
        const mid = (lo + hi) >>> 1;
        if (fits(mid)) lo = mid;
        else hi = mid;
      }
    }
    if (prefillSoFar === 0) return Math.max(lo, Math.min(remaining, this.minChunk));
    return lo >= this.minChunk || lo === remaining ? lo : 0;
  }
}
