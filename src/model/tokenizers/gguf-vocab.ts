// The vocabulary embedded in a GGUF file, tokenized and detokenized as llama.cpp does
// (llama-vocab.cpp): "llama" (SentencePiece with scores and byte fallback), "gpt2" (byte-level
// BPE with a named pre-tokenizer) and "gemma4" (SentencePiece-style BPE on raw UTF-8). Loading
// follows llama_vocab::load: defaults per type, metadata overrides, by-text detection of
// EOT/EOM/FIM/EOG tokens, the special-token cache and the per-token decode pieces.
import { ModelFileError } from "../errors.ts";
import type { GgufFile, GgufValue } from "../gguf.ts";
import { BpeEncoder } from "./bpe.ts";
import { PairTable } from "./pair-table.ts";
import { charByte } from "./byte-unicode.ts";
import { knownPreTokenizers, preTokenizerByName, type PreTokenizer } from "./pre-types.ts";
import { PreTokenizerSplitter } from "./pretokenize.ts";
import { type Fragment, SpecialTokenMatcher, type SpecialToken } from "./special-tokens.ts";
import { spmEncode } from "./spm.ts";
import { cleanSpaces } from "./clean-spaces.ts";
import { deriveEogIds, detectSpecialsByText, SPECIAL_KEYS, type SpecialIds } from "./special-ids.ts";
import { ALWAYS_RENDERED, Attr, attrOfType } from "./token-attrs.ts";

export type { SpecialIds } from "./special-ids.ts";
export type VocabKind = "spm" | "bpe";

const encoder = new TextEncoder();
/** Remembered pair ranks before the memo starts over (bounds memory on adversarial text). */
const RANK_MEMO_LIMIT = 4_000_000;
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const EMPTY = new Uint8Array(0);

export interface DetokenizeOptions {
  /** Drop a leading BOS / trailing EOS the vocabulary adds itself (llama.cpp remove_special). */
  removeSpecial: boolean;
  /** Render control/unknown tokens as their text (llama.cpp unparse_special); else they vanish. */
  unparseSpecial: boolean;
  /**
   * Apply llama_detokenize's clean_spaces passes (" ?" → "?", " 's" → "'s" …) when the
   * vocabulary asks for them (default false: pieces are concatenated byte for byte, as
   * llama.cpp's server streams them; the passes look across tokens, so streaming could not
   * reproduce them).
   */
  cleanSpaces?: boolean;
}

export class GgufVocab {
  readonly kind: VocabKind;
  readonly model: string;
  readonly preName: string | null;
  readonly tokens: readonly string[];
  readonly attrs: Uint16Array;
  readonly special: SpecialIds;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  readonly cleanSpaces: boolean;
  /** Ids that end generation (eos, eot, eom and the tokens llama.cpp recognises by text), ascending. */
  readonly eogIds: readonly number[];

  private readonly scores: Float64Array;
  private readonly idOf = new Map<string, number>();
  /** Merge ranks by "left right" text (the merge line). */
  private readonly ranksByText = new Map<string, number>();
  /** Ranks already looked up, by token-id pair. */
  private rankMemo = new PairTable();
  /** The BPE pre-tokenizer (null for SentencePiece). */
  readonly pre: PreTokenizer | null;
  private readonly splitter: PreTokenizerSplitter | null;
  private readonly bpe: BpeEncoder | null;
  private readonly escapeWhitespaces: boolean;
  private readonly matcherAll: SpecialTokenMatcher;
  private readonly matcherUser: SpecialTokenMatcher;
  private readonly pieces: (Uint8Array | undefined)[];
  /** Longest token text (UTF-16 units): longer strings need no lookup. */
  private readonly maxTokenLength: number;

