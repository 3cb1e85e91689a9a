// Tokenizer: one typed front for every tokenizer we serve, over an engine that does the work —
// @huggingface/tokenizers for HF tokenizer.json (and the demo byte-level tokenizer), or the
// llama.cpp-exact GGUF vocabulary (src/model/tokenizers/) — plus BOS/EOS handling, the
// end-of-generation ids and a streaming decoder that only emits complete UTF-8.
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { existsSync } from "node:fs";
import { join } from "node:path";

import { ModelFileError } from "./errors.ts";
import { readJsonFile } from "./hf-model.ts";

type Json = Record<string, unknown>;

export interface EncodeOptions {
  /** Prepend the BOS token (default: the tokenizer's own setting, e.g. add_bos_token). */
  addBos?: boolean;
  /** Append the EOS token (default: the tokenizer's own setting, e.g. GGUF add_eos_token; false for HF). */
  addEos?: boolean;
  /**
   * Special (control) tokens written in the text become those tokens (default true: chat
   * templates rely on it). false: they are tokenized as plain text (llama.cpp parse_special =
   * false; user-defined tokens are still matched). HF tokenizers always parse them.
   */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS/EOS/control) from the text (default true). */
  skipSpecialTokens?: boolean;
}

export interface TokenizerSpecials {
  bosToken: string | null;
  eosToken: string | null;
  /** Whether encode() adds BOS by default. */
  addBos: boolean;
}

function tokenContent(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Json).content === "string") return (v as Json).content as string;
  return null;
}

/** The special token a TemplateProcessing post-processor puts first, if any (HF's way to add BOS). */
function postProcessorBos(pp: unknown): string | null {
  if (!pp || typeof pp !== "object") return null;
  const p = pp as Json;
  if (p.type === "Sequence" && Array.isArray(p.processors)) {
    for (const q of p.processors) {
      const b = postProcessorBos(q);
      if (b) return b;
    }
    return null;
  }
  if (p.type === "TemplateProcessing" && Array.isArray(p.single)) {
    const first = p.single[0] as Json | undefined;
    const st = first?.SpecialToken as Json | undefined;
    return typeof st?.id === "string" ? st.id : null;
  }
  return null;
}

/** What does the work behind a Tokenizer. */
export interface TokenizerEngine {
  readonly vocabSize: number;
  /** Text → ids, without BOS/EOS. */
  encode(text: string, parseSpecial: boolean): number[];
  decode(ids: readonly number[], skipSpecialTokens: boolean): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}

/** The special-token facts a Tokenizer needs from an engine's vocabulary. */
export interface EngineSpecials {
  bosTokenId: number | null;
  /** End-of-generation ids (EOS, EOT, EOM, …). */
  eosTokenIds: readonly number[];
  addBos: boolean;
  addEos: boolean;
  /** Ids decode drops when skipping special tokens. */
  specialIds: ReadonlySet<number>;
  /** How token strings map to bytes (see Tokenizer.vocabType); default "raw". */
  vocabType?: VocabType;
  /** Whether encoding prepends a space (see Tokenizer.prependSpace); default false. */
  prependSpace?: boolean;
}

/** xgrammar's vocab types: GPT-2 byte-to-unicode strings, SentencePiece ("▁", <0xNN>), or raw text. */
export type VocabType = "byte_level" | "byte_fallback" | "raw";

/** Component types of a tokenizer.json part, looking inside "Sequence" lists. */
function partTypes(part: unknown): string[] {
  if (!part || typeof part !== "object") return [];
  const p = part as Json;
  const inner = [p.decoders, p.normalizers, p.pretokenizers].find(Array.isArray) as unknown[] | undefined;
  return [typeof p.type === "string" ? p.type : "", ...(inner ?? []).flatMap(partTypes)];
}

function vocabTypeOf(tj: Json): VocabType {
  const dec = partTypes(tj.decoder);
  if (dec.includes("ByteLevel")) return "byte_level";
  const model = (tj.model ?? {}) as Json;
  if (model.byte_fallback === true || dec.includes("ByteFallback")) return "byte_fallback";
  return "raw";
}

function prependsSpace(tj: Json): boolean {
  const walk = (x: unknown): boolean => {
    if (!x || typeof x !== "object") return false;
    const p = x as Json;
    if (p.type === "Prepend" && p.prepend === "\u2581") return true;
    if (p.type === "Metaspace") return p.prepend_scheme !== undefined ? p.prepend_scheme !== "never" : p.add_prefix_space === true;
    return [p.normalizers, p.pretokenizers].some((a) => Array.isArray(a) && a.some(walk));
  };
  return [tj.normalizer, tj.pre_tokenizer].some(walk);
}

