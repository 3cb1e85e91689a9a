// Structured outputs in the engine: one xgrammar matcher per constrained request, advanced with
// each sampled token, and the batch's token bitmask for the next step.
//
// Where the matcher runs (the design choice): the frontend compiles every grammar first (a bad
// schema is a 400 there, and its cache makes repeats free), but the per-step matcher runs here,
// in the engine process, on its own compiled copy (cached per spec as well). The alternative,
// the frontend computing step t+1's mask when it receives token t and sending it back, puts a
// process round trip (and the HTTP thread's load) between every two steps of a constrained
// request, and needs a timeout path for a frontend that falls behind. Here a mask costs one
// WASM call per constrained row per step (~0.1 ms at 32k vocab), computed between steps by
// prepare(), after the previous step's tokens were accepted; free requests cost nothing.
import type { GrammarMatcher } from "@mlc-ai/web-xgrammar";

import type { Tokenizer } from "../model/tokenizer.ts";
import type { StructuredSpec } from "../structured/spec.ts";
import { GrammarCompilerCache, grammarVocab, xgrammar } from "../structured/xgrammar.ts";

/** The batch's bitmask rows: `mask` row k (int32 words) constrains logits row `rows[k]`. */
export interface TokenBitmaskBatch {
  mask: Int32Array;
  rows: Int32Array;
  count: number;
}

interface MatcherState {
  matcher: GrammarMatcher;
  /** The mask for the next token; null until prepare() computed it after the last accept. */
  next: Int32Array | null;
  /** The matcher refused a token (cannot happen when the mask was applied): no more masking. */
  broken: boolean;
}

export class StructuredOutputs {
  readonly compilers: GrammarCompilerCache;
  private readonly states = new Map<string, MatcherState>();
  private mask = new Int32Array(0);
  private rows = new Int32Array(0);
  /** Requests whose registration was cancelled (aborted) while their grammar compiled. */
  private readonly cancelled = new Set<string>();
  private readonly pending = new Set<string>();

  constructor(tokenizer: Tokenizer, vocabSize: number) {
    this.compilers = new GrammarCompilerCache(grammarVocab(tokenizer, vocabSize));
  }

  get words(): number {
    return this.compilers.words;
  }

  /** Number of constrained requests held. */
  get size(): number {
    return this.states.size;
  }

  /**
   * Compiles `spec` and creates the request's matcher (stop tokens: its EOS / stop ids, which
   * the grammar allows only once it is complete). Resolves false when the request was aborted
   * meanwhile (it must then not be added).
   */
  async register(requestId: string, spec: StructuredSpec, stopTokenIds: number[]): Promise<boolean> {
    this.pending.add(requestId);
    try {
      const compiled = await this.compilers.compile(spec);
      if (this.cancelled.delete(requestId)) return false;
      const matcher = await (await xgrammar()).GrammarMatcher.createGrammarMatcher(compiled, stopTokenIds);
      // The first mask now, so a request is never scheduled without one.
      const first = await matcher.getNextTokenBitmask();
      if (this.cancelled.delete(requestId)) {
        matcher.dispose();
        return false;
      }
      this.states.set(requestId, { matcher, next: first, broken: false });
      return true;
    } finally {
      this.pending.delete(requestId);
    }
  }

  /** Aborts a registration in flight; true when there was one. */
  cancel(requestId: string): boolean {
    if (!this.pending.has(requestId)) return false;
    this.cancelled.add(requestId);
    return true;
  }

  has(requestId: string): boolean {
    return this.states.has(requestId);
  }

  /** Whether some constrained request lacks its next mask (prepare() must run before a step). */
  needsPrepare(): boolean {
    for (const s of this.states.values()) if (s.next === null && !s.broken) return true;
    return false;
  }

  /** Computes the next-token mask of every request that lacks one. */
  async prepare(): Promise<void> {
    for (const s of this.states.values()) if (s.next === null && !s.broken) s.next = await s.matcher.getNextTokenBitmask();
  }

  /**
   * The bitmask rows for a batch whose logits row i belongs to requestIds[i]; null when no row is
   * constrained (free batches skip the op entirely).
   */
  batch(requestIds: readonly string[]): TokenBitmaskBatch | null {
    const W = this.words;
    let count = 0;
    for (let i = 0; i < requestIds.length; i++) {
      const s = this.states.get(requestIds[i] as string);
      if (!s || s.broken) continue;
      if (s.next === null) throw new Error(`structured outputs: no mask prepared for request ${requestIds[i]}`);
      if (this.mask.length < (count + 1) * W) {
        const grown = new Int32Array(Math.max((count + 1) * W, this.mask.length * 2));
        grown.set(this.mask);
        this.mask = grown;
        const rows = new Int32Array(Math.max(count + 1, this.rows.length * 2));
        rows.set(this.rows);
        this.rows = rows;
      }
      this.mask.set(s.next.subarray(0, W), count * W);
      this.rows[count] = i;
      count++;
    }
    return count === 0 ? null : { mask: this.mask, rows: this.rows, count };
  }

  /** Advances the request's matcher by its new tokens. Returns false if the grammar refused one. */
  accept(requestId: string, tokenIds: readonly number[]): boolean {
    const s = this.states.get(requestId);
    if (!s || s.broken) return s === undefined;
    for (const t of tokenIds) {
      if (s.matcher.isTerminated()) break; // the stop token was accepted: nothing follows
      if (!s.matcher.acceptToken(t)) {
        s.broken = true;
        return false;
      }
    }
    s.next = null;
    return true;
  }

  /** Whether the request's grammar has accepted its stop token (the output is complete). */
  terminated(requestId: string): boolean {
    return this.states.get(requestId)?.matcher.isTerminated() ?? false;
  }

  release(requestId: string): void {
    const s = this.states.get(requestId);
    if (!s) return;
    s.matcher.dispose();
    this.states.delete(requestId);
  }
}
