// Strings for prompt logprobs (completions with echo + logprobs): each prompt token's text is
// what it adds to the decode of the tokens before it, decoded over a short window (so the cost
// is linear in the prompt, and SentencePiece's leading space survives as it does in the echo).
import type { TokenLogprob } from "../engine/api.ts";
import type { Tokenizer } from "../model/tokenizer.ts";

const WINDOW = 6;

export interface PromptLogprob {
  token: string;
  /** null for the first token (nothing predicts it). */
  logprob: number | null;
  /** Offset of the token's text in the prompt text (characters). */
  textOffset: number;
  top: { token: string; logprob: number }[] | null;
}

/** The text `id` adds after `ids[..i]` (window of the last few tokens). */
function addedText(tok: Tokenizer, ids: readonly number[], i: number, id: number): string {
  const ctx = ids.slice(Math.max(0, i - WINDOW), i);
  const before = tok.decode(ctx, { skipSpecialTokens: true });
  const after = tok.decode([...ctx, id], { skipSpecialTokens: true });
  return after.startsWith(before) ? after.slice(before.length) : tok.decode([id], { skipSpecialTokens: true });
}

export function promptLogprobStrings(tok: Tokenizer, promptIds: readonly number[], lps: readonly (TokenLogprob | null)[]): PromptLogprob[] {
  const out: PromptLogprob[] = [];
  let offset = 0;
  promptIds.forEach((id, i) => {
    const token = addedText(tok, promptIds, i, id);
    const lp = lps[i] ?? null;
    out.push({
      token,
      logprob: lp ? lp.logprob : null,
      textOffset: offset,
      top: lp ? lp.top.map((t) => ({ token: addedText(tok, promptIds, i, t.tokenId), logprob: t.logprob })) : null,
    });
    offset += token.length;
  });
  return out;
}
