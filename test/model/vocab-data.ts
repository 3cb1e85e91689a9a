// llama.cpp's tokenizer test data (tests/test-tokenizer-0): a vocab-only GGUF (gzipped here),
// .inp with the test strings separated by "\n__ggml_vocab_test__\n", and .out with the ids
// llama.cpp must produce for each (add_special = false, parse_special = false), one line each.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { type GgufFile, parseGguf } from "../../src/model/gguf.ts";
import { VOCAB_DIR } from "./helpers.ts";

export interface VocabCase {
  text: string;
  ids: number[];
}

/** Names ("llama-bpe", …) of the vocabularies present in VOCAB_DIR. */
export function vocabNames(): string[] {
  if (!existsSync(VOCAB_DIR)) return [];
  return readdirSync(VOCAB_DIR)
    .map((f) => /^ggml-vocab-(.+)\.gguf\.gz$/.exec(f)?.[1])
    .filter((n): n is string => n !== undefined)
    .sort();
}

/** The GGUF, un-gzipped in memory. */
export function loadVocabGguf(name: string): GgufFile {
  const path = join(VOCAB_DIR, `ggml-vocab-${name}.gguf`);
  return parseGguf(path, Bun.gunzipSync(readFileSync(`${path}.gz`)));
}

/** The test strings and expected ids, split exactly as test-tokenizer-0.cpp reads them. */
export function loadVocabCases(name: string): VocabCase[] {
  const base = join(VOCAB_DIR, `ggml-vocab-${name}.gguf`);
  const raw = readFileSync(`${base}.inp`, "utf8");
  const sep = "\n__ggml_vocab_test__\n";
  const texts: string[] = [];
  for (let pos = 0; pos < raw.length; ) {
    const next = raw.indexOf(sep, pos);
    if (next === -1) {
      texts.push(raw.slice(pos));
      break;
    }
    texts.push(raw.slice(pos, next));
    pos = next + sep.length;
  }
  const lines = readFileSync(`${base}.out`, "utf8").split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (lines.length !== texts.length) throw new Error(`${base}: ${texts.length} test strings but ${lines.length} .out lines`);
  return texts.map((text, i) => {
    const l = lines[i]!.trim();
    return { text, ids: l === "" ? [] : l.split(" ").map(Number) };
  });
}
