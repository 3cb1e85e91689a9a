// Decode graphs on every test device (test/util/devices.ts): op-list graphs replayed inside C
// on the CPU backend, CUDA graphs on a GPU. A replayed decode step gives the eager logits for
// every captured size (CPU: bit for bit; CUDA: within the dtype's rounding, same tokens) and
// the eager tokens for padded batch sizes; whole generations with graphs equal
// --enforce-eager; start-up at 0.99 with graphs does not OOM and sizes the KV cache after
// capture; memory is reported; a block id beyond the mapped KV blocks is NaN (CUDA) or a clean
// error (CPU), never a fault, and the next step runs.
import { Value } from "@sinclair/typebox/value";
import { MemoryReport } from "../../src/memory/report-schema.ts";
import { afterEach, describe, expect, test } from "bun:test";

import { sliceBytesPerBlock } from "../../src/memory/kv-sizing.ts";
import { EngineCore } from "../../src/engine/engine-core.ts";
import { resolveCaptureSizes } from "../../src/engine/graph-runner.ts";
import { startEngine, type StartedEngine } from "../../src/engine/startup.ts";
import type { DtypeFlag } from "../../src/model/dtype.ts";
import type { StepInputs } from "../../src/model/llama.ts";
import { GGUF_PATH, HAVE_MODELS, warnIfNoModels } from "../model/helpers.ts";
import { describeDevices, type DeviceEnv } from "../util/devices.ts";
import { greedyParams } from "./engine-helpers.ts";

warnIfNoModels("engine graphs");

const MiB = 2 ** 20;
const SYNTH = "synthetic:dim=64,hidden=176,layers=2,heads=4,kv_heads=2,vocab=300";
// At 0.99 of an 80-141 GB GPU, SYNTH's 4 KiB blocks would number tens of millions (about 1 GB
// of block-pool typed arrays): CUDA's 0.99 start-up uses 512 KiB blocks, as real models.
const SYNTH_BIG = "synthetic:dim=1024,hidden=2816,layers=8,heads=8,kv_heads=8,vocab=300";

// Closed after each test: on CUDA every engine shares the one real device.
const started: StartedEngine[] = [];
afterEach(() => {
  while (started.length) started.pop()!.close();
});

function start(env: DeviceEnv, model: string, ordinal: number, over: Parameters<DeviceEnv["engineOptions"]>[1] = {}): StartedEngine {
  const s = startEngine(env.engineOptions(model, { deviceOrdinal: ordinal, enforceEager: false, maxNumSeqs: 8, ...over }));
  started.push(s);
  return s;
}

function stop(s: StartedEngine): void {
  const i = started.indexOf(s);
  if (i >= 0) started.splice(i, 1);
  s.close();
}

/** "op-list" on the CPU backend, "cuda-graph" on CUDA. */
const graphKind = (env: DeviceEnv) => (env.isCuda ? "cuda-graph" : "op-list");

/**
 * Logits tolerance of a CUDA replay against eager, relative to the largest |eager logit|: fp32
 * (no TF32: cuBLAS runs COMPUTE_32F) differs only by accumulation order; bf16 activations are
 * rounded to 8 mantissa bits after every op, so a different reduction order (e.g. another
 * split-K partitioning of decode attention) can move a value by one bf16 ulp (2^-8) and that
 * step propagates through the remaining layers: 2e-2, as the bf16 kernel bound in test/gpu.
 */
const CUDA_RTOL: Record<string, number> = { f32: 1e-4, bf16: 2e-2, f16: 1e-2 };