/** Constructor argument for an engine-backed tokenizer (see Tokenizer.fromEngine). */
class EngineSource {
  constructor(
    readonly engine: TokenizerEngine,
    readonly specials: EngineSpecials,
  ) {}
}

/** @huggingface/tokenizers behind the TokenizerEngine interface. */
class HfEngine implements TokenizerEngine {
  readonly vocabSize: number;
  constructor(readonly tk: HfTokenizer) {
    let max = -1;
    for (const id of tk.get_vocab(true).values()) if (id > max) max = id;
    this.vocabSize = max + 1;
  }
  encode(text: string): number[] {
    return this.tk.encode(text, { add_special_tokens: false }).ids;
  }
  decode(ids: readonly number[], skipSpecialTokens: boolean): string {
    if (ids.length === 0) return "";
    return this.tk.decode(ids as number[], { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: false });
  }
  tokenToId(token: string): number | undefined {
    return this.tk.token_to_id(token);
  }
  idToToken(id: number): string | undefined {
    return this.tk.id_to_token(id);
  }
}

export class Tokenizer {
  private readonly engine: TokenizerEngine;
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly bosToken: string | null;
  /** Every id that ends generation (EOS, EOT/EOM and, for GGUF, llama.cpp's end-of-generation list). */
  readonly eosTokenIds: number[];
  readonly eosToken: string | null;
  readonly addBos: boolean;
  /** Whether encode() appends EOS by default. */
  readonly addEos: boolean;
  /** Ids of special tokens (skipped by decode). */
  readonly specialIds: ReadonlySet<number>;
  /** How token strings map to bytes (structured outputs build xgrammar's vocabulary from it). */
  readonly vocabType: VocabType;
  /** Whether encoding prepends a space ("▁") to the text (SentencePiece add_dummy_prefix). */
  readonly prependSpace: boolean;

  /**
   * @param tokenizerJson parsed tokenizer.json
   * @param tokenizerConfig parsed tokenizer_config.json (or {}); bos/eos/add_bos_token are read from it
   * @param origin file name for error messages
   * @param extraEos more end-of-sequence ids (e.g. from the model config)
   */
  constructor(tokenizerJson: unknown, tokenizerConfig: unknown = {}, origin = "tokenizer.json", extraEos: readonly number[] = []) {
    if (tokenizerJson instanceof EngineSource) {
      const { engine, specials } = tokenizerJson;
      this.engine = engine;
      this.vocabSize = engine.vocabSize;
      this.specialIds = specials.specialIds;
      this.bosTokenId = specials.bosTokenId;
      this.bosToken = specials.bosTokenId !== null ? (engine.idToToken(specials.bosTokenId) ?? null) : null;
      this.eosTokenIds = [...new Set([...specials.eosTokenIds, ...extraEos])];
      const eos = specials.eosTokenIds[0];
      this.eosToken = eos !== undefined ? (engine.idToToken(eos) ?? null) : null;
      this.addBos = specials.addBos && this.bosTokenId !== null;
      this.addEos = specials.addEos && eos !== undefined;
      this.vocabType = specials.vocabType ?? "raw";
      this.prependSpace = specials.prependSpace ?? false;
      return;
    }
    if (!tokenizerJson || typeof tokenizerJson !== "object") throw new ModelFileError(origin, "is not a tokenizer.json object");
    const tj = tokenizerJson as Json;
    const cfg = (tokenizerConfig && typeof tokenizerConfig === "object" ? tokenizerConfig : {}) as Json;
    let tk: HfTokenizer;
    try {
      tk = new HfTokenizer(tj, cfg);
    } catch (e) {
      throw new ModelFileError(origin, `tokenizer cannot be built: ${(e as Error).message}`);
    }
    this.engine = new HfEngine(tk);
    this.vocabSize = this.engine.vocabSize;
    this.vocabType = vocabTypeOf(tj);
    this.prependSpace = prependsSpace(tj);

    const special = new Set<number>();
    for (const [id, t] of tk.get_added_tokens_decoder()) if (t.special) special.add(id);
    this.specialIds = special;

    const ppBos = postProcessorBos(tj.post_processor);
    this.bosToken = tokenContent(cfg.bos_token) ?? ppBos;
    this.eosToken = tokenContent(cfg.eos_token);
    this.bosTokenId = this.bosToken !== null ? (tk.token_to_id(this.bosToken) ?? null) : null;
    const eos = this.eosToken !== null ? tk.token_to_id(this.eosToken) : undefined;
    this.eosTokenIds = [...new Set([...(eos !== undefined ? [eos] : []), ...extraEos])];
    const addBos = typeof cfg.add_bos_token === "boolean" ? cfg.add_bos_token : ppBos !== null;
    this.addBos = addBos && this.bosTokenId !== null;
    this.addEos = false;
  }

