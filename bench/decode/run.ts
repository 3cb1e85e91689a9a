// bench/decode: CPU prefill and decode throughput of synthetic Llama shapes next to ceilings
// measured in the same run:
//   decode ceiling  = time to stream what a decode step really reads, each matrix at the GEMV
//                     bandwidth measured at its own shape (the model's [N, K] matmuls, LM head
//                     included), plus the KV cache it reads at that bandwidth. The embedding table
//                     is not streamed by decode (one row is gathered) unless it is the tied LM head.
//   prefill ceiling = matmul peak FLOP/s (a large fp32 matmul) ÷ FLOPs per token
// The KV cache of every sequence is written by a real prefill before decode is timed, so decode
// reads written pages (never the zero page of an untouched mapping).
// Sampling (ISSUE 16 item 3): the whole engine at batch 16 (temperature/top-k/top-p, seeded,
// decode graphs on), sampling on the device vs copying every logits row and sampling on the
// host (the baseline, same run, alternating): device->host bytes per decode step and step time
// (min/median/max), and whether both produced the same tokens.
// Fused projections (q|k|v and gate|up as one matmul each, the engine's layout) are compared
// with the same weights laid out per projection in the same run: both models on one device,
// prefill / decode steps timed alternately (fused, separate, fused, ...), min/median/max.
// Usage: bun bench/decode/run.ts [--shapes stories15m,110m] [--threads 2] [--sampling-only] [--fused-reps 5]
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";

import { EngineCore } from "../../src/engine/engine-core.ts";
import { startEngine, type StartedEngine } from "../../src/engine/startup.ts";
import { parameterCount } from "../../src/model/config.ts";
import { batchLimitsFor } from "../../src/memory/planner.ts";
import { LlamaModel } from "../../src/model/llama.ts";
import { openModel } from "../../src/model/load.ts";
import { uploadWeights } from "../../src/model/upload.ts";
import { Device } from "../../src/native/index.ts";
import { Ops } from "../../src/native/ops.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const shapes = opt("shapes", "stories15m,110m").split(",");
const threads = Number(opt("threads", "2"));
const fusedReps = Number(opt("fused-reps", "5"));
const MiB = 2 ** 20;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeIt(fn: () => void, reps: number): number {
  fn(); // warm-up
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    t.push(performance.now() - t0);
  }
  return median(t) / 1000;
}

/**
 * GB/s of an fp32 matrix-vector pass at shape [N, K], over enough copies of the matrix that the
 * data read per pass (>= `minBytes`) is well beyond the caches, as a decode step's weights are.
 */
function measureGemv(dev: Device, ops: Ops, N: number, K: number, minBytes = 256 * MiB): number {
  const copies = Math.max(1, Math.ceil(minBytes / (N * K * 4)));
  const ws = Array.from({ length: copies }, () => dev.alloc(N * K * 4));
  const x = dev.alloc(K * 4);
  const y = dev.alloc(N * 4);
  dev.copyToDevice(x, new Float32Array(K).fill(0.5));
  const rows = Math.max(1, Math.floor((4 * MiB) / (K * 4)));
  for (const w of ws)
    for (let r = 0; r < N; r += rows) dev.copyToDevice(w + BigInt(r * K * 4), new Float32Array(Math.min(rows, N - r) * K).fill(0.01));
  const s = timeIt(() => {
    for (const w of ws) ops.matmul(y, x, w, 0n, 1, N, K);
  }, 5);
  for (const w of ws) dev.free(w);
  dev.free(x), dev.free(y);
  return (copies * N * K * 4) / s / 1e9;
}

/** GB/s of a matrix-vector pass over a `bytes`-sized fp32 matrix (well beyond the caches). */
function measureBandwidth(dev: Device, ops: Ops, bytes: number, K: number): number {
  const N = Math.floor(bytes / 4 / K);
  const w = dev.alloc(N * K * 4);
  const x = dev.alloc(K * 4);
  const y = dev.alloc(N * 4);
  dev.copyToDevice(x, new Float32Array(K).fill(0.5));
  for (let r = 0; r < N; r += 4096) dev.copyToDevice(w + BigInt(r * K * 4), new Float32Array(Math.min(4096, N - r) * K).fill(0.01));
  const s = timeIt(() => ops.matmul(y, x, w, 0n, 1, N, K), 7);
  dev.free(w), dev.free(x), dev.free(y);
  return (N * K * 4) / s / 1e9;
}