/** Prefills B sequences (eagerly) and returns the decode step that follows. */
function prefillThenDecode(s: StartedEngine, B: number, seed: number): StepInputs {
  const m = s.model;
  const bs = s.kvSpec.blockSize;
  const mb = s.limits.maxBlocksPerSeq;
  const vocab = m.cfg.vocabSize;
  const perSeq = Math.min(mb, Math.floor(s.kv.numBlocks / Math.max(8, B)));
  const lens = Array.from({ length: B }, (_, i) => 3 + ((i * 5 + seed) % 11));
  const T = lens.reduce((a, b) => a + b, 0);
  const ids = new Int32Array(T),
    pos = new Int32Array(T),
    slots = new Int32Array(T);
  const qsl = new Int32Array(B + 1),
    seqLens = new Int32Array(B),
    bt = new Int32Array(B * mb),
    li = new Int32Array(B);
  let t = 0;
  lens.forEach((n, b) => {
    qsl[b] = t;
    seqLens[b] = n;
    for (let j = 0; j < perSeq; j++) bt[b * mb + j] = b * perSeq + j;
    for (let i = 0; i < n; i++, t++) {
      ids[t] = 1 + ((t * 31 + seed * 7) % (vocab - 1));
      pos[t] = i;
      slots[t] = (b * perSeq + Math.floor(i / bs)) * bs + (i % bs);
    }
    li[b] = t - 1;
  });
  qsl[B] = t;
  expect(
    m.step(
      {
        inputIds: ids,
        positions: pos,
        slotMapping: slots,
        queryStartLoc: qsl,
        seqLens,
        blockTables: bt,
        logitsIndices: li,
        decodeOnly: false,
      },
      T,
      B,
      B,
    ),
  ).toBe(false);
  const dIds = new Int32Array(B),
    dPos = new Int32Array(B),
    dSlots = new Int32Array(B),
    dLens = new Int32Array(B);
  lens.forEach((n, b) => {
    dIds[b] = 1 + ((b * 17 + seed) % (vocab - 1));
    dPos[b] = n;
    dSlots[b] = (b * perSeq + Math.floor(n / bs)) * bs + (n % bs);
    dLens[b] = n + 1;
  });
  return {
    inputIds: dIds,
    positions: dPos,
    slotMapping: dSlots,
    queryStartLoc: Int32Array.from({ length: B + 1 }, (_, i) => i),
    seqLens: dLens,
    blockTables: bt,
    logitsIndices: Int32Array.from({ length: B }, (_, i) => i),
    decodeOnly: true,
  };
}

function argmaxRows(l: Float32Array, rows: number, vocab: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let v = 1; v < vocab; v++) if (l[r * vocab + v]! > l[r * vocab + best]!) best = v;
    out.push(best);
  }
  return out;
}

/**
 * Rows whose eager top-2 gap exceeds `tol` must pick the same token in both (a gap within the
 * tolerance may flip legitimately); every element within `tol`.
 */
function expectCloseLogits(graph: Float32Array, eager: Float32Array, rows: number, vocab: number, tol: number, what: string): void {
  let maxDiff = 0;
  for (let i = 0; i < graph.length; i++) maxDiff = Math.max(maxDiff, Math.abs(graph[i]! - eager[i]!));
  expect(maxDiff, `${what}: max |graph - eager| ${maxDiff} > ${tol}`).toBeLessThanOrEqual(tol);
  const ga = argmaxRows(graph, rows, vocab),
    ea = argmaxRows(eager, rows, vocab);
  for (let r = 0; r < rows; r++) {
    const row = Array.from(eager.subarray(r * vocab, (r + 1) * vocab)).sort((a, b) => b - a);
    if (row[0]! - row[1]! > 2 * tol) expect(ga[r], `${what}: row ${r} token`).toBe(ea[r]!);
  }
}

function checkReplayVsEager(env: DeviceEnv, s: StartedEngine): void {
  const m = s.model;
  const dg = s.decodeGraphs!;
  expect(dg).not.toBeNull();
  const captured = new Set(s.graphs!.sizes);
  const vocab = m.cfg.vocabSize;
  let identical = 0;
  for (let B = 1; B <= 8; B++) {
    const inp = prefillThenDecode(s, B, B);
    m.stage(inp);
    m.forward(B, B, B, true);
    const eager = m.readLogits(B).slice();
    const before = dg.replays;
    expect(m.step(inp, B, B, B)).toBe(true);
    expect(dg.replays).toBe(before + 1);
    const graph = m.readLogits(B).slice();
    for (const x of graph) expect(Number.isFinite(x)).toBe(true);
    if (Buffer.from(graph.buffer).equals(Buffer.from(eager.buffer))) identical++;
    if (env.isCuda) {
      // CUDA: the captured kernels may be planned for the padded grid (fixed under graphs)
      // while eager plans from the batch: within the dtype's rounding, the same tokens
      let scale = 0;
      for (const x of eager) scale = Math.max(scale, Math.abs(x));
      expectCloseLogits(graph, eager, B, vocab, CUDA_RTOL[s.dtype]! * scale, `batch ${B} (${s.dtype})`);
      if (!captured.has(B)) expect(dg.sizeFor(B)).toBeGreaterThan(B);
    } else if (captured.has(B)) {
      // the same executors with the same arguments: bit for bit
      expect(Buffer.from(graph.buffer).equals(Buffer.from(eager.buffer))).toBe(true);
    } else {
      // padded to the next size: matmuls run with more rows (another kernel path may round
      // differently), the tokens are the same
      expect(dg.sizeFor(B)).toBeGreaterThan(B);
      let maxDiff = 0;
      for (let i = 0; i < graph.length; i++) maxDiff = Math.max(maxDiff, Math.abs(graph[i]! - eager[i]!));
      expect(maxDiff).toBeLessThan(1e-4);
      expect(argmaxRows(graph, B, vocab)).toEqual(argmaxRows(eager, B, vocab));
    }
  }
  if (env.isCuda) console.log(`[graphs cuda ${s.dtype}] replay bit-identical to eager for ${identical} of 8 batch sizes`);
}

