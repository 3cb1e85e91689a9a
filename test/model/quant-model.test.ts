// Quantized GGUF models end to end on the CPU backend:
//  - stories260K re-encoded as Q8_0 (ggml's reference quantizer) still continues the published
//    story greedily, with the Q8_0 weights kept quantized on the device;
//  - a synthetic Llama mixing all eight block types gives the same logits as an F32 file holding
//    exactly the dequantized weights (so the quantized kernels, the Q/K row permutation on
//    quantized rows and tied/untied LM heads match the plain path, itself checked against
//    llama2.c and llama.cpp);
//  - weight bytes on the device equal the file's tensor bytes, and the planner equals the measurement.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { EngineCore } from "../../src/engine/engine-core.ts";
import { startEngine, type StartedEngine } from "../../src/engine/startup.ts";
import { readGguf } from "../../src/model/gguf.ts";
import { planFromRequest } from "../../src/memory/plan-request.ts";
import { engineOptions, greedyParams } from "../engine/engine-helpers.ts";
import { withCEnv } from "../util/c-env.ts";
import { SYNTHETIC_MIX, writeQ8_0Copy, writeSyntheticQuantLlama } from "../util/quant-gguf.ts";
import { GGUF_PATH, HAVE_MODELS, warnIfNoModels } from "./helpers.ts";

warnIfNoModels("quantized models");

const PUBLISHED =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.";

const dir = mkdtempSync(join(tmpdir(), "hr-quant-"));
const started: StartedEngine[] = [];
afterAll(() => {
  for (const s of started) s.close();
  rmSync(dir, { recursive: true, force: true });
});

function start(path: string, ordinal: number): StartedEngine {
  const s = startEngine(engineOptions(path, { deviceOrdinal: ordinal }));
  started.push(s);
  return s;
}

