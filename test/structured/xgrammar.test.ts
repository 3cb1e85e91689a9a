// The xgrammar layer (src/structured/xgrammar.ts) and the engine's matchers (src/engine/
// structured.ts) without a server: the vocabulary handed to xgrammar must describe our
// tokenizers' token strings correctly (byte-level demo tokenizer, SentencePiece byte fallback
// with its "▁" space prefix from GGUF and from tokenizer.json), which is checked by feeding the
// tokenizer's own encoding of valid text through a matcher and by checking the bitmask allows
// exactly the tokens the matcher accepts.
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

import { StructuredOutputs } from "../../src/engine/structured.ts";
import { loadTextModel } from "../../src/frontend/text-model.ts";
import type { Tokenizer } from "../../src/model/tokenizer.ts";
import { GrammarCompilerCache, GrammarError, grammarVocab } from "../../src/structured/xgrammar.ts";
import type { StructuredSpec } from "../../src/structured/spec.ts";

const MODELS = process.env.HEADROOM_MODELS_DIR ?? resolve(import.meta.dir, "../../../shared/models");
const GGUF = resolve(MODELS, "stories260K/stories260K.gguf");
const HF = resolve(MODELS, "stories260K-hf");
const HAVE = existsSync(GGUF) && existsSync(HF);
if (!HAVE) console.warn("[structured/xgrammar] stories260K tokenizers skipped: ../shared/models not found");

const TOKENIZERS: [string, () => Tokenizer, string][] = [
  ["demo (byte-level)", () => loadTextModel(null, {}).tokenizer, "byte_level"],
  ...(HAVE
    ? ([
        ["stories260K GGUF (SentencePiece)", () => loadTextModel(GGUF, {}).tokenizer, "byte_fallback"],
        ["stories260K tokenizer.json (SentencePiece)", () => loadTextModel(HF, {}).tokenizer, "byte_fallback"],
      ] as [string, () => Tokenizer, string][])
    : []),
];

/**
 * The text as one token per UTF-8 byte: byte-level vocabularies spell every byte as a token,
 * SentencePiece byte fallback has <0xNN>. This pins down the byte mapping xgrammar is given.
 */
function byteIds(tok: Tokenizer, text: string): number[] {
  const bytes = new TextEncoder().encode(text);
  if (tok.vocabType === "byte_level") return tok.encode(text, { addBos: false });
  return Array.from(bytes, (b) => tok.tokenToId(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`)!);
}

const allowed = (mask: Int32Array, t: number) => ((mask[t >> 5]! >>> (t & 31)) & 1) === 1;

for (const [label, make, vocabType] of TOKENIZERS) {
  describe(`xgrammar vocabulary: ${label}`, () => {
    const tok = make();
    const vocab = tok.vocabSize;

    test("vocab type and token strings", () => {
      expect(tok.vocabType).toBe(vocabType as typeof tok.vocabType);
      expect(tok.encodedVocab().length).toBe(vocab);
    });

    const texts: [StructuredSpec, string][] = [
      [
        {
          type: "json_schema",
          schema: { type: "object", properties: { name: { type: "string" }, n: { type: "integer" } }, required: ["name", "n"] },
        },
        '{"name": "Lily went out", "n": 42}',
      ],
      [{ type: "regex", pattern: "[0-9]{3}-[a-z]+" }, "123-abc"],
      [{ type: "choice", choices: ["once upon", "a time"] }, "once upon"],
      [{ type: "grammar", grammar: 'root ::= "big " ("red" | "blue") " ball"' }, "big red ball"],
    ];
    for (const [spec, text] of texts) {
      test(`${spec.type}: the tokenizer's own encoding of ${JSON.stringify(text)} is accepted, each token allowed by the mask, then only EOS`, async () => {
        const so = new StructuredOutputs(tok, vocab);
        const eos = tok.eosTokenIds[0]!;
        expect(await so.register("r", spec, [eos])).toBe(true);
        const ids = byteIds(tok, text);
        for (const id of ids) {
          await so.prepare();
          const b = so.batch(["free", "r"])!;
          expect(b.count).toBe(1);
          expect(b.rows[0]).toBe(1); // logits row 1 is the constrained one
          expect(allowed(b.mask.subarray(0, so.words), id)).toBe(true);
          expect(so.accept("r", [id])).toBe(true);
        }
        await so.prepare();
        const end = so.batch(["r"])!.mask.subarray(0, so.words);
        // The grammar is complete: EOS is allowed (for the choice/grammar/regex specs nothing else is).
        expect(allowed(end, eos)).toBe(true);
        if (spec.type !== "json_schema" && spec.type !== "regex") {
          for (let t = 0; t < vocab; t++) if (t !== eos) expect(allowed(end, t)).toBe(false);
        }
        expect(so.accept("r", [eos])).toBe(true);
        expect(so.terminated("r")).toBe(true);
        so.release("r");
        expect(so.has("r")).toBe(false);
      });
    }

    test("natural tokens: the tokenizer's own encoding, as the client sees its decode", async () => {
      // SentencePiece: "▁" is a space, and the first generated token keeps it in our output
      // text (see src/frontend/detokenizer.ts), so its encoding of "big red" reads " big red".
      const text = "big red";
      const seen = tok.vocabType === "byte_fallback" ? ` ${text}` : text;
      const so = new StructuredOutputs(tok, vocab);
      const eos = tok.eosTokenIds[0]!;
      await so.register("r", { type: "choice", choices: [seen, "other"] }, [eos]);
      for (const id of tok.encode(text, { addBos: false })) {
        await so.prepare();
        expect(allowed(so.batch(["r"])!.mask, id)).toBe(true);
        expect(so.accept("r", [id])).toBe(true);
      }
      await so.prepare();
      expect(allowed(so.batch(["r"])!.mask, eos)).toBe(true);
    });

    test("a token the grammar refuses is reported (accept returns false) and never allowed by the mask", async () => {
      const so = new StructuredOutputs(tok, vocab);
      await so.register("r", { type: "choice", choices: ["yes"] }, [tok.eosTokenIds[0]!]);
      const bad = tok.encode("no", { addBos: false })[0]!;
      expect(allowed(so.batch(["r"])!.mask, bad)).toBe(false);
      expect(so.accept("r", [bad])).toBe(false);
      expect(so.batch(["r"])).toBeNull(); // a broken matcher stops masking instead of blocking
    });
  });
}

describe("the compile cache", () => {
  test("same spec compiles once; errors are GrammarErrors with xgrammar's message, not cached", async () => {
    const c = new GrammarCompilerCache(grammarVocab(loadTextModel(null, {}).tokenizer, 259));
    const spec: StructuredSpec = { type: "json_schema", schema: { type: "object", properties: { a: { type: "boolean" } } } };
    const a = c.compile(spec);
    const b = c.compile({ ...spec });
    expect(b).toBe(a);
    await a;
    expect(c.size).toBe(1);
    const bad = c.compile({ type: "regex", pattern: "(" });
    await expect(bad).rejects.toBeInstanceOf(GrammarError);
    await expect(bad).rejects.toThrow(/invalid regex/);
    expect(c.size).toBe(1);
  });

  test("registration aborted while compiling: the request is dropped", async () => {
    const so = new StructuredOutputs(loadTextModel(null, {}).tokenizer, 259);
    const p = so.register("x", { type: "regex", pattern: "[a-z]{1,40}" }, [257]);
    expect(so.cancel("x")).toBe(true);
    expect(await p).toBe(false);
    expect(so.has("x")).toBe(false);
  });
});