/** GFLOP/s of large fp32 matmuls of the model's layer shapes, the best of them (the prefill ceiling). */
function measureMatmulPeak(dev: Device, ops: Ops, D: number, I: number): number {
  let best = 0;
  for (const [M, N, K] of [
    [512, I, D],
    [512, D, I],
    [512, D, D],
  ] as const) {
    const x = dev.alloc(M * K * 4),
      w = dev.alloc(N * K * 4),
      y = dev.alloc(M * N * 4);
    dev.copyToDevice(x, new Float32Array(M * K).fill(0.1));
    dev.copyToDevice(w, new Float32Array(N * K).fill(0.1));
    const s = timeIt(() => ops.matmul(y, x, w, 0n, M, N, K), 5);
    dev.free(x), dev.free(w), dev.free(y);
    best = Math.max(best, (2 * M * N * K) / s / 1e9);
  }
  return best;
}

/** FLOPs of a prefill of `T` tokens of one sequence: layer matmuls, attention, one logits row. */
function prefillFlops(
  cfg: {
    hiddenSize: number;
    intermediateSize: number;
    numLayers: number;
    numHeads: number;
    numKvHeads: number;
    headDim: number;
    vocabSize: number;
  },
  T: number,
): number {
  const D = cfg.hiddenSize,
    I = cfg.intermediateSize,
    q = cfg.numHeads * cfg.headDim,
    kv = cfg.numKvHeads * cfg.headDim;
  const perTokenLayer = 2 * (D * (q + 2 * kv) + q * D + 3 * D * I);
  const attention = 2 * 2 * q * ((T * (T + 1)) / 2); // QKᵀ and PV over the causal context
  return cfg.numLayers * (T * perTokenLayer + attention) + 2 * cfg.vocabSize * D;
}

interface Spread {
  min: number;
  median: number;
  max: number;
}
function spread(xs: number[]): Spread {
  return { min: Math.min(...xs), median: median(xs), max: Math.max(...xs) };
}

interface SamplingRow {
  batch: number;
  steps: number;
  /** Device -> host bytes per decode step. */
  hostBytesPerStep: number;
  deviceBytesPerStep: number;
  /** Decode step time through the engine (ms). */
  hostStepMs: Spread;
  deviceStepMs: Spread;
  /** Process CPU time per decode step (ms, all threads): steadier than wall time on a loaded machine. */
  hostCpuMs: Spread;
  deviceCpuMs: Spread;
  sameTokens: boolean;
}

/**
 * The engine at batch B (graphs on), device sampling vs host sampling: `rounds` rounds, each
 * running both engines alternately over the same seeded requests; decode steps only are timed.
 */
