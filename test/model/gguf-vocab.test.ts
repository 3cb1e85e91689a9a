// The GGUF tokenizers against llama.cpp's own test data: every string of every
// ggml-vocab-*.gguf.inp must tokenize to its .out line (add_special = false, parse_special =
// false, as test-tokenizer-0 runs), decode back, stream, and keep specials and EOG ids right.
import { describe, expect, test } from "bun:test";

import { tokenizerFromVocab } from "../../src/model/gguf-tokenizer.ts";
import type { Tokenizer } from "../../src/model/tokenizer.ts";
import { cleanSpaces } from "../../src/model/tokenizers/clean-spaces.ts";
import { GgufVocab } from "../../src/model/tokenizers/gguf-vocab.ts";
import { openModel } from "../../src/model/load.ts";
import { GGUF_PATH, HAVE_MODELS, prng, VOCAB_DIR, warnIfNoModels } from "./helpers.ts";
import { loadVocabCases, loadVocabGguf, vocabNames } from "./vocab-data.ts";

warnIfNoModels("gguf-vocab");
const NAMES = vocabNames();
if (NAMES.length === 0) console.warn(`[gguf-vocab] skipped: no ggml-vocab-*.gguf.gz in ${VOCAB_DIR}; set HEADROOM_MODELS_DIR`);

const loaded = new Map<string, { vocab: GgufVocab; tok: Tokenizer }>();
function load(name: string): { vocab: GgufVocab; tok: Tokenizer } {
  let l = loaded.get(name);
  if (!l) {
    const vocab = new GgufVocab(loadVocabGguf(name));
    l = { vocab, tok: tokenizerFromVocab(vocab) };
    loaded.set(name, l);
  }
  return l;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

describe.skipIf(NAMES.length === 0)("llama.cpp vocab test data", () => {
  test("all seven vocabularies of the brief are present", () => {
    for (const n of ["llama-bpe", "qwen2", "phi-3", "llama-spm", "deepseek-llm", "gpt-2", "gemma-4"]) expect(NAMES).toContain(n);
  });

  for (const name of NAMES) {
    test(`${name}: every .inp string tokenizes to its .out line`, () => {
      const { tok } = load(name);
      const cases = loadVocabCases(name);
      const bad: string[] = [];
      for (const c of cases) {
        const ids = tok.encode(c.text, { addBos: false, addEos: false, parseSpecial: false });
        if (JSON.stringify(ids) !== JSON.stringify(c.ids))
          bad.push(`${JSON.stringify(c.text)}: got ${JSON.stringify(ids)}, want ${JSON.stringify(c.ids)}`);
      }
      console.log(`[gguf-vocab] ${name}: ${cases.length - bad.length}/${cases.length} lines match llama.cpp`);
      expect(bad).toEqual([]);
      expect(cases.length).toBeGreaterThan(40);
    }, 120_000);

    test(`${name}: decoding the expected ids gives the text back`, () => {
      const { tok } = load(name);
      for (const c of loadVocabCases(name)) expect(tok.decode(c.ids, { skipSpecialTokens: false })).toBe(c.text);
    }, 120_000);
  }
});

/** Strings of mixed scripts, whitespace runs, digits, emoji, random codepoints. */
function mixedStrings(n: number, seed: number): string[] {
  const rnd = prng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const parts = [
    " ",
    "  ",
    "\n",
    "\t",
    "\r\n",
    "Hello",
    "world",
    "don't",
    "I'M",
    "3333",
    "1234567",
    "!!!",
    " ?",
    "'s",
    "世界",
    "Привет",
    "🦙",
    "👨‍👩‍👧",
    "\u00a0",
    "\u3000",
    "é",
    "ö",
  ];
  return Array.from({ length: n }, () => {
    let s = "";
    const k = 1 + Math.floor(rnd() * 10);
    for (let i = 0; i < k; i++) {
      if (rnd() < 0.2) {
        let cp = 0x20 + Math.floor(rnd() * 0x2ffe0);
        // No surrogates; no U+2581, which SentencePiece vocabularies cannot tell from a space.
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp === 0x2581) cp = 0x41;
        s += String.fromCodePoint(cp);
      } else s += pick(parts);
    }
    return s;
  });
}

