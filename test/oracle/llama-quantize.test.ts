// The quantized files the oracle rows run are the files llama-quantize itself writes: for every
// type headroom keeps quantized (llama-quantize --pure) and for the Q4_K_M mixture, llama.cpp's
// llama_model_quantize (the libllama node-llama-cpp ships, in a child process) and our writers
// (test/util/quant-models.ts: ggml's reference quantizers ported to TS + llama-quantize's type
// rules) turn the same F32 file into the same tensors: same names, shapes, types and bytes.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { readGguf } from "../../src/model/gguf.ts";
import { HAVE_MODELS, MODELS_DIR } from "../model/helpers.ts";
import { STORIES_K_QUANT_SHAPE, writePaddedLlama } from "../util/padded-llama.ts";
import { llamaQuantizeMix, STORIES_LAYERS, writeAsLlamaQuantize } from "../util/quant-models.ts";
import { llamaQuantize, prebuiltBinDir } from "./llama-cpp-libs.ts";

const bin = prebuiltBinDir();
const skip = typeof bin !== "string" ? bin.skip : !HAVE_MODELS ? `../shared/models not found (${MODELS_DIR})` : null;
if (skip) console.warn(`[oracle: llama-quantize] skipped: ${skip}`);

const STORIES = join(MODELS_DIR, "stories260K/stories260K.gguf");

describe.skipIf(skip !== null)("our quantized files equal llama-quantize's, tensor for tensor", () => {
  const tmp = mkdtempSync(join(tmpdir(), "headroom-llama-quantize-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const padded = join(tmp, "stories260K-padded.gguf");

  const cases: { mix: string; src: "stories" | "padded" }[] = [
    ...["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"].map((mix) => ({ mix, src: "stories" as const })),
    ...["Q4_K", "Q5_K", "Q6_K", "Q4_K_M"].map((mix) => ({ mix, src: "padded" as const })),
  ];
  for (const { mix, src } of cases) {
    test(`${mix}${mix === "Q4_K_M" ? "" : " --pure"}, ${src === "stories" ? "stories260K" : "stories260K zero-padded to 256-wide rows"}`, async () => {
      if (typeof bin !== "string") throw new Error("no prebuilt binary");
      if (src === "padded") writePaddedLlama(STORIES, padded, STORIES_K_QUANT_SHAPE);
      const source = src === "stories" ? STORIES : padded;
      const theirs = join(tmp, `${mix}-llama.gguf`);
      const ours = join(tmp, `${mix}-ours.gguf`);
      const { fileType } = llamaQuantizeMix(mix, STORIES_LAYERS);
      await llamaQuantize(bin, source, theirs, fileType, mix !== "Q4_K_M");
      const counts = writeAsLlamaQuantize(source, ours, mix, STORIES_LAYERS);

      const a = readGguf(theirs);
      const b = readGguf(ours);
      expect([...b.tensors.keys()].sort()).toEqual([...a.tensors.keys()].sort());
      const types: Record<string, number> = {};
      for (const [name, t] of a.tensors) {
        const u = b.tensors.get(name)!;
        expect({ name, type: u.ggmlType, dims: u.dims }).toEqual({ name, type: t.ggmlType, dims: t.dims });
        const first = t.data.findIndex((x, i) => x !== u.data[i]);
        if (first >= 0 || t.data.length !== u.data.length) throw new Error(`${name}: bytes differ from llama-quantize's at ${first}`);
        types[t.ggmlType] = (types[t.ggmlType] ?? 0) + 1;
      }
      expect(Number(b.metadata.get("general.file_type"))).toBe(Number(a.metadata.get("general.file_type")));
      console.log(`[llama-quantize] ${mix}: ${a.tensors.size} tensors equal; quantized ${JSON.stringify(counts)}`);
      // The file really is what the row claims: every 2-D weight quantized (or F16 where no block fits).
      expect(Object.values(counts).reduce((x, y) => x + y, 0)).toBe([...a.tensors.values()].filter((t) => t.dims.length === 2).length);
    }, 60_000);
  }
});
