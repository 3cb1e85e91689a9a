// The planner's compute dtype: for the CUDA backend (bf16 by default, f16 on request) its
// weights / arena / KV predictions are what weightLayout, planArena and the allocator model give
// with 2-byte elements (logits stay fp32), with no device. Then the same 2-byte weights and
// arena allocated for real on a fresh CPU-backend allocator (the same caching allocator code
// as CUDA's) match the plan to the byte.
import { afterAll, describe, expect, test } from "bun:test";

import { planArena } from "../../src/model/arena.ts";
import { openModel } from "../../src/model/load.ts";
import { uploadWeights } from "../../src/model/upload.ts";
import { weightLayout } from "../../src/model/weight-layout.ts";
import { numel } from "../../src/model/weights.ts";
import { simulateAllocations } from "../../src/memory/allocator-model.ts";
import { bytesPerBlock, safetyMarginBytes, sizeKvCache } from "../../src/memory/kv-sizing.ts";
import { batchLimitsFor, kvSpecFor, planMemory, startupAllocations, type PlanInput } from "../../src/memory/planner.ts";
import { planFromRequest } from "../../src/memory/plan-request.ts";
import { Device } from "../../src/native/index.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const SPECS = [
  "synthetic:dim=64,hidden=176,layers=2,heads=4,kv_heads=2,vocab=300",
  "synthetic:dim=256,hidden=688,layers=4,heads=8,kv_heads=2,vocab=5000",
  "synthetic:llama-8b",
];

function input(spec: string, over: Partial<PlanInput> = {}): PlanInput {
  const cfg = openModel(spec).config;
  return {
    config: cfg,
    backend: "cuda",
    deviceMemoryBytes: 80 * GiB,
    gpuMemoryUtilization: 0.9,
    maxModelLen: 2048,
    maxNumSeqs: 32,
    maxNumBatchedTokens: 2048,
    blockSize: 16,
    captureSizes: [1, 2, 4, 8],
    attentionWorkspaceBytes: 12345 * 8, // any figure: the planner takes it as given
    ...over,
  };
}

describe("planner compute dtype (pure, no device)", () => {
  for (const spec of SPECS) {
    for (const [dtype, req] of [
      ["bf16", undefined],
      ["f16", "f16"],
      ["f32", "f32"],
    ] as const) {
      test(`${spec.slice(10)}: cuda ${req ? `computeDtype ${req}` : "default"} -> ${dtype}; predictions = weightLayout/planArena/allocator model`, () => {
        const p = input(spec, req ? { computeDtype: req } : {});
        const eb = dtype === "f32" ? 4 : 2;
        const plan = planMemory(p);
        expect(plan.computeDtype).toBe(dtype);
        expect(plan.computeDtypeBytes).toBe(eb);
        const cfg = p.config;
        // weight buffers: every tensor numel × eb at 256-byte aligned offsets
        const layout = weightLayout(cfg, eb);
        for (const b of layout) for (const t of b.tensors) expect(t.bytes).toBe(numel(t.shape) * eb);
        // arena: activations eb bytes per element, logits and index arrays 4
        const limits = batchLimitsFor(p.maxModelLen, p.maxNumSeqs, p.maxNumBatchedTokens, p.blockSize);
        const arena = planArena(cfg, limits, eb, p.attentionWorkspaceBytes);
        expect(arena.bytes.x).toBe(eb * limits.maxTokens * cfg.hiddenSize);
        expect(arena.bytes.gateUp).toBe(eb * limits.maxTokens * 2 * cfg.intermediateSize);
        expect(arena.bytes.logits).toBe(4 * limits.maxSeqs * cfg.vocabSize);
        expect(arena.bytes.workspace).toBe(p.attentionWorkspaceBytes);
        // the allocator model over exactly those requests
        const sizes = [...layout.map((b) => Math.max(1, b.bytes)), arena.totalBytes];
        expect(startupAllocations(cfg, eb, arena.totalBytes)).toEqual(sizes);
        const fp = simulateAllocations(sizes);
        expect(plan.weightsBytes).toBe(fp.blocks.slice(0, -1).reduce((a, b) => a + b, 0));
        expect(plan.weightsResidentBytes).toBe(fp.blocks[0]!);
        expect(plan.weightsPerLayerBytes).toBe(fp.blocks[1]!);
        expect(plan.activationArenaBytes).toBe(fp.blocks.at(-1)!);
        expect(plan.allocatorSlackBytes).toBe(fp.reserved - fp.allocated);
        // KV: eb bytes per element, budget = requested − (reserved + non-allocator) − margin
        const kvSpec = kvSpecFor(cfg, p.blockSize, eb);
        expect(plan.kvBytesPerBlock).toBe(bytesPerBlock(kvSpec));
        expect(plan.kvBytesPerBlock).toBe(2 * cfg.numLayers * p.blockSize * cfg.numKvHeads * cfg.headDim * eb);
        const budget =
          Math.floor(p.deviceMemoryBytes * p.gpuMemoryUtilization) - (fp.reserved + 600 * MiB) - safetyMarginBytes(p.deviceMemoryBytes);
        expect(plan.kvBudgetBytes).toBe(budget);
        const kv = sizeKvCache(budget, kvSpec, 2 * MiB, p.maxModelLen);
        expect([plan.kvBlocks, plan.kvTokens, plan.kvMappedBytes]).toEqual([kv.numBlocks, kv.tokens, kv.mappedBytes]);
      });
    }
  }

  test("bf16 halves what f32 needs for weights and KV per block (same model, same limits)", () => {
    const b = planMemory(input(SPECS[2]!));
    const f = planMemory(input(SPECS[2]!, { computeDtype: "f32" }));
    expect(b.kvBytesPerBlock * 2).toBe(f.kvBytesPerBlock);
    expect(b.weightsBytes).toBeLessThan(f.weightsBytes * 0.51);
    expect(b.kvBlocks).toBeGreaterThan(f.kvBlocks * 2); // half the bytes per block and more budget left
    expect(planMemory(input(SPECS[0]!, { backend: "cpu" })).computeDtype).toBe("f32"); // cpu default
  });

  test("plan requests: dtype flag, cuda default bf16, 16-bit dtype on the cpu backend = 16-bit weights", () => {
    expect(planFromRequest({ model: SPECS[1], deviceMemoryBytes: 8 * GiB }).plan.computeDtype).toBe("bf16");
    expect(planFromRequest({ model: SPECS[1], deviceMemoryBytes: 8 * GiB, dtype: "float16" }).plan.computeDtype).toBe("f16");
    expect(planFromRequest({ model: SPECS[1], backend: "cpu", deviceMemoryBytes: 8 * GiB }).plan.computeDtype).toBe("f32");
    const cpu = (dtype: "float32" | "bfloat16") =>
      planFromRequest({ model: SPECS[1], backend: "cpu", deviceMemoryBytes: 8 * GiB, dtype }).plan;
    const [f, b] = [cpu("float32"), cpu("bfloat16")];
    expect([b.computeDtype, b.weightDtype, f.weightDtype]).toEqual(["f32", "bf16", "f32"]);
    expect(b.kvBytesPerBlock).toBe(f.kvBytesPerBlock); // the KV cache stays fp32
    expect(b.weightsBytes).toBeLessThan(f.weightsBytes * 0.55); // the matrices halve, norms stay fp32
  });
});