function generateAll(s: StartedEngine, prompts: number[][], maxTokens: (i: number) => number): number[][] {
  const core = new EngineCore(s, { maxNumSeqs: s.limits.maxSeqs, maxWaiting: 64, servedModelName: null });
  prompts.forEach((p, i) => core.add({ requestId: `r${i}`, promptTokenIds: p, params: greedyParams(maxTokens(i)) }));
  const out = prompts.map(() => [] as number[]);
  while (core.hasWork()) for (const e of core.step()) out[Number(e.requestId.slice(1))]!.push(...e.tokenIds);
  expect(core.stats().blocksUsed).toBe(0);
  return out;
}

describe("capture sizes", () => {
  const limits = { maxSeqs: 8, maxTokens: 128, maxBlocksPerSeq: 32 };
  test("default list up to min(2 x max_num_seqs, 512), capped by the largest decode batch, largest first", () => {
    expect(resolveCaptureSizes({ enforceEager: false, maxNumSeqs: 8 }, limits)).toEqual({ sizes: [8, 4, 2, 1], dropped: [16] });
    expect(resolveCaptureSizes({ enforceEager: false, maxNumSeqs: 256 }, { ...limits, maxSeqs: 256, maxTokens: 2048 }).sizes.length).toBe(
      3 + 32,
    );
    expect(resolveCaptureSizes({ enforceEager: true, maxNumSeqs: 8 }, limits).sizes).toEqual([]);
    expect(resolveCaptureSizes({ enforceEager: false, maxNumSeqs: 8, cudagraphCaptureSizes: [3, 1, 3, 12] }, limits)).toEqual({
      sizes: [3, 1],
      dropped: [12],
    });
    expect(resolveCaptureSizes({ enforceEager: false, maxNumSeqs: 8, maxCudagraphCaptureSize: 4 }, limits).sizes).toEqual([4, 2, 1]);
  });
});