  constructor(g: GgufFile) {
    const file = g.path;
    const str = (key: string): string | undefined => {
      const v = g.metadata.get(key);
      if (v === undefined) return undefined;
      if (typeof v !== "string") throw new ModelFileError(file, `metadata "${key}" must be a string`);
      return v;
    };
    const bool = (key: string): boolean | undefined => {
      const v = g.metadata.get(key);
      if (v === undefined) return undefined;
      if (typeof v !== "boolean") throw new ModelFileError(file, `metadata "${key}" must be a boolean`);
      return v;
    };
    const arr = (key: string): GgufValue[] | undefined => {
      const v = g.metadata.get(key);
      if (v === undefined) return undefined;
      if (!Array.isArray(v)) throw new ModelFileError(file, `metadata "${key}" must be an array`);
      return v;
    };

    const model = str("tokenizer.ggml.model");
    if (model === undefined) throw new ModelFileError(file, `has no embedded tokenizer (metadata "tokenizer.ggml.model" missing)`);
    this.model = model;
    let preName = str("tokenizer.ggml.pre") ?? null;
    const special: SpecialIds = {
      bos: null,
      eos: null,
      eot: null,
      eom: null,
      unk: null,
      sep: null,
      pad: null,
      mask: null,
      fimPre: null,
      fimSuf: null,
      fimMid: null,
      fimPad: null,
      fimRep: null,
      fimSep: null,
    };
    let addBos = false;
    let addEos = false;
    let addSpacePrefix = false;
    let cleanSpaces = false;
    let escapeWhitespaces = true;
    let pre: PreTokenizer | null = null;
    let rawMerges: GgufValue[] = [];
    if (model === "llama") {
      this.kind = "spm";
      Object.assign(special, { bos: 1, eos: 2, unk: 0 });
      addSpacePrefix = true;
      addBos = true;
    } else if (model === "gpt2" || model === "gemma4") {
      this.kind = "bpe";
      if (model === "gpt2") Object.assign(special, { bos: 11, eos: 11 });
      else preName = "gemma4";
      const found = preTokenizerByName(preName ?? undefined);
      if (!found) {
        throw new ModelFileError(
          file,
          `pre-tokenizer "tokenizer.ggml.pre" = ${JSON.stringify(preName)} is not supported (supported: ${knownPreTokenizers().join(", ")})`,
        );
      }
      pre = found;
      addSpacePrefix = false;
      escapeWhitespaces = pre.escapeWhitespaces;
      cleanSpaces = pre.cleanSpaces;
      addBos = pre.addBos;
      if (pre.noBos) special.bos = null;
      const merges = arr("tokenizer.ggml.merges");
      if (merges === undefined) throw new ModelFileError(file, `BPE tokenizer has no merges (metadata "tokenizer.ggml.merges" missing)`);
      rawMerges = merges;
    } else {
      throw new ModelFileError(
        file,
        `embedded tokenizer type ${JSON.stringify(model)} is not supported (supported: "llama" SentencePiece, "gpt2" byte-level BPE, "gemma4")`,
      );
    }
    this.preName = preName;
    this.pre = pre;
    addSpacePrefix = bool("tokenizer.ggml.add_space_prefix") ?? addSpacePrefix;

    const tokens = arr("tokenizer.ggml.tokens");
    if (tokens === undefined || tokens.length === 0) throw new ModelFileError(file, `metadata "tokenizer.ggml.tokens" missing or empty`);
    const n = tokens.length;
    const scores = arr("tokenizer.ggml.scores");
    if (scores !== undefined && scores.length < n)
      throw new ModelFileError(file, `tokenizer.ggml.scores has ${scores.length} entries for ${n} tokens`);
    const types = arr("tokenizer.ggml.token_type");
    if (types !== undefined && types.length < n)
      throw new ModelFileError(file, `tokenizer.ggml.token_type has ${types.length} entries for ${n} tokens`);
    const texts: string[] = new Array(n);
    this.scores = new Float64Array(n);
    this.attrs = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      let t = tokens[i];
      if (typeof t !== "string") throw new ModelFileError(file, `metadata "tokenizer.ggml.tokens" entry ${i} is not a string`);
      if (t.length === 0) t = `[EMPTY_${i}]`;
      const dup = this.idOf.get(t);
      if (dup === undefined) this.idOf.set(t, i);
      // Tokens that are not valid UTF-8 read back with U+FFFD and may collide although their
      // bytes differ: keep the first for text lookups (the id still decodes). Real duplicates
      // are refused, as llama.cpp does.
      else if (!t.includes("\uFFFD"))
        throw new ModelFileError(file, `duplicate token in vocabulary: ${JSON.stringify(t)} has ids ${dup} and ${i}`);
      texts[i] = t;
      const s = scores?.[i] ?? 0;
      if (typeof s !== "number") throw new ModelFileError(file, `tokenizer.ggml.scores entry ${i} is not a number`);
      this.scores[i] = s;
      const ty = types === undefined ? 1 : types[i];
      if (typeof ty !== "number") throw new ModelFileError(file, `tokenizer.ggml.token_type entry ${i} is not a number`);
      this.attrs[i] = types === undefined ? Attr.NORMAL : attrOfType(ty);
    }
    this.tokens = texts;
    this.buildRanks(file, rawMerges);
    this.maxTokenLength = texts.reduce((m, t) => Math.max(m, t.length), 0);

