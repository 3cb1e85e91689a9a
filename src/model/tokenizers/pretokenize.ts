// Splits text into pre-tokens the way llama.cpp's unicode_regex_split does: each regex of the
// pre-tokenizer splits every piece left by the previous one, and text between matches is kept
// as its own piece. The GPT-2 and Llama-3 regexes run as hand-written scanners (as in
// unicode.cpp); any other regex that uses \p{..} classes runs on llama.cpp's "collapsed" text,
// where each non-ASCII codepoint is replaced by one stand-in character for its class, so the
// classes behave exactly as there; a regex without classes runs on the codepoints themselves.
import { GPT2_REGEX, LLAMA3_REGEXES, type PreTokenizer } from "./pre-types.ts";
import { codepoints, cptCategory, cptFlags, CptFlag, cptsToString, cptToLower } from "./unicode.ts";

const UCAT = /\\p\{(N|L|P|M|S|Lu|Ll|Lt|Lm|Lo)\}/;
/** Stand-in characters of the collapsed text and the ASCII members of each class (unicode.cpp). */
const COLLAPSED: Record<number, { ch: string; ascii: string }> = {
  [CptFlag.NUMBER]: { ch: "\u00d1", ascii: "0-9" },
  [CptFlag.LETTER]: { ch: "\u00d2", ascii: "A-Za-z" },
  [CptFlag.PUNCTUATION]: { ch: "\u00d3", ascii: "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}" },
  [CptFlag.ACCENT_MARK]: { ch: "\u00d4", ascii: "" },
  [CptFlag.SYMBOL]: { ch: "\u00d5", ascii: "\\$\\+<-\\>\\^`\\|" },
};
const UCAT_FLAG: Record<string, number> = {
  N: CptFlag.NUMBER,
  L: CptFlag.LETTER,
  Lu: CptFlag.LETTER,
  Ll: CptFlag.LETTER,
  Lt: CptFlag.LETTER,
  Lm: CptFlag.LETTER,
  Lo: CptFlag.LETTER,
  P: CptFlag.PUNCTUATION,
  M: CptFlag.ACCENT_MARK,
  S: CptFlag.SYMBOL,
};
/** C-locale \s (std::regex): ASCII whitespace only; JS's \s also takes U+FEFF and Unicode spaces. */
const C_SPACE = "\\t\\n\\v\\f\\r ";

/** Rewrites a llama.cpp regex for JS: \p{..} → collapsed classes (when `collapse`), \s → C-locale \s. */
function translateRegex(src: string, collapse: boolean): string {
  let out = "";
  let inside = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === "\\") {
      const n = src[i + 1];
      if (n === "p" && collapse) {
        const m = /^\\p\{([A-Za-z]+)\}/.exec(src.slice(i));
        const flag = m ? UCAT_FLAG[m[1]!] : undefined;
        if (m && flag !== undefined) {
          const body = COLLAPSED[flag]!.ch + COLLAPSED[flag]!.ascii;
          out += inside ? body : `[${body}]`;
          i += m[0].length - 1;
          continue;
        }
      }
      if (n === "s") {
        out += inside ? C_SPACE : `[${C_SPACE}]`;
        i++;
        continue;
      }
      if (n === "S" && !inside) {
        out += `[^${C_SPACE}]`;
        i++;
        continue;
      }
      out += c + (n ?? "");
      i++;
      continue;
    }
    if (c === "[" && !inside) inside = true;
    else if (c === "]" && inside) inside = false;
    out += c;
  }
  return out;
}

interface CompiledRegex {
  kind: "gpt2" | "llama3" | "collapsed" | "raw";
  re: RegExp | null;
}

function compile(src: string): CompiledRegex {
  if (src === GPT2_REGEX) return { kind: "gpt2", re: null };
  if (LLAMA3_REGEXES.includes(src)) return { kind: "llama3", re: null };
  if (UCAT.test(src)) {
    if ([...src].some((ch) => ch.codePointAt(0)! >= 128)) throw new Error(`pre-tokenizer regex mixes unicode classes and non-ASCII characters: ${src}`);
    return { kind: "collapsed", re: new RegExp(translateRegex(src, true), "g") };
  }
  return { kind: "raw", re: new RegExp(translateRegex(src, false), "gu") };
}

