// The quantized-matmul workspace (hr_op_matmul_q_ws, CUDA prefill) in the plan: sized by the
// largest quantized matrix as laid out (fused q|k|v and gate|up where the types match) up to
// the cap, in the compute dtype; only on CUDA and only when a step can exceed the GEMV
// threshold. The planner's arena is exactly planArena with it, so plan == the engine's arena.
import { describe, expect, test } from "bun:test";

import { ARENA_ALIGN, planArena } from "../../src/model/arena.ts";
import { expectedTensors, type ModelConfig } from "../../src/model/config.ts";
import { DEQUANT_WORKSPACE_CAP, dequantWorkspaceBytes } from "../../src/model/dequant-workspace.ts";
import { openModel } from "../../src/model/load.ts";
import { quantTensorBytes, quantTypeByName } from "../../src/model/quant.ts";
import type { QuantizedTensors } from "../../src/model/weight-layout.ts";
import { simulateAllocations } from "../../src/memory/allocator-model.ts";
import { batchLimitsFor, planMemory, startupAllocations, type PlanInput } from "../../src/memory/planner.ts";

const GiB = 2 ** 30;

/** A Q4_K_M-like file: matrices Q4_K, attn_v Q6_K on even layers, embeddings and norms plain. */
function q4km(cfg: ModelConfig): QuantizedTensors {
  const m = new Map<string, { bytes: number; code: number }>();
  for (const [name, shape] of expectedTensors(cfg)) {
    if (shape.length !== 2 || name === "model.embed_tokens.weight") continue;
    const layer = Number(/layers\.(\d+)\./.exec(name)?.[1] ?? -1);
    const q = quantTypeByName(name.endsWith("v_proj.weight") && layer % 2 === 0 ? "Q6_K" : "Q4_K")!;
    m.set(name, { bytes: quantTensorBytes(q, shape), code: q.code });
  }
  return m;
}

function input(cfg: ModelConfig, over: Partial<PlanInput>): PlanInput {
  return {
    config: cfg,
    backend: "cuda",
    deviceMemoryBytes: 80 * GiB,
    gpuMemoryUtilization: 0.9,
    maxModelLen: 2048,
    maxNumSeqs: 64,
    maxNumBatchedTokens: 2048,
    blockSize: 16,
    captureSizes: [],
    attentionWorkspaceBytes: 4096,
    ...over,
  };
}

describe("dequantization workspace (pure, no device)", () => {
  const small = openModel("synthetic:dim=256,hidden=768,layers=4,heads=8,kv_heads=2,vocab=300").config;
  const big = openModel("synthetic:llama-8b").config;
  const limits = batchLimitsFor(2048, 64, 2048, 16);

  test("largest quantized matrix as laid out: the fused gate|up [2 I, D] (bf16), under the cap", () => {
    const q = q4km(small);
    const D = small.hiddenSize;
    const I = small.intermediateSize;
    // candidates: fused gate|up 2I x D (larger than any single projection), down D x I, LM head V x D
    expect(2 * I * D).toBeGreaterThan(Math.max(I * D, small.vocabSize * D, (small.numHeads + 2 * small.numKvHeads) * small.headDim * D));
    const want = 2 * I * D * 2;
    expect(dequantWorkspaceBytes(small, 2, q, limits, "cuda")).toBe(want);
    expect(dequantWorkspaceBytes(small, 4, q, limits, "cuda")).toBe(2 * want); // f32 compute: f32 rows
  });

  test("capped for large models (8B: gate|up is 2 x 14336 x 4096 bf16 = 224 MiB)", () => {
    expect(dequantWorkspaceBytes(big, 2, q4km(big), limits, "cuda")).toBe(DEQUANT_WORKSPACE_CAP);
  });

  test("none on CPU, without quantized weights, or when no step exceeds the GEMV threshold", () => {
    expect(dequantWorkspaceBytes(small, 4, q4km(small), limits, "cpu")).toBe(0);
    expect(dequantWorkspaceBytes(small, 2, new Map(), limits, "cuda")).toBe(0);
    expect(dequantWorkspaceBytes(small, 2, undefined, limits, "cuda")).toBe(0);
    expect(dequantWorkspaceBytes(small, 2, q4km(small), batchLimitsFor(2048, 32, 32, 16), "cuda")).toBe(0);
    expect(dequantWorkspaceBytes(small, 2, q4km(small), batchLimitsFor(2048, 33, 32, 16), "cuda")).toBeGreaterThan(0);
  });

  test("the plan's arena is planArena with the workspace: CUDA counts it, CPU does not", () => {
    const q = q4km(small);
    const ws = dequantWorkspaceBytes(small, 2, q, limits, "cuda");
    const cuda = planMemory(input(small, { quantized: q }));
    const arena = planArena(small, limits, 2, 4096, ws);
    expect(arena.bytes.dequant).toBe(ws);
    const blocks = (eb: number, total: number) => simulateAllocations(startupAllocations(small, eb, total, 0, 0, q)).blocks;
    expect(cuda.activationArenaBytes).toBe(blocks(2, arena.totalBytes).at(-1)!);
    const plain = planArena(small, limits, 2, 4096);
    expect(arena.totalBytes - plain.totalBytes).toBe(Math.ceil(ws / ARENA_ALIGN) * ARENA_ALIGN);
    const cpu = planMemory(input(small, { quantized: q, backend: "cpu", computeDtype: "f32", deviceMemoryBytes: 8 * GiB }));
    expect(cpu.activationArenaBytes).toBe(blocks(4, planArena(small, limits, 4, 4096).totalBytes).at(-1)!);
  });
});