function benchSampling(shape: string, B = 16, rounds = 3, decodeSteps = 24): SamplingRow {
  const open = (deviceSampling: boolean) =>
    startEngine({
      model: `synthetic:${shape}`,
      device: "cpu",
      deviceMemory: 3 * 1024 * MiB,
      gpuMemoryUtilization: 0.9,
      kvCacheMemoryBytes: 128 * MiB,
      maxModelLen: 512,
      maxNumSeqs: B,
      maxNumBatchedTokens: 256,
      blockSize: 16,
      enforceEager: false,
      cudagraphCaptureSizes: [B],
      maxWaiting: B,
      servedModelName: null,
      numThreads: threads,
      deviceSampling,
    });
  const engines = { host: open(false), device: open(true) };
  const times = { host: [] as number[], device: [] as number[] };
  const cpuTimes = { host: [] as number[], device: [] as number[] };
  const bytes = { host: 0, device: 0 };
  let sameTokens = true;
  try {
    for (let round = 0; round < rounds; round++) {
      const tokens: Record<string, number[][]> = {};
      for (const kind of ["host", "device"] as const) {
        const core = new EngineCore(engines[kind], { maxNumSeqs: B, maxWaiting: B, servedModelName: null });
        for (let i = 0; i < B; i++)
          core.add({
            requestId: `s${i}`,
            promptTokenIds: Array.from({ length: 16 }, (_, j) => 3 + ((i * 31 + j * 7) % 250)),
            params: {
              temperature: 0.8,
              topP: 0.95,
              topK: i % 2 ? 40 : 0,
              minP: 0,
              seed: round * 1000 + i,
              maxTokens: decodeSteps + 1,
              stopTokenIds: [],
              ignoreEos: true,
              presencePenalty: 0,
              frequencyPenalty: 0,
              repetitionPenalty: 1,
            },
          });
        const out = Array.from({ length: B }, () => [] as number[]);
        const collect = (ev: ReturnType<EngineCore["step"]>) => {
          for (const e of ev) out[Number(e.requestId.slice(1))]!.push(...e.tokenIds);
        };
        collect(core.step()); // prefill: all 16 prompts fit one step
        while (core.hasWork()) {
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          const ev = core.step();
          times[kind].push(performance.now() - t0);
          const c = process.cpuUsage(c0);
          cpuTimes[kind].push((c.user + c.system) / 1000);
          bytes[kind] = core.runner.copies.lastStepBytes;
          collect(ev);
        }
        tokens[kind] = out;
      }
      if (JSON.stringify(tokens.host) !== JSON.stringify(tokens.device)) sameTokens = false;
    }
  } finally {
    engines.host.close();
    engines.device.close();
  }
  return {
    batch: B,
    steps: times.device.length,
    hostBytesPerStep: bytes.host,
    deviceBytesPerStep: bytes.device,
    hostStepMs: spread(times.host),
    deviceStepMs: spread(times.device),
    hostCpuMs: spread(cpuTimes.host),
    deviceCpuMs: spread(cpuTimes.device),
    sameTokens,
  };
}

interface Row {
  shape: string;
  params: number;
  weightBytes: number;
  /** Weight bytes one decode step streams (all but the untied embedding table). */
  streamedWeightBytes: number;
  /** Seconds to stream one batch-1 decode step's weights + KV at the GEMV bandwidth of each shape. */
  decode1BoundS: number;
  /** Per-shape GEMV bandwidth (GB/s). */
  gemv: { shape: string; n: number; k: number; count: number; gbs: number }[];
  bandwidthGBs: number;
  matmulPeakGflops: number;
  prefillTokS: number;
  prefillGflops: number;
  prefillOfPeak: number;
  decode1TokS: number;
  decode1BoundTokS: number;
  decode1OfBound: number;
  decode16TokS: number;
  decode16OverDecode1: number;
  engineDecode1TokS: number;
  sampling: SamplingRow;
}

function stepInputs(s: StartedEngine, seqs: number, tokensPerSeq: number, ctx: number) {
  const bs = s.kvSpec.blockSize;
  const maxB = s.limits.maxBlocksPerSeq;
  const blocksPerSeq = Math.ceil(ctx / bs);
  const T = seqs * tokensPerSeq;
  const inputIds = new Int32Array(T).map((_, i) => 3 + ((i * 7919) % 250));
  const positions = new Int32Array(T);
  const slotMapping = new Int32Array(T);
  const queryStartLoc = new Int32Array(seqs + 1);
  const seqLens = new Int32Array(seqs);
  const blockTables = new Int32Array(seqs * maxB);
  const logitsIndices = new Int32Array(seqs);
  for (let q = 0; q < seqs; q++) {
    queryStartLoc[q] = q * tokensPerSeq;
    seqLens[q] = ctx;
    for (let b = 0; b < blocksPerSeq; b++) blockTables[q * maxB + b] = q * blocksPerSeq + b;
    for (let i = 0; i < tokensPerSeq; i++) {
      const pos = ctx - tokensPerSeq + i;
      positions[q * tokensPerSeq + i] = pos;
      slotMapping[q * tokensPerSeq + i] = (q * blocksPerSeq + Math.floor(pos / bs)) * bs + (pos % bs);
    }
    logitsIndices[q] = (q + 1) * tokensPerSeq - 1;
  }
  queryStartLoc[seqs] = T;
  return { inputIds, positions, slotMapping, queryStartLoc, seqLens, blockTables, logitsIndices, decodeOnly: tokensPerSeq === 1 };
}

