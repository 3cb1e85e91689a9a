// Requests and their sampling parameters, as seen by the block manager, the scheduler and
// the sampler. Pure TypeScript, no native dependency.

/**
 * Per-request sampling parameters with every default filled in (OpenAI/vLLM semantics; see
 * sampler.ts for the order): makeSamplingParams resolves them from api.ts's SamplingParams, the
 * wire form the frontend sends.
 */
export interface ResolvedSamplingParams {
  /** 0 (or below 1e-5) means greedy. Default 1. */
  temperature: number;
  /** Keep the k most likely tokens; 0 or -1 (or >= vocab) disables. Default 0. */
  topK: number;
  /** Nucleus sampling mass in (0, 1]; 1 disables. Default 1. */
  topP: number;
  /** Drop tokens whose probability is below minP × p(max); 0 disables. Default 0. */
  minP: number;
  /** Per-request seed: same seed ⇒ same tokens whatever the batch. Null: drawn at random. */
  seed: number | null;
  /** HF repetition penalty over prompt+output tokens; 1 disables. Default 1. */
  repetitionPenalty: number;
  /** OpenAI frequency penalty over output tokens; 0 disables. */
  frequencyPenalty: number;
  /** OpenAI presence penalty over output tokens; 0 disables. */
  presencePenalty: number;
  /** Number of top alternatives to return as logprobs (0..20); null: no logprobs at all. */
  logprobs: number | null;
  /** Maximum number of generated tokens (capped further by maxModelLen). */
  maxTokens: number;
  /** Stop conditions are not checked before this many tokens were generated. Default 0. */
  minTokens: number;
  /** Extra token ids that end generation with finish_reason 'stop' (token kept in token ids). */
  stopTokenIds: number[];
  /** Do not stop at the model's EOS token. */
  ignoreEos: boolean;
  /** [token id, additive bias] pairs added to the logits before the penalties (OpenAI logit_bias). */
  logitBias: [number, number][];
  /** Logprobs of the prompt tokens with this many alternatives (0..20); null: none (no extra logits rows). */
  promptLogprobs: number | null;
}

export const DEFAULT_SAMPLING_PARAMS: Readonly<ResolvedSamplingParams> = Object.freeze({
  temperature: 1,
  topK: 0,
  topP: 1,
  minP: 0,
  seed: null,
  repetitionPenalty: 1,
  frequencyPenalty: 0,
  presencePenalty: 0,
  logprobs: null,
  maxTokens: 16,
  minTokens: 0,
  stopTokenIds: [],
  ignoreEos: false,
  logitBias: [],
  promptLogprobs: null,
});

/**
 * Fills in defaults (for missing or undefined fields, so the server's `SamplingParams` from
 * api.ts with `seed?`/`logprobs?` fits) and validates ranges; throws RangeError on bad values.
 */
export function makeSamplingParams(p: Partial<ResolvedSamplingParams> = {}): ResolvedSamplingParams {
  const given = Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as Partial<ResolvedSamplingParams>;
  const s: ResolvedSamplingParams = {
    ...DEFAULT_SAMPLING_PARAMS,
    ...given,
    stopTokenIds: [...(p.stopTokenIds ?? [])],
    logitBias: (p.logitBias ?? []).map(([t, b]) => [t, b] as [number, number]),
  };
  const bad = (what: string): never => {
    throw new RangeError(`invalid sampling parameter: ${what}`);
  };
  if (!(s.temperature >= 0) || !Number.isFinite(s.temperature)) bad(`temperature=${s.temperature} (must be >= 0)`);
  if (!Number.isInteger(s.topK) || s.topK < -1) bad(`topK=${s.topK} (must be an integer >= -1)`);
  if (!(s.topP > 0 && s.topP <= 1)) bad(`topP=${s.topP} (must be in (0, 1])`);
  if (!(s.minP >= 0 && s.minP <= 1)) bad(`minP=${s.minP} (must be in [0, 1])`);
  if (!(s.repetitionPenalty > 0) || !Number.isFinite(s.repetitionPenalty)) bad(`repetitionPenalty=${s.repetitionPenalty} (must be > 0)`);
  if (!(s.frequencyPenalty >= -2 && s.frequencyPenalty <= 2)) bad(`frequencyPenalty=${s.frequencyPenalty} (must be in [-2, 2])`);
  if (!(s.presencePenalty >= -2 && s.presencePenalty <= 2)) bad(`presencePenalty=${s.presencePenalty} (must be in [-2, 2])`);
  if (s.promptLogprobs !== null && (!Number.isInteger(s.promptLogprobs) || s.promptLogprobs < 0 || s.promptLogprobs > 20))
    bad(`promptLogprobs=${s.promptLogprobs} (must be an integer in [0, 20])`);
  if (s.logprobs !== null && (!Number.isInteger(s.logprobs) || s.logprobs < 0 || s.logprobs > 20))
    bad(`logprobs=${s.logprobs} (must be an integer in [0, 20])`);
  if (!Number.isInteger(s.maxTokens) || s.maxTokens < 1) bad(`maxTokens=${s.maxTokens} (must be an integer >= 1)`);
  if (!Number.isInteger(s.minTokens) || s.minTokens < 0) bad(`minTokens=${s.minTokens} (must be an integer >= 0)`);
  if (s.seed !== null && !Number.isSafeInteger(s.seed)) bad(`seed=${s.seed} (must be a safe integer)`);
  for (const t of s.stopTokenIds) if (!Number.isInteger(t) || t < 0) bad(`stopTokenIds contains ${t}`);
  for (const [t, b] of s.logitBias) if (!Number.isInteger(t) || t < 0 || !Number.isFinite(b)) bad(`logitBias contains [${t}, ${b}]`);
  return s;
}

