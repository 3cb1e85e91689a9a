// Sampler over fp32 logits rows.
//
// Per row, in this order (vLLM v1 order):
//  1. min_tokens: EOS (unless ignoreEos) and stop token ids are masked (−∞) while fewer than
//     minTokens tokens were generated; then logit_bias is added (OpenAI: −100 bans, +100 forces);
//  2. repetition penalty (HF): for every distinct token of prompt + output, a positive logit is
//     divided by the penalty and a negative one multiplied by it;
//  3. frequency / presence penalties (OpenAI): logit −= frequency × count + presence × [count > 0]
//     over the output tokens;
//  4. temperature 0 (< 1e-5): greedy argmax of the penalized logits (lowest id on ties); else
//  5. logits / temperature; min-p drops tokens with p < minP × p_max (on the full distribution);
//     top-k keeps the k largest (ties broken by lowest id); top-p keeps the smallest most-likely
//     set whose mass (renormalized after top-k) reaches topP;
//  6. one uniform draw by inverse CDF over the surviving tokens in ascending token id (float64
//     softmax weights).
// Randomness is counter based: the uniform for a request's i-th output token is a hash of
// (request seed, i), so a seed gives the same tokens whatever the batch, step order or preemption.
//
// Logprobs are the log-softmax of the RAW logits (before penalties, temperature and filters), as
// vLLM returns by default: the sampled token's logprob and rank, and the top-n alternatives.
//
// Cost per row is O(V) plus O(V log k) for top-k (a bounded heap); top-p finds its cut with a
// weighted quickselect (O(V) expected), never a full sort.

import type { SampleLogprobs, ResolvedSamplingParams, TokenLogprob } from "./request.ts";

/** What the sampler needs of a request (Request satisfies it). */
export interface SamplerRequest {
  readonly sampling: ResolvedSamplingParams;
  readonly promptTokenIds: readonly number[];
  readonly outputTokenIds: readonly number[];
  readonly samplerSeed: number;
  readonly eosTokenId: number | null;
}

export interface SampleResult {
  tokenId: number;
  /** Null when the request asked for no logprobs. */
  logprobs: SampleLogprobs | null;
}

export const GREEDY_EPS = 1e-5;

// ---- counter-based PRNG -------------------------------------------------------------------------

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Uniform in [0, 1) with 53 random bits, a pure function of (seed, counter). */
export function seededUniform(seed: number, counter: number): number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  const c = counter >>> 0;
  const a = fmix32(lo ^ fmix32(hi + 0x9e3779b9) ^ fmix32(c + 0x7f4a7c15));
  const b = fmix32(a ^ fmix32(c ^ 0x632be5ab) ^ fmix32(hi ^ 0x85157af5) ^ lo);
  const a2 = fmix32(b ^ 0x2545f491);
  return ((a2 >>> 5) * 67108864 + (b >>> 6)) / 9007199254740992;
}

// ---- helpers --------------------------------------------------------------------------------------

/** Index of the largest value (lowest index on ties); -1 if all are NaN/−∞-free-empty. */
export function argmax(x: ArrayLike<number>, n = x.length): number {
  let best = -1;
  let bv = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const v = x[i] as number;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best === -1 ? 0 : best;
}

/**
 * Indices of the k largest values, largest first (ties: lowest index first), among entries that
 * are > −∞. Bounded min-heap: O(n log k).
 */