    // Special ids: defaults out of range are dropped, then metadata overrides (bad ids ignored).
    for (const k of Object.keys(special) as (keyof SpecialIds)[]) {
      const v = special[k];
      if (v !== null && v >= n) special[k] = null;
    }
    for (const [k, key] of SPECIAL_KEYS) {
      const v = g.metadata.get(`tokenizer.ggml.${key}`);
      if (v === undefined) continue;
      const id = typeof v === "bigint" ? Number(v) : v;
      if (typeof id === "number" && Number.isSafeInteger(id) && id >= 0 && id < n) special[k] = id;
    }
    addBos = bool("tokenizer.ggml.add_bos_token") ?? addBos;
    addEos = bool("tokenizer.ggml.add_eos_token") ?? addEos;
    if (pre?.type === "gemma4") addBos = true; // llama.cpp forces BOS for Gemma 4
    if (addBos && special.bos === null)
      throw new ModelFileError(file, `tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set`);
    if (addEos && special.eos === null)
      throw new ModelFileError(file, `tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set`);

    const tables = { tokens: texts, idOf: this.idOf, attrs: this.attrs };
    detectSpecialsByText(tables, special);
    this.special = special;
    this.eogIds = deriveEogIds(tables, special);
    for (const t of ALWAYS_RENDERED) {
      const id = this.idOf.get(t);
      if (id !== undefined) this.attrs[id] = Attr.USER_DEFINED;
    }

    // Special-token cache: control, user-defined and unknown tokens, longest text first.
    const cache: number[] = [];
    for (let id = 0; id < n; id++) if (this.attrs[id]! & (Attr.CONTROL | Attr.USER_DEFINED | Attr.UNKNOWN)) cache.push(id);
    const name = (str("general.name") ?? "").toLowerCase();
    if (name.includes("phi-3") || name.includes("phi3")) {
      // llama.cpp's per-model attributes: Phi-3's special tokens swallow following whitespace.
      for (const id of cache) this.attrs[id]! |= Attr.RSTRIP;
      const set = (t: string, on: boolean) => {
        const id = this.idOf.get(t);
        if (id !== undefined) this.attrs[id] = on ? this.attrs[id]! | Attr.RSTRIP : this.attrs[id]! & ~Attr.RSTRIP;
      };
      set("</s>", true);
      for (const t of ["<unk>", "<s>", "<|endoftext|>"]) set(t, false);
    }
    // Longest first by UTF-8 length, as llama.cpp (its tie order is unspecified; here: lower id).
    const bytesLen = new Map(cache.map((id) => [id, encoder.encode(texts[id]!).length]));
    cache.sort((a, b) => bytesLen.get(b)! - bytesLen.get(a)! || a - b);
    const st = (id: number): SpecialToken => ({
      id,
      text: texts[id]!,
      lstrip: (this.attrs[id]! & Attr.LSTRIP) !== 0,
      rstrip: (this.attrs[id]! & Attr.RSTRIP) !== 0,
    });
    this.matcherAll = new SpecialTokenMatcher(cache.map(st));
    this.matcherUser = new SpecialTokenMatcher(cache.filter((id) => !(this.attrs[id]! & (Attr.CONTROL | Attr.UNKNOWN))).map(st));

