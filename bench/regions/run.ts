// bench/regions: what the CPU backend's parallel-region changes buy in decode, measured against
// the behaviour they replace in the same run (each setting is a fresh engine process, settings
// interleaved rep by rep, so machine load drifts over all of them alike):
//   before  HEADROOM_CPU_FUSE=0 HEADROOM_CPU_MM_TASK_KB=0: every op its own region, ~4 matmul
//           tasks per thread whatever the weight size (the grid before)
//   tasks   small-M matmul tasks of at most 1 MiB of weights (shorter wait at each join)
//   after   tasks + graph replay fusing the gate|up matmul with silu_mul (one region fewer per
//           layer where silu_mul was a region of its own)
// Figures (bench/peer's kernel shapes, engine graphs on): the time of each batch-1 decode step
// (depth 0..gen) and of each step of 16 sequences decoding together after 128-token prompts,
// pooled over --reps: min / median / max (on a shared machine the min is the step that ran
// undisturbed), plus each rep's throughput; the load average before and after. Results are bit-identical in
// every setting (test/c/test_fuse.c), so only time is compared.
// Usage: bun bench/regions/run.ts [--model s110m-f32.gguf] [--reps 3] [--threads 2] [--gen 32]
//        [--out bench/out/regions.json]
// The default model is bench/peer's cached s110m F32 GGUF (run bench/peer once to write it).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, homedir, loadavg } from "node:os";
import { dirname, join } from "node:path";

import { HeadroomKernel } from "../peer/headroom-side.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const threads = Number(opt("threads", "2"));
const gen = Number(opt("gen", "32"));

function defaultModel(): string {
  const cache = process.env.HEADROOM_PEER_CACHE ?? join(homedir(), ".cache/headroom/peer");
  const dirs = existsSync(cache) ? readdirSync(cache).filter((d) => d.startsWith("models-s110m")) : [];
  for (const d of dirs) {
    const f = join(cache, d, "s110m-f32.gguf");
    if (existsSync(f)) return f;
  }
  throw new Error(`no s110m F32 GGUF under ${cache}: run bench/peer once, or pass --model`);
}

if (args.includes("--child")) {
  const k = new HeadroomKernel(opt("model", ""), threads, { prompt: 128, gen, depths: [0], batch: 16 });
  k.warmUp();
  const b1 = k.decodeSteps(1, 0, gen);
  const b16 = k.decodeSteps(16, 128, gen);
  k.close();
  console.log(JSON.stringify({ b1, b16 }));
  process.exit(0);
}

const model = opt("model", "") || defaultModel();
const reps = Number(opt("reps", "3"));
const out = opt("out", "bench/out/regions.json");
const SETTINGS: Record<string, Record<string, string>> = {
  before: { HEADROOM_CPU_FUSE: "0", HEADROOM_CPU_MM_TASK_KB: "0" },
  tasks: { HEADROOM_CPU_FUSE: "0" },
  after: {},
};

const load0 = loadavg();
console.error(`regions: ${model}, ${threads} threads, ${reps} reps, load ${load0.map((x) => x.toFixed(2)).join(" ")}`);
// per setting: every step's seconds over all reps (pooled), and each rep's throughput
const res: Record<string, { b1: number[]; b16: number[]; b1Rep: number[]; b16Rep: number[] }> = {};
const tput = (seqs: number, t: number[]) => (seqs * t.length) / t.reduce((a, b) => a + b, 0);
for (let r = 0; r < reps; r++)
  for (const [name, env] of Object.entries(SETTINGS)) {
    const clean = { ...process.env };
    delete clean.HEADROOM_CPU_FUSE;
    delete clean.HEADROOM_CPU_MM_TASK_KB;
    const p = spawnSync(process.execPath, [import.meta.path, "--child", "--model", model, "--threads", `${threads}`, "--gen", `${gen}`], {
      env: { ...clean, ...env },
      encoding: "utf8",
    });
    if (p.status !== 0) throw new Error(`child (${name}) failed: ${p.stderr}`);
    const m = JSON.parse(p.stdout.trim().split("\n").pop()!) as { b1: number[]; b16: number[] };
    const e = (res[name] ??= { b1: [], b16: [], b1Rep: [], b16Rep: [] });
    e.b1.push(...m.b1);
    e.b16.push(...m.b16);
    e.b1Rep.push(tput(1, m.b1));
    e.b16Rep.push(tput(16, m.b16));
    console.error(`  rep ${r + 1} ${name.padEnd(6)} b1 ${tput(1, m.b1).toFixed(1)} tok/s, 16 seqs ${tput(16, m.b16).toFixed(1)} tok/s`);
  }
const load1 = loadavg();

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s[s.length - 1]! };
};
const ms = (x: { min: number; median: number; max: number }) =>
  `${(x.min * 1e3).toFixed(2)} / ${(x.median * 1e3).toFixed(2)} / ${(x.max * 1e3).toFixed(2)}`;
const table = Object.entries(res).map(([name, v]) => ({
  name,
  b1Step: stats(v.b1),
  b16Step: stats(v.b16),
  b1TokS: stats(v.b1Rep),
  b16TokS: stats(v.b16Rep),
}));
const base = table.find((t) => t.name === "before")!;
console.log(
  `\ndecode step ms, min / median / max over ${reps} x ${gen} steps (s110m F32, ${threads} threads); ratio = before / setting (> 1 is faster)`,
);
console.log(`| setting | batch 1 step | min, median ratio | 16 sequences step | min, median ratio | tok/s b1, b16 (median rep) |`);
console.log(`|---|---|---|---|---|---|`);
for (const t of table)
  console.log(
    `| ${t.name} | ${ms(t.b1Step)} | ${(base.b1Step.min / t.b1Step.min).toFixed(3)}, ${(base.b1Step.median / t.b1Step.median).toFixed(3)} | ${ms(t.b16Step)} | ${(base.b16Step.min / t.b16Step.min).toFixed(3)}, ${(base.b16Step.median / t.b16Step.median).toFixed(3)} | ${t.b1TokS.median.toFixed(1)}, ${t.b16TokS.median.toFixed(1)} |`,
  );
console.log(
  `load average before ${load0.map((x) => x.toFixed(2)).join(" ")}, after ${load1.map((x) => x.toFixed(2)).join(" ")} (${cpus().length} CPUs)`,
);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  JSON.stringify({ model, threads, reps, gen, settings: SETTINGS, results: table, load: { before: load0, after: load1 } }, null, 2),
);
console.error(`wrote ${out}`);
