// The real tokenizers the frontend suites run on: stories260K (GGUF and HF: SentencePiece BPE
// with byte fallback), llama's SentencePiece vocabulary (ggml-vocab-llama-spm, 32000 pieces),
// GPT-2 (byte-level BPE) and the demo byte tokenizer.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { loadTextModel } from "../../src/frontend/text-model.ts";
import { readGguf } from "../../src/model/gguf.ts";
import { ggufTokenizer } from "../../src/model/gguf-tokenizer.ts";
import type { Tokenizer } from "../../src/model/tokenizer.ts";
import { GGUF_PATH, GPT2_DIR, HAVE_MODELS, HF_DIR, MODELS_DIR } from "../model/helpers.ts";

export { GGUF_PATH, GPT2_DIR, HAVE_MODELS, HF_DIR };
export const SPM_VOCAB_GZ = resolve(MODELS_DIR, "vocab/ggml-vocab-llama-spm.gguf.gz");

let spm: Tokenizer | null = null;
/** llama's SentencePiece tokenizer from the vocabulary-only GGUF (gunzipped to a temp file once). */
export function llamaSpmTokenizer(): Tokenizer {
  if (spm) return spm;
  const path = join(mkdtempSync(join(tmpdir(), "headroom-spm-")), "ggml-vocab-llama-spm.gguf");
  writeFileSync(path, Bun.gunzipSync(new Uint8Array(readFileSync(SPM_VOCAB_GZ))));
  spm = ggufTokenizer(readGguf(path));
  return spm;
}

export const HAVE_SPM_VOCAB = existsSync(SPM_VOCAB_GZ);

/** name → tokenizer loader, for the fixtures present on this machine. */
export function realTokenizers(): [string, () => Tokenizer][] {
  const out: [string, () => Tokenizer][] = [["demo bytes", () => loadTextModel(null).tokenizer]];
  if (HAVE_MODELS) {
    out.push(["stories260K gguf", () => loadTextModel(GGUF_PATH).tokenizer]);
    out.push(["stories260K hf", () => loadTextModel(HF_DIR).tokenizer]);
    out.push(["gpt2", () => loadTextModel(GPT2_DIR).tokenizer]);
  }
  if (HAVE_SPM_VOCAB) out.push(["llama spm", llamaSpmTokenizer]);
  return out;
}
