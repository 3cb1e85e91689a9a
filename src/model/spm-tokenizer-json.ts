// A GGUF SentencePiece vocabulary (tokenizer.ggml.model = "llama": scores, token types and
// <0xXX> byte fallback) expressed as a tokenizer.json object for @huggingface/tokenizers —
// the conversion HF's own tools do. GGUF models are served by the llama.cpp-exact engine in
// src/model/tokenizers/ instead (see gguf-tokenizer.ts); this stays as an independent
// cross-check and for exporting a GGUF vocabulary as tokenizer.json. SentencePiece BPE merges the
// adjacent pair whose concatenation is the highest-scoring piece; HF BPE merges the pair of
// lowest rank. Listing, for every piece, each split into two pieces as a merge ranked by the
// piece's score (descending) gives the same result — this is what HF's own converter does
// (transformers' SentencePieceExtractor, ties broken by piece id, then left/right id).
import { ModelFileError } from "./errors.ts";
import type { GgufFile, GgufValue } from "./gguf.ts";

import { TokenType } from "./tokenizers/token-attrs.ts";

export interface SpmVocab {
  tokens: string[];
  scores: number[];
  types: number[];
  bosId: number | null;
  eosId: number | null;
  unkId: number | null;
  addBos: boolean;
  addSpacePrefix: boolean;
}

/** Derives BPE merges from SentencePiece pieces and scores. */
export function spmMerges(v: Pick<SpmVocab, "tokens" | "scores" | "types">): [string, string][] {
  const idOf = new Map<string, number>();
  v.tokens.forEach((t, i) => {
    const ty = v.types[i] ?? TokenType.NORMAL;
    if ((ty === TokenType.NORMAL || ty === TokenType.USER_DEFINED || ty === TokenType.UNUSED) && !idOf.has(t)) idOf.set(t, i);
  });
  const merges: { l: string; r: string; score: number; id: number; li: number; ri: number }[] = [];
  v.tokens.forEach((t, id) => {
    if ((v.types[id] ?? TokenType.NORMAL) !== TokenType.NORMAL) return;
    const cps = Array.from(t);
    if (cps.length < 2) return;
    let at = 0;
    for (let i = 1; i < cps.length; i++) {
      at += cps[i - 1]!.length;
      const l = t.slice(0, at);
      const r = t.slice(at);
      const li = idOf.get(l);
      const ri = idOf.get(r);
      if (li !== undefined && ri !== undefined) merges.push({ l, r, score: v.scores[id] ?? 0, id, li, ri });
    }
  });
  merges.sort((a, b) => b.score - a.score || a.id - b.id || a.li - b.li || a.ri - b.ri);
  return merges.map((m) => [m.l, m.r]);
}

/** tokenizer.json object for a SentencePiece (llama) vocabulary. */
export function spmTokenizerJson(v: SpmVocab): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  const added: Record<string, unknown>[] = [];
  v.tokens.forEach((t, id) => {
    if (!(t in vocab)) vocab[t] = id;
    const ty = v.types[id] ?? TokenType.NORMAL;
    if (ty === TokenType.CONTROL || ty === TokenType.UNKNOWN || ty === TokenType.USER_DEFINED) {
      added.push({
        id,
        content: t,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: ty !== TokenType.USER_DEFINED,
      });
    }
  });
  const replace = { type: "Replace", pattern: { String: " " }, content: "\u2581" };
  const decoders: Record<string, unknown>[] = [
    { type: "Replace", pattern: { String: "\u2581" }, content: " " },
    { type: "ByteFallback" },
    { type: "Fuse" },
  ];
  if (v.addSpacePrefix) decoders.push({ type: "Strip", content: " ", start: 1, stop: 0 });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: v.addSpacePrefix ? { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "\u2581" }, replace] } : replace,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: "Sequence", decoders },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: v.unkId !== null ? (v.tokens[v.unkId] ?? null) : null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: spmMerges(v),
    },
  };
}

function arr(g: GgufFile, key: string): GgufValue[] | undefined {
  const v = g.metadata.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw new ModelFileError(g.path, `metadata "${key}" must be an array`);
  return v;
}

function optId(g: GgufFile, key: string, n: number): number | null {
  const v = g.metadata.get(key);
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v >= n) return null;
  return v;
}

function optBool(g: GgufFile, key: string, fallback: boolean): boolean {
  const v = g.metadata.get(key);
  return typeof v === "boolean" ? v : fallback;
}

/** The SentencePiece vocabulary embedded in a GGUF file (tokenizer.ggml.model = "llama"). */
export function ggufSpmVocab(g: GgufFile): SpmVocab {
  const model = g.metadata.get("tokenizer.ggml.model");
  if (model === undefined) throw new ModelFileError(g.path, `has no embedded tokenizer (metadata "tokenizer.ggml.model" missing)`);
  if (model !== "llama") {
    throw new ModelFileError(
      g.path,
      `embedded tokenizer type ${JSON.stringify(model)} is not SentencePiece ("llama"); only those convert to tokenizer.json here`,
    );
  }
  const tokens = arr(g, "tokenizer.ggml.tokens");
  if (!tokens || tokens.length === 0) throw new ModelFileError(g.path, `metadata "tokenizer.ggml.tokens" missing or empty`);
  if (!tokens.every((t) => typeof t === "string")) throw new ModelFileError(g.path, `metadata "tokenizer.ggml.tokens" must be strings`);
  const n = tokens.length;
  const scores = arr(g, "tokenizer.ggml.scores") ?? [];
  const types = arr(g, "tokenizer.ggml.token_type") ?? [];
  if (scores.length !== 0 && scores.length !== n)
    throw new ModelFileError(g.path, `tokenizer.ggml.scores has ${scores.length} entries for ${n} tokens`);
  if (types.length !== 0 && types.length !== n)
    throw new ModelFileError(g.path, `tokenizer.ggml.token_type has ${types.length} entries for ${n} tokens`);
  if (!scores.every((s) => typeof s === "number")) throw new ModelFileError(g.path, `tokenizer.ggml.scores must be numbers`);
  if (!types.every((s) => typeof s === "number")) throw new ModelFileError(g.path, `tokenizer.ggml.token_type must be numbers`);
  return {
    tokens: tokens as string[],
    scores: scores.length ? (scores as number[]) : tokens.map((_, i) => -i),
    types: types.length ? (types as number[]) : tokens.map(() => TokenType.NORMAL),
    bosId: optId(g, "tokenizer.ggml.bos_token_id", n),
    eosId: optId(g, "tokenizer.ggml.eos_token_id", n),
    unkId: optId(g, "tokenizer.ggml.unknown_token_id", n),
    addBos: optBool(g, "tokenizer.ggml.add_bos_token", true),
    addSpacePrefix: optBool(g, "tokenizer.ggml.add_space_prefix", true),
  };
}