describeDevices("decode graphs vs eager (synthetic model)", (env) => {
  // CUDA runs the replay check in its default dtype (bf16) and in fp32; token equality of whole
  // generations in fp32 (bf16 near-ties could flip on a reordered reduction; fp32 leaves 1e-6).
  const dtypes: DtypeFlag[] = env.isCuda ? ["auto", "float32"] : ["auto"];
  const exactDtype: DtypeFlag = env.isCuda ? "float32" : "auto";

  for (const dtype of dtypes)
    test(`replayed logits equal eager at every captured size; padded sizes give the same tokens (dtype ${dtype})`, () => {
      const s = start(env, SYNTH, 50, { dtype });
      expect(s.graphs!.sizes).toEqual([1, 2, 4, 8]);
      expect(s.graphs!.kind).toBe(graphKind(env));
      expect(s.startupLine).toContain(`graphs (${graphKind(env)}): 4 sizes 1..8`);
      checkReplayVsEager(env, s);
    });

  test("generation with graphs equals --enforce-eager (batch shrinking through padded sizes)", () => {
    const g = start(env, SYNTH, 51, { dtype: exactDtype });
    const e = start(env, SYNTH, 52, { enforceEager: true, dtype: exactDtype });
    expect(e.graphs).toBeNull();
    expect(e.startupLine).toContain("graphs off (--enforce-eager)");
    const prompts = Array.from({ length: 8 }, (_, i) => Array.from({ length: 2 + i * 3 }, (_, j) => 1 + ((i * 37 + j * 11) % 299)));
    const maxTokens = (i: number) => 6 + i * 4;
    const tg = generateAll(g, prompts, maxTokens);
    const te = generateAll(e, prompts, maxTokens);
    expect(tg).toEqual(te);
    expect(g.decodeGraphs!.replays).toBeGreaterThan(10);
  });

  test("batches above the largest captured size and prefill steps run eagerly", () => {
    const s = start(env, SYNTH, 53, { cudagraphCaptureSizes: [1, 2] });
    expect(s.graphs!.sizes).toEqual([1, 2]);
    const inp = prefillThenDecode(s, 3, 1);
    const before = s.decodeGraphs!.replays;
    expect(s.model.step(inp, 3, 3, 3)).toBe(false);
    expect(s.decodeGraphs!.replays).toBe(before);
  });

  test("a block id beyond the mapped KV blocks: NaN on CUDA, a clean error on CPU; the next step runs", () => {
    // Graphs are captured against the reserved range (ids up to the reservation are "valid"
    // addresses); only the blocks mapped at replay time hold memory. A bad id must neither
    // fault (CUDA: illegal address kills the context) nor read stale memory.
    const s = start(env, SYNTH, 60, { dtype: exactDtype });
    const B = 2;
    const good = prefillThenDecode(s, B, 5);
    const bad = { ...good, blockTables: good.blockTables.slice() };
    // sequence 0's first block: past every mapped byte of the slices (the mapping is rounded up
    // to the granularity, so ids just above numBlocks can still be mapped memory), within the
    // reservation the graphs were captured against
    const firstUnmapped = Math.ceil(s.kv.bytesPerSlice / sliceBytesPerBlock(s.kvSpec));
    bad.blockTables[0] = firstUnmapped + 3;
    const m = s.model;
    const vocab = m.cfg.vocabSize;
    if (env.isCuda) {
      expect(m.step(bad, B, B, B)).toBe(true); // replayed
      const l = m.readLogits(B); // synchronizes: a fault would throw here
      expect(l.subarray(0, vocab).every(Number.isNaN)).toBe(true);
      expect(l.subarray(vocab, 2 * vocab).every(Number.isFinite)).toBe(true); // the other sequence is untouched
    } else {
      expect(() => {
        m.step(bad, B, B, B);
        m.readLogits(B);
      }).toThrow(/beyond the \d+ mapped blocks/);
    }
    // the device is still usable: the same step with good ids equals an eager run
    expect(m.step(good, B, B, B)).toBe(true);
    const graph = m.readLogits(B).slice();
    m.stage(good);
    m.forward(B, B, B, true);
    const eager = m.readLogits(B).slice();
    expect(graph.every(Number.isFinite)).toBe(true);
    let scale = 0;
    for (const x of eager) scale = Math.max(scale, Math.abs(x));
    expectCloseLogits(graph, eager, B, vocab, env.isCuda ? CUDA_RTOL[s.dtype]! * scale : 0, "after the bad step");
  });
});

describeDevices("decode graphs vs eager (stories260K)", (env) => {
  const exactDtype: DtypeFlag = env.isCuda ? "float32" : "auto";
  test.skipIf(!HAVE_MODELS)("replayed logits equal eager at every captured size, padded sizes give the same tokens", () => {
    checkReplayVsEager(env, start(env, GGUF_PATH, 54));
  });

  test.skipIf(!HAVE_MODELS)("greedy generations with graphs equal --enforce-eager", () => {
    const g = start(env, GGUF_PATH, 55, { dtype: exactDtype });
    const e = start(env, GGUF_PATH, 56, { enforceEager: true, dtype: exactDtype });
    const tok = g.opened.tokenizer;
    const prompts = [
      "Once upon a time",
      "The cat",
      "Lily and Ben went to the park",
      "One day",
      "Tom had a red ball",
      "She",
      "The sun was",
      "A little bird",
    ].map((t) => tok.encode(t, { addBos: true }));
    const maxTokens = (i: number) => 10 + i * 7;
    expect(generateAll(g, prompts, maxTokens)).toEqual(generateAll(e, prompts, maxTokens));
  });
});

