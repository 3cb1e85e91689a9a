// The hand-written splitters llama.cpp's unicode.cpp uses instead of a regex engine for the two
// most common pre-tokenizer regexes (GPT-2's and Llama 3's). Each takes the codepoints and the
// current pieces (lengths in codepoints) and returns the finer pieces.
import { CptFlag, cptFlags, cptToLower } from "./unicode.ts";

/** unicode.cpp's scanner for 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
export function splitGpt2(cps: Uint32Array, offsets: number[]): number[] {
  const out: number[] = [];
  let start = 0;
  for (const len of offsets) {
    const ini = start;
    const end = start + len;
    start = end;
    const cpt = (p: number) => (p >= ini && p < end ? cps[p]! : -1);
    const flags = (p: number) => (p >= ini && p < end ? cptFlags(cps[p]!) : 0);
    let prevEnd = ini;
    const add = (e: number) => {
      const n = e - prevEnd;
      if (n > 0) out.push(n);
      prevEnd = e;
      return n;
    };
    const WLN = CptFlag.WHITESPACE | CptFlag.LETTER | CptFlag.NUMBER;
    for (let pos = ini; pos < end; ) {
      const c = cpt(pos);
      const f = flags(pos);
      if (c === 0x27 && pos + 1 < end) {
        const n = cpt(pos + 1);
        if (n === 0x73 || n === 0x74 || n === 0x6d || n === 0x64) {
          pos += add(pos + 2);
          continue;
        }
        if (pos + 2 < end) {
          const nn = cpt(pos + 2);
          if ((n === 0x72 && nn === 0x65) || (n === 0x76 && nn === 0x65) || (n === 0x6c && nn === 0x6c)) {
            pos += add(pos + 3);
            continue;
          }
        }
      }
      let f2 = c === 0x20 ? flags(pos + 1) : f;
      if (f2 & CptFlag.LETTER) {
        pos += c === 0x20 ? 1 : 0;
        while (f2 & CptFlag.LETTER) f2 = flags(++pos);
        add(pos);
        continue;
      }
      if (f2 & CptFlag.NUMBER) {
        pos += c === 0x20 ? 1 : 0;
        while (f2 & CptFlag.NUMBER) f2 = flags(++pos);
        add(pos);
        continue;
      }
      if (!(f2 & WLN) && f2) {
        pos += c === 0x20 ? 1 : 0;
        while (!(f2 & WLN) && f2) f2 = flags(++pos);
        add(pos);
        continue;
      }
      let ws = 0;
      while (flags(pos + ws) & CptFlag.WHITESPACE) ws++;
      if (ws > 1 && cpt(pos + ws) !== -1) {
        pos += ws - 1;
        add(pos);
        continue;
      }
      if (ws > 0) {
        pos += ws;
        add(pos);
        continue;
      }
      add(++pos);
    }
  }
  return out;
}

/** unicode.cpp's scanner for the Llama-3 regex (see LLAMA3 in pre-types.ts). */
export function splitLlama3(cps: Uint32Array, offsets: number[]): number[] {
  const out: number[] = [];
  let start = 0;
  for (const len of offsets) {
    const ini = start;
    const end = start + len;
    start = end;
    const cpt = (p: number) => (p >= ini && p < end ? cps[p]! : -1);
    const flags = (p: number) => (p >= ini && p < end ? cptFlags(cps[p]!) : 0);
    let prevEnd = ini;
    const add = (e: number) => {
      const n = e - prevEnd;
      if (n > 0) out.push(n);
      prevEnd = e;
      return n;
    };
    const WLN = CptFlag.WHITESPACE | CptFlag.LETTER | CptFlag.NUMBER;
    for (let pos = ini; pos < end; ) {
      const c = cpt(pos);
      const f = flags(pos);
      if (c === 0x27 && pos + 1 < end) {
        const n = cptToLower(cpt(pos + 1));
        if (n === 0x73 || n === 0x74 || n === 0x6d || n === 0x64) {
          pos += add(pos + 2);
          continue;
        }
        if (pos + 2 < end) {
          const nn = cptToLower(cpt(pos + 2));
          if ((n === 0x72 && nn === 0x65) || (n === 0x76 && nn === 0x65) || (n === 0x6c && nn === 0x6c)) {
            pos += add(pos + 3);
            continue;
          }
        }
      }
      // [^\r\n\p{L}\p{N}]?\p{L}+
      if (!(c === 0x0d || c === 0x0a || f & CptFlag.NUMBER)) {
        if (f & CptFlag.LETTER || flags(pos + 1) & CptFlag.LETTER) {
          pos++;
          while (flags(pos) & CptFlag.LETTER) pos++;
          add(pos);
          continue;
        }
      }
      // \p{N}{1,3}
      if (f & CptFlag.NUMBER) {
        let i0 = pos;
        while (flags(pos) & CptFlag.NUMBER) {
          if (++pos - i0 >= 3) {
            add(pos);
            i0 = pos;
          }
        }
        add(pos);
        continue;
      }
      // <space>?[^\s\p{L}\p{N}]+[\r\n]*
      let f2 = c === 0x20 ? flags(pos + 1) : f;
      if (!(f2 & WLN) && f) {
        pos += c === 0x20 ? 1 : 0;
        while (!(f2 & WLN) && f2) f2 = flags(++pos);
        let c2 = cpt(pos);
        while (c2 === 0x0d || c2 === 0x0a) c2 = cpt(++pos);
        add(pos);
        continue;
      }
      let ws = 0;
      let lastRN = 0;
      while (flags(pos + ws) & CptFlag.WHITESPACE) {
        const c2 = cpt(pos + ws);
        if (c2 === 0x0d || c2 === 0x0a) lastRN = pos + ws + 1;
        ws++;
      }
      if (lastRN > 0) {
        pos = lastRN;
        add(pos);
        continue;
      }
      if (ws > 1 && cpt(pos + ws) !== -1) {
        pos += ws - 1;
        add(pos);
        continue;
      }
      if (ws > 0) {
        pos += ws;
        add(pos);
        continue;
      }
      add(++pos);
    }
  }
  return out;
}
