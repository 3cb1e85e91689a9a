// Splits text around special tokens the way llama.cpp's tokenizer_st_partition does: the
// special tokens are taken longest first, each claiming all its (non-overlapping, leftmost)
// occurrences in the text not yet claimed; LSTRIP/RSTRIP tokens also swallow adjacent ASCII
// whitespace. Only tokens that occur in the text are tried (one scan finds them), so a
// vocabulary with thousands of special tokens does not cost thousands of passes.

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

export class SpecialTokenMatcher {
  /** Candidates by first UTF-16 unit, in partition order (longest text first, then lowest id). */
  private readonly byFirst = new Map<number, SpecialToken[]>();
  private readonly order = new Map<number, number>();

  /** `tokens` in llama.cpp's cache order: longest text first. */
  constructor(tokens: readonly SpecialToken[]) {
    tokens.forEach((t, i) => {
      if (t.text.length === 0) return;
      this.order.set(t.id, i);
      const k = t.text.charCodeAt(0);
      let list = this.byFirst.get(k);
      if (!list) this.byFirst.set(k, (list = []));
      list.push(t);
    });
  }

  /** The special tokens that occur in `text`, in partition order. */
  private occurring(text: string): SpecialToken[] {
    const found = new Map<number, SpecialToken>();
    for (let i = 0; i < text.length; i++) {
      const list = this.byFirst.get(text.charCodeAt(i));
      if (!list) continue;
      for (const t of list) if (!found.has(t.id) && text.startsWith(t.text, i)) found.set(t.id, t);
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
