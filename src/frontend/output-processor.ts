// One generated sequence on the frontend: the engine's id events in, text events out. It
// detokenizes incrementally, resolves logprob token strings and text offsets, matches stop
// strings (cutting the text before the match) and holds back text that may still become one.
// The caller aborts the engine request once `finished` is set by a stop string.
import type { FinishReason, TokenEvent, TokenLogprob } from "../engine/api.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { IncrementalDetokenizer } from "./detokenizer.ts";
import { findStopString, stopPrefixLength } from "./stop-strings.ts";

/** A logprob record with its strings: `token` is the text the token adds at its place. */
export interface TextLogprob {
  tokenId: number;
  token: string;
  /** Raw bytes when the token is part of a character (its `token` is then U+FFFD). */
  bytes: number[] | null;
  logprob: number;
  /** Offset of this token's text in the completion text (characters, before any echo). */
  textOffset: number;
  top: { tokenId: number; token: string; bytes: number[] | null; logprob: number }[];
}

/** What the routes stream: new text and the tokens/logprobs behind it. */
export interface TextEvent {
  tokenIds: number[];
  /** New text that can be sent (stop strings removed, possible stop prefixes held back). */
  text: string;
  logprobs?: TextLogprob[];
  /** Prompt logprobs (ids and values; the route adds strings), on the first event when asked for. */
  promptLogprobs?: (TokenLogprob | null)[];
  finishReason: FinishReason | null;
  /** The stop string or stop token id that ended the sequence, when one did. */
  stopReason: string | number | null;
  promptTokens: number;
  completionTokens: number;
}

export interface OutputProcessorOptions {
  stop: readonly string[];
  /** Resolve logprob token strings (the engine sends ids and values only). */
  logprobs: boolean;
  /** Leave special tokens out of the text (default true). Tool-call parsing needs markers such as [TOOL_CALLS]. */
  skipSpecialTokens?: boolean;
  /** Keep the matched stop string, or the stop token's text, at the end of the text (vLLM's include_stop_str_in_output). */
  includeStopStr?: boolean;
}

export class OutputProcessor {
  private readonly detok: IncrementalDetokenizer;
  /** The whole output text so far (stop string cut off once matched). */
  private text = "";
  private sent = 0;
  private completionTokens = 0;
  finished = false;

  constructor(
    tok: Tokenizer,
    promptTokenIds: ArrayLike<number>,
    private readonly opts: OutputProcessorOptions,
  ) {
    this.detok = new IncrementalDetokenizer(tok, promptTokenIds, { skipSpecialTokens: opts.skipSpecialTokens ?? true });
  }

  /** Turns one engine event into a text event. Events after `finished` are ignored (null). */
  process(ev: TokenEvent): TextEvent | null {
    if (this.finished) return null;
    // The engine finishes with "stop" only on EOS or a stop token id, which is the last id of
    // the event: it counts as a token but adds no text (vLLM does the same).
    const stopTokenAt = ev.finishReason === "stop" && ev.tokenIds.length > 0 ? ev.tokenIds.length - 1 : -1;
    const tokenIds: number[] = [];
    const logprobs: TextLogprob[] | undefined = this.opts.logprobs && ev.logprobs ? [] : undefined;
    let finishReason: FinishReason | null = ev.finishReason;
    let stopReason: string | number | null = stopTokenAt >= 0 ? ev.tokenIds[stopTokenAt]! : null;
    for (let i = 0; i < ev.tokenIds.length; i++) {
      const id = ev.tokenIds[i]!;
      tokenIds.push(id);
      this.completionTokens++;
      const lp = ev.logprobs?.[i];
      if (logprobs && lp) {
        const strings = this.detok.tokenStrings([lp.tokenId, ...lp.top.map((t) => t.tokenId)]);
        logprobs.push({
          tokenId: lp.tokenId,
          token: strings[0]!,
          bytes: this.detok.partialBytes(lp.tokenId, strings[0]!),
          logprob: lp.logprob,
          textOffset: this.text.length,
          top: lp.top.map((t, k) => ({
            tokenId: t.tokenId,
            token: strings[k + 1]!,
            bytes: this.detok.partialBytes(t.tokenId, strings[k + 1]!),
            logprob: t.logprob,
          })),
        });
      }
      if (i === stopTokenAt && !this.opts.includeStopStr) break;
      const added = this.detok.push(id);
      this.text += added;
      const hit = this.opts.stop.length > 0 && added.length > 0 ? findStopString(this.text, this.opts.stop, added.length) : null;
      if (hit) {
        this.text = this.text.slice(0, hit.index + (this.opts.includeStopStr ? hit.stop.length : 0));
        finishReason = "stop";
        stopReason = hit.stop;
        break; // later tokens of this event are past the stop: dropped, as the engine is aborted
      }
    }
    if (finishReason !== null) {
      this.finished = true;
      if (typeof stopReason !== "string") this.text += this.detok.flush();
    }
    const hold = finishReason !== null ? 0 : stopPrefixLength(this.text.slice(this.sent), this.opts.stop);
    const end = Math.max(this.sent, this.text.length - hold);
    const text = this.text.slice(this.sent, end);
    this.sent = end;
    return {
      tokenIds,
      text,
      ...(logprobs ? { logprobs } : {}),
      ...(ev.promptLogprobs ? { promptLogprobs: ev.promptLogprobs } : {}),
      finishReason,
      stopReason: finishReason !== null ? stopReason : null,
      promptTokens: ev.promptTokens,
      // After a stop string, tokens past it do not count; otherwise the engine's count stands.
      completionTokens: typeof stopReason === "string" ? this.completionTokens : Math.max(this.completionTokens, ev.completionTokens),
    };
  }

  /** The text so far (for tests and non-streaming callers). */
  get outputText(): string {
    return this.text;
  }
}
