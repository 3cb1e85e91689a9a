// bench/decode/weight-dtype: CPU decode with fp32 weights (the baseline) vs 16-bit weights
// (--dtype bfloat16 / float16 on CPU: matrix weights in 16 bits, fp32 activations and KV), same
// synthetic model, same run. Each engine first writes the KV of 16 sequences (128 tokens each,
// real prefills), then decode steps at context 129 are timed at batch 1 and batch 16, the
// engines alternating round by round (so load changes hit both). Wall and process-CPU time per
// step, min/median/max; the load average is printed next to the table (the machine is shared).
// Usage: bun bench/decode/weight-dtype.ts [--shapes stories15m,110m] [--threads 2] [--rounds 5]
//        [--dtypes float32,bfloat16,float16]
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";

import { startEngine, type StartedEngine } from "../../src/engine/startup.ts";
import type { DtypeFlag } from "../../src/model/dtype.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const shapes = opt("shapes", "stories15m,110m").split(",");
const threads = Number(opt("threads", "2"));
const rounds = Number(opt("rounds", "5"));
const dtypes = opt("dtypes", "float32,bfloat16,float16").split(",") as DtypeFlag[];
const MiB = 2 ** 20;
const CTX = 129;

interface Spread {
  min: number;
  median: number;
  max: number;
}
function spread(xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s[s.length - 1]! };
}

function open(shape: string, dtype: DtypeFlag, ordinal: number): StartedEngine {
  return startEngine({
    model: `synthetic:${shape}`,
    device: "cpu",
    deviceMemory: 3 * 1024 * MiB,
    deviceOrdinal: ordinal,
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
    dtype,
  });
}

/** Step inputs: `seqs` sequences at context `ctx`, `tps` new tokens each, sequence q in blocks q*nb... */
function stepInputs(s: StartedEngine, seqs: number, tps: number, ctx: number, first = 0) {
  const bs = s.kvSpec.blockSize;
  const maxB = s.limits.maxBlocksPerSeq;
  const nb = Math.ceil(ctx / bs);
  const T = seqs * tps;
  const positions = new Int32Array(T);
  const slotMapping = new Int32Array(T);
  const blockTables = new Int32Array(seqs * maxB);
  for (let i = 0; i < seqs; i++) {
    const q = first + i;
    for (let b = 0; b < nb; b++) blockTables[i * maxB + b] = q * nb + b;
    for (let j = 0; j < tps; j++) {
      const pos = ctx - tps + j;
      positions[i * tps + j] = pos;
      slotMapping[i * tps + j] = (q * nb + Math.floor(pos / bs)) * bs + (pos % bs);
    }
  }
  return {
    inputIds: new Int32Array(T).map((_, i) => 3 + ((i * 7919) % 250)),
    positions,
    slotMapping,
    queryStartLoc: Int32Array.from({ length: seqs + 1 }, (_, i) => i * tps),
    seqLens: new Int32Array(seqs).fill(ctx),
    blockTables,
    logitsIndices: Int32Array.from({ length: seqs }, (_, i) => (i + 1) * tps - 1),
    decodeOnly: tps === 1,
  };
}

function step(s: StartedEngine, inp: ReturnType<typeof stepInputs>, seqs: number): { wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  s.model.stage(inp);
  s.model.forward(seqs, seqs, seqs, true);
  s.model.readLogits(seqs);
  const c = process.cpuUsage(c0);
  return { wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 };
}

const load0 = loadavg();
const results: Record<string, unknown>[] = [];
for (const shape of shapes) {
  const engines = dtypes.map((d, i) => open(shape, d, 30 + i));
  try {
    // The KV of 16 sequences, written by real prefills (context 128; decode then writes slot 128).
    for (const s of engines) {
      for (let q = 0; q < 16; q++) {
        s.model.stage({ ...stepInputs(s, 1, 128, 128, q), decodeOnly: false });
        s.model.forward(128, 1, 1, false);
      }
    }
    const times = engines.map(() => ({ b1: [] as number[], b16: [] as number[], c1: [] as number[], c16: [] as number[] }));
    for (let r = 0; r < rounds; r++) {
      engines.forEach((s, i) => {
        const b1 = stepInputs(s, 1, 1, CTX);
        const b16 = stepInputs(s, 16, 1, CTX);
        step(s, b1, 1); // warm-up (caches, thread pool)
        for (let k = 0; k < 5; k++) {
          const t = step(s, b1, 1);
          times[i]!.b1.push(t.wall);
          times[i]!.c1.push(t.cpu);
        }
        for (let k = 0; k < 2; k++) {
          const t = step(s, b16, 16);
          times[i]!.b16.push(t.wall);
          times[i]!.c16.push(t.cpu);
        }
      });
    }
    engines.forEach((s, i) => {
      const t = times[i]!;
      results.push({
        shape,
        dtype: dtypes[i],
        weightDtype: s.weights.weightDtype,
        weightBytes: s.weights.totalBytes,
        decode1Ms: spread(t.b1),
        decode1CpuMs: spread(t.c1),
        decode16Ms: spread(t.b16),
        decode16CpuMs: spread(t.c16),
      });
    });
  } finally {
    for (const s of engines) s.close();
  }
}
const load1 = loadavg();
const f = (x: Spread) => `${x.min.toFixed(1)} / ${x.median.toFixed(1)} / ${x.max.toFixed(1)}`;
console.log(
  `bench/decode/weight-dtype — ${cpus()[0]?.model ?? "cpu"}, ${cpus().length} cores, ${threads} threads, ${rounds} rounds, ` +
    `load average before ${load0.map((x) => x.toFixed(2)).join(" ")}, after ${load1.map((x) => x.toFixed(2)).join(" ")}`,
);
console.log(
  "| shape | --dtype | weights MiB | b=1 step ms min/med/max | b=1 tok/s (median) | ÷ fp32 | b=1 CPU ms/step med | b=16 step ms min/med/max | b=16 agg tok/s | ÷ fp32 |",
);
console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const r of results) {
  const base = results.find((x) => x.shape === r.shape && x.weightDtype === "f32");
  const d1 = r.decode1Ms as Spread;
  const d16 = r.decode16Ms as Spread;
  const b1 = base ? (base.decode1Ms as Spread).median / d1.median : Number.NaN;
  const b16 = base ? (base.decode16Ms as Spread).median / d16.median : Number.NaN;
  console.log(
    `| ${r.shape} | ${r.dtype} | ${((r.weightBytes as number) / MiB).toFixed(0)} | ${f(d1)} | ${(1000 / d1.median).toFixed(1)} | ${b1.toFixed(2)}x | ` +
      `${(r.decode1CpuMs as Spread).median.toFixed(1)} | ${f(d16)} | ${((16 * 1000) / d16.median).toFixed(1)} | ${b16.toFixed(2)}x |`,
  );
}
mkdirSync("bench/out", { recursive: true });
writeFileSync(
  "bench/out/decode-weight-dtype.json",
  JSON.stringify({ date: new Date().toISOString(), threads, rounds, loadavg: { before: load0, after: load1 }, rows: results }, null, 2),
);
