// Per-codepoint classes as llama.cpp's unicode tables define them (unicode_cpt_flags): the
// general category group (L, N, P, S, M, Z, C, unassigned) plus White_Space. The BPE
// pre-tokenizers are written against these classes, so every splitter here asks this table.
// Computed lazily from the JS engine's Unicode data and cached per codepoint.

export const CptFlag = {
  UNDEFINED: 0x0001,
  NUMBER: 0x0002,
  LETTER: 0x0004,
  SEPARATOR: 0x0008,
  ACCENT_MARK: 0x0010,
  PUNCTUATION: 0x0020,
  SYMBOL: 0x0040,
  CONTROL: 0x0080,
  WHITESPACE: 0x0100,
} as const;

const CATEGORY_MASK = 0x00ff;
const COMPUTED = 0x8000;
const MAX_CODEPOINT = 0x110000;

const CLASSES: [RegExp, number][] = [
  [/^\p{L}$/u, CptFlag.LETTER],
  [/^\p{N}$/u, CptFlag.NUMBER],
  [/^\p{P}$/u, CptFlag.PUNCTUATION],
  [/^\p{S}$/u, CptFlag.SYMBOL],
  [/^\p{M}$/u, CptFlag.ACCENT_MARK],
  [/^\p{Z}$/u, CptFlag.SEPARATOR],
  [/^\p{Cn}$/u, CptFlag.UNDEFINED],
  [/^\p{C}$/u, CptFlag.CONTROL],
];
const WHITE_SPACE = /^\p{White_Space}$/u;

let table: Uint16Array | null = null;

function compute(cp: number): number {
  const s = String.fromCodePoint(cp);
  let f = 0;
  for (const [re, flag] of CLASSES) {
    if (re.test(s)) {
      f = flag;
      break;
    }
  }
  if (WHITE_SPACE.test(s)) f |= CptFlag.WHITESPACE;
  return f;
}

/** The flags of one codepoint (0 outside Unicode's range, like llama.cpp's out-of-range "no flags"). */
export function cptFlags(cp: number): number {
  if (cp < 0 || cp >= MAX_CODEPOINT) return 0;
  if (table === null) table = new Uint16Array(MAX_CODEPOINT);
  const v = table[cp]!;
  if (v !== 0) return v & ~COMPUTED;
  const f = compute(cp);
  table[cp] = f | COMPUTED;
  return f;
}

/** The category bit alone (one of NUMBER, LETTER, …; 0 for none). */
export function cptCategory(cp: number): number {
  return cptFlags(cp) & CATEGORY_MASK;
}

export function isWhitespace(cp: number): boolean {
  return (cptFlags(cp) & CptFlag.WHITESPACE) !== 0;
}

/** Simple lowercase mapping of one codepoint (only used for the ASCII contraction checks). */
export function cptToLower(cp: number): number {
  if (cp >= 0x41 && cp <= 0x5a) return cp + 32;
  if (cp < 0x80) return cp;
  const l = String.fromCodePoint(cp).toLowerCase();
  const c = l.codePointAt(0)!;
  return l.length === String.fromCodePoint(c).length ? c : cp;
}

/** Codepoints of a string (lone surrogates must have been replaced before). */
export function codepoints(text: string): Uint32Array {
  const out = new Uint32Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out[n++] = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
        i++;
        continue;
      }
    }
    out[n++] = c;
  }
  return out.subarray(0, n);
}

/** String of codepoints [start, end). */
export function cptsToString(cps: Uint32Array, start: number, end: number): string {
  let s = "";
  const CHUNK = 8192;
  for (let i = start; i < end; i += CHUNK) s += String.fromCodePoint(...cps.subarray(i, Math.min(end, i + CHUNK)));
  return s;
}