function benchShape(shape: string): Row {
  const s = startEngine({
    model: `synthetic:${shape}`,
    device: "cpu",
    deviceMemory: 3 * 1024 * MiB,
    gpuMemoryUtilization: 0.9,
    kvCacheMemoryBytes: 256 * MiB,
    maxModelLen: 512,
    maxNumSeqs: 16,
    maxNumBatchedTokens: 128,
    blockSize: 16,
    enforceEager: true,
    maxWaiting: 16,
    servedModelName: null,
    numThreads: threads,
  });
  try {
    const cfg = s.opened.config;
    const params = parameterCount(cfg);
    const weightBytes = s.weights.totalBytes;
    const bandwidth = measureBandwidth(s.dev, s.ops, 256 * MiB, cfg.hiddenSize);
    const peak = measureMatmulPeak(s.dev, s.ops, cfg.hiddenSize, cfg.intermediateSize);
    const run = (seqs: number, tps: number, ctx: number) => {
      const inp = stepInputs(s, seqs, tps, ctx);
      return () => {
        s.model.stage(inp);
        s.model.forward(seqs * tps, seqs, seqs, inp.decodeOnly);
        s.model.readLogits(seqs);
      };
    };
    const prefillS = timeIt(run(1, 128, 128), 5);
    // Write the KV of all 16 sequences (128 tokens each, one prefill per sequence) so decode reads real pages.
    for (let q = 0; q < 16; q++) {
      const inp = stepInputs(s, 16, 128, 128);
      const one = {
        ...inp,
        inputIds: inp.inputIds.subarray(q * 128, (q + 1) * 128),
        positions: inp.positions.subarray(q * 128, (q + 1) * 128),
        slotMapping: inp.slotMapping.subarray(q * 128, (q + 1) * 128),
        queryStartLoc: Int32Array.of(0, 128),
        seqLens: Int32Array.of(128),
        blockTables: inp.blockTables.subarray(q * s.limits.maxBlocksPerSeq, (q + 1) * s.limits.maxBlocksPerSeq),
        logitsIndices: Int32Array.of(127),
      };
      s.model.stage(one);
      s.model.forward(128, 1, 1, false);
    }
    const decode1S = timeIt(run(1, 1, 129), 15);
    const decode16S = timeIt(run(16, 1, 129), 7);
    // Through the whole engine (scheduler, sampler, logits copy): batch-1 greedy decode.
    const core = new EngineCore(s, { maxNumSeqs: 16, maxWaiting: 16, servedModelName: null });
    core.add({
      requestId: "e",
      promptTokenIds: Array.from({ length: 64 }, (_, i) => 3 + i),
      params: {
        temperature: 0,
        topP: 1,
        topK: 0,
        minP: 0,
        maxTokens: 48,
        stopTokenIds: [],
        ignoreEos: true,
        presencePenalty: 0,
        frequencyPenalty: 0,
        repetitionPenalty: 1,
      },
    });
    core.step(); // prefill
    const t0 = performance.now();
    let n = 0;
    while (core.hasWork()) for (const e of core.step()) n += e.tokenIds.length;
    const engineDecode1 = n / ((performance.now() - t0) / 1000);
    const prefillGflops = prefillFlops(cfg, 128) / prefillS / 1e9;
    // What one batch-1 decode step reads, matrix by matrix, at each shape's own GEMV bandwidth.
    const D = cfg.hiddenSize,
      I = cfg.intermediateSize,
      qd = cfg.numHeads * cfg.headDim,
      kvd = cfg.numKvHeads * cfg.headDim;
    const shapesOfStep = [
      { shape: "q", n: qd, k: D, count: cfg.numLayers },
      { shape: "k/v", n: kvd, k: D, count: 2 * cfg.numLayers },
      { shape: "o", n: D, k: qd, count: cfg.numLayers },
      { shape: "gate/up", n: I, k: D, count: 2 * cfg.numLayers },
      { shape: "down", n: D, k: I, count: cfg.numLayers },
      { shape: "lm_head", n: cfg.vocabSize, k: D, count: 1 },
    ];
    const gemv = shapesOfStep.map((g) => ({ ...g, gbs: measureGemv(s.dev, s.ops, g.n, g.k) }));
    const embedBytes = cfg.vocabSize * D * 4;
    const streamedWeightBytes = weightBytes - (cfg.tieWordEmbeddings ? 0 : embedBytes);
    const kvReadBytes = 2 * cfg.numLayers * 129 * kvd * 4; // K and V of the 129-token context
    const matBytes = gemv.reduce((a, g) => a + g.count * g.n * g.k * 4, 0);
    const otherBytes = Math.max(0, streamedWeightBytes - matBytes); // norms: read at the large-matrix bandwidth
    const decode1BoundS =
      gemv.reduce((a, g) => a + (g.count * g.n * g.k * 4) / (g.gbs * 1e9), 0) + (otherBytes + kvReadBytes) / (bandwidth * 1e9);
    const bound = 1 / decode1BoundS;
    const sampling = benchSampling(shape);
    return {
      shape,
      params,
      weightBytes,
      streamedWeightBytes,
      decode1BoundS,
      gemv,
      bandwidthGBs: bandwidth,
      matmulPeakGflops: peak,
      prefillTokS: 128 / prefillS,
      prefillGflops,
      prefillOfPeak: prefillGflops / peak,
      decode1TokS: 1 / decode1S,
      decode1BoundTokS: bound,
      decode1OfBound: 1 / decode1S / bound,
      decode16TokS: 16 / decode16S,
      decode16OverDecode1: 16 / decode16S / (1 / decode1S),
      engineDecode1TokS: engineDecode1,
      sampling,
    };
  } finally {
    s.close();
  }
}