export type RequestStatus = "waiting" | "running" | "preempted" | "finished";
import type { FinishReason } from "./api.ts";
export type { FinishReason };

export interface RequestInit {
  requestId: string;
  promptTokenIds: readonly number[];
  sampling?: Partial<ResolvedSamplingParams>;
  /** EOS token id of the model (null: none). */
  eosTokenId?: number | null;
  /** Extra prefix-cache key (cache salt, adapter id …): requests with different keys never share blocks. */
  cacheKey?: string | null;
  /** Arrival time in ms (defaults to performance.now()). */
  arrivalTime?: number;
}

let arrivalCounter = 0;

function randomSeed(): number {
  // 53 random bits; only used when the caller gave no seed.
  return Math.floor(Math.random() * 2 ** 32) * 2 ** 21 + Math.floor(Math.random() * 2 ** 21);
}

export class Request {
  readonly requestId: string;
  readonly promptTokenIds: readonly number[];
  /** Prompt followed by the generated tokens (what a preempted request recomputes). */
  readonly allTokenIds: number[];
  readonly outputTokenIds: number[] = [];
  readonly sampling: ResolvedSamplingParams;
  readonly eosTokenId: number | null;
  readonly cacheKey: string | null;
  readonly arrivalTime: number;
  /** Monotonic admission order; lower = higher priority (FCFS). */
  readonly arrivalSeq: number;
  /** Seed actually used by the sampler (the given one, or a random one). */
  readonly samplerSeed: number;

  status: RequestStatus = "waiting";
  finishReason: FinishReason | null = null;
  /** Stop token id that ended the request, if any (null for EOS, length, abort). */
  stopReason: number | null = null;
  /** Tokens whose K/V are in the cache (or scheduled to be written in the current step). */
  numComputedTokens = 0;
  /** Prompt tokens served from the prefix cache at first scheduling (-1: not yet scheduled). */
  numCachedTokens = -1;
  numPreemptions = 0;
  /**
   * Prompt logprobs (sampling.promptLogprobs set): entry p is the logprob of prompt token p given
   * the tokens before it (entry 0 is null: nothing predicts the first token). Filled as prefill
   * chunks run; promptLogprobsDone positions have their logits computed.
   */
  readonly promptLogprobs: (SampleLogprobs | null)[] = [null];
  /** Prompt positions p (< numPromptTokens - 1) whose logits row gave entry p + 1. */
  promptLogprobsDone = 0;
  /** The prompt logprobs went out with an output (sent once). */
  promptLogprobsSent = false;
  /** Chained hashes of the full blocks of allTokenIds (maintained by KVCacheManager). */
  readonly blockHashes: bigint[] = [];

  constructor(init: RequestInit) {
    if (init.promptTokenIds.length === 0) throw new RangeError(`request ${init.requestId}: empty prompt`);
    for (const t of init.promptTokenIds) {
      if (!Number.isInteger(t) || t < 0) throw new RangeError(`request ${init.requestId}: bad prompt token id ${t}`);
    }
    this.requestId = init.requestId;
    this.promptTokenIds = Object.freeze([...init.promptTokenIds]);
    this.allTokenIds = [...init.promptTokenIds];
    this.sampling = makeSamplingParams(init.sampling);
    this.eosTokenId = init.eosTokenId ?? null;
    this.cacheKey = init.cacheKey ?? null;
    this.arrivalTime = init.arrivalTime ?? performance.now();
    this.arrivalSeq = arrivalCounter++;
    this.samplerSeed = this.sampling.seed ?? randomSeed();
  }

  get numPromptTokens(): number {
    return this.promptTokenIds.length;
  }
  get numOutputTokens(): number {
    return this.outputTokenIds.length;
  }
  get numTokens(): number {
    return this.allTokenIds.length;
  }
  /** Prompt positions that still need a logits row for prompt logprobs. */
  get pendingPromptRows(): number {
    return this.sampling.promptLogprobs === null ? 0 : Math.max(0, this.numPromptTokens - 1 - this.promptLogprobsDone);
  }
  get isFinished(): boolean {
    return this.status === "finished";
  }

  appendOutputToken(tokenId: number): void {
    this.outputTokenIds.push(tokenId);
    this.allTokenIds.push(tokenId);
  }
}

/** One alternative in a logprobs list. */
export interface TokenLogprob {
  tokenId: number;
  logprob: number;
}

/** Logprobs of one sampled token (see sampler.ts: log-softmax of the raw model logits). */
export interface SampleLogprobs {
  tokenId: number;
  logprob: number;
  /** 1-based rank of the sampled token among the raw logits (1 = most likely). */
  rank: number;
  /** The top-n alternatives, most likely first (n = ResolvedSamplingParams.logprobs). */
  top: TokenLogprob[];
}
