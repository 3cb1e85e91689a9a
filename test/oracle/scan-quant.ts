// Re-measures the quantized oracle rows (not a test; run after a kernel change):
//   bun test/oracle/scan-quant.ts [TYPES] [--twin]
// For each type (default: all QUANT_ROWS) and each QUANT_PROMPTS entry: how many of 64 greedy
// steps headroom and llama.cpp agree on, the max |Δ logprob| over the top-5 (the tolerance
// block in cases.ts is built from these), and llama.cpp's smallest top-2 gap over the first 32
// steps (how close the path comes to a near-tie); '*' marks each row's chosen prompt. --twin adds,
// for the row's prompt, llama.cpp on the F32 twin of the file (each quantized tensor replaced by
// its exact dequantization) against llama.cpp and against headroom on the quantized file: the
// first isolates llama.cpp's activation rounding, the second headroom's kernels against fp32 math.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { metadataToKvs, readGguf, serializeGguf, type GgufTensorToWrite } from "../../src/model/gguf.ts";
import { dequantizeRow, quantRowBytes, quantTypeOfGgml } from "../../src/model/quant.ts";
import { MODELS_DIR } from "../model/helpers.ts";
import { STORIES_LAYERS, writeAsLlamaQuantize, writePaddedStoriesAs } from "../util/quant-models.ts";
import { QUANT_PROMPTS, QUANT_ROWS, TOP_K } from "./cases.ts";
import { compareContinuations, type Comparison, type Continuation } from "./compare.ts";
import { openInHeadroom } from "./headroom.ts";
import { loadOracle, openInLlamaCpp } from "./llama-cpp.ts";

const STEPS = 64;

/** The file with every quantized tensor replaced by its F32 dequantization. */
function writeTwin(src: string, out: string): void {
  const g = readGguf(src);
  const tensors: GgufTensorToWrite[] = [...g.tensors.values()].map((t) => {
    const q = quantTypeOfGgml(t.ggmlType);
    if (!q) return { name: t.name, dims: t.dims, ggmlType: t.ggmlType, data: t.data };
    const k = t.dims[0]!;
    const rows = t.data.length / quantRowBytes(q, k);
    const f = new Float32Array(k * rows);
    for (let r = 0; r < rows; r++) dequantizeRow(q, t.data, r * quantRowBytes(q, k), k, f, r * k);
    return { name: t.name, dims: t.dims, ggmlType: 0, data: new Uint8Array(f.buffer) };
  });
  writeFileSync(out, serializeGguf(metadataToKvs(g.metadata, g.metadataTypes), tensors, g.alignment));
}

const gap32 = (c: Continuation) => Math.min(...c.top.slice(0, 32).map((r) => r[0]!.logprob - r[1]!.logprob));
const fmt = (r: Comparison) => `${String(r.stepsCompared).padStart(2)}/${STEPS} Δ${r.maxLogprobDelta.toFixed(2)}`;

if (import.meta.main) {
  const oracle = await loadOracle();
  if (typeof oracle === "string") throw new Error(oracle);
  const args = process.argv.slice(2);
  const only = args.find((a) => !a.startsWith("--"))?.split(",");
  const stories = join(MODELS_DIR, "stories260K/stories260K.gguf");
  const tmp = mkdtempSync(join(tmpdir(), "headroom-scan-quant-"));
  try {
    for (const row of QUANT_ROWS.filter((r) => !only || only.includes(r.mix))) {
      const path = join(tmp, `${row.mix}.gguf`);
      if (row.mix.includes("K")) writePaddedStoriesAs(stories, path, row.mix);
      else writeAsLlamaQuantize(stories, path, row.mix, STORIES_LAYERS);
      const ref = await openInLlamaCpp(oracle, path, 256);
      const hr = openInHeadroom(path, 256);
      const bos = hr.engine.opened.config.bosTokenId!;
      for (const [i, text] of QUANT_PROMPTS.entries()) {
        const prompt = [bos, ...ref.tokenize(text)];
        const a = await ref.greedy(prompt, STEPS, TOP_K);
        const r = compareContinuations(a, hr.greedy(prompt, STEPS, TOP_K), 1e9, 0);
        console.log(`${row.mix.padEnd(6)} p${String(i).padEnd(2)}${i === row.prompt ? "*" : " "} ${fmt(r)} gap32 ${gap32(a).toFixed(2)}`);
        if (i === row.prompt && args.includes("--twin")) {
          writeTwin(path, `${path}.twin.gguf`);
          const twin = await openInLlamaCpp(oracle, `${path}.twin.gguf`, 256);
          const t = await twin.greedy(prompt, STEPS, TOP_K);
          await twin.dispose();
          const b = hr.greedy(prompt, STEPS, TOP_K);
          console.log(
            `${row.mix.padEnd(6)} twin: llama.cpp quantized vs F32 twin ${fmt(compareContinuations(t, a, 1e9, 0))}; ` +
              `headroom quantized vs llama.cpp F32 twin ${fmt(compareContinuations(t, b, 1e9, 0))} ` +
              `(${compareContinuations(t, b, 1e9, 0).maxLogprobDelta.toExponential(1)})`,
          );
        }
      }
      hr.close();
      await ref.dispose();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(0);
}
