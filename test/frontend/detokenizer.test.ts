// The incremental detokenizer on real tokenizers: prompt text + streamed completion text is
// exactly the decode of prompt + completion ids (the leading space of the first generated
// SentencePiece token survives, as in llama-server and vLLM), multi-byte characters are held
// until whole, and logprob token strings carry their leading space.
import { describe, expect, test } from "bun:test";

import { IncrementalDetokenizer } from "../../src/frontend/detokenizer.ts";
import type { Tokenizer } from "../../src/model/tokenizer.ts";
import { HAVE_MODELS, realTokenizers } from "./fixtures.ts";

const TEXTS = [
  'Lily and Tom went to the park. She said "hi" and they played.\n\nThe end.',
  "Once upon a time, there was a little girl named Lily.",
  "  leading spaces,\ttabs and\nnew lines; ünïcødé ✓ 日本語 😀 ok",
];

/** Streams `ids` after `prompt` through a fresh detokenizer; returns the pieces. */
function stream(tok: Tokenizer, prompt: number[], ids: number[]): string[] {
  const d = new IncrementalDetokenizer(tok, prompt);
  const pieces = ids.map((id) => d.push(id));
  pieces.push(d.flush());
  return pieces;
}

describe.each(realTokenizers())("incremental detokenizer: %s", (_name, load) => {
  const tok = load();

  test("prompt text + streamed text == decode(prompt + completion) at every split", () => {
    for (const text of TEXTS) {
      const ids = tok.encode(text, { addBos: true });
      for (let k = 1; k < ids.length; k++) {
        const prefix = tok.decode(ids.slice(0, k));
        if (prefix.endsWith("\uFFFD")) continue; // a split inside a character: not a real prompt
        const got = prefix + stream(tok, ids.slice(0, k), ids.slice(k)).join("");
        expect(got).toBe(tok.decode(ids));
      }
    }
  });

  test("a character split over byte tokens is held back, never streamed as U+FFFD", () => {
    const ids = tok.encode("Tom ate 日本語 😀 cake", { addBos: true });
    const pieces = stream(tok, ids.slice(0, 2), ids.slice(2));
    for (const p of pieces) expect(p).not.toContain("\uFFFD");
  });

  test("logprob token strings at their place join to the streamed text", () => {
    const ids = tok.encode(TEXTS[0]!, { addBos: true });
    const d = new IncrementalDetokenizer(tok, ids.slice(0, 4));
    let strings = "";
    let text = "";
    for (const id of ids.slice(4)) {
      strings += d.tokenStrings([id])[0];
      text += d.push(id);
    }
    expect(strings).toBe(text + d.flush());
  });
});

describe.skipIf(!HAVE_MODELS)("leading space of the first generated token (SentencePiece)", () => {
  const [, loadGguf] = realTokenizers().find(([n]) => n === "stories260K gguf")!;
  const tok = loadGguf();

  test('"Lily and Tom went to the" + "▁park" streams " park", not "park"', () => {
    const all = tok.encode("Lily and Tom went to the park", { addBos: true });
    const prompt = tok.encode("Lily and Tom went to the", { addBos: true });
    expect(all.slice(0, prompt.length)).toEqual(prompt);
    const completion = stream(tok, prompt, all.slice(prompt.length)).join("");
    expect(completion).toBe(" park");
    expect(tok.decode(prompt) + completion).toBe("Lily and Tom went to the park");
    // Decoding the token alone (what the engine used to do) loses the space.
    expect(tok.decode(all.slice(prompt.length))).toBe("park");
  });

  test("logprob strings keep the space too (alternatives included)", () => {
    const prompt = tok.encode("Once upon a", { addBos: true });
    const d = new IncrementalDetokenizer(tok, prompt);
    const time = tok.encode("Once upon a time", { addBos: true }).at(-1)!;
    const [s, alt] = d.tokenStrings([time, tok.encode("Once upon a day", { addBos: true }).at(-1)!]);
    expect(s).toBe(" time");
    expect(alt).toBe(" day");
  });
});