describeDevices("memory", (env) => {
  test("start-up at --gpu-memory-utilization 0.99 with graphs does not OOM; KV sized after capture; memory reported", () => {
    const at099 = { gpuMemoryUtilization: 0.99, deviceMemory: 16 * MiB, maxNumSeqs: 16, maxNumBatchedTokens: 256 };
    // eager first, closed before the graphs run starts: at 0.99 two engines cannot share a GPU
    const model = env.isCuda ? SYNTH_BIG : SYNTH;
    const e = start(env, model, 58, { ...at099, enforceEager: true });
    expect(e.graphs).toBeNull();
    const eagerBlocks = e.kv.numBlocks;
    const off = new EngineCore(e, { maxNumSeqs: 16, maxWaiting: 64, servedModelName: null }).memory() as {
      graphs: Record<string, unknown>;
    };
    expect(off.graphs).toMatchObject({ enabled: false, reason: "--enforce-eager" });
    if (env.isCuda) stop(e);
    const s = start(env, model, 57, at099);
    const r = s.graphs!;
    expect(r.sizes).toEqual([1, 2, 4, 8, 16]);
    expect(r.perGraphBytes.length).toBe(5);
    // graphs share the arena: nothing is allocated from the graph pool while capturing
    expect(r.poolReserved).toBe(0);
    if (env.isCuda) {
      // the executables are device memory outside the allocator, counted before KV sizing
      expect(r.totalBytes).toBe(r.execBytes);
      expect(s.kv.numBlocks).toBeLessThanOrEqual(eagerBlocks);
      const used = s.dev.memInfo().total - s.dev.memInfo().free - s.profile.baseline.usedBytes;
      expect(used).toBeLessThanOrEqual(s.profile.requestedBytes); // within the 0.99 share
    } else {
      expect(r.totalBytes).toBe(0);
      expect(r.hostBytes).toBeGreaterThan(0);
      expect(s.profile.graphBytes).toBe(0);
      // the KV cache was sized after capture and got the same blocks as eager
      expect(s.kv.numBlocks).toBe(eagerBlocks);
    }
    expect(s.kv.numBlocks).toBeGreaterThan(0);
    const snap = s.dev.memInfo();
    expect(snap.free).toBeGreaterThan(0);
    // a decode step at the largest size runs within that memory
    const inp = prefillThenDecode(s, 16, 3);
    expect(s.model.step(inp, 16, 16, 16)).toBe(true);
    expect(s.model.readLogits(16).every(Number.isFinite)).toBe(true);
    const core = new EngineCore(s, { maxNumSeqs: 16, maxWaiting: 64, servedModelName: null });
    const mem = core.memory() as { graphs: Record<string, unknown>; profile: { cuda_graph: number }; startup_line: string };
    expect(mem.graphs).toMatchObject({ enabled: true, kind: graphKind(env), sizes: [1, 2, 4, 8, 16], pool_reserved: 0 });
    if (!env.isCuda) {
      expect(mem.graphs).toMatchObject({ total_bytes: 0 });
      expect(mem.graphs.per_graph_bytes).toEqual([0, 0, 0, 0, 0]);
      expect(mem.profile.cuda_graph).toBe(0);
    }
    expect(typeof mem.graphs.capture_ms).toBe("number");
    expect(mem.startup_line).toContain(`graphs (${graphKind(env)})`);
    // GET /v1/memory's schema describes both reports exactly (graphs on and off).
    for (const m of [core.memory(), off]) expect([...Value.Errors(MemoryReport, m)].map((x) => `${x.path}: ${x.message}`)).toEqual([]);
  });

  // The CUDA capture time of the default sizes is a figure of bench/graphs (kit/gpu-check.sh),
  // not a test threshold.
  test.skipIf(env.isCuda)("capture of the default list is fast (well under 2 s)", () => {
    const s = start(env, SYNTH, 59, { maxNumSeqs: 64, maxNumBatchedTokens: 128, maxModelLen: 256 });
    expect(s.graphs!.sizes.length).toBe(3 + 8);
    expect(s.graphs!.captureMs).toBeLessThan(2000);
  });
});