/** Logits of the last token of `prompt` run as one prefill. */
function prefillLogits(s: StartedEngine, prompt: number[]): Float32Array {
  const T = prompt.length;
  s.model.stage({
    inputIds: Int32Array.from(prompt),
    positions: Int32Array.from({ length: T }, (_, i) => i),
    slotMapping: Int32Array.from({ length: T }, (_, i) => i),
    queryStartLoc: Int32Array.of(0, T),
    seqLens: Int32Array.of(T),
    blockTables: new Int32Array(s.limits.maxBlocksPerSeq).map((_, i) => i),
    logitsIndices: Int32Array.of(T - 1),
    decodeOnly: false,
  });
  s.model.forward(T, 1, 1, false);
  return s.model.readLogits(1).slice();
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

function fileTensorBytes(path: string): number {
  let n = 0;
  for (const t of readGguf(path).tensors.values()) n += t.data.byteLength;
  return n;
}

describe.skipIf(!HAVE_MODELS)("quantized GGUF models (CPU)", () => {
  test("stories260K as Q8_0 continues the published story; device bytes = file bytes = plan", () => {
    const q8 = join(dir, "stories260K-q8_0.gguf");
    const { quantized } = writeQ8_0Copy(GGUF_PATH, q8);
    expect(quantized).toBeGreaterThan(20); // embeddings and every attention/FFN matrix whose rows are whole blocks
    const s = start(q8, 11);
    const quantTensors = [...s.weights.tensors.values()].filter((t) => t.quant?.name === "Q8_0").length;
    // an output matrix byte-identical to the embedding is loaded once (tied)
    expect(quantTensors).toBe(quantized - (s.opened.config.tieWordEmbeddings ? 1 : 0));
    const tiedBytes = s.opened.config.tieWordEmbeddings ? (readGguf(q8).tensors.get("output.weight")?.data.byteLength ?? 0) : 0;
    expect(s.weights.totalBytes).toBe(fileTensorBytes(q8) - tiedBytes);
    expect(s.planMismatches).toEqual([]);
    expect(s.plan.weightsBytes).toBe(s.profile.weightsBytes);

    const core = new EngineCore(s, { maxNumSeqs: 8, maxWaiting: 64, servedModelName: null });
    core.add({ requestId: "q8", promptTokenIds: [1], params: greedyParams(120) });
    const toks: number[] = [];
    while (core.hasWork()) for (const e of core.step()) toks.push(...e.tokenIds);
    expect(s.opened.tokenizer.decode([1, ...toks]).startsWith(PUBLISHED)).toBe(true);

    // The what-if planner on the file predicts the same weight bytes as the engine measured.
    const plan = planFromRequest({
      model: q8,
      backend: "cpu",
      deviceMemoryBytes: 256 * 2 ** 20,
      maxModelLen: 512,
      maxNumSeqs: 8,
      maxNumBatchedTokens: 128,
    });
    expect(plan.plan.weightsBytes).toBe(s.profile.weightsBytes);
  });

  test("Q4_K_M-like mix: q|k|v and gate|up fused per layer where the types match, apart where not", () => {
    // layer 0: attn_v in Q6_K (q/k Q4_K) -> separate q, k, v matmuls; layer 1: all Q4_K -> one matmul.
    // gate/up both Q4_K on both layers -> fused. The F32 copy fuses everywhere.
    const mix = { ...SYNTHETIC_MIX, "attn_k.weight": "Q4_K", "ffn_gate.weight": "Q4_K", "ffn_up.weight": "Q4_K" };
    const qPath = join(dir, "synthetic-q4km.gguf");
    const fPath = join(dir, "synthetic-q4km-f32.gguf");
    writeSyntheticQuantLlama(GGUF_PATH, qPath, fPath, 9, { ...mix, "blk.1.attn_v.weight": "Q4_K" });
    const sq = start(qPath, 14);
    const sf = start(fPath, 15);
    expect([...sq.weights.fused.keys()].sort()).toEqual([
      "model.layers.0.mlp.gate_up_proj.weight",
      "model.layers.1.mlp.gate_up_proj.weight",
      "model.layers.1.self_attn.qkv_proj.weight",
    ]);
    expect(sq.weights.fused.get("model.layers.1.self_attn.qkv_proj.weight")!.quant?.name).toBe("Q4_K");
    expect(sq.weights.fused.get("model.layers.1.self_attn.qkv_proj.weight")!.shape).toEqual([256 + 2 * 128, 256]);
    expect(sf.weights.fused.size).toBe(4);
    // no copy left behind: device bytes are the file's, and the planner predicts the measured buffers
    expect(sq.weights.totalBytes).toBe(fileTensorBytes(qPath));
    expect(sq.planMismatches).toEqual([]);
    expect(sq.plan.weightsBytes).toBe(sq.profile.weightsBytes);
    const plan = planFromRequest({
      model: qPath,
      backend: "cpu",
      deviceMemoryBytes: 256 * 2 ** 20,
      maxModelLen: 512,
      maxNumSeqs: 8,
      maxNumBatchedTokens: 128,
    });
    expect(plan.plan.weightsBytes).toBe(sq.profile.weightsBytes);
    // The fp32-dequantizing path (as in the all-types test below): the fused and the separate
    // quantized matmuls equal the plain F32 file's up to float32 rounding.
    withCEnv("HEADROOM_CPU_QMATMUL", "dequant", () => {
      for (const prompt of [Array.from({ length: 40 }, (_, i) => 1 + ((i * 53) % 500)), [1]]) {
        const a = prefillLogits(sq, prompt);
        const b = prefillLogits(sf, prompt);
        let maxDiff = 0;
        let maxAbs = 0;
        for (let i = 0; i < a.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
          maxAbs = Math.max(maxAbs, Math.abs(b[i]!));
        }
        expect(maxAbs).toBeGreaterThan(0.01);
        expect(maxDiff).toBeLessThan(1e-4 * Math.max(1, maxAbs));
      }
    });
  });

  test("all eight block types: logits equal those of the dequantized F32 file", () => {
    const qPath = join(dir, "synthetic-quant.gguf");
    const fPath = join(dir, "synthetic-f32.gguf");
    writeSyntheticQuantLlama(GGUF_PATH, qPath, fPath);
    const sq = start(qPath, 12);
    const sf = start(fPath, 13);
    const types = new Set([...sq.weights.tensors.values()].map((t) => t.quant?.name ?? "plain"));
    expect([...types].sort()).toEqual(["Q4_0", "Q4_1", "Q4_K", "Q5_0", "Q5_1", "Q5_K", "Q6_K", "Q8_0", "plain"]);
    expect(sq.weights.totalBytes).toBe(fileTensorBytes(qPath));
    expect(sq.weights.totalBytes * 4).toBeLessThan(sf.weights.totalBytes); // ~4.5 bits vs 32 bits per weight
    expect(sq.planMismatches).toEqual([]);
    // prefill of 40 tokens (matmul panels), then decode-sized single rows (GEMV path)
    const prompts = [Array.from({ length: 40 }, (_, i) => 1 + ((i * 37) % 500)), [1], [1, 300]];
    const compare = (prompt: number[]) => {
      const a = prefillLogits(sq, prompt);
      const b = prefillLogits(sf, prompt);
      let maxDiff = 0;
      let maxAbs = 0;
      for (let i = 0; i < a.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
        maxAbs = Math.max(maxAbs, Math.abs(b[i]!));
      }
      expect(a.length).toBe(512);
      expect(maxAbs).toBeGreaterThan(0.01);
      return { maxDiff, maxAbs, argmaxEqual: argmax(a) === argmax(b) };
    };
    // The fp32-dequantizing path: same fp32 arithmetic on the same weights, up to summation
    // order: float32 rounding only.
    withCEnv("HEADROOM_CPU_QMATMUL", "dequant", () => {
      for (const prompt of prompts) {
        const { maxDiff, maxAbs } = compare(prompt);
        expect(maxDiff).toBeLessThan(1e-4 * Math.max(1, maxAbs));
      }
    });
    // The default int8 path rounds activations to int8 blocks (as llama.cpp does), 8 matmuls deep
    // here: measured max |diff| 3.4 % of max |logit|; held to 10 % and the same argmax.
    for (const prompt of prompts) {
      const { maxDiff, maxAbs, argmaxEqual } = compare(prompt);
      expect(maxDiff).toBeLessThan(0.1 * Math.max(1, maxAbs));
      expect(argmaxEqual).toBe(true);
    }
  });
});