export function topKIndices(x: ArrayLike<number>, k: number, n = x.length): number[] {
  if (k <= 0) return [];
  const heap: number[] = []; // min-heap by (value asc, index desc) = "worst" on top
  const worse = (i: number, j: number): boolean => {
    const vi = x[i] as number;
    const vj = x[j] as number;
    return vi < vj || (vi === vj && i > j);
  };
  const siftUp = (p: number) => {
    while (p > 0) {
      const q = (p - 1) >> 1;
      if (worse(heap[p] as number, heap[q] as number)) {
        const t = heap[p] as number;
        heap[p] = heap[q] as number;
        heap[q] = t;
        p = q;
      } else break;
    }
  };
  const siftDown = (p: number) => {
    const m = heap.length;
    for (;;) {
      const l = 2 * p + 1;
      const r = l + 1;
      let s = p;
      if (l < m && worse(heap[l] as number, heap[s] as number)) s = l;
      if (r < m && worse(heap[r] as number, heap[s] as number)) s = r;
      if (s === p) break;
      const t = heap[p] as number;
      heap[p] = heap[s] as number;
      heap[s] = t;
      p = s;
    }
  };
  for (let i = 0; i < n; i++) {
    const v = x[i] as number;
    if (!(v > Number.NEGATIVE_INFINITY)) continue;
    if (heap.length < k) {
      heap.push(i);
      siftUp(heap.length - 1);
    } else if (worse(heap[0] as number, i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap.sort((i, j) => {
    const d = (x[j] as number) - (x[i] as number);
    return d !== 0 ? d : i - j;
  });
}

/** log Σ exp(x) in float64. */
export function logSumExp(x: ArrayLike<number>, n = x.length): number {
  let m = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const v = x[i] as number;
    if (v > m) m = v;
  }
  if (m === Number.NEGATIVE_INFINITY || Number.isNaN(m)) return m;
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.exp((x[i] as number) - m);
  return m + Math.log(s);
}

// ---- penalties ------------------------------------------------------------------------------------

/** Applies min_tokens masking, logit bias and the three penalties to `logits` in place. */
export function applyPenalties(logits: Float32Array, req: SamplerRequest): void {
  const sp = req.sampling;
  const V = logits.length;
  const nOut = req.outputTokenIds.length;
  if (nOut < sp.minTokens) {
    if (req.eosTokenId !== null && !sp.ignoreEos && req.eosTokenId < V) logits[req.eosTokenId] = Number.NEGATIVE_INFINITY;
    for (const t of sp.stopTokenIds) if (t < V) logits[t] = Number.NEGATIVE_INFINITY;
  }
  for (const [t, b] of sp.logitBias) if (t < V) logits[t] = (logits[t] as number) + b;
  if (sp.repetitionPenalty !== 1) {
    const r = sp.repetitionPenalty;
    const seen = new Set<number>();
    const pen = (t: number) => {
      if (t >= V || seen.has(t)) return;
      seen.add(t);
      const v = logits[t] as number;
      logits[t] = v > 0 ? v / r : v * r;
    };
    for (const t of req.promptTokenIds) pen(t);
    for (const t of req.outputTokenIds) pen(t);
  }
  if ((sp.frequencyPenalty !== 0 || sp.presencePenalty !== 0) && nOut > 0) {
    const counts = new Map<number, number>();
    for (const t of req.outputTokenIds) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const [t, c] of counts) {
      if (t >= V) continue;
      logits[t] = (logits[t] as number) - sp.frequencyPenalty * c - sp.presencePenalty;
    }
  }
}

// ---- sampler ----------------------------------------------------------------------------------------

export class Sampler {
  private scratch = new Float32Array(0);
  private cand = new Int32Array(0);
  private weights = new Float64Array(0);
  private work = new Float64Array(0);

  /**
   * Samples one token per row. `logits` holds rows.length rows of `vocabSize` floats back to back
   * (row i belongs to requests[i]); it is not modified.
   */
  sample(logits: Float32Array, vocabSize: number, requests: readonly SamplerRequest[]): SampleResult[] {
    if (logits.length < requests.length * vocabSize) {
      throw new RangeError(`Sampler.sample: ${logits.length} logits for ${requests.length} rows of ${vocabSize}`);
    }
    const out: SampleResult[] = [];
    for (let i = 0; i < requests.length; i++) {
      out.push(this.sampleRow(logits.subarray(i * vocabSize, (i + 1) * vocabSize), requests[i] as SamplerRequest));
    }
    return out;
  }

  /** Samples from one row of raw logits (not modified). */
  sampleRow(raw: Float32Array, req: SamplerRequest): SampleResult {
    const V = raw.length;
    if (this.scratch.length < V) {
      this.scratch = new Float32Array(V);
      this.cand = new Int32Array(V);
      this.weights = new Float64Array(V);
    }
    const x = this.scratch.subarray(0, V);
    x.set(raw);
    applyPenalties(x, req);
    const sp = req.sampling;
    let tokenId: number;
    if (sp.temperature < GREEDY_EPS) {
      tokenId = argmax(x);
    } else {
      const u = seededUniform(req.samplerSeed, req.outputTokenIds.length);
      tokenId = this.sampleProcessed(x, sp, u);
    }
    return { tokenId, logprobs: sp.logprobs === null ? null : computeLogprobs(raw, tokenId, sp.logprobs) };
  }

  /**
   * Filters and samples from penalized logits `x` (modified: divided by temperature) with the
   * uniform `u`. Exposed for tests.
   */
  sampleProcessed(x: Float32Array, sp: Pick<ResolvedSamplingParams, "temperature" | "topK" | "topP" | "minP">, u: number): number {
    const V = x.length;
    const invT = 1 / sp.temperature;
    let m = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < V; i++) {
      const v = (x[i] as number) * invT;
      x[i] = v;
      if (v > m) m = v;
    }
    if (!(m > Number.NEGATIVE_INFINITY)) return argmax(x); // everything masked: degenerate
    // min-p: p_i >= minP * p_max  <=>  x_i >= m + ln(minP)
    const minLogit = sp.minP > 0 ? m + Math.log(sp.minP) : Number.NEGATIVE_INFINITY;

    if (this.cand.length < V) {
      this.cand = new Int32Array(V);
      this.weights = new Float64Array(V);
    }
    if (this.work.length < V) this.work = new Float64Array(V);
    const cand = this.cand;
    const w = this.weights;
    let nc = 0;
    if (sp.topK > 0 && sp.topK < V) {
      const idx = topKIndices(x, sp.topK, V);
      idx.sort((a, b) => a - b);
      for (const i of idx) if ((x[i] as number) >= minLogit) cand[nc++] = i;
    } else {
      for (let i = 0; i < V; i++) {
        const v = x[i] as number;
        if (v >= minLogit && v > Number.NEGATIVE_INFINITY) cand[nc++] = i;
      }
    }
    if (nc === 0) return argmax(x);
    // Candidates are in ascending token id from here on.
    let total = 0;
    for (let j = 0; j < nc; j++) {
      const e = Math.exp((x[cand[j] as number] as number) - m);
      w[j] = e;
      total += e;
    }

    if (sp.topP < 1) {
      const cut = nucleusCut(w, nc, sp.topP * total, this.work);
      if (cut.threshold > 0) {
        let k = 0;
        let ties = cut.ties;
        total = 0;
        for (let j = 0; j < nc; j++) {
          const wj = w[j] as number;
          if (wj > cut.threshold || (wj === cut.threshold && ties-- > 0)) {
            cand[k] = cand[j] as number;
            w[k] = wj;
            total += wj;
            k++;
          }
        }
        nc = k;
      }
    }

    const r = u * total;
    let acc = 0;
    for (let j = 0; j < nc; j++) {
      acc += w[j] as number;
      if (r < acc) return cand[j] as number;
    }
    return cand[nc - 1] as number;
  }
}

