// --kv-cache-dtype: the planner counts the narrower blocks (f16/bf16 = half, fp8 = a quarter of
// an f32 block, so the same budget holds 2x/4x the tokens), start-up on the CPU backend with each
// kv dtype matches the plan exactly as the f32 start-up does (weights, arena, slack to the byte,
// KV blocks within one) and runs a full load; graphs replay the kv dtype they were captured with;
// vLLM's per-layer k_scale/v_scale tensors are loaded from an HF checkpoint and reach the kernels;
// a backend without the kernels is refused at start-up with the flag named.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { EngineCore } from "../../src/engine/engine-core.ts";
import { probeKvCacheDtype } from "../../src/engine/kv-probe.ts";
import { startEngine, type EngineOptions, type StartedEngine } from "../../src/engine/startup.ts";
import { bytesPerBlock, sizeKvCache } from "../../src/memory/kv-sizing.ts";
import { planFromRequest, PlanRequestError } from "../../src/memory/plan-request.ts";
import { kvSpecFor, planMemory, type PlanInput } from "../../src/memory/planner.ts";
import {
  KV_CACHE_DTYPE_FLAGS,
  KvCacheDtypeError,
  resolveKvCacheDtype,
  type KvCacheDtype,
  type KvCacheDtypeFlag,
} from "../../src/model/kv-dtype.ts";
import { openModel } from "../../src/model/load.ts";
import { readSafetensors, serializeSafetensors, type TensorToWrite } from "../../src/model/safetensors.ts";
import type { ModelConfig } from "../../src/model/config.ts";
import { HeadroomError, Status } from "../../src/native/errors.ts";
import type { Device } from "../../src/native/device.ts";
import type { Ops } from "../../src/native/ops.ts";
import { greedyParams } from "../engine/engine-helpers.ts";
import { HAVE_MODELS, MODELS_DIR } from "../model/helpers.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const SPEC = "synthetic:dim=64,hidden=176,layers=2,heads=4,kv_heads=2,vocab=300";
const FLAGS: [KvCacheDtypeFlag, KvCacheDtype, number][] = [
  ["auto", "f32", 4],
  ["float16", "f16", 2],
  ["bfloat16", "bf16", 2],
  ["fp8", "fp8_e4m3", 1],
  ["fp8_e4m3", "fp8_e4m3", 1],
  ["fp8_e5m2", "fp8_e5m2", 1],
];

