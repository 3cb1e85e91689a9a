// The frontend's per-sequence output processor: engine id events in, text events out. Stop
// strings (also split across tokens) end the text before the match and drop later tokens; text
// that may still become a stop string is held back, then released when it does not; the EOS /
// stop token adds no text; logprob strings and text offsets follow the text.
import { describe, expect, test } from "bun:test";

import type { TokenEvent } from "../../src/engine/api.ts";
import { OutputProcessor, type TextEvent } from "../../src/frontend/output-processor.ts";
import { findStopString, stopPrefixLength } from "../../src/frontend/stop-strings.ts";
import { loadTextModel } from "../../src/frontend/text-model.ts";
import { GGUF_PATH, HAVE_MODELS } from "./fixtures.ts";

const demo = loadTextModel(null).tokenizer; // id = UTF-8 byte, BOS 256, EOS 257
const bytes = (s: string) => Array.from(new TextEncoder().encode(s));

/** Feeds `ids` one event per token (the last one finishing with `finish`); returns the text events. */
function run(p: OutputProcessor, ids: number[], finish: TokenEvent["finishReason"] = "length", logprobs = false): TextEvent[] {
  const out: TextEvent[] = [];
  ids.forEach((id, i) => {
    const last = i === ids.length - 1;
    const ev: TokenEvent = {
      requestId: "r",
      tokenIds: [id],
      ...(logprobs
        ? {
            logprobs: [
              {
                tokenId: id,
                logprob: -1,
                top: [
                  { tokenId: id, logprob: -1 },
                  { tokenId: 10, logprob: -2 },
                ],
              },
            ],
          }
        : {}),
      finishReason: last ? finish : null,
      promptTokens: 3,
      completionTokens: i + 1,
    };
    const te = p.process(ev);
    if (te) out.push(te);
  });
  return out;
}

describe("stop strings", () => {
  test("findStopString: earliest match that ends in the new text", () => {
    expect(findStopString("hello world", ["wor", "lo"], 8)).toEqual({ index: 3, stop: "lo" });
    expect(findStopString("hello world", ["wor", "lo"], 6)).toEqual({ index: 6, stop: "wor" });
    expect(findStopString("hello world", ["lo"], 6)).toBeNull(); // ended inside the old text: seen before
  });

  test("stopPrefixLength: the tail that may still become a stop string", () => {
    expect(stopPrefixLength("the en", ["end.", "xyz"])).toBe(2);
    expect(stopPrefixLength("the e", ["end."])).toBe(1);
    expect(stopPrefixLength("the end", ["end."])).toBe(3);
    expect(stopPrefixLength("tha", ["end."])).toBe(0);
  });

  test("a stop string split across tokens ends the text before it; later tokens are dropped", () => {
    const p = new OutputProcessor(demo, bytes("go"), { stop: ["The end", "zz"], logprobs: false });
    const evs = run(p, bytes("Once upon a time. The end. More text"));
    const last = evs.at(-1)!;
    expect(last.finishReason).toBe("stop");
    expect(last.stopReason).toBe("The end");
    expect(evs.map((e) => e.text).join("")).toBe("Once upon a time. ");
    expect(p.finished).toBe(true);
    // the token that completed the match counts; nothing after it
    expect(last.completionTokens).toBe("Once upon a time. The end".length);
    expect(evs.length).toBe("Once upon a time. The end".length);
  });

  test("held-back text is released as soon as it cannot become a stop string", () => {
    const p = new OutputProcessor(demo, bytes("go"), { stop: ["The end"], logprobs: false });
    const evs = run(p, bytes("Then The"), null);
    const streamed: string[] = evs.map((e) => e.text);
    // "The" is held (a prefix of "The end") until "n" shows it is not
    expect(streamed.slice(0, 4)).toEqual(["", "", "", "Then"]);
    expect(streamed.join("")).toBe("Then ");
    const fin = p.process({ requestId: "r", tokenIds: [], finishReason: "length", promptTokens: 3, completionTokens: 8 })!;
    expect(fin.text).toBe("The"); // released at the end
  });

  test("EOS / stop token id: counted, adds no text; held multi-byte text is flushed at the end", () => {
    const p = new OutputProcessor(demo, bytes("go"), { stop: [], logprobs: false });
    const evs = run(p, [...bytes("ok "), 0xe2, 257], "stop"); // a dangling lead byte, then EOS
    expect(evs.map((e) => e.text).join("")).toBe("ok \uFFFD");
    expect(evs.at(-1)!.stopReason).toBe(257);
    expect(evs.at(-1)!.completionTokens).toBe(5);
  });
});

describe("logprob strings and offsets", () => {
  test("offsets index the completion text; a newline token is a token like any other", () => {
    const p = new OutputProcessor(demo, bytes("go"), { stop: [], logprobs: true });
    const evs = run(p, bytes("a\nbc"), "length", true);
    const lps = evs.flatMap((e) => e.logprobs ?? []);
    expect(lps.map((l) => l.token)).toEqual(["a", "\n", "b", "c"]);
    expect(lps.map((l) => l.textOffset)).toEqual([0, 1, 2, 3]);
    expect(lps[0]!.top.map((t) => t.token)).toEqual(["a", "\n"]);
  });

  test("a token that is part of a character: U+FFFD string, its own raw bytes", () => {
    const p = new OutputProcessor(demo, bytes("go"), { stop: [], logprobs: true });
    const lps = run(p, bytes("aé"), "length", true).flatMap((e) => e.logprobs ?? []);
    expect(lps.map((l) => l.token)).toEqual(["a", "\uFFFD", "\uFFFD"]);
    expect(lps.map((l) => l.bytes)).toEqual([null, [0xc3], [0xa9]]);
  });

  test.skipIf(!HAVE_MODELS)("SentencePiece byte fallback: <0xNN> pieces carry their byte", () => {
    const tok = loadTextModel(GGUF_PATH).tokenizer;
    const prompt = tok.encode("Tom saw", { addBos: true });
    const rest = tok.encode("Tom saw 日", { addBos: true }).slice(prompt.length);
    const p = new OutputProcessor(tok, prompt, { stop: [], logprobs: true });
    const lps = run(p, rest, "length", true).flatMap((e) => e.logprobs ?? []);
    const raw = lps.filter((l) => l.bytes !== null).flatMap((l) => l.bytes!);
    expect(raw).toEqual(Array.from(new TextEncoder().encode("日")));
  });

  test.skipIf(!HAVE_MODELS)("SentencePiece: the first token's string and offset keep the space", () => {
    const tok = loadTextModel(GGUF_PATH).tokenizer;
    const prompt = tok.encode("Lily and Tom went to the", { addBos: true });
    const rest = tok.encode("Lily and Tom went to the park and played", { addBos: true }).slice(prompt.length);
    const p = new OutputProcessor(tok, prompt, { stop: [], logprobs: true });
    const evs = run(p, rest, "length", true);
    const lps = evs.flatMap((e) => e.logprobs ?? []);
    const text = evs.map((e) => e.text).join("");
    expect(text).toBe(" park and played");
    expect(lps.map((l) => l.token).join("")).toBe(text);
    for (const l of lps) expect(text.slice(l.textOffset, l.textOffset + l.token.length)).toBe(l.token);
  });
});
