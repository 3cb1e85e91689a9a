// "Capture first, size last" through the real start-up sequence on every test device (the CPU
// backend under a 16 MiB capacity; CUDA on the real device when a GPU is present): a matrix of
// utilizations, model shapes and batch limits. Start-up never OOMs, a full-load run never OOMs,
// the unused part of the requested budget is below one KV block plus the documented margin and
// the slices' granularity rounding, and the planner's prediction equals the measurement.
import { afterEach, describe, expect, test } from "bun:test";

import type { GenerateRequest } from "../../src/engine/api.ts";
import { EngineCore } from "../../src/engine/engine-core.ts";
import { startEngine, type EngineOptions, type StartedEngine } from "../../src/engine/startup.ts";
import { bytesPerBlock, numSlices, safetyMarginBytes, StartupMemoryError } from "../../src/memory/kv-sizing.ts";
import { takeSnapshot } from "../../src/memory/snapshot.ts";
import { Device } from "../../src/native/index.ts";
import { describeDevices, type DeviceEnv } from "../util/devices.ts";

const MiB = 2 ** 20;
const SHAPES = [
  "synthetic:dim=64,hidden=176,layers=2,heads=4,kv_heads=2,vocab=300",
  "synthetic:dim=128,hidden=344,layers=3,heads=8,kv_heads=1,vocab=1000",
];
const LIMITS = [
  { maxNumSeqs: 4, maxNumBatchedTokens: 64 },
  { maxNumSeqs: 16, maxNumBatchedTokens: 256 },
];
const UTILIZATIONS = [0.5, 0.7, 0.9, 0.99];
// On a GPU of 80-141 GB the CPU shapes would give tens of millions of KV blocks (the block pool
// holds one object per block); these have 256-512 KiB blocks, as real models do. Two
// utilizations keep the CUDA matrix to eight start-ups.
const CUDA_SHAPES = [
  "synthetic:dim=1024,hidden=2816,layers=8,heads=8,kv_heads=8,vocab=1000",
  "synthetic:dim=2048,hidden=5632,layers=8,heads=16,kv_heads=4,vocab=2000",
];
const CUDA_UTILIZATIONS = [0.5, 0.99];

let ordinal = 0;
const live: StartedEngine[] = [];
afterEach(() => {
  while (live.length) live.pop()!.close();
});

