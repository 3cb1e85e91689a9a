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
const MAX_CODEPOINT = 0x110000;
const BLOCK = 256;

// First matching class wins (the classes are disjoint; Cn is tested before the rest of C).
const CLASSES: [RegExp, number][] = [
  [/\p{L}/gu, CptFlag.LETTER],
  [/\p{N}/gu, CptFlag.NUMBER],
  [/\p{P}/gu, CptFlag.PUNCTUATION],
  [/\p{S}/gu, CptFlag.SYMBOL],
  [/\p{M}/gu, CptFlag.ACCENT_MARK],
  [/\p{Z}/gu, CptFlag.SEPARATOR],
  [/\p{Cn}/gu, CptFlag.UNDEFINED],
  [/\p{C}/gu, CptFlag.CONTROL],
];
const WHITE_SPACE = /\p{White_Space}/gu;

let table: Uint16Array | null = null;
let blockDone: Uint8Array | null = null;

/** Classifies one 256-codepoint block with a few regex scans (cheaper than one test per codepoint). */
function computeBlock(t: Uint16Array, block: number): void {
  const first = block * BLOCK;
  const cps: number[] = [];
  for (let i = 0; i < BLOCK; i++) cps.push(first + i);
  const s = String.fromCodePoint(...cps);
  const unit = first >= 0x10000 ? 2 : 1; // a block is all BMP or all astral
  for (const [re, flag] of CLASSES) {
    for (const m of s.matchAll(re)) {
      const cp = first + m.index / unit;
      if (t[cp] === 0) t[cp] = flag;
    }
  }
  for (const m of s.matchAll(WHITE_SPACE)) t[first + m.index / unit]! |= CptFlag.WHITESPACE;
}

/** The flags of one codepoint (0 outside Unicode's range, like llama.cpp's out-of-range "no flags"). */
export function cptFlags(cp: number): number {
  if (cp < 0 || cp >= MAX_CODEPOINT) return 0;
  if (table === null) {
    table = new Uint16Array(MAX_CODEPOINT);
    blockDone = new Uint8Array(MAX_CODEPOINT / BLOCK);
  }
  const b = cp >> 8;
  if (blockDone![b] === 0) {
    computeBlock(table, b);
    blockDone![b] = 1;
  }
  return table[cp]!;
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
