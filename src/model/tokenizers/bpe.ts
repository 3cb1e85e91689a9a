// Byte-pair encoding of one pre-token, as llama.cpp's llm_tokenizer_bpe_session: start from its
// characters, repeatedly merge the adjacent pair with the lowest merge rank (ties: leftmost)
// using a priority queue over a linked list of symbols, then look the symbols up. Results are
// cached per pre-token, so long prompts cost one merge run per distinct word.
import { byteEncode } from "./byte-unicode.ts";
import { Heap } from "./heap.ts";

export interface BpeVocabView {
  /** Token id of an exact text, or undefined. */
  textToId(text: string): number | undefined;
  /**
   * Merge rank of (left, right), or undefined; the ids are the sides' token ids (-1: not a
   * token), which lets the vocabulary look most pairs up by number instead of by text.
   */
  mergeRank(left: string, leftId: number, right: string, rightId: number): number | undefined;
}

export interface BpeOptions {
  /** A pre-token that is itself a token is not merged (llama.cpp ignore_merges). */
  ignoreMerges: boolean;
  /** Pre-tokens are byte-level text (GPT-2 alphabet); otherwise raw UTF-8 with <0xXX> byte tokens. */
  byteEncoded: boolean;
  /** A pre-token made only of "\n" that is a token stays whole (llama.cpp's Gemma 4 rule). */
  wholeNewlineRuns: boolean;
}

interface Bigram {
  left: number;
  right: number;
  text: string;
  rank: number;
}

const CACHE_LIMIT = 200_000;
const encoder = new TextEncoder();
const HEX = "0123456789ABCDEF";

export class BpeEncoder {
  private cache = new Map<string, number[]>();

  constructor(
    private readonly vocab: BpeVocabView,
    private readonly opts: BpeOptions,
  ) {}

  /** Appends the ids of one pre-token (plain text; byte-level encoded here when the vocabulary is) to `out`. */
  encodeWord(word: string, out: number[]): void {
    if (word.length === 0) return;
    let ids = this.cache.get(word);
    if (ids === undefined) {
      ids = this.merge(this.opts.byteEncoded ? byteEncode(word) : word);
      if (this.cache.size >= CACHE_LIMIT) this.cache = new Map();
      this.cache.set(word, ids);
    }
    for (const id of ids) out.push(id);
  }

  private merge(word: string): number[] {
    const whole =
      (this.opts.ignoreMerges && this.vocab.textToId(word) !== undefined) ||
      (this.opts.wholeNewlineRuns && /^\n+$/.test(word) && this.vocab.textToId(word) !== undefined);
    const text: string[] = whole ? [word] : Array.from(word);
    const n = text.length;
    const id = new Int32Array(n);
    for (let i = 0; i < n; i++) id[i] = this.vocab.textToId(text[i]!) ?? -1;
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    const queue = new Heap<Bigram>((a, b) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left));
    const addBigram = (l: number, r: number) => {
      if (l === -1 || r === -1) return;
      const rank = this.vocab.mergeRank(text[l]!, id[l]!, text[r]!, id[r]!);
      if (rank === undefined) return;
      queue.push({ left: l, right: r, text: text[l]! + text[r]!, rank });
    };
    for (let i = 1; i < n; i++) addBigram(i - 1, i);
    for (let b = queue.pop(); b !== undefined; b = queue.pop()) {
      const lt = text[b.left]!;
      const rt = text[b.right]!;
      if (lt.length === 0 || rt.length === 0 || lt + rt !== b.text) continue; // outdated
      text[b.left] = b.text;
      id[b.left] = this.vocab.textToId(b.text) ?? -1;
      text[b.right] = "";
      next[b.left] = next[b.right]!;
      if (next[b.right]! >= 0) prev[next[b.right]!] = b.left;
      addBigram(prev[b.left]!, b.left);
      addBigram(b.left, next[b.left]!);
    }
    const ids: number[] = [];
    for (let i = 0; i !== -1 && n > 0; i = next[i]!) {
      const s = text[i]!;
      if (s.length === 0) continue;
      if (id[i]! >= 0) {
        ids.push(id[i]!);
        continue;
      }
      // Not a token: its bytes, as single-byte tokens (llama.cpp drops bytes with no token).
      for (const byte of encoder.encode(s)) {
        const t = this.opts.byteEncoded ? (byte < 0x80 ? String.fromCharCode(byte) : undefined) : `<0x${HEX[byte >> 4]}${HEX[byte & 15]}>`;
        const bid = t === undefined ? undefined : this.vocab.textToId(t);
        if (bid !== undefined) ids.push(bid);
      }
    }
    return ids;
  }
}
