// Splits text into pre-tokens the way llama.cpp's unicode_regex_split does: each regex of the
// pre-tokenizer splits every piece left by the previous one, and text between matches is kept
// as its own piece. The GPT-2 and Llama-3 regexes run as hand-written scanners (as in
// unicode.cpp); any other regex that uses \p{..} classes runs on llama.cpp's "collapsed" text,
// where each non-ASCII codepoint is replaced by one stand-in character for its class, so the
// classes behave exactly as there; a regex without classes runs on the codepoints themselves.
import { GPT2_REGEX, LLAMA3_REGEXES, type PreTokenizer } from "./pre-types.ts";
import { splitGpt2, splitLlama3 } from "./regex-scanners.ts";
import { codepoints, cptCategory, cptFlags, CptFlag, cptsToString } from "./unicode.ts";

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
    if ([...src].some((ch) => ch.codePointAt(0)! >= 128))
      throw new Error(`pre-tokenizer regex mixes unicode classes and non-ASCII characters: ${src}`);
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
