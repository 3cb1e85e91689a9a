// The tokenizer embedded in a GGUF file, as llama.cpp runs it: SentencePiece ("llama", incl.
// Gemma's), byte-level BPE ("gpt2": Llama 3, Qwen 2/2.5/3, SmolLM, DeepSeek, Mistral-Nemo …)
// and Gemma 4's BPE ("gemma4"). The engine is src/model/tokenizers/gguf-vocab.ts; this file
// adapts it to the Tokenizer front (BOS/EOS, end-of-generation ids, incremental decoding).
import type { GgufFile } from "./gguf.ts";
import { type EngineSpecials, Tokenizer, type TokenizerEngine } from "./tokenizer.ts";
import { GgufVocab } from "./tokenizers/gguf-vocab.ts";

export { TokenType } from "./tokenizers/token-attrs.ts";
export { ggufSpmVocab, spmMerges, spmTokenizerJson, type SpmVocab } from "./spm-tokenizer-json.ts";
export { GgufVocab } from "./tokenizers/gguf-vocab.ts";

/** GgufVocab behind the TokenizerEngine interface. */
export class GgufEngine implements TokenizerEngine {
  constructor(readonly vocab: GgufVocab) {}
  get vocabSize(): number {
    return this.vocab.size;
  }
  encode(text: string, parseSpecial: boolean): number[] {
    return this.vocab.encode(text, parseSpecial);
  }
  /** Skipping specials = llama.cpp's remove_special and no unparse_special; else both the other way. */
  decode(ids: readonly number[], skipSpecialTokens: boolean): string {
    return this.vocab.decode(ids, { removeSpecial: skipSpecialTokens, unparseSpecial: !skipSpecialTokens });
  }
  tokenToId(token: string): number | undefined {
    return this.vocab.tokenToId(token);
  }
  idToToken(id: number): string | undefined {
    return this.vocab.tokens[id];
  }
}

/** End-of-generation ids with the vocabulary's EOS first (encode's addEos appends the first). */
export function ggufEosIds(v: GgufVocab): number[] {
  const eos = v.special.eos;
  return eos === null ? [...v.eogIds] : [eos, ...v.eogIds.filter((id) => id !== eos)];
}

/** A Tokenizer for the GGUF file's embedded vocabulary. */
export function ggufTokenizer(g: GgufFile, extraEos: readonly number[] = []): Tokenizer {
  return tokenizerFromVocab(new GgufVocab(g), extraEos);
}

/** A Tokenizer over an already loaded GGUF vocabulary. */
export function tokenizerFromVocab(v: GgufVocab, extraEos: readonly number[] = []): Tokenizer {
  const specialIds = new Set<number>();
  for (let id = 0; id < v.size; id++) if (v.isControl(id)) specialIds.add(id);
  // xgrammar's view of the token strings: SentencePiece ("▁", <0xNN> byte tokens) or GPT-2 bytes.
  const vocabType = v.kind === "spm" ? "byte_fallback" : v.model === "gpt2" ? "byte_level" : "byte_fallback";
  const specials: EngineSpecials = {
    bosTokenId: v.special.bos,
    eosTokenIds: ggufEosIds(v),
    addBos: v.addBos,
    addEos: v.addEos,
    specialIds,
    vocabType,
    prependSpace: v.addSpacePrefix,
  };
  return Tokenizer.fromEngine(new GgufEngine(v), specials, extraEos);
}
