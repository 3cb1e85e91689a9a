// The engine on the real stories260K checkpoint: greedy generation reproduces the published
// llama2.c continuation, and equals an independent port of llama2.c's run.c token for token
// for 200 tokens, from both the GGUF file and the HF folder; the two formats give the same logits.
import { afterAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";

import { EngineCore } from "../../src/engine/engine-core.ts";
import { startEngine, type StartedEngine } from "../../src/engine/startup.ts";
import { GGUF_PATH, HAVE_MODELS, HF_DIR, MODELS_DIR, warnIfNoModels } from "../model/helpers.ts";
import { engineOptions, greedyParams } from "./engine-helpers.ts";
import { decodeLlama2c, generateGreedy, readLlama2c } from "./llama2c-ref.ts";

warnIfNoModels("engine golden");

const PUBLISHED =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.";

function greedy(core: EngineCore, maxTokens: number, prompt: number[]): number[] {
  core.add({
    requestId: `g${Math.random()}`,
    promptTokenIds: prompt,
    params: greedyParams(maxTokens),
  });
  const out: number[] = [];
  while (core.hasWork()) for (const e of core.step()) out.push(...e.tokenIds);
  return out;
}

describe.skipIf(!HAVE_MODELS)("stories260K greedy generation", () => {
  const started: StartedEngine[] = [];
  afterAll(() => {
    for (const s of started) s.close();
  });
  const ref = HAVE_MODELS ? generateGreedy(readLlama2c(resolve(MODELS_DIR, "stories260K/stories260K.bin")), 200) : [];

  test("the independent run.c port reproduces the published text", () => {
    const text = decodeLlama2c(resolve(MODELS_DIR, "stories260K/tok512.bin"), 512, ref);
    expect(text.startsWith(PUBLISHED)).toBe(true);
  });

  for (const [name, path] of [
    ["GGUF", GGUF_PATH],
    ["HF folder", HF_DIR],
  ] as const) {
    test(`${name}: 200 greedy tokens equal llama2.c's, text starts with the published continuation`, () => {
      const s = startEngine(engineOptions(path, { deviceOrdinal: name === "GGUF" ? 1 : 2 }));
      started.push(s);
      const core = new EngineCore(s, { maxNumSeqs: 8, maxWaiting: 64, servedModelName: null });
      const toks = greedy(core, 200, [1]);
      expect(toks.length).toBe(200);
      expect(toks).toEqual(ref);
      expect(s.opened.tokenizer.decode([1, ...toks]).startsWith(PUBLISHED)).toBe(true);
      expect(core.stats().blocksUsed).toBe(0);
    });
  }

  test("GGUF and HF give logits equal within 1e-4", () => {
    const [a, b] = [startEngine(engineOptions(GGUF_PATH, { deviceOrdinal: 3 })), startEngine(engineOptions(HF_DIR, { deviceOrdinal: 4 }))];
    started.push(a, b);
    const prompt = Int32Array.from([1, ...ref.slice(0, 47)]);
    const run = (s: StartedEngine) => {
      const T = prompt.length;
      const maxB = s.limits.maxBlocksPerSeq;
      const bt = new Int32Array(maxB).map((_, i) => i);
      s.model.stage({
        inputIds: prompt,
        positions: Int32Array.from({ length: T }, (_, i) => i),
        slotMapping: Int32Array.from({ length: T }, (_, i) => i),
        queryStartLoc: Int32Array.of(0, T),
        seqLens: Int32Array.of(T),
        blockTables: bt,
        logitsIndices: Int32Array.of(T - 1),
        decodeOnly: false,
      });
      s.model.forward(T, 1, 1, false);
      return s.model.readLogits(1).slice();
    };
    const la = run(a);
    const lb = run(b);
    let maxDiff = 0;
    for (let i = 0; i < la.length; i++) maxDiff = Math.max(maxDiff, Math.abs(la[i]! - lb[i]!));
    expect(la.length).toBe(512);
    expect(maxDiff).toBeLessThan(1e-4);
  });
});