describe("kv dtype flag and planner (no device)", () => {
  test("flags: auto = the compute dtype, fp8 = fp8_e4m3, anything else refused", () => {
    expect(KV_CACHE_DTYPE_FLAGS).toEqual(["auto", "float16", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"]);
    for (const [flag, dt] of FLAGS) expect(resolveKvCacheDtype(flag, "f32")).toBe(dt);
    expect(resolveKvCacheDtype("auto", "bf16")).toBe("bf16");
    expect(resolveKvCacheDtype(undefined, "f16")).toBe("f16");
    expect(() => resolveKvCacheDtype("int8" as KvCacheDtypeFlag, "f32")).toThrow(KvCacheDtypeError);
  });

  const input = (over: Partial<PlanInput>): PlanInput => ({
    config: openModel("synthetic:llama-8b").config,
    backend: "cuda",
    deviceMemoryBytes: 80 * GiB,
    gpuMemoryUtilization: 0.9,
    maxModelLen: 8192,
    maxNumSeqs: 32,
    maxNumBatchedTokens: 2048,
    blockSize: 16,
    captureSizes: [1, 2, 4, 8],
    attentionWorkspaceBytes: 1 << 20,
    ...over,
  });

  for (const backend of ["cpu", "cuda"] as const) {
    test(`${backend}: blocks of 1/2/4-byte elements, the same budget, 2x/4x the tokens, weights and arena unchanged`, () => {
      const compute = backend === "cpu" ? "f32" : "bf16";
      const base = planMemory(input({ backend }));
      expect(base.kvCacheDtype).toBe(compute);
      for (const [flag, dt, eb] of FLAGS) {
        const kvCacheDtype = resolveKvCacheDtype(flag, compute);
        const p = planMemory(input({ backend, kvCacheDtype }));
        const spec = kvSpecFor(input({}).config, 16, flag === "auto" ? (backend === "cpu" ? 4 : 2) : eb);
        expect(p.kvCacheDtype).toBe(flag === "auto" ? compute : dt);
        expect(p.kvCacheDtypeBytes).toBe(spec.dtypeBytes);
        expect(p.kvBytesPerBlock).toBe(bytesPerBlock(spec));
        expect(p.weightsBytes).toBe(base.weightsBytes);
        expect(p.activationArenaBytes).toBe(base.activationArenaBytes);
        expect(p.kvBudgetBytes).toBe(base.kvBudgetBytes);
        expect(p.kvBlocks).toBe(sizeKvCache(p.kvBudgetBytes, spec, p.kvGranularityBytes, 8192).numBlocks);
        const ratio = base.kvCacheDtypeBytes / spec.dtypeBytes;
        expect(p.kvTokens / base.kvTokens).toBeGreaterThan(ratio * 0.999);
        expect(p.kvTokens / base.kvTokens).toBeLessThan(ratio * 1.001);
      }
    });
  }

  test("POST /v1/memory/plan's request: kv_cache_dtype resolved like the engine, bad values are 400s", () => {
    const req = { model: SPEC, backend: "cpu" as const, deviceMemoryBytes: 64 * MiB };
    const f32 = planFromRequest(req).plan;
    expect(f32.kvCacheDtype).toBe("f32");
    const fp8 = planFromRequest({ ...req, kvCacheDtype: "fp8" }).plan;
    expect(fp8.kvCacheDtype).toBe("fp8_e4m3");
    expect(fp8.kvBytesPerBlock * 4).toBe(f32.kvBytesPerBlock);
    expect(fp8.kvBlocks).toBeGreaterThanOrEqual(4 * f32.kvBlocks - 1);
    expect(() => planFromRequest({ ...req, kvCacheDtype: "int8" as KvCacheDtypeFlag })).toThrow(PlanRequestError);
  });
});

// ---- start-up on the CPU backend

const live: StartedEngine[] = [];
afterEach(() => {
  while (live.length) live.pop()!.close();
});

function options(over: Partial<EngineOptions>): EngineOptions {
  return {
    model: SPEC,
    device: "cpu",
    deviceMemory: 16 * MiB,
    deviceOrdinal: 50,
    gpuMemoryUtilization: 0.9,
    kvCacheMemoryBytes: null,
    maxModelLen: 128,
    maxNumSeqs: 4,
    maxNumBatchedTokens: 64,
    blockSize: 16,
    enforceEager: true,
    maxWaiting: 64,
    servedModelName: null,
    ...over,
  };
}

function generate(s: StartedEngine, prompts: number[][], steps: number) {
  const core = new EngineCore(s, { maxNumSeqs: s.limits.maxSeqs, maxWaiting: 100, servedModelName: null });
  prompts.forEach((p, i) => core.add({ requestId: `r${i}`, promptTokenIds: p, params: { ...greedyParams(steps), logprobs: 3 } }));
  const out = new Map<string, { tokens: number[]; lps: number[] }>();
  while (core.hasWork())
    for (const e of core.step()) {
      const o = out.get(e.requestId) ?? { tokens: [], lps: [] };
      o.tokens.push(...e.tokenIds);
      for (const lp of e.logprobs ?? []) o.lps.push(lp.logprob);
      out.set(e.requestId, o);
    }
  const stats = core.stats();
  return { out: prompts.map((_, i) => out.get(`r${i}`)!), stats };
}

describe("start-up with a kv dtype (CPU backend, capacity 16 MiB)", () => {
  test("planner == measurement for every kv dtype; the narrower cache holds 2x/4x the blocks; full load runs", () => {
    const blocks: Record<string, number> = {};
    for (const [flag, dt, eb] of FLAGS) {
      const s = startEngine(options({ kvCacheDtype: flag }));
      live.push(s);
      expect(s.kvDtype).toBe(dt);
      expect(s.kvSpec.dtypeBytes).toBe(eb);
      expect(s.plan.kvCacheDtype).toBe(dt);
      expect(s.plan.weightsBytes).toBe(s.profile.weightsBytes);
      expect(s.plan.activationArenaBytes).toBe(s.profile.peakActivationBytes);
      expect(s.plan.allocatorSlackBytes).toBe(s.profile.allocatorSlackBytes);
      expect(Math.abs(s.plan.kvBlocks - s.kv.numBlocks)).toBeLessThanOrEqual(1);
      expect(s.planMismatches).toEqual([]);
      blocks[dt] = s.kv.numBlocks;
      // a full load over every block, then /v1/kv's figures
      const prompts = Array.from({ length: 6 }, (_, i) => Array.from({ length: 100 }, (_, j) => 3 + ((i * 31 + j * 7) % 250)));
      const { out, stats } = generate(s, prompts, 8);
      for (const o of out) expect(o.tokens.length).toBe(8);
      expect(stats.kvCacheDtype).toBe(dt);
      expect(stats.kvBytesPerBlock).toBe(bytesPerBlock(s.kvSpec));
      expect(stats.kvScalesFromCheckpoint).toBe(0);
      expect(s.dev.stats().numOoms).toBe(0);
      live.pop()!.close();
    }
    // the same budget (the same model, limits and device): 2x and 4x the blocks, up to rounding
    expect(blocks.f16! / blocks.f32!).toBeGreaterThan(1.95);
    expect(blocks.bf16).toBe(blocks.f16);
    expect(blocks.fp8_e4m3! / blocks.f32!).toBeGreaterThan(3.85);
    expect(blocks.fp8_e5m2).toBe(blocks.fp8_e4m3);
  });

  test("captured decode graphs replay the kv dtype: graphs and eager give the same tokens and logprobs", () => {
    const prompts = [Array.from({ length: 20 }, (_, j) => 5 + j), Array.from({ length: 33 }, (_, j) => 40 + 3 * j)];
    for (const flag of ["float16", "fp8_e4m3"] as const) {
      const eager = startEngine(options({ kvCacheDtype: flag, deviceOrdinal: 51 }));
      live.push(eager);
      const a = generate(eager, prompts, 12).out;
      live.pop()!.close();
      const graphs = startEngine(options({ kvCacheDtype: flag, deviceOrdinal: 51, enforceEager: false }));
      live.push(graphs);
      expect(graphs.decodeGraphs).not.toBeNull();
      const b = generate(graphs, prompts, 12).out;
      live.pop()!.close();
      expect(b).toEqual(a);
    }
  });

  test("a backend without the kernels is refused at start-up, naming the flag (probe on an UNSUPPORTED op)", () => {
    const cfg = openModel(SPEC).config as ModelConfig;
    const allocs: bigint[] = [];
    const dev = {
      backend: "cuda",
      alloc: (n: number) => {
        allocs.push(BigInt(n));
        return BigInt(allocs.length) * 4096n;
      },
      free: () => {},
      memset: () => {},
      synchronize: () => {},
    } as unknown as Device;
    const unsupported = () => {
      throw new HeadroomError(Status.UNSUPPORTED, "hr_op_kv_write", "kv_dtype 3 with dtype 2 is not supported by this backend yet");
    };
    const ops = { dtype: 2, kvWrite: unsupported, attentionDecode: () => {} } as unknown as Ops;
    let err: unknown;
    try {
      probeKvCacheDtype(dev, ops, cfg, "fp8_e4m3", 16);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KvCacheDtypeError);
    expect((err as Error).message).toMatch(
      /--kv-cache-dtype: the cuda backend does not implement a fp8_e4m3 KV cache with bf16 activations/,
    );
    expect((err as Error).message).toMatch(/use --kv-cache-dtype auto/);
    // the compute dtype's own cache is never probed; other errors pass through unchanged
    probeKvCacheDtype(dev, ops, cfg, "bf16", 16);
    const broken = {
      dtype: 2,
      kvWrite: () => {},
      attentionDecode: () => {
        throw new Error("boom");
      },
    } as unknown as Ops;
    expect(() => probeKvCacheDtype(dev, broken, cfg, "fp8_e4m3", 16)).toThrow("boom");
  });
});

// ---- per-layer scales from an HF checkpoint (vLLM's names)

describe.skipIf(!HAVE_MODELS)("k_scale / v_scale from the checkpoint", () => {
  const tmp = mkdtempSync(join(tmpdir(), "headroom-kvscale-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** stories260K-hf with self_attn.k_scale / v_scale tensors added (shape [] like vLLM's, or [1]). */
  function withScales(dir: string, k: number, v: number, scalar: boolean): void {
    const src = join(MODELS_DIR, "stories260K-hf");
    cpSync(src, dir, { recursive: true });
    const f = readSafetensors(join(src, "model.safetensors"));
    const tensors: TensorToWrite[] = [...f.tensors.values()].map((t) => {
      if (t.dtype !== "f32") throw new Error(`${t.name}: expected F32 (got ${t.dtype})`);
      return { name: t.name, dtype: "F32", shape: t.shape, data: t.data };
    });
    const one = (x: number) => new Uint8Array(new Float32Array([x]).buffer);
    for (let l = 0; l < 5; l++) {
      tensors.push({ name: `model.layers.${l}.self_attn.k_scale`, dtype: "F32", shape: scalar ? [] : [1], data: one(k * (l + 1)) });
      tensors.push({ name: `model.layers.${l}.self_attn.v_scale`, dtype: "F32", shape: scalar ? [] : [1], data: one(v) });
    }
    writeFileSync(join(dir, "model.safetensors"), serializeSafetensors(tensors));
  }

  test("loaded per layer, reported, and applied: the output changes with the scales and stays close to fp32", () => {
    const dir = join(tmp, "scaled");
    withScales(dir, 0.05, 0.03, true);
    const opened = openModel(dir);
    expect(opened.weights.kvScales?.fromCheckpoint).toBe(5);
    expect(opened.weights.kvScales?.k.map((x) => Math.round(x * 1000) / 1000)).toEqual([0.05, 0.1, 0.15, 0.2, 0.25]);
    expect(opened.weights.kvScales?.v[3]).toBeCloseTo(0.03, 7);
    expect(opened.weights.tensors.has("model.layers.0.self_attn.k_scale")).toBe(false); // not a weight
    const prompt = [[1, 403, 407, 261, 378]];
    const run = (model: string, flag: KvCacheDtypeFlag) => {
      const s = startEngine(options({ model, kvCacheDtype: flag, deviceOrdinal: 52, maxModelLen: 256, deviceMemory: 64 * MiB }));
      live.push(s);
      const r = generate(s, prompt, 24);
      const scales = s.kvScales.fromCheckpoint;
      live.pop()!.close();
      return { ...r, scales };
    };
    const plain = join(MODELS_DIR, "stories260K-hf");
    const ref = run(plain, "auto");
    const unit = run(plain, "fp8_e4m3");
    const scaled = run(dir, "fp8_e4m3");
    expect(unit.scales).toBe(0);
    expect(scaled.scales).toBe(5);
    expect(scaled.stats.kvScalesFromCheckpoint).toBe(5);
    // the scales reach the kernels: other roundings, other logprobs ...
    expect(scaled.out[0]!.lps).not.toEqual(unit.out[0]!.lps);
    // ... and a scaled fp8 cache still tracks the fp32 one (bound as the accuracy test's fp8_e4m3)
    const n = Math.min(ref.out[0]!.lps.length, scaled.out[0]!.lps.length);
    let agree = 0;
    while (agree < n && ref.out[0]!.tokens[agree] === scaled.out[0]!.tokens[agree]) agree++;
    for (let i = 0; i < agree; i++) expect(Math.abs(ref.out[0]!.lps[i]! - scaled.out[0]!.lps[i]!)).toBeLessThan(2.0);
    expect(agree).toBeGreaterThanOrEqual(8);
  });

  test("shape [1] is accepted too; a non-positive scale is refused naming the tensor", () => {
    const ok = join(tmp, "shape1");
    withScales(ok, 1, 1, false);
    expect(openModel(ok).weights.kvScales?.k).toEqual([1, 2, 3, 4, 5]);
    const bad = join(tmp, "bad");
    withScales(bad, 1, 0, true);
    expect(() => openModel(bad)).toThrow(/model\.layers\.0\.self_attn\.v_scale = 0: a KV cache scale must be finite and > 0/);
  });
});
