// bench/offload: decode tokens/s with 0, 25, 50 and 75 % of the decoder layers offloaded to
// host memory, next to the bound max(compute time, offloaded bytes ÷ measured bandwidth):
//   compute time  the fully resident decode step of the same run (fraction 0)
//   bandwidth     the copy engine's host→device rate measured at start-up (CPU: memcpy on the
//                 copy thread; CUDA: pinned cudaMemcpyAsync on the copy stream)
// Target on a GPU: step ≤ 1.15 × bound. On CPU the copy thread competes with the compute
// threads for cores and memory bandwidth, so the CPU ratio is its own figure.
// Usage: bun bench/offload/run.ts [--model synthetic:…] [--device cpu|cuda] [--tokens 32] [--threads N]
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";

import { EngineCore } from "../../src/engine/engine-core.ts";
import { greedyParamsForBench } from "./params.ts";
import { startEngine, type StartedEngine } from "../../src/engine/startup.ts";
import { weightLayout } from "../../src/model/weight-layout.ts";
import { openModel } from "../../src/model/load.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const model = opt("model", "synthetic:dim=1024,hidden=2816,layers=8,heads=16,kv_heads=4,vocab=4096");
const device = opt("device", "cpu") as "cpu" | "cuda";
const tokens = Number(opt("tokens", "32"));
const threads = Number(opt("threads", "0"));
/** Graphs on by default (the target is with graphs on); --eager turns them off. */
const eager = args.includes("--eager");
const FRACTIONS = [0, 0.25, 0.5, 0.75];

const cfg = openModel(model).config;
const elem = device === "cpu" ? 4 : 2;
const layerBytes = weightLayout(cfg, elem)[1]!.bytes;

function decodeSteps(s: StartedEngine): number[] {
  const core = new EngineCore(s, { maxNumSeqs: 1, maxWaiting: 4, servedModelName: null });
  core.add({ requestId: "b", promptTokenIds: [1, 2, 3, 4], params: greedyParamsForBench(tokens) });
  core.step(); // prefill
  const ms: number[] = [];
  while (core.hasWork()) {
    const t0 = performance.now();
    core.step();
    ms.push(performance.now() - t0);
  }
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Row {
  fraction: number;
  layers_offloaded: number;
  offloaded_bytes: number;
  slots: number;
  step_ms: number;
  tokens_per_s: number;
  compute_ms: number;
  bandwidth_gb_s: number | null;
  copy_ms: number;
  bound_ms: number;
  bound_tokens_per_s: number;
  step_over_bound: number;
  overlap: number | null;
  predicted_step_ms: number | null;
}

const rows: Row[] = [];
let computeMs = 0;
let ordinal = 40;
for (const f of FRACTIONS) {
  const n = Math.round(f * cfg.numLayers);
  const s = startEngine({
    model,
    device,
    deviceMemory: device === "cpu" ? 4 * 2 ** 30 : null,
    deviceOrdinal: device === "cuda" ? 0 : ordinal++, // CUDA: the one GPU; CPU: a fresh simulated device each
    // CUDA: a fifth of the device keeps the KV block pool's bookkeeping small
    gpuMemoryUtilization: device === "cuda" ? 0.2 : 0.9,
    kvCacheMemoryBytes: null,
    maxModelLen: 256,
    maxNumSeqs: 1,
    maxNumBatchedTokens: 64,
    blockSize: 16,
    enforceEager: eager,
    maxWaiting: 4,
    servedModelName: null,
    numThreads: threads || undefined,
    cpuOffloadGb: n > 0 ? (n * layerBytes) / 2 ** 30 : 0,
    cpuOffloadTriggerPercent: n > 0 ? null : 100,
  });
  try {
    decodeSteps(s); // warm-up run
    const step = median(decodeSteps(s));
    if (n === 0) computeMs = step;
    const o = s.offload;
    const bw = o ? o.bandwidthBytesPerS : null;
    const bytes = n * layerBytes;
    const copyMs = bw ? (bytes / bw) * 1000 : 0;
    const bound = Math.max(computeMs, copyMs);
    rows.push({
      fraction: f,
      layers_offloaded: n,
      offloaded_bytes: bytes,
      slots: o?.placement.slots ?? 0,
      step_ms: step,
      tokens_per_s: 1000 / step,
      compute_ms: computeMs,
      bandwidth_gb_s: bw ? bw / 1e9 : null,
      copy_ms: copyMs,
      bound_ms: bound,
      bound_tokens_per_s: 1000 / bound,
      step_over_bound: step / bound,
      overlap: o ? o.manager.stats().overlap : null,
      predicted_step_ms: o ? o.predictedStepMs : null,
    });
  } finally {
    s.close();
  }
}

const f2 = (x: number | null, d = 2) => (x === null ? "–" : x.toFixed(d));
console.log(
  `offload bench: ${model} (${device}, layer ${(layerBytes / 2 ** 20).toFixed(1)} MiB, ${tokens} decode tokens, batch 1, graphs ${eager ? "off" : "on"})`,
);
console.log("offloaded | layers | step ms | tok/s | compute ms | copy ms | bound ms | bound tok/s | step÷bound | link GB/s | overlap");
for (const r of rows) {
  console.log(
    `${(r.fraction * 100).toFixed(0).padStart(8)}% | ${String(r.layers_offloaded).padStart(6)} | ${f2(r.step_ms).padStart(7)} | ${f2(r.tokens_per_s, 1).padStart(5)} | ` +
      `${f2(r.compute_ms).padStart(10)} | ${f2(r.copy_ms).padStart(7)} | ${f2(r.bound_ms).padStart(8)} | ${f2(r.bound_tokens_per_s, 1).padStart(11)} | ` +
      `${f2(r.step_over_bound).padStart(10)} | ${f2(r.bandwidth_gb_s).padStart(9)} | ${f2(r.overlap)}`,
  );
}
mkdirSync("bench/out", { recursive: true });
writeFileSync(
  "bench/out/offload.json",
  JSON.stringify(
    {
      model,
      device,
      graphs: !eager,
      cpus: cpus().length,
      cpu: cpus()[0]?.model ?? "",
      date: new Date().toISOString(),
      tokens,
      layer_bytes: layerBytes,
      rows,
    },
    null,
    2,
  ) + "\n",
);
console.log("wrote bench/out/offload.json");