function options(model: string, over: Partial<EngineOptions>, env?: DeviceEnv): EngineOptions {
  if (env?.isCuda) return { ...options(model, over), device: "cuda", deviceOrdinal: 0, deviceMemory: null };
  return {
    model,
    device: "cpu",
    deviceMemory: 16 * MiB,
    deviceOrdinal: 7,
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

function start(o: EngineOptions): StartedEngine {
  const s = startEngine(o);
  live.push(s);
  return s;
}

function fullLoad(s: StartedEngine, n: number): void {
  const core = new EngineCore(s, { maxNumSeqs: s.limits.maxSeqs, maxWaiting: 1000, servedModelName: null });
  const len = s.maxModelLen;
  for (let i = 0; i < n; i++) {
    const req: GenerateRequest = {
      requestId: `r${i}`,
      promptTokenIds: Array.from({ length: len - 4 }, (_, j) => 3 + ((i * 31 + j * 7) % 250)),
      params: {
        temperature: 0.7,
        topP: 0.9,
        topK: 0,
        minP: 0,
        seed: i,
        maxTokens: 4,
        stopTokenIds: [],
        ignoreEos: true,
        presencePenalty: 0,
        frequencyPenalty: 0,
        repetitionPenalty: 1,
      },
    };
    core.add(req);
  }
  const before = s.dev.stats();
  let done = 0;
  while (core.hasWork()) for (const e of core.step()) if (e.finishReason) done++;
  expect(done).toBe(n);
  const after = s.dev.stats();
  expect(after.numOoms).toBe(0);
  // the forward pass allocates nothing: everything lives in the arena and the KV range
  expect(after.allocatedBytes.current).toBe(before.allocatedBytes.current);
  expect(after.reservedBytes.current).toBe(before.reservedBytes.current);
  expect(core.stats().blocksUsed).toBe(0);
}

describeDevices("start-up sizing matrix (CPU capacity 16 MiB; CUDA: the device)", (env) => {
  const shapes = env.isCuda ? CUDA_SHAPES : SHAPES;
  const utils = env.isCuda ? CUDA_UTILIZATIONS : UTILIZATIONS;
  for (const model of shapes) {
    for (const lim of LIMITS) {
      test(`${model.slice(10, 40)}… seqs ${lim.maxNumSeqs}, tokens ${lim.maxNumBatchedTokens}: utilization ${utils.join("/")}`, () => {
        for (const u of utils) {
          const o = options(model, { ...lim, gpuMemoryUtilization: u, deviceOrdinal: 8 + (ordinal++ % 32) }, env);
          const s = start(o);
          const base = s.profile.baseline;
          const now = takeSnapshot(s.dev);
          const used = now.usedBytes - base.usedBytes;
          const unused = s.profile.requestedBytes - used;
          const margin = safetyMarginBytes(base.totalBytes);
          const sliceRounding = numSlices(s.kvSpec) * env.plannedGranularity;
          expect(used).toBeLessThanOrEqual(s.profile.requestedBytes); // never above the share
          expect(unused).toBeLessThan(bytesPerBlock(s.kvSpec) + margin + sliceRounding);
          // the planner agrees with the measurement
          expect(s.plan.weightsBytes).toBe(s.profile.weightsBytes);
          expect(s.plan.activationArenaBytes).toBe(s.profile.peakActivationBytes);
          expect(s.plan.allocatorSlackBytes).toBe(s.profile.allocatorSlackBytes);
          expect(Math.abs(s.plan.kvBlocks - s.kv.numBlocks)).toBeLessThanOrEqual(1);
          expect(s.planMismatches).toEqual([]);
          fullLoad(s, lim.maxNumSeqs + 2);
          live.pop()!.close();
        }
      });
    }
  }
});

describeDevices("instances sharing one device", (env) => {
  test("two instances sharing one device each get their own share", () => {
    const dev = 40;
    const shapes = env.isCuda ? CUDA_SHAPES : SHAPES;
    const a = start(options(shapes[0]!, { deviceOrdinal: dev, gpuMemoryUtilization: 0.45 }, env));
    const aUsed = takeSnapshot(a.dev).usedBytes;
    const b = start(options(shapes[1]!, { deviceOrdinal: dev, gpuMemoryUtilization: 0.45 }, env));
    const total = a.profile.baseline.totalBytes;
    const share = Math.floor(total * 0.45);
    const bUsed = takeSnapshot(b.dev).usedBytes - b.profile.baseline.usedBytes;
    expect(b.profile.weightsBytes).toBe(b.plan.weightsBytes);
    expect(aUsed).toBeLessThanOrEqual(share);
    expect(bUsed).toBeLessThanOrEqual(share);
    if (env.isCuda) {
      // one CUDA context per process: b's baseline holds a's memory plus whatever b's own
      // stream/handles took before its first snapshot
      expect(b.profile.baseline.usedBytes).toBeGreaterThanOrEqual(aUsed);
      const slack = bytesPerBlock(b.kvSpec) + safetyMarginBytes(total) + numSlices(b.kvSpec) * env.plannedGranularity;
      expect(bUsed).toBeGreaterThan(share - slack);
    } else {
      // the second instance saw the first one as "other" memory and did not charge it to itself
      expect(b.profile.baseline.usedBytes).toBe(aUsed);
      expect(b.profile.nonAllocatorIncreaseBytes).toBe(0);
      expect(bUsed).toBeGreaterThan(share - 2 * MiB);
    }
    // both still run at full load
    fullLoad(a, 6);
    fullLoad(b, 6);
  });
});

describe("instances and explicit sizes", () => {
  test("--kv-cache-memory-bytes skips the profile run and maps exactly that many bytes", () => {
    const bytes = 3 * MiB;
    const s = start(options(SHAPES[0]!, { deviceOrdinal: 41, kvCacheMemoryBytes: bytes }));
    expect(s.profile.profileSkipped).toBe(true);
    expect(s.profile.profileTimeMs).toBe(0);
    expect(s.kv.mappedBytes).toBeLessThanOrEqual(bytes);
    expect(bytes - s.kv.mappedBytes).toBeLessThan(bytesPerBlock(s.kvSpec) + numSlices(s.kvSpec) * 4096);
    expect(s.profile.peakActivationBytes).toBe(s.plan.activationArenaBytes); // the arena is still measured
    fullLoad(s, 5);
  });

  test("start-up fails clearly when free memory is below the request", () => {
    const d = Device.open({ device: "cpu", ordinal: 42, cpuCapacityBytes: 16 * MiB });
    try {
      d.simulateOtherProcess(10 * MiB);
      let err: unknown;
      try {
        start(options(SHAPES[0]!, { deviceOrdinal: 42, gpuMemoryUtilization: 0.9 }));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StartupMemoryError);
      expect((err as Error).message).toMatch(/free device memory 6\.0 MiB of 16\.0 MiB is less than the requested 14\.4 MiB/);
      expect((err as Error).message).toMatch(/other users of the device hold 10\.0 MiB/);
      expect((err as Error).message).toMatch(/--gpu-memory-utilization to at most 0\.375/);
      // and the suggested utilization works
      start(options(SHAPES[0]!, { deviceOrdinal: 42, gpuMemoryUtilization: 0.37 }));
    } finally {
      d.close();
    }
  });

  test("start-up fails clearly when the KV budget cannot hold one max_model_len sequence", () => {
    let err: unknown;
    try {
      start(options(SHAPES[1]!, { deviceOrdinal: 43, gpuMemoryUtilization: 0.5, maxModelLen: 65536 }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StartupMemoryError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/one 65536-token sequence needs/);
    expect(msg).toMatch(/missing/);
    expect(msg).toMatch(/--gpu-memory-utilization|--max-model-len/);
  });

  test("weights that do not fit fail with the stage named, not a raw allocator error", () => {
    let err: unknown;
    try {
      start(options("synthetic:dim=256,hidden=1024,layers=8,heads=8,vocab=2000", { deviceOrdinal: 44, deviceMemory: 8 * MiB }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StartupMemoryError);
    expect((err as Error).message).toMatch(/the model's weights .* do not fit|does not fit in device memory/);
  });
});
