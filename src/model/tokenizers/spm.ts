// SentencePiece BPE as llama.cpp's llm_tokenizer_spm_session: start from the characters of the
// (space-escaped) text, repeatedly merge the adjacent pair whose concatenation is the
// highest-scoring vocabulary entry (ties: leftmost), then emit each symbol as its token, or
// or as <0xXX> byte tokens.

export interface SpmVocabView {
  textToId(text: string): number | undefined;
  score(id: number): number;
  /** Token for one byte (<0xXX>, else the byte as a 1-char token); undefined when neither exists. */
  byteToId(byte: number): number | undefined;
}

/**
 * The bigram queue, stored column-wise in typed arrays: a 1 MB prompt is one session with
 * millions of queue operations. Order: higher score first, then lower left index.
 */
class BigramQueue {
  private score = new Float64Array(1024);
  private left = new Int32Array(1024);
  private right = new Int32Array(1024);
  private size = new Int32Array(1024);
  private heap = new Int32Array(1024);
  private n = 0; // entries stored
  private h = 0; // entries in the heap
  private freeList: number[] = [];

  get length(): number {
    return this.h;
  }

  private before(a: number, b: number): boolean {
    const sa = this.score[a]!;
    const sb = this.score[b]!;
    return sa > sb || (sa === sb && this.left[a]! < this.left[b]!);
  }

  private grow(): void {
    const cap = this.score.length * 2;
    const g = <T extends Float64Array | Int32Array>(x: T): T => {
      const y = new (x.constructor as new (n: number) => T)(cap);
      y.set(x);
      return y;
    };
    this.score = g(this.score);
    this.left = g(this.left);
    this.right = g(this.right);
    this.size = g(this.size);
    this.heap = g(this.heap);
  }

  push(left: number, right: number, score: number, size: number): void {
    let e = this.freeList.pop();
    if (e === undefined) {
      if (this.n === this.score.length) this.grow();
      e = this.n++;
    }
    if (this.h === this.heap.length) this.grow();
    this.score[e] = score;
    this.left[e] = left;
    this.right[e] = right;
    this.size[e] = size;
    const hp = this.heap;
    let i = this.h++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(e, hp[p]!)) break;
      hp[i] = hp[p]!;
      i = p;
    }
    hp[i] = e;
  }

  /** Removes the best entry; returns its slot (valid until the next push) or -1. */
  pop(): number {
    if (this.h === 0) return -1;
    const hp = this.heap;
    const top = hp[0]!;
    const last = hp[--this.h]!;
    const n = this.h;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.before(hp[r]!, hp[l]!) ? r : l;
        if (!this.before(hp[c]!, last)) break;
        hp[i] = hp[c]!;
        i = c;
      }
      hp[i] = last;
    }
    this.freeList.push(top);
    return top;
  }

  leftOf(e: number): number {
    return this.left[e]!;
  }
  rightOf(e: number): number {
    return this.right[e]!;
  }
  sizeOf(e: number): number {
    return this.size[e]!;
  }
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
  const queue = new BigramQueue();
  const tryAdd = (l: number, r: number) => {
    if (l === -1 || r === -1) return;
    const t = sym[l]! + sym[r]!;
    const id = vocab.textToId(t);
    if (id === undefined) return;
    queue.push(l, r, vocab.score(id), t.length);
  };
  for (let i = 1; i < n; i++) tryAdd(i - 1, i);
  for (let e = queue.pop(); e !== -1; e = queue.pop()) {
    const bl = queue.leftOf(e);
    const br = queue.rightOf(e);
    const l = sym[bl]!;
    const r = sym[br]!;
    if (l.length === 0 || r.length === 0 || l.length + r.length !== queue.sizeOf(e)) continue;
    sym[bl] = l + r;
    sym[br] = "";
    next[bl] = next[br]!;
    if (next[br]! >= 0) prev[next[br]!] = bl;
    tryAdd(prev[bl]!, bl);
    tryAdd(bl, next[bl]!);
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
