// bench/startup: start-up time with the profile run (KV sized by measurement) versus an
// explicit --kv-cache-memory-bytes (profile run skipped), same model and limits, same run.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";

import { startEngine } from "../../src/engine/startup.ts";

const MiB = 2 ** 20;
const shapes = (process.argv[2] ?? "stories15m,110m").split(",");

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

const rows = shapes.map((shape) => {
  const base = {
    model: `synthetic:${shape}`,
    device: "cpu" as const,
    deviceMemory: 2048 * MiB,
    gpuMemoryUtilization: 0.9,
    maxModelLen: 1024,
    maxNumSeqs: 32,
    maxNumBatchedTokens: 512,
    blockSize: 16,
    enforceEager: true,
    maxWaiting: 8,
    servedModelName: null,
    numThreads: 2,
  };
  const time = (kv: number | null) => {
    const ms: number[] = [];
    let profileMs = 0;
    for (let i = 0; i < 3; i++) {
      const s = startEngine({ ...base, kvCacheMemoryBytes: kv });
      ms.push(s.startupMs);
      profileMs = s.profile.profileTimeMs;
      s.close();
    }
    return { ms: median(ms), profileMs };
  };
  const profiled = time(null);
  const explicit = time(256 * MiB);
  return { shape, profiledMs: profiled.ms, profileRunMs: profiled.profileMs, explicitMs: explicit.ms, speedup: profiled.ms / explicit.ms };
});

const machine = `${cpus()[0]?.model ?? "cpu"}, ${cpus().length} cores`;
console.log(`bench/startup — ${machine}, ${new Date().toISOString().slice(0, 10)} (median of 3; max_num_batched_tokens 512)`);
console.log("| shape | start-up, profiled (ms) | of which profile run (ms) | start-up, --kv-cache-memory-bytes (ms) | speed-up |");
console.log("|---|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(
    `| ${r.shape} | ${r.profiledMs.toFixed(0)} | ${r.profileRunMs.toFixed(0)} | ${r.explicitMs.toFixed(0)} | ${r.speedup.toFixed(2)}x |`,
  );
}
mkdirSync("bench/out", { recursive: true });
writeFileSync("bench/out/startup.json", JSON.stringify({ machine, date: new Date().toISOString(), rows }, null, 2));