describe.skipIf(NAMES.length === 0)("GGUF tokenizers: round trip, streaming, specials", () => {
  for (const name of NAMES) {
    test(`${name}: decode(encode(s)) = s on 300 mixed strings, and streaming decode equals it`, () => {
      const { tok } = load(name);
      for (const s of mixedStrings(300, name.length)) {
        const ids = tok.encode(s, { addBos: false, parseSpecial: false });
        const text = tok.decode(ids, { skipSpecialTokens: false });
        expect(text).toBe(s);
        const dec = tok.incrementalDecoder({ skipSpecialTokens: false });
        let streamed = "";
        for (const id of ids) {
          const piece = dec.push(id);
          expect(piece.includes("\uFFFD")).toBe(false);
          streamed += piece;
        }
        expect(streamed + dec.flush()).toBe(text);
      }
    }, 120_000);
  }

  test("qwen2: control tokens are parsed only with parseSpecial; eog has <|im_end|> and <|endoftext|>", () => {
    const { tok } = load("qwen2");
    const start = tok.tokenToId("<|im_start|>")!;
    const end = tok.tokenToId("<|im_end|>")!;
    const withSpecial = tok.encode("<|im_start|>user\nhi<|im_end|>");
    expect(withSpecial[0]).toBe(start);
    expect(withSpecial.at(-1)).toBe(end);
    const plain = tok.encode("<|im_start|>user\nhi<|im_end|>", { parseSpecial: false });
    expect(plain).not.toContain(start);
    expect(plain).not.toContain(end);
    expect(tok.decode(plain)).toBe("<|im_start|>user\nhi<|im_end|>");
    expect(tok.decode(withSpecial)).toBe("user\nhi"); // control tokens vanish when skipping specials
    expect(tok.decode(withSpecial, { skipSpecialTokens: false })).toBe("<|im_start|>user\nhi<|im_end|>");
    expect(tok.isEos(end)).toBe(true);
    expect(tok.isEos(tok.tokenToId("<|endoftext|>")!)).toBe(true);
    expect(tok.addBos).toBe(false);
  });

  test("llama-bpe: BOS added by default (llama3 pre-tokenizer), <|eot_id|> ends generation", () => {
    const { tok } = load("llama-bpe");
    expect(tok.addBos).toBe(true);
    expect(tok.bosTokenId).toBe(128000);
    expect(tok.encode("Hello")).toEqual([128000, 9906]);
    expect(tok.eosTokenIds[0]).toBe(128001);
    expect(tok.isEos(tok.tokenToId("<|eot_id|>")!)).toBe(true);
    expect(tok.isEos(tok.tokenToId("<|start_header_id|>")!)).toBe(false);
  });

  test("gemma-4: BOS forced on, <turn|> and <eos> end generation, specials split out of text", () => {
    const { tok } = load("gemma-4");
    expect(tok.addBos).toBe(true);
    expect(tok.bosToken).toBe("<bos>");
    for (const t of ["<eos>", "<turn|>"]) expect(tok.isEos(tok.tokenToId(t)!)).toBe(true);
    const ids = tok.encode("<|turn>user\nHi there<turn|>", { addBos: false });
    expect(ids[0]).toBe(tok.tokenToId("<|turn>")!);
    expect(ids.at(-1)).toBe(tok.tokenToId("<turn|>")!);
    expect(tok.decode(ids, { skipSpecialTokens: false })).toBe("<|turn>user\nHi there<turn|>");
  });

  test("llama-spm: space prefix after specials, leading space of the first piece dropped on decode", () => {
    const { tok } = load("llama-spm");
    const a = tok.encode("Hello", { addBos: false });
    expect(tok.encode("</s>Hello", { addBos: false })).toEqual([2, ...a]); // "▁Hello" again after a special
    expect(tok.decode(a)).toBe("Hello");
    expect(tok.encode("Hello")[0]).toBe(1);
    // HF's rule, not llama.cpp's " Hello": the first text after a BOS loses its space prefix too.
    expect(tok.decode(tok.encode("Hello"))).toBe("Hello");
    expect(tok.decode(tok.encode("Hello"), { skipSpecialTokens: false })).toBe("<s> Hello");
    expect(tok.eosTokenIds).toEqual([2]);
  });

  test("phi-3: special tokens swallow whitespace after them (llama.cpp's Phi-3 rstrip)", () => {
    const { tok } = load("phi-3");
    const user = tok.tokenToId("<|user|>")!;
    expect(tok.encode("<|user|>   Hi", { addBos: false })).toEqual(tok.encode("<|user|>Hi", { addBos: false }));
    expect(tok.encode("<|user|>Hi", { addBos: false })[0]).toBe(user);
    expect(tok.isEos(tok.tokenToId("<|end|>")!)).toBe(true);
  });

  test("deepseek-llm: user-defined tokens are matched even without parseSpecial", () => {
    const { tok } = load("deepseek-llm");
    const o = tok.tokenToId("ö")!;
    expect(tok.encode("schön", { addBos: false, parseSpecial: false })).toContain(o);
    expect(tok.decode(tok.encode("schön", { addBos: false }))).toBe("schön");
  });
});