if (args.includes("--sampling-only")) {
  // Just the sampling comparison (quick): printed and written to bench/out/decode-sampling.json.
  const load = (await import("node:os")).loadavg();
  const res = shapes.map((shape) => ({ shape, ...benchSampling(shape) }));
  const ms = (x: Spread) => `${x.min.toFixed(2)} / ${x.median.toFixed(2)} / ${x.max.toFixed(2)}`;
  console.log(
    `bench/decode --sampling-only — ${cpus()[0]?.model ?? "cpu"}, ${threads} threads, load average ${load.map((x) => x.toFixed(2)).join(" ")}`,
  );
  console.log(
    "| shape | batch | steps each | host bytes/step | device bytes/step | host step ms min/med/max | device step ms min/med/max | host CPU ms/step min/med/max | device CPU ms/step min/med/max | same tokens |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
  for (const x of res)
    console.log(
      `| ${x.shape} | ${x.batch} | ${x.steps} | ${x.hostBytesPerStep} | ${x.deviceBytesPerStep} | ${ms(x.hostStepMs)} | ${ms(x.deviceStepMs)} | ${ms(x.hostCpuMs)} | ${ms(x.deviceCpuMs)} | ${x.sameTokens ? "yes" : "NO"} |`,
    );
  mkdirSync("bench/out", { recursive: true });
  writeFileSync(
    "bench/out/decode-sampling.json",
    JSON.stringify({ date: new Date().toISOString(), threads, loadavg: load, rows: res }, null, 2),
  );
  process.exit(0);
}

interface FusedRow {
  shape: string;
  /** seconds per step, [min, median, max] over the alternating repetitions */
  fused: Record<"prefill128" | "decode1" | "decode16", number[]>;
  separate: Record<"prefill128" | "decode1" | "decode16", number[]>;
  /** max |logit fused - separate| over the timed steps' last rows */
  maxLogitDiff: number;
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return [s[0]!, s[Math.floor(s.length / 2)]!, s[s.length - 1]!];
};

/**
 * The same weights uploaded twice — fused (the engine's layout) and one tensor per projection —
 * as two LlamaModels on one CPU device sharing one KV cache; each step shape is timed on both
 * alternately, after the KV of 16 sequences x 128 tokens is written.
 */
function benchFused(shape: string): FusedRow {
  const ws = openModel(`synthetic:${shape}`).weights;
  const cfg = ws.config;
  const dev = Device.open({ device: "cpu", cpuCapacityBytes: 6 * 1024 * MiB });
  const ops = new Ops(dev);
  ops.setNumThreads(threads);
  const bs = 16;
  const limits = batchLimitsFor(512, 16, 128, bs);
  const numBlocks = 16 * Math.ceil(129 / bs) + 1;
  const sliceStride = numBlocks * bs * cfg.numKvHeads * cfg.headDim * 4;
  const kv = dev.alloc(2 * cfg.numLayers * sliceStride);
  const weights = [uploadWeights(dev, ws), uploadWeights(dev, ws, { fuse: false })];
  const models = weights.map((w) => {
    const m = new LlamaModel(dev, ops, cfg, w, limits, bs);
    m.allocateArena();
    m.setKvCache({ base: kv, sliceStride, numBlocks, blockSize: bs });
    return m;
  });
  const fakeEngine = { kvSpec: { blockSize: bs }, limits } as unknown as StartedEngine;
  try {
    if (weights[0]!.fused.size !== 2 * cfg.numLayers || weights[1]!.fused.size !== 0) throw new Error("fused layout not as expected");
    // KV of 16 sequences x 128 tokens written once (both models read the same cache)
    const base = stepInputs(fakeEngine, 16, 128, 128);
    for (let q = 0; q < 16; q++) {
      models[0]!.stage({
        ...base,
        inputIds: base.inputIds.subarray(q * 128, (q + 1) * 128),
        positions: base.positions.subarray(q * 128, (q + 1) * 128),
        slotMapping: base.slotMapping.subarray(q * 128, (q + 1) * 128),
        queryStartLoc: Int32Array.of(0, 128),
        seqLens: Int32Array.of(128),
        blockTables: base.blockTables.subarray(q * limits.maxBlocksPerSeq, (q + 1) * limits.maxBlocksPerSeq),
        logitsIndices: Int32Array.of(127),
      });
      models[0]!.forward(128, 1, 1, false);
    }
    const shapesOfStep = { prefill128: [1, 128, 128], decode1: [1, 1, 129], decode16: [16, 1, 129] } as const;
    const out = { fused: {}, separate: {} } as Pick<FusedRow, "fused" | "separate">;
    let maxLogitDiff = 0;
    for (const [key, [seqs, tps, ctx]] of Object.entries(shapesOfStep) as [keyof FusedRow["fused"], readonly number[]][]) {
      // a prefill step rewrites positions 0..127 of sequence 0 with the same tokens: the cache stays as written
      const inp = stepInputs(fakeEngine, seqs!, tps!, ctx!);
      const t: number[][] = [[], []];
      const last: Float32Array[] = [];
      for (let rep = -1; rep < fusedReps; rep++) {
        models.forEach((m, i) => {
          const t0 = performance.now();
          m.stage(inp);
          m.forward(seqs! * tps!, seqs!, seqs!, inp.decodeOnly);
          last[i] = m.readLogits(seqs!).slice();
          if (rep >= 0) t[i]!.push((performance.now() - t0) / 1000); // rep -1: warm-up
        });
        for (let j = 0; j < last[0]!.length; j++) maxLogitDiff = Math.max(maxLogitDiff, Math.abs(last[0]![j]! - last[1]![j]!));
      }
      out.fused[key] = stats(t[0]!);
      out.separate[key] = stats(t[1]!);
    }
    return { shape, ...out, maxLogitDiff };
  } finally {
    for (const m of models) m.freeArena();
    for (const w of weights) w.free();
    dev.free(kv);
    dev.close();
  }
}

const loadBefore = loadavg();
const rows = shapes.map(benchShape);
const fusedRows = fusedReps > 0 ? shapes.map(benchFused) : [];
const machine = `${cpus()[0]?.model ?? "cpu"}, ${cpus().length} cores, ${threads} threads`;
console.log(`bench/decode — ${machine}, ${new Date().toISOString().slice(0, 10)}`);
console.log(
  "| shape | params | weights MiB | streamed per decode step MiB | GB/s (GEMV, large) | peak GFLOP/s | prefill tok/s | prefill % of peak | decode b=1 tok/s | bound tok/s | % of bound | b=16 agg tok/s | b=16 ÷ b=1 | engine b=1 tok/s |",
);
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(
    `| ${r.shape} | ${(r.params / 1e6).toFixed(1)}M | ${(r.weightBytes / MiB).toFixed(0)} | ${(r.streamedWeightBytes / MiB).toFixed(0)} | ${r.bandwidthGBs.toFixed(1)} | ${r.matmulPeakGflops.toFixed(1)} | ` +
      `${r.prefillTokS.toFixed(0)} | ${(100 * r.prefillOfPeak).toFixed(0)}% | ${r.decode1TokS.toFixed(1)} | ${r.decode1BoundTokS.toFixed(1)} | ` +
      `${(100 * r.decode1OfBound).toFixed(0)}% | ${r.decode16TokS.toFixed(1)} | ${r.decode16OverDecode1.toFixed(2)}x | ${r.engineDecode1TokS.toFixed(1)} |`,
  );
}
console.log("\nGEMV bandwidth at the model's own shapes (GB/s), which the decode bound uses:");
for (const r of rows) console.log(`  ${r.shape}: ${r.gemv.map((g) => `${g.shape} [${g.n}x${g.k}] ${g.gbs.toFixed(1)}`).join(", ")}`);
const ms = (x: Spread) => `${x.min.toFixed(2)} / ${x.median.toFixed(2)} / ${x.max.toFixed(2)}`;
console.log("\nSampling in the engine (decode steps, graphs on), host sampling (baseline) vs device sampling:");
console.log(
  "| shape | batch | steps each | host bytes/step | device bytes/step | host step ms min/med/max | device step ms min/med/max | host CPU ms/step min/med/max | device CPU ms/step min/med/max | same tokens |",
);
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
for (const r of rows) {
  const x = r.sampling;
  console.log(
    `| ${r.shape} | ${x.batch} | ${x.steps} | ${x.hostBytesPerStep} | ${x.deviceBytesPerStep} | ${ms(x.hostStepMs)} | ${ms(x.deviceStepMs)} | ${ms(x.hostCpuMs)} | ${ms(x.deviceCpuMs)} | ${x.sameTokens ? "yes" : "NO"} |`,
  );
}
if (fusedRows.length) {
  console.log(
    `\nFused q|k|v and gate|up (the engine's layout) vs one matmul per projection, same weights, same run, alternating, ${fusedReps} reps; ms per step min/median/max:`,
  );
  console.log("| shape | step | fused ms | separate ms | separate ÷ fused (medians) | max |Δ logit| |");
  console.log("|---|---|---|---|---:|---:|");
  const ms = (v: number[]) => v.map((x) => (1000 * x).toFixed(2)).join(" / ");
  for (const r of fusedRows)
    for (const k of ["prefill128", "decode1", "decode16"] as const)
      console.log(
        `| ${r.shape} | ${k} | ${ms(r.fused[k])} | ${ms(r.separate[k])} | ${(r.separate[k][1]! / r.fused[k][1]!).toFixed(3)} | ${r.maxLogitDiff.toExponential(1)} |`,
      );
}
const loadAfter = loadavg();
console.log(
  `\nload average (1/5/15 min) before: ${loadBefore.map((x) => x.toFixed(2)).join(" ")}, after: ${loadAfter.map((x) => x.toFixed(2)).join(" ")}`,
);
mkdirSync("bench/out", { recursive: true });
writeFileSync(
  "bench/out/decode.json",
  JSON.stringify({ machine, date: new Date().toISOString(), threads, loadBefore, loadAfter, rows, fusedRows }, null, 2),
);
