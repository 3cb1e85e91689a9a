// The quantized models the llama.cpp oracle runs (test/oracle/cases.ts) and compares with
// llama-quantize's own output (test/oracle/llama-quantize.test.ts): stories260K (real weights)
// as each 32-block type, and stories260K zero-padded to 256-wide rows (padded-llama.ts) as each
// K-quant type and as llama-quantize's Q4_K_M mixture.
import { rmSync } from "node:fs";

import { STORIES_K_QUANT_SHAPE, writePaddedLlama } from "./padded-llama.ts";
import { writeQuantizedCopy } from "./quant-gguf.ts";
import { LLAMA_FTYPE, pure, q4KM, type TypePicker } from "./quant/llama-quantize-types.ts";

/** stories260K's layer count (the Q4_K_M mixture depends on it). */
export const STORIES_LAYERS = 5;

/** Type picker and general.file_type of a file "as llama-quantize writes it" for `mix` (a type name, or Q4_K_M). */
export function llamaQuantizeMix(mix: string, layers: number): { pick: TypePicker; fileType: number } {
  if (mix === "Q4_K_M") return { pick: q4KM(layers), fileType: LLAMA_FTYPE.Q4_K_M! };
  const fileType = LLAMA_FTYPE[mix] ?? LLAMA_FTYPE[`${mix}_S`];
  if (fileType === undefined) throw new Error(`no llama_ftype for ${mix}`);
  return { pick: pure(mix), fileType };
}

/** `src` (an F32 GGUF) as llama-quantize --pure (or its Q4_K_M mixture) would write it. */
export function writeAsLlamaQuantize(src: string, out: string, mix: string, layers: number): Record<string, number> {
  const { pick, fileType } = llamaQuantizeMix(mix, layers);
  return writeQuantizedCopy(src, out, pick, fileType);
}

/** stories260K padded to 256-wide rows, then quantized as `mix`. */
export function writePaddedStoriesAs(stories: string, out: string, mix: string): void {
  const f32 = `${out}.f32.gguf`;
  writePaddedLlama(stories, f32, STORIES_K_QUANT_SHAPE);
  try {
    writeAsLlamaQuantize(f32, out, mix, STORIES_LAYERS);
  } finally {
    rmSync(f32, { force: true });
  }
}
