// bench/graphs: decode graphs on the CPU backend (op-list graphs replayed inside C), or with
// --device cuda on a GPU (CUDA graphs; memory from cudaMemGetInfo and the executables' size).
//   1. memory of all graphs of the default size list together vs the largest graph alone,
//      with shared static buffers (the engine's design) and with per-graph output buffers
//      allocated in the set's pool during capture (the SUM-growth design it replaces);
//   2. time per decode step, eager (one FFI call per op) vs graph replay (one FFI call), at
//      batch 1 / 8 / 64 on a small, launch-bound model;
//   3. capture time of the default size list (max_num_seqs 256: 35 sizes).
// Usage: bun bench/graphs/run.ts [--reps 200] [--device cpu|cuda] [--out bench/out/graphs.json]
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname } from "node:path";

import { DecodeGraphs, resolveCaptureSizes } from "../../src/engine/graph-runner.ts";
import { startEngine, type StartedEngine } from "../../src/engine/startup.ts";
import { GraphSet } from "../../src/native/graphs.ts";
import type { KvCacheLocation, StepInputs } from "../../src/model/llama.ts";
import type { ArenaBuffer } from "../../src/model/arena.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const REPS = Number(opt("reps", "300"));
const DEVICE = opt("device", "cpu") as "cpu" | "cuda";
const OUT = opt("out", DEVICE === "cuda" ? "bench/out/graphs-cuda.json" : "bench/out/graphs.json");
const MiB = 2 ** 20;

// small and launch-bound: 4 layers × 13 ops + 3, tiny matmuls
const SMALL = "synthetic:dim=64,hidden=176,layers=4,heads=4,kv_heads=2,vocab=512";
// for memory: a vocabulary large enough that the logits buffer matters (as in real models)
const MEM_MODEL = "synthetic:dim=128,hidden=344,layers=4,heads=4,kv_heads=2,vocab=32000";

