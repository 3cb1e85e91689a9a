// GGUF tokenizers on tiny in-memory vocabularies (no fixtures needed): the merge order of
// byte-level BPE and SentencePiece, byte fallback, special-token splitting, and clear errors
// for vocabularies that cannot be served.
import { describe, expect, test } from "bun:test";

import { ModelFileError } from "../../src/model/errors.ts";
import type { GgufFile, GgufValue } from "../../src/model/gguf.ts";
import { ggufTokenizer } from "../../src/model/gguf-tokenizer.ts";
import { byteChar } from "../../src/model/tokenizers/byte-unicode.ts";
import { knownPreTokenizers, preTokenizerByName } from "../../src/model/tokenizers/pre-types.ts";
import { PreTokenizerSplitter } from "../../src/model/tokenizers/pretokenize.ts";

function gguf(meta: Record<string, GgufValue>, path = "tiny.gguf"): GgufFile {
  return {
    path,
    version: 3,
    metadata: new Map(Object.entries(meta)),
    metadataTypes: new Map(),
    tensors: new Map(),
    alignment: 32,
    dataStart: 0,
  };
}

/** Byte-level BPE: the 256 byte characters, then merged tokens, then one control token. */
function tinyBpe(extra: Record<string, GgufValue> = {}): GgufFile {
  const tokens = Array.from({ length: 256 }, (_, b) => byteChar(b));
  const merged = ["he", "ll", "hell", "hello", "Ġw", "Ġwo"];
  tokens.push(...merged, "<|end|>");
  const types = tokens.map((_, i) => (i === tokens.length - 1 ? 3 : 1));
  return gguf({
    "tokenizer.ggml.model": "gpt2",
    "tokenizer.ggml.pre": "gpt-2",
    "tokenizer.ggml.tokens": tokens,
    "tokenizer.ggml.token_type": types,
    // "l l" ranks before "h e": "hello" → he|ll|o → hell|o → hello
    "tokenizer.ggml.merges": ["l l", "h e", "he ll", "hell o", "Ġ w", "Ġw o"],
    "tokenizer.ggml.eos_token_id": tokens.length - 1,
    ...extra,
  });
}

describe("byte-level BPE on a tiny vocabulary", () => {
  const tok = ggufTokenizer(tinyBpe());
  const id = (t: string) => tok.tokenToId(t)!;

  test("merges by rank, leftmost first; pre-tokens split the GPT-2 way", () => {
    expect(tok.encode("hello")).toEqual([id("hello")]);
    expect(tok.encode("hello wo")).toEqual([id("hello"), id("Ġwo")]);
    expect(tok.encode("hellx")).toEqual([id("hell"), id("x")]);
    expect(tok.encode("é")).toEqual([0xc3, 0xa9].map((b) => id(byteChar(b))));
  });

  test("control tokens split out of text only with parseSpecial, and end generation", () => {
    const end = id("<|end|>");
    expect(tok.encode("hello<|end|>")).toEqual([id("hello"), end]);
    expect(tok.encode("hello<|end|>", { parseSpecial: false })).not.toContain(end);
    expect(tok.isEos(end)).toBe(true);
    expect(tok.decode([id("hello"), end])).toBe("hello");
    expect(tok.decode([id("hello"), end], { skipSpecialTokens: false })).toBe("hello<|end|>");
    expect(tok.decode(tok.encode("héllo wörld", { parseSpecial: false }))).toBe("héllo wörld");
  });

  test("add_eos appends EOS", () => {
    const t = ggufTokenizer(tinyBpe({ "tokenizer.ggml.add_eos_token": true }));
    expect(t.encode("hello")).toEqual([t.tokenToId("hello")!, t.tokenToId("<|end|>")!]);
  });
});