  /**
   * A tokenizer over any engine (e.g. the GGUF vocabulary); `extraEos` adds end-of-generation
   * ids (e.g. from the model config).
   */
  static fromEngine(engine: TokenizerEngine, specials: EngineSpecials, extraEos: readonly number[] = []): Tokenizer {
    return new Tokenizer(new EngineSource(engine, specials), {}, "", extraEos);
  }

  /** tokenizer.json (+ tokenizer_config.json when present) of an HF model folder. */
  static fromFolder(dir: string, extraEos: readonly number[] = []): Tokenizer {
    const tjPath = join(dir, "tokenizer.json");
    if (!existsSync(tjPath)) throw new ModelFileError(dir, "has no tokenizer.json");
    const cfgPath = join(dir, "tokenizer_config.json");
    const cfg = existsSync(cfgPath) ? readJsonFile(cfgPath) : {};
    return new Tokenizer(readJsonFile(tjPath), cfg, tjPath, extraEos);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids = this.engine.encode(text, opts.parseSpecial ?? true);
    if ((opts.addBos ?? this.addBos) && this.bosTokenId !== null) ids.unshift(this.bosTokenId);
    const eos = this.eosTokenIds[0];
    if ((opts.addEos ?? this.addEos) && eos !== undefined) ids.push(eos);
    return ids;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    if (ids.length === 0) return "";
    return this.engine.decode(ids, opts.skipSpecialTokens ?? true);
  }

  tokenToId(token: string): number | undefined {
    return this.engine.tokenToId(token);
  }

  idToToken(id: number): string | undefined {
    return this.engine.idToToken(id);
  }

  /** Every token string by id (0 .. vocabSize-1; "" for holes), as the vocabulary stores it. */
  encodedVocab(): string[] {
    const out: string[] = new Array(this.vocabSize);
    for (let i = 0; i < this.vocabSize; i++) out[i] = this.engine.idToToken(i) ?? "";
    return out;
  }

  isEos(id: number): boolean {
    return this.eosTokenIds.includes(id);
  }

  incrementalDecoder(opts: DecodeOptions = {}): IncrementalDecoder {
    return new IncrementalDecoder(this, opts);
  }
}

/**
 * Streaming detokenizer (the prefix/read-offset scheme of HF TGI and vLLM): push ids one at a
 * time and get back only newly completed text; a character split over byte tokens (byte
 * fallback or byte-level BPE) is held back until its last byte arrives.
 */
export class IncrementalDecoder {
  private ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;
  /** Give up waiting for completion after this many held-back tokens (invalid UTF-8 stays U+FFFD). */
  private static readonly MAX_HELD = 8;

  constructor(
    private readonly tok: Tokenizer,
    private readonly opts: DecodeOptions = {},
  ) {}

  /** Adds one token; returns the text it completes ("" when it is held back). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.tok.decode(this.ids.slice(this.prefixOffset, this.readOffset), this.opts);
    const full = this.tok.decode(this.ids.slice(this.prefixOffset), this.opts);
    const held = this.ids.length - this.readOffset;
    if (full.length > prefix.length && (!full.endsWith("\uFFFD") || held >= IncrementalDecoder.MAX_HELD) && full.startsWith(prefix)) {
      const out = full.slice(prefix.length);
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return out;
    }
    if (full === prefix) {
      // Nothing visible (e.g. a skipped special token): move on without growing the window.
      this.readOffset = this.ids.length;
      return "";
    }
    if (held >= IncrementalDecoder.MAX_HELD && !full.startsWith(prefix)) {
      // Decoder output is not prefix-stable here; emit the difference conservatively.
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return full.slice(prefix.length);
    }
    return "";
  }

  /** Emits whatever is held back (at end of stream; incomplete bytes decode as U+FFFD). */
  flush(): string {
    if (this.readOffset === this.ids.length) return "";
    const prefix = this.tok.decode(this.ids.slice(this.prefixOffset, this.readOffset), this.opts);
    const full = this.tok.decode(this.ids.slice(this.prefixOffset), this.opts);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return full.startsWith(prefix) ? full.slice(prefix.length) : full;
  }

  /** All ids pushed so far. */
  get tokens(): readonly number[] {
    return this.ids;
  }
}