describe.skipIf(NAMES.length === 0)("llama_detokenize clean_spaces (opt-in)", () => {
  test("gpt-2 applies it when asked, qwen2 never; the passes match llama.cpp's", () => {
    const gpt2 = load("gpt-2").vocab;
    const ids = gpt2.encode("Hello , world ! It 's me ' ok ' I 've", false);
    expect(gpt2.decode(ids, { removeSpecial: false, unparseSpecial: true })).toBe("Hello , world ! It 's me ' ok ' I 've");
    expect(gpt2.decode(ids, { removeSpecial: false, unparseSpecial: true, cleanSpaces: true })).toBe("Hello, world! It's me'ok'I've");
    const qwen = load("qwen2").vocab;
    const q = qwen.encode("a , b", false);
    expect(qwen.decode(q, { removeSpecial: false, unparseSpecial: true, cleanSpaces: true })).toBe("a , b");
    expect(fromUtf8.decode(cleanSpaces(utf8.encode(" 't 'd 'll x")))).toBe(" 't 'd 'll x");
  });
});

describe.skipIf(!HAVE_MODELS)("openModel (GGUF)", () => {
  test("the engine's stop ids (config.eosTokenIds) are the tokenizer's end-of-generation ids", () => {
    const m = openModel(GGUF_PATH);
    expect(m.config.eosTokenIds).toEqual(m.tokenizer.eosTokenIds);
    expect(m.config.eosTokenIds).toEqual([2]);
  });
});

describe.skipIf(NAMES.length === 0)("GGUF tokenizers: speed", () => {
  test("a 1 MB mixed prompt and a 100k-character single word tokenize in bounded time (no quadratic merge loops)", () => {
    for (const name of ["llama-bpe", "llama-spm", "gemma-4"].filter((n) => NAMES.includes(n))) {
      const { tok } = load(name);
      let big = "";
      for (const s of mixedStrings(100_000, 5)) {
        big += s + " ";
        if (big.length > 1_000_000) break;
      }
      let t = performance.now();
      const ids = tok.encode(big, { addBos: false });
      const bigMs = performance.now() - t;
      expect(ids.length).toBeGreaterThan(100_000);
      t = performance.now();
      const word = tok.encode("ab".repeat(50_000), { addBos: false });
      const wordMs = performance.now() - t;
      expect(word.length).toBeGreaterThan(0);
      console.log(`[gguf-vocab] ${name}: 1 MB in ${bigMs.toFixed(0)} ms, 100k-char word in ${wordMs.toFixed(0)} ms`);
      // Generous bounds (shared CI machines); a quadratic merge would take minutes here.
      expect(bigMs).toBeLessThan(30_000);
      expect(wordMs).toBeLessThan(15_000);
    }
  }, 300_000);

  test('special-token scan stays linear on text full of their first characters (qwen2: 290 "[PAD…]" tokens)', () => {
    if (!NAMES.includes("qwen2")) return;
    const { tok } = load("qwen2");
    const text = "[[[PAD1516".repeat(50_000) + "<|im_start|>";
    const t = performance.now();
    const ids = tok.encode(text, { addBos: false });
    const ms = performance.now() - t;
    expect(ids.at(-1)).toBe(tok.tokenToId("<|im_start|>")!);
    console.log(`[gguf-vocab] qwen2: 500k chars of "[[[PAD…" in ${ms.toFixed(0)} ms`);
    expect(ms).toBeLessThan(20_000);
  }, 120_000);
});