let dev: Device | null = null;
let skip = "";
try {
  dev = Device.open({ device: "cpu", ordinal: 46, cpuCapacityBytes: 512 * MiB });
} catch (e) {
  skip = (e as Error).message;
  console.warn(`[planner-dtype] measured part skipped: no CPU device (${skip}); run \`make\``);
}
afterAll(() => dev?.close());

describe.skipIf(!dev)("2-byte weights and arena on a fresh caching allocator equal the plan", () => {
  // [backend, compute dtype, weight dtype]: CUDA computes in 16 bits; CPU keeps fp32 compute
  // with 16-bit matrix weights (--dtype bfloat16/float16 on CPU).
  for (const [backend, cdt, wdt] of [
    ["cuda", "bf16", "bf16"],
    ["cuda", "f16", "f16"],
    ["cpu", "f32", "bf16"],
    ["cpu", "f32", "f16"],
  ] as const) {
    test(`${backend}, compute ${cdt}, weights ${wdt}: allocated and reserved bytes after upload + arena = planner`, () => {
      const d = dev!;
      d.emptyCache();
      const s0 = d.stats();
      expect(s0.reservedBytes.current).toBe(0);
      const ws = openModel(SPECS[1]).weights;
      const limits = batchLimitsFor(512, 8, 256, 16);
      const out = new BigUint64Array(1);
      d.lib.check(
        d.lib.sym.hr_attention_decode_workspace_bytes(
          limits.maxSeqs,
          ws.config.numHeads,
          ws.config.numKvHeads,
          ws.config.headDim,
          16,
          limits.maxBlocksPerSeq,
          out,
        ),
        "ws",
      );
      const plan = planMemory({
        ...input(SPECS[1]!, { backend, computeDtype: cdt, weightDtype: wdt }),
        deviceMemoryBytes: 512 * MiB,
        maxModelLen: 512,
        maxNumSeqs: 8,
        maxNumBatchedTokens: 256,
        attentionWorkspaceBytes: Number(out[0]),
      });
      const w = uploadWeights(d, ws, { dtype: cdt, weightDtype: wdt });
      const afterWeights = d.stats().allocatedBytes.current;
      const arena = d.alloc(planArena(ws.config, limits, cdt === "f32" ? 4 : 2, Number(out[0])).totalBytes);
      try {
        const s = d.stats();
        expect(afterWeights).toBe(plan.weightsBytes);
        expect(s.allocatedBytes.current - afterWeights).toBe(plan.activationArenaBytes);
        expect(s.reservedBytes.current - s.allocatedBytes.current).toBe(plan.allocatorSlackBytes);
      } finally {
        d.free(arena);
        w.free();
      }
    });
  }
});