describe("SentencePiece on a tiny vocabulary", () => {
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  const pieces: [string, number][] = [
    ["▁", -1],
    ["a", -2],
    ["b", -2],
    ["▁a", -3],
    ["ab", -1.5],
    ["▁ab", -0.5],
    ["ba", -0.1],
  ];
  const tokens = ["<unk>", "<s>", "</s>", ...bytes, ...pieces.map((p) => p[0])];
  const types = [2, 3, 3, ...bytes.map(() => 6), ...pieces.map(() => 1)];
  const scores = [0, 0, 0, ...bytes.map(() => 0), ...pieces.map((p) => p[1])];
  const tok = ggufTokenizer(
    gguf({
      "tokenizer.ggml.model": "llama",
      "tokenizer.ggml.tokens": tokens,
      "tokenizer.ggml.token_type": types,
      "tokenizer.ggml.scores": scores,
    }),
  );
  const id = (t: string) => tok.tokenToId(t)!;

  test("merges the highest-scoring pair first (not the lowest rank), with the ▁ prefix", () => {
    // "▁aba": pairs ▁a(-3), ab(-1.5), ba(-0.1) → ba first, then ▁a|ba cannot merge → [▁a, ba]
    expect(tok.encode("aba", { addBos: false })).toEqual([id("▁a"), id("ba")]);
    // "▁ab": ab(-1.5) > ▁a(-3) → ▁|ab → ▁ab(-0.5)
    expect(tok.encode("ab")).toEqual([1, id("▁ab")]);
  });

  test("characters without a piece become <0xXX> byte tokens and decode back", () => {
    const ids = tok.encode("a€", { addBos: false });
    expect(ids).toEqual([id("▁a"), id("<0xE2>"), id("<0x82>"), id("<0xAC>")]);
    expect(tok.decode(ids)).toBe("a€");
  });
});

describe("unsupported or corrupt tokenizer metadata is refused with the file named", () => {
  const refuse = (g: GgufFile, msg: RegExp) => {
    let err: unknown;
    try {
      ggufTokenizer(g);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as Error).message).toContain(g.path);
    expect((err as Error).message).toMatch(msg);
  };

  test("tokenizer types and pre-tokenizers out of scope", () => {
    refuse(tinyBpe({ "tokenizer.ggml.model": "bert" }), /tokenizer type "bert" is not supported/);
    refuse(tinyBpe({ "tokenizer.ggml.pre": "no-such-pre" }), /pre-tokenizer .*"no-such-pre" is not supported \(supported: .*llama-bpe/);
    refuse(gguf({}), /has no embedded tokenizer/);
  });

  test("missing merges, short arrays, duplicates, wrong value types", () => {
    const g = tinyBpe();
    g.metadata.delete("tokenizer.ggml.merges");
    refuse(g, /has no merges/);
    refuse(tinyBpe({ "tokenizer.ggml.token_type": [1, 1] }), /token_type has 2 entries for 263 tokens/);
    refuse(
      tinyBpe({ "tokenizer.ggml.tokens": ["a", "b", "a"], "tokenizer.ggml.token_type": [1, 1, 1] }),
      /duplicate token in vocabulary: "a" has ids 0 and 2/,
    );
    refuse(tinyBpe({ "tokenizer.ggml.tokens": ["a", 7] }), /entry 1 is not a string/);
    // Two invalid-UTF-8 tokens both read as "\uFFFD…" are not a real duplicate.
    const lenient = tinyBpe({
      "tokenizer.ggml.tokens": ["a", "\uFFFDx", "\uFFFDx"],
      "tokenizer.ggml.token_type": [1, 1, 1],
      "tokenizer.ggml.eos_token_id": 0,
    });
    expect(ggufTokenizer(lenient).tokenToId("\uFFFDx")).toBe(1);
    // Gemma 4 always adds BOS (llama.cpp forces it) and has no default BOS id.
    refuse(tinyBpe({ "tokenizer.ggml.model": "gemma4" }), /add_bos_token is true, but tokenizer.ggml.bos_token_id is not set/);
  });
});

describe("every named pre-tokenizer", () => {
  test("compiles and splits text into pieces that rejoin to it", () => {
    const text = "Hello, y'all! I'M 12345 naïve café 世界 🦙\n\n  \t x\u00a0y 'll ...";
    for (const name of knownPreTokenizers()) {
      const pre = preTokenizerByName(name)!;
      const pieces = new PreTokenizerSplitter(pre).split(text);
      expect(pieces.join("")).toBe(text);
      expect(pieces.every((p) => p.length > 0)).toBe(true);
      expect(pieces.length).toBeGreaterThanOrEqual(3); // gemma4 splits at newlines only
    }
  });

  test("llama3 splits digits in threes and keeps contractions; gpt-2 keeps digit runs", () => {
    const llama3 = new PreTokenizerSplitter(preTokenizerByName("llama-bpe")!);
    expect(llama3.split("I'M 1234567 ok\n\n")).toEqual(["I", "'M", " ", "123", "456", "7", " ok", "\n\n"]);
    const gpt2 = new PreTokenizerSplitter(preTokenizerByName("gpt-2")!);
    expect(gpt2.split("I'M 1234567  ok")).toEqual(["I", "'", "M", " 1234567", " ", " ok"]);
    const qwen2 = new PreTokenizerSplitter(preTokenizerByName("qwen2")!);
    expect(qwen2.split("ab 123")).toEqual(["ab", " ", "1", "2", "3"]);
  });
});