/** Splits offsets (piece lengths in codepoints) with a regex run over `subject` (one unit per codepoint). */
function splitCollapsed(subject: string, re: RegExp, offsets: number[]): number[] {
  const out: number[] = [];
  let start = 0;
  for (const len of offsets) {
    const chunk = subject.slice(start, start + len);
    re.lastIndex = 0;
    let prev = 0;
    for (let m = re.exec(chunk); m !== null; m = re.exec(chunk)) {
      if (m[0].length === 0) {
        re.lastIndex++;
        continue;
      }
      if (m.index > prev) out.push(m.index - prev);
      out.push(m[0].length);
      prev = m.index + m[0].length;
    }
    if (prev < len) out.push(len - prev);
    start += len;
  }
  return out;
}

/** As splitCollapsed, over real codepoints (UTF-16 positions converted back to codepoint counts). */
function splitRaw(cps: Uint32Array, re: RegExp, offsets: number[]): number[] {
  const out: number[] = [];
  let start = 0;
  for (const len of offsets) {
    // std::wregex's \s does not see non-ASCII whitespace: llama.cpp hands it U+000B instead.
    const sub = cps.slice(start, start + len);
    for (let i = 0; i < sub.length; i++) if (sub[i]! > 0x7f && cptFlags(sub[i]!) & CptFlag.WHITESPACE) sub[i] = 0x0b;
    const chunk = cptsToString(sub, 0, sub.length);
    const count = (a: number, b: number) => {
      let n = 0;
      for (let i = a; i < b; i++) {
        const c = chunk.charCodeAt(i);
        if (!(c >= 0xdc00 && c <= 0xdfff && i > a && chunk.charCodeAt(i - 1) >= 0xd800 && chunk.charCodeAt(i - 1) <= 0xdbff)) n++;
      }
      return n;
    };
    re.lastIndex = 0;
    let prev = 0;
    for (let m = re.exec(chunk); m !== null; m = re.exec(chunk)) {
      if (m[0].length === 0) {
        re.lastIndex++;
        continue;
      }
      if (m.index > prev) out.push(count(prev, m.index));
      out.push(count(m.index, m.index + m[0].length));
      prev = m.index + m[0].length;
    }
    if (prev < chunk.length) out.push(count(prev, chunk.length));
    start += len;
  }
  return out;
}

/** unicode.cpp's scanner for 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
function splitGpt2(cps: Uint32Array, offsets: number[]): number[] {
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
function splitLlama3(cps: Uint32Array, offsets: number[]): number[] {
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

/** The collapsed text: one UTF-16 unit per codepoint (ASCII kept, others → their class stand-in). */
function collapse(cps: Uint32Array): string {
  const units = new Uint16Array(cps.length);
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    if (c < 128) units[i] = c;
    else if (cptFlags(c) & CptFlag.WHITESPACE) units[i] = 0x0b;
    else units[i] = COLLAPSED[cptCategory(c)]?.ch.charCodeAt(0) ?? 0xd0;
  }
  let s = "";
  for (let i = 0; i < units.length; i += 8192) s += String.fromCharCode(...units.subarray(i, i + 8192));
  return s;
}

/** A compiled pre-tokenizer: text → pre-tokens (plain text; the BPE encoder byte-encodes them). */
export class PreTokenizerSplitter {
  private readonly compiled: CompiledRegex[];
  constructor(readonly pre: PreTokenizer) {
    this.compiled = pre.regexes.map(compile);
  }

  split(text: string): string[] {
    const cps = codepoints(text);
    let offsets = [cps.length];
    let collapsed: string | null = null;
    for (const r of this.compiled) {
      if (r.kind === "gpt2") offsets = splitGpt2(cps, offsets);
      else if (r.kind === "llama3") offsets = splitLlama3(cps, offsets);
      else if (r.kind === "collapsed") offsets = splitCollapsed((collapsed ??= collapse(cps)), r.re!, offsets);
      else offsets = splitRaw(cps, r.re!, offsets);
    }
    const words: string[] = [];
    // Slicing the UTF-16 string by codepoint counts.
    let u = 0;
    let cpAt = 0;
    for (const len of offsets) {
      const from = u;
      for (let k = 0; k < len; k++) u += cps[cpAt + k]! > 0xffff ? 2 : 1;
      cpAt += len;
      words.push(text.slice(from, u));
    }
    return words;
  }
}
