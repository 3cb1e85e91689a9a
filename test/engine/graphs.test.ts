// Decode graphs on the CPU backend (op-list graphs replayed inside C): a replayed decode step
// gives exactly the eager logits for every captured size and the eager tokens for padded
// batch sizes; whole generations with graphs equal --enforce-eager; start-up at 0.99 with
// graphs does not OOM and sizes the KV cache after capture; memory is reported.
import { Value } from "@sinclair/typebox/value";
import { MemoryReport } from "../../src/memory/report-schema.ts";
import { afterAll, describe, expect, test } from "bun:test";

import { EngineCore } from "../../src/engine/engine-core.ts";
import { resolveCaptureSizes } from "../../src/engine/graph-runner.ts";
import { startEngine, type StartedEngine } from "../../src/engine/startup.ts";
import type { StepInputs } from "../../src/model/llama.ts";
import { GGUF_PATH, HAVE_MODELS, warnIfNoModels } from "../model/helpers.ts";
import { engineOptions, greedyParams } from "./engine-helpers.ts";

warnIfNoModels("engine graphs");

const MiB = 2 ** 20;
const SYNTH = "synthetic:dim=64,hidden=176,layers=2,heads=4,kv_heads=2,vocab=300";

const started: StartedEngine[] = [];
afterAll(() => {
  for (const s of started) s.close();
});

function start(model: string, ordinal: number, over: Parameters<typeof engineOptions>[1] = {}): StartedEngine {
  const s = startEngine(engineOptions(model, { deviceOrdinal: ordinal, enforceEager: false, maxNumSeqs: 8, ...over }));
  started.push(s);
  return s;
}

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

function checkReplayVsEager(s: StartedEngine): void {
  const m = s.model;
  const dg = s.decodeGraphs!;
  expect(dg).not.toBeNull();
  const captured = new Set(s.graphs!.sizes);
  const vocab = m.cfg.vocabSize;
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
    if (captured.has(B)) {
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

describe("decode graphs vs eager (synthetic model)", () => {
  test("replayed logits equal eager bit for bit at every captured size; padded sizes give the same tokens", () => {
    const s = start(SYNTH, 50);
    expect(s.graphs!.sizes).toEqual([1, 2, 4, 8]);
    expect(s.graphs!.kind).toBe("op-list");
    expect(s.startupLine).toContain("graphs (op-list): 4 sizes 1..8");
    checkReplayVsEager(s);
  });

  test("generation with graphs equals --enforce-eager (batch shrinking through padded sizes)", () => {
    const g = start(SYNTH, 51);
    const e = start(SYNTH, 52, { enforceEager: true });
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
    const s = start(SYNTH, 53, { cudagraphCaptureSizes: [1, 2] });
    expect(s.graphs!.sizes).toEqual([1, 2]);
    const inp = prefillThenDecode(s, 3, 1);
    const before = s.decodeGraphs!.replays;
    expect(s.model.step(inp, 3, 3, 3)).toBe(false);
    expect(s.decodeGraphs!.replays).toBe(before);
  });
});

describe.skipIf(!HAVE_MODELS)("decode graphs vs eager (stories260K)", () => {
  test("replayed logits equal eager at every captured size, padded sizes give the same tokens", () => {
    checkReplayVsEager(start(GGUF_PATH, 54));
  });

  test("greedy generations with graphs equal --enforce-eager", () => {
    const g = start(GGUF_PATH, 55);
    const e = start(GGUF_PATH, 56, { enforceEager: true });
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

describe("memory", () => {
  test("start-up at --gpu-memory-utilization 0.99 with graphs does not OOM; KV sized after capture; memory reported", () => {
    const s = start(SYNTH, 57, { gpuMemoryUtilization: 0.99, deviceMemory: 16 * MiB, maxNumSeqs: 16, maxNumBatchedTokens: 256 });
    const e = start(SYNTH, 58, {
      gpuMemoryUtilization: 0.99,
      deviceMemory: 16 * MiB,
      maxNumSeqs: 16,
      maxNumBatchedTokens: 256,
      enforceEager: true,
    });
    const r = s.graphs!;
    expect(r.sizes).toEqual([1, 2, 4, 8, 16]);
    expect(r.perGraphBytes.length).toBe(5);
    // graphs share the arena: nothing is allocated while capturing
    expect(r.totalBytes).toBe(0);
    expect(r.poolReserved).toBe(0);
    expect(r.hostBytes).toBeGreaterThan(0);
    expect(s.profile.graphBytes).toBe(0);
    // the KV cache was sized after capture and got the same blocks as eager
    expect(s.kv.numBlocks).toBe(e.kv.numBlocks);
    expect(s.kv.numBlocks).toBeGreaterThan(0);
    const snap = s.dev.memInfo();
    expect(snap.free).toBeGreaterThan(0);
    // a decode step at the largest size runs within that memory
    const inp = prefillThenDecode(s, 16, 3);
    expect(s.model.step(inp, 16, 16, 16)).toBe(true);
    const core = new EngineCore(s, { maxNumSeqs: 16, maxWaiting: 64, servedModelName: null });
    const mem = core.memory() as { graphs: Record<string, unknown>; profile: { cuda_graph: number }; startup_line: string };
    expect(mem.graphs).toMatchObject({ enabled: true, kind: "op-list", sizes: [1, 2, 4, 8, 16], total_bytes: 0, pool_reserved: 0 });
    expect(mem.graphs.per_graph_bytes).toEqual([0, 0, 0, 0, 0]);
    expect(typeof mem.graphs.capture_ms).toBe("number");
    expect(mem.profile.cuda_graph).toBe(0);
    expect(mem.startup_line).toContain("graphs (op-list)");
    const off = new EngineCore(e, { maxNumSeqs: 16, maxWaiting: 64, servedModelName: null }).memory() as {
      graphs: Record<string, unknown>;
    };
    expect(off.graphs).toMatchObject({ enabled: false, reason: "--enforce-eager" });
    // GET /v1/memory's schema describes both reports exactly (graphs on and off).
    for (const m of [core.memory(), off]) expect([...Value.Errors(MemoryReport, m)].map((x) => `${x.path}: ${x.message}`)).toEqual([]);
  });

  test("capture of the default list is fast (well under 2 s)", () => {
    const s = start(SYNTH, 59, { maxNumSeqs: 64, maxNumBatchedTokens: 128, maxModelLen: 256 });
    expect(s.graphs!.sizes.length).toBe(3 + 8);
    expect(s.graphs!.captureMs).toBeLessThan(2000);
  });
});