    this.addBos = addBos;
    this.addEos = addEos;
    this.addSpacePrefix = addSpacePrefix;
    this.cleanSpaces = cleanSpaces;
    this.escapeWhitespaces = escapeWhitespaces;
    this.splitter = pre ? new PreTokenizerSplitter(pre) : null;
    this.bpe = pre
      ? new BpeEncoder(
          { textToId: (t) => this.idOf.get(t), mergeRank: (l, li, r, ri) => this.mergeRank(l, li, r, ri) },
          { ignoreMerges: pre.ignoreMerges, byteEncoded: pre.byteEncode, wholeNewlineRuns: pre.type === "gemma4" },
        )
      : null;
    this.pieces = new Array(n);
  }

  /**
   * Merges as llama.cpp keys them: (first, second) split at the first space after position 0
   * (a line without one becomes ("", "")); the first occurrence of a pair keeps its rank. The
   * merge line itself is that key, so loading is one map insert per merge.
   */
  private buildRanks(file: string, merges: readonly GgufValue[]): void {
    merges.forEach((m, i) => {
      if (typeof m !== "string") throw new ModelFileError(file, `metadata "tokenizer.ggml.merges" entry ${i} is not a string`);
      const key = m.indexOf(" ", 1) === -1 ? " " : m;
      if (!this.ranksByText.has(key)) this.ranksByText.set(key, i);
    });
  }

  /** Rank of a pair; pairs of two tokens are remembered by id (-1: no merge) after the first text lookup. */
  private mergeRank(l: string, li: number, r: string, ri: number): number | undefined {
    if (li < 0 || ri < 0) return this.ranksByText.get(`${l} ${r}`);
    const known = this.rankMemo.get(li, ri);
    if (known !== undefined) return known === -1 ? undefined : known;
    const rank = this.ranksByText.get(`${l} ${r}`);
    if (this.rankMemo.size >= RANK_MEMO_LIMIT) this.rankMemo = new PairTable();
    this.rankMemo.setIfAbsent(li, ri, rank ?? -1);
    return rank;
  }

  get size(): number {
    return this.tokens.length;
  }

  tokenToId(text: string): number | undefined {
    return this.idOf.get(text);
  }

  isControl(id: number): boolean {
    return (this.attrs[id]! & (Attr.CONTROL | Attr.UNKNOWN)) !== 0;
  }

  /** Text → ids, without BOS/EOS. `parseSpecial`: control tokens written in the text become those tokens (user-defined ones always do). */
  encode(text: string, parseSpecial: boolean): number[] {
    const raw = text.toWellFormed();
    const frags: Fragment[] = (parseSpecial ? this.matcherAll : this.matcherUser).partition(raw);
    const out: number[] = [];
    if (this.kind === "spm") {
      let prevSpecial = true; // the text start counts as "after a special token": gets the space prefix
      for (const f of frags) {
        if ("id" in f) {
          out.push(f.id);
          prevSpecial = true;
          continue;
        }
        const t = (this.addSpacePrefix && prevSpecial ? " " : "") + f.text;
        spmEncode(this.spmView, t.replaceAll(" ", "\u2581"), out, this.special.unk);
        prevSpecial = false;
      }
      return out;
    }
    for (const f of frags) {
      if ("id" in f) {
        out.push(f.id);
        continue;
      }
      const t = this.escapeWhitespaces ? f.text.replaceAll(" ", "\u2581") : f.text;
      for (const w of this.splitter!.split(t)) this.bpe!.encodeWord(w, out);
    }
    return out;
  }

  private byteIds: (number | undefined)[] | null = null;
  private readonly spmView = {
    textToId: (t: string) => (t.length <= this.maxTokenLength ? this.idOf.get(t) : undefined),
    score: (id: number) => this.scores[id]!,
    /** <0xXX>, else the byte as a one-character token (llama.cpp byte_to_token). */
    byteToId: (b: number) => {
      this.byteIds ??= Array.from(
        { length: 256 },
        (_, x) => this.idOf.get(`<0x${x.toString(16).toUpperCase().padStart(2, "0")}>`) ?? this.idOf.get(String.fromCharCode(x)),
      );
      return this.byteIds[b];
    },
  };

  /** The bytes a token stands for (llama.cpp token_to_piece with special = true). */
  piece(id: number): Uint8Array {
    const cached = this.pieces[id];
    if (cached !== undefined) return cached;
    const p = this.computePiece(id);
    this.pieces[id] = p;
    return p;
  }

  private computePiece(id: number): Uint8Array {
    const a = this.attrs[id]!;
    const text = this.tokens[id]!;
    if (a & (Attr.UNKNOWN | Attr.CONTROL | Attr.USER_DEFINED)) return encoder.encode(text);
    if (a & Attr.NORMAL) {
      if (this.kind === "spm" || this.escapeWhitespaces) return encoder.encode(text.replaceAll("\u2581", " "));
      const bytes: number[] = [];
      for (const ch of text) {
        const b = charByte(ch);
        if (b !== undefined) bytes.push(b);
        else {
          const hex = Array.from(encoder.encode(ch), (x) => x.toString(16).padStart(2, "0")).join("");
          bytes.push(...encoder.encode(`[UNK_BYTE_0x${hex}${text}]`));
        }
      }
      return Uint8Array.from(bytes);
    }
    if (a & Attr.BYTE) return Uint8Array.of(parseInt(text.slice(3, 5), 16));
    return EMPTY;
  }

  /**
   * Ids → text (llama.cpp llama_detokenize); invalid UTF-8 becomes U+FFFD. One deliberate
   * difference: with a space prefix (SentencePiece), the leading space is dropped from the first
   * token that produces text — also after a removed or hidden BOS, where llama.cpp keeps it
   * (" Hello"). That is what HF's decoders do ("Hello"), and what the frontend's streaming and
   * prompt echo expect.
   */
  decode(ids: readonly number[], opts: DetokenizeOptions): string {
    let start = 0;
    let end = ids.length;
    let removeSpace = this.addSpacePrefix;
    if (opts.removeSpecial && this.addBos && end > 0 && ids[0] === this.special.bos) start++;
    if (opts.removeSpecial && this.addEos && end > start && ids[end - 1] === this.special.eos) end--;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = start; i < end; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.tokens.length) continue;
      if (!opts.unparseSpecial && this.attrs[id]! & (Attr.UNKNOWN | Attr.CONTROL)) continue;
      let p = this.piece(id);
      if (p.length === 0) continue;
      if (removeSpace && p[0] === 0x20) p = p.subarray(1);
      removeSpace = false;
      parts.push(p);
      total += p.length;
    }
    let bytes: Uint8Array = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      bytes.set(p, o);
      o += p.length;
    }
    if (opts.cleanSpaces && this.cleanSpaces) bytes = cleanSpaces(bytes);
    return decoder.decode(bytes);
  }
}
