// SentencePiece BPE as llama.cpp's llm_tokenizer_spm_session: start from the characters of the
// (space-escaped) text, repeatedly merge the adjacent pair whose concatenation is the
// highest-scoring vocabulary entry (ties: leftmost), then emit each symbol as its token, or
// or as <0xXX> byte tokens.
import { Heap } from "./heap.ts";

export interface SpmVocabView {
  textToId(text: string): number | undefined;
  score(id: number): number;
  /** Token for one byte (<0xXX>, else the byte as a 1-char token); undefined when neither exists. */
  byteToId(byte: number): number | undefined;
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

const encoder = new TextEncoder();

export function spmEncode(vocab: SpmVocabView, text: string, out: number[], unkId: number | null): void {
  const sym: string[] = Array.from(text);
  const n = sym.length;
  if (n === 0) return;
  const prev = new Int32Array(n);
  const next = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  const queue = new Heap<Bigram>((a, b) => a.score > b.score || (a.score === b.score && a.left < b.left));
  const tryAdd = (l: number, r: number) => {
    if (l === -1 || r === -1) return;
    const t = sym[l]! + sym[r]!;
    const id = vocab.textToId(t);
    if (id === undefined) return;
    queue.push({ left: l, right: r, score: vocab.score(id), size: t.length });
  };
  for (let i = 1; i < n; i++) tryAdd(i - 1, i);
  for (let b = queue.pop(); b !== undefined; b = queue.pop()) {
    const l = sym[b.left]!;
    const r = sym[b.right]!;
    if (l.length === 0 || r.length === 0 || l.length + r.length !== b.size) continue;
    sym[b.left] = l + r;
    sym[b.right] = "";
    next[b.left] = next[b.right]!;
    if (next[b.right]! >= 0) prev[next[b.right]!] = b.left;
    tryAdd(prev[b.left]!, b.left);
    tryAdd(b.left, next[b.left]!);
  }
  // Merges only ever form vocabulary entries, so a final symbol is a token or a single
  // character without one (llama.cpp's rev_merge re-split never applies): the latter goes out
  // as byte tokens.
  for (let i = 0; i !== -1; i = next[i]!) {
    const s = sym[i]!;
    if (s.length === 0) continue;
    const id = vocab.textToId(s);
    if (id !== undefined) {
      out.push(id);
      continue;
    }
    for (const byte of encoder.encode(s)) {
      const bid = vocab.byteToId(byte) ?? unkId;
      if (bid === null) throw new Error(`no token for byte 0x${byte.toString(16)} and no unknown token`);
      out.push(bid);
    }
  }
}