let ordinal = 20;
function start(model: string, maxNumSeqs: number, over: Record<string, unknown> = {}): StartedEngine {
  const cuda = DEVICE === "cuda";
  const o = startEngine({
    model,
    device: DEVICE,
    deviceOrdinal: cuda ? 0 : ordinal++,
    deviceMemory: 2048 * MiB,
    // CUDA: one engine at a time, a small share (the KV cache is not what is measured)
    gpuMemoryUtilization: cuda ? 0.05 : 0.9,
    kvCacheMemoryBytes: null,
    maxModelLen: 256,
    maxNumSeqs,
    maxNumBatchedTokens: Math.max(256, maxNumSeqs),
    blockSize: 16,
    enforceEager: true,
    maxWaiting: 64,
    servedModelName: null,
    ...over,
    ...(cuda ? { deviceMemory: null } : {}),
  });
  return o;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** A decode step of B sequences with `ctx` tokens of context each (block tables over the mapped KV). */
function decodeInputs(s: StartedEngine, B: number, ctx: number): StepInputs {
  const bs = s.kvSpec.blockSize;
  const mb = s.limits.maxBlocksPerSeq;
  const need = Math.ceil((ctx + 1) / bs);
  const bt = new Int32Array(B * mb);
  for (let b = 0; b < B; b++) for (let j = 0; j < need; j++) bt[b * mb + j] = (b * need + j) % s.kv.numBlocks;
  const slots = Int32Array.from({ length: B }, (_, b) => bt[b * mb + Math.floor(ctx / bs)]! * bs + (ctx % bs));
  return {
    inputIds: Int32Array.from({ length: B }, (_, b) => 1 + ((b * 7) % (s.model.cfg.vocabSize - 1))),
    positions: new Int32Array(B).fill(ctx),
    slotMapping: slots,
    queryStartLoc: Int32Array.from({ length: B + 1 }, (_, i) => i),
    seqLens: new Int32Array(B).fill(ctx + 1),
    blockTables: bt,
    logitsIndices: Int32Array.from({ length: B }, (_, i) => i),
    decodeOnly: true,
  };
}

/** The engine's (mapped) KV location: graphs here are captured after start-up, against it. */
function kvForCapture(s: StartedEngine): KvCacheLocation {
  // LlamaModel keeps its KV location private; the bench reads it (TypeScript-only privacy).
  return { ...(s.model as unknown as { kv: KvCacheLocation }).kv };
}

// ---------------------------------------------------------------- 1. memory
interface MemRow {
  variant: string;
  graphs: number;
  sizes: string;
  poolBytes: number;
  /** Live bytes in the pool (what the graphs asked for, before segment rounding). */
  poolAllocatedBytes: number;
  freeDropBytes: number;
  staticBytes: number;
  deviceBytes: number;
  opListBytes: number;
}

const INPUTS: ArenaBuffer[] = ["inputIds", "positions", "slotMapping", "queryStartLoc", "seqLens", "blockTables", "logitsIndices"];

function memoryRows(): {
  rows: MemRow[];
  sizes: number[];
  ratioShared: number;
  ratioPerGraph: number;
  ratioPerGraphLive: number;
  replayEqual: boolean;
} {
  const s = start(MEM_MODEL, 64);
  const m = s.model;
  const { sizes } = resolveCaptureSizes({ enforceEager: false, maxNumSeqs: 64 }, s.limits); // 1,2,4,8,…,64 (128 dropped)
  const largest = sizes[0]!;
  const inputBytes = INPUTS.reduce((a, n) => a + m.layout.bytes[n], 0);
  const logitsBytes = m.layout.bytes.logits; // [max_num_seqs = largest, vocab] fp32
  const vocab = m.cfg.vocabSize;
  const rows: MemRow[] = [];
  const free = () => s.dev.memInfo().free;

  const shared = (list: number[], label: string) => {
    const f0 = free();
    const dg = new DecodeGraphs(s.dev, m, list);
    dg.capture(kvForCapture(s));
    const info = dg.setInfo();
    rows.push({
      variant: label,
      graphs: list.length,
      sizes: `${Math.min(...list)}..${Math.max(...list)}`,
      poolBytes: info.poolReserved,
      poolAllocatedBytes: info.poolAllocated,
      freeDropBytes: f0 - free(),
      staticBytes: inputBytes + logitsBytes,
      deviceBytes: inputBytes + logitsBytes + info.totalBytes,
      opListBytes: info.hostBytes,
    });
    return dg;
  };
  const perGraph = (list: number[], label: string) => {
    const f0 = free();
    const set = GraphSet.create(s.dev, list);
    m.setKvCache(kvForCapture(s));
    const outs = new Map<number, bigint>();
    for (const B of [...list].sort((a, b) => b - a)) {
      set.capture(B, () => {
        const out = s.dev.alloc(B * vocab * 4); // served from the set's pool (active while capturing)
        outs.set(B, out);
        m.forward(B, B, B, true, out);
      });
    }
    const info = set.setInfo();
    rows.push({
      variant: label,
      graphs: list.length,
      sizes: `${Math.min(...list)}..${Math.max(...list)}`,
      poolBytes: info.poolReserved,
      poolAllocatedBytes: info.poolAllocated,
      freeDropBytes: f0 - free(),
      staticBytes: inputBytes,
      deviceBytes: inputBytes + info.totalBytes,
      opListBytes: info.hostBytes,
    });
    return { set, outs };
  };

  const a = shared(sizes, "shared buffers, all sizes");
  const b = shared([largest], "shared buffers, largest alone");
  const c = perGraph(sizes, "per-graph outputs, all sizes");
  const d = perGraph([largest], "per-graph outputs, largest alone");

  // sanity: the per-graph variant computes the same logits as the shared one
  const inp = decodeInputs(s, 8, 20);
  m.stage(inp);
  a.set.replay(8);
  const la = m.readLogits(8).slice();
  m.stage(inp);
  c.set.replay(8);
  const lc = new Float32Array(8 * vocab);
  s.dev.copyFromDevice(lc, c.outs.get(8)!);
  const replayEqual = Buffer.from(la.buffer).equals(Buffer.from(lc.buffer));

  for (const x of [c, d]) {
    for (const p of x.outs.values()) s.dev.free(p);
    x.set.destroy();
  }
  a.destroy();
  b.destroy();
  s.close();
  const dev = (label: string) => rows.find((r) => r.variant === label)!.deviceBytes;
  const live = (label: string) => rows.find((r) => r.variant === label)!.poolAllocatedBytes;
  return {
    rows,
    sizes: [...sizes].sort((x, y) => x - y),
    replayEqual,
    ratioShared: dev("shared buffers, all sizes") / dev("shared buffers, largest alone"),
    ratioPerGraph: dev("per-graph outputs, all sizes") / dev("per-graph outputs, largest alone"),
    ratioPerGraphLive: live("per-graph outputs, all sizes") / live("per-graph outputs, largest alone"),
  };
}

// ---------------------------------------------------------------- 2. step time
interface TimeRow {
  batch: number;
  ops: number;
  eagerUs: number;
  graphUs: number;
  speedup: number;
  eagerRunUs: number;
  graphRunUs: number;
  runSpeedup: number;
}

function timeRows(): TimeRow[] {
  const s = start(SMALL, 64);
  const m = s.model;
  const dg = new DecodeGraphs(s.dev, m, [1, 8, 64]);
  dg.capture(kvForCapture(s));
  m.setKvCache(kvForCapture(s));
  const rows: TimeRow[] = [];
  for (const B of [1, 8, 64]) {
    const inp = decodeInputs(s, B, 24);
    const logits = new Float32Array(B * m.cfg.vocabSize);
    const eagerStep = () => {
      m.stage(inp);
      m.forward(B, B, B, true);
      m.readLogits(B, logits);
    };
    const graphStep = () => {
      m.stage(inp);
      dg.set.replay(B);
      m.readLogits(B, logits);
    };
    const eagerRun = () => m.forward(B, B, B, true);
    const graphRun = () => dg.set.replay(B);
    // alternate the two, rep by rep, so machine noise hits both alike; medians
    const pair = (fa: () => void, fb: () => void): [number, number] => {
      for (let i = 0; i < 20; i++) fa(), fb();
      const xa: number[] = [],
        xb: number[] = [];
      for (let i = 0; i < REPS; i++) {
        let t0 = performance.now();
        fa();
        xa.push((performance.now() - t0) * 1000);
        t0 = performance.now();
        fb();
        xb.push((performance.now() - t0) * 1000);
      }
      return [median(xa), median(xb)];
    };
    const [eagerUs, graphUs] = pair(eagerStep, graphStep);
    const [er, gr] = pair(eagerRun, graphRun);
    rows.push({
      batch: B,
      ops: dg.graphInfo(B).numOps,
      eagerUs,
      graphUs,
      speedup: eagerUs / graphUs,
      eagerRunUs: er,
      graphRunUs: gr,
      runSpeedup: er / gr,
    });
  }
  dg.destroy();
  s.close();
  return rows;
}

// ---------------------------------------------------------------- 3. capture time
function captureRows(): { model: string; graphs: number; sizes: string; captureMs: number; startupMs: number; opsLargest: number }[] {
  const out = [];
  for (const [name, model] of [
    ["small (4 layers)", SMALL],
    ["stories15m shape", "synthetic:stories15m"],
  ] as const) {
    const s = start(model, 256, { enforceEager: false, maxNumBatchedTokens: 512, deviceMemory: 4096 * MiB });
    const r = s.graphs!;
    out.push({
      model: name,
      graphs: r.sizes.length,
      sizes: `${r.sizes[0]}..${r.sizes.at(-1)}`,
      captureMs: r.captureMs,
      startupMs: s.startupMs,
      opsLargest: r.largestOps,
    });
    s.close();
  }
  return out;
}

const mem = memoryRows();
const time = timeRows();
const cap = captureRows();

const fmtB = (n: number) => (n >= MiB ? `${(n / MiB).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
console.log(`\n## memory (${MEM_MODEL}, max_num_seqs 64, sizes ${mem.sizes.join(",")})`);
console.log("| variant | graphs | pool reserved | pool live | free drop | static buffers | device total | op lists (host) |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
for (const r of mem.rows)
  console.log(
    `| ${r.variant} | ${r.graphs} | ${fmtB(r.poolBytes)} | ${fmtB(r.poolAllocatedBytes)} | ${fmtB(r.freeDropBytes)} | ${fmtB(r.staticBytes)} | ${fmtB(r.deviceBytes)} | ${fmtB(r.opListBytes)} |`,
  );
console.log(
  `all / largest alone: shared ${mem.ratioShared.toFixed(3)}×, per-graph outputs ${mem.ratioPerGraph.toFixed(2)}× (live bytes ${mem.ratioPerGraphLive.toFixed(2)}×: sizes sum ${mem.sizes.reduce((a, b) => a + b, 0)} rows vs ${Math.max(...mem.sizes)}); per-graph replay logits equal shared: ${mem.replayEqual}`,
);
console.log(`\n## decode step time (${SMALL}, context 24, median of ${REPS})`);
console.log("| batch | ops | eager step µs | graph step µs | speedup | eager run µs | graph run µs | run speedup |");
console.log("|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const r of time)
  console.log(
    `| ${r.batch} | ${r.ops} | ${r.eagerUs.toFixed(1)} | ${r.graphUs.toFixed(1)} | ${r.speedup.toFixed(2)}× | ${r.eagerRunUs.toFixed(1)} | ${r.graphRunUs.toFixed(1)} | ${r.runSpeedup.toFixed(2)}× |`,
  );
console.log(`\n## capture time (default list, max_num_seqs 256)`);
console.log("| model | graphs | sizes | capture ms | ops in largest | start-up ms |");
console.log("|---|---:|---|---:|---:|---:|");
for (const r of cap)
  console.log(`| ${r.model} | ${r.graphs} | ${r.sizes} | ${r.captureMs.toFixed(1)} | ${r.opsLargest} | ${r.startupMs.toFixed(0)} |`);

const json = {
  bench: "graphs",
  backend: DEVICE,
  date: new Date().toISOString(),
  machine: `${cpus()[0]?.model ?? "?"} × ${cpus().length}`,
  rows: [
    ...mem.rows.map((r) => ({ section: "memory", ...r })),
    ...time.map((r) => ({ section: "step time", ...r })),
    ...cap.map((r) => ({ section: "capture", ...r })),
  ],
  memory: {
    model: MEM_MODEL,
    sizes: mem.sizes,
    ratio_all_vs_largest_shared: mem.ratioShared,
    ratio_all_vs_largest_per_graph: mem.ratioPerGraph,
    ratio_all_vs_largest_per_graph_live: mem.ratioPerGraphLive,
    per_graph_replay_equal: mem.replayEqual,
  },
  step_time: { model: SMALL, reps: REPS, rows: time },
  capture: cap,
  ...(DEVICE === "cpu" ? { gpu: "not run here: bun bench/graphs/run.ts --device cuda on a GPU (kit/gpu-check.sh)" } : {}),
};
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, JSON.stringify(json, null, 2) + "\n");
console.log(`\nwrote ${OUT}`);
