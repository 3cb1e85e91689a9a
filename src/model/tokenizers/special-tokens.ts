// Splits text around special tokens the way llama.cpp's tokenizer_st_partition does: the
// special tokens are taken longest first, each claiming all its (non-overlapping, leftmost)
// occurrences in the text not yet claimed; LSTRIP/RSTRIP tokens also swallow adjacent ASCII
// whitespace. Only tokens that occur in the text are tried (one scan with a trie finds them),
// so a vocabulary with thousands of special tokens does not cost thousands of passes.

export type Fragment = { text: string } | { id: number };

export interface SpecialToken {
  id: number;
  text: string;
  lstrip: boolean;
  rstrip: boolean;
}

/** C isspace in the "C" locale. */
function isCSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

interface TrieNode {
  next: Map<number, TrieNode>;
  token: SpecialToken | null;
}

export class SpecialTokenMatcher {
  /** The token texts as a trie over UTF-16 units. */
  private readonly root: TrieNode = { next: new Map(), token: null };
  /** Partition order of each token id (longest text first, as given). */
  private readonly order = new Map<number, number>();

  /** `tokens` in llama.cpp's cache order: longest text first. */
  constructor(tokens: readonly SpecialToken[]) {
    tokens.forEach((t, i) => {
      if (t.text.length === 0) return;
      this.order.set(t.id, i);
      let node = this.root;
      for (let k = 0; k < t.text.length; k++) {
        const c = t.text.charCodeAt(k);
        let child = node.next.get(c);
        if (!child) node.next.set(c, (child = { next: new Map(), token: null }));
        node = child;
      }
      node.token ??= t;
    });
  }

  /** The special tokens that occur in `text`, in partition order. */
  private occurring(text: string): SpecialToken[] {
    const found = new Map<number, SpecialToken>();
    const root = this.root.next;
    for (let i = 0; i < text.length; i++) {
      let node = root.get(text.charCodeAt(i));
      for (let j = i + 1; node !== undefined; j++) {
        if (node.token && !found.has(node.token.id)) found.set(node.token.id, node.token);
        if (j >= text.length) break;
        node = node.next.get(text.charCodeAt(j));
      }
    }
    return [...found.values()].sort((a, b) => this.order.get(a.id)! - this.order.get(b.id)!);
  }

  partition(text: string): Fragment[] {
    let frags: Fragment[] = [{ text }];
    if (text.length === 0) return [];
    for (const tok of this.occurring(text)) {
      const next: Fragment[] = [];
      for (const f of frags) {
        if (!("text" in f)) {
          next.push(f);
          continue;
        }
        const raw = f.text;
        let base = 0;
        for (;;) {
          const at = raw.indexOf(tok.text, base);
          if (at === -1) {
            if (base < raw.length) next.push({ text: raw.slice(base) });
            break;
          }
          let leftEnd = at;
          if (tok.lstrip) while (leftEnd > base && isCSpace(raw.charCodeAt(leftEnd - 1))) leftEnd--;
          if (leftEnd > base) next.push({ text: raw.slice(base, leftEnd) });
          next.push({ id: tok.id });
          base = at + tok.text.length;
          if (tok.rstrip) while (base < raw.length && isCSpace(raw.charCodeAt(base))) base++;
          if (base >= raw.length) break;
        }
      }
      frags = next;
    }
    return frags;
  }
}