/**
 * Top-p cut by weighted quickselect, O(n) expected: the nucleus (most likely first, lowest id
 * first among equals, until the mass reaches `target`) is every weight > threshold plus the first
 * `ties` weights equal to it. threshold 0 means "keep everything". `work` is scratch (length >= n).
 */
export function nucleusCut(w: Float64Array, n: number, target: number, work: Float64Array): { threshold: number; ties: number } {
  const a = work;
  for (let i = 0; i < n; i++) a[i] = w[i] as number;
  let lo = 0;
  let hi = n;
  let need = target;
  while (hi > lo) {
    // median of three pivot
    const x0 = a[lo] as number;
    const x1 = a[(lo + hi) >> 1] as number;
    const x2 = a[hi - 1] as number;
    const p = Math.max(Math.min(x0, x1), Math.min(Math.max(x0, x1), x2));
    // three-way partition: [lo, gt) > p, [gt, i) == p, [lt, hi) < p
    let gt = lo;
    let i = lo;
    let lt = hi;
    let massGt = 0;
    while (i < lt) {
      const v = a[i] as number;
      if (v > p) {
        a[i] = a[gt] as number;
        a[gt] = v;
        massGt += v;
        gt++;
        i++;
      } else if (v < p) {
        lt--;
        a[i] = a[lt] as number;
        a[lt] = v;
      } else {
        i++;
      }
    }
    const numEq = lt - gt;
    if (massGt >= need) {
      hi = gt;
      continue;
    }
    let acc = massGt;
    let ties = 0;
    while (ties < numEq && acc < need) {
      acc += p;
      ties++;
    }
    if (acc >= need) return { threshold: p, ties };
    need -= acc;
    lo = lt;
  }
  return { threshold: 0, ties: 0 };
}

/** Log-softmax (float64) of the raw logits: the chosen token's logprob and rank, and the top-n. */
export function computeLogprobs(raw: Float32Array, tokenId: number, topN: number): SampleLogprobs {
  const lse = logSumExp(raw);
  const chosen = raw[tokenId] as number;
  let rank = 1;
  for (let i = 0; i < raw.length; i++) if ((raw[i] as number) > chosen) rank++;
  const top: TokenLogprob[] = topKIndices(raw, topN).map((i) => ({ tokenId: i, logprob: (raw[i] as number) - lse }));
  return { tokenId, logprob: chosen - lse, rank, top };
}
