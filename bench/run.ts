// `bun run bench` (= make -s native && bun bench/run.ts): runs every benchmark this machine can
// run, then updates bench/RESULTS.md from their JSON (bench/out/<name>*.json; bench/report.ts).
//
//   bun bench/run.ts                 CPU benchmarks (GPU ones say "skipped: no GPU")
//   bun bench/run.ts --gpu           also the GPU benchmarks (on a machine with a CUDA device)
//   bun bench/run.ts --only serve,load    --skip load    --list
//   bun bench/run.ts --report-only [--only x]   re-render RESULTS.md blocks from bench/out (JSON + runs/<name>.json)
//   bun bench/run.ts --no-write      run, print, leave RESULTS.md alone
//
// Benchmarks: every bench/<name>/ with run.ts (run with bun) or run.sh (bash), plus the table
// below for ones that need arguments. A benchmark may add bench/<name>/bench.json:
//   { "cmd": [["bun", "bench/x/run.ts", "--flag"]], "gpu": true, "outputs": ["x.json"], "timeout_s": 900 }
// A run that exits with status 77 counts as skipped (its output says why). Only benchmarks that
// ran successfully have their block in RESULTS.md replaced; hand-written text and the blocks of
// benchmarks that did not run are kept as they are.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { renderRun, upsertBlock, type Json, type RunInfo } from "./report.ts";

const ROOT = resolve(import.meta.dir, "..");
const OUT = join(ROOT, "bench/out");
const RESULTS = join(ROOT, "bench/RESULTS.md");
const BUN = process.execPath;

export interface BenchSpec {
  name: string;
  /** One or more commands, run in order from the repository root ("bun" = this Bun). */
  cmd: string[][];
  gpu: boolean;
  /** JSON file names in bench/out; default: <name>.json and <name>-*.json. */
  outputs?: string[];
  timeoutS: number;
}

const DEMO_SERVE = ["--device", "cpu", "--device-memory", "1GiB", "--max-model-len", "512"];

/** Benchmarks that need more than their run script with no arguments. */
const KNOWN: Record<string, Partial<BenchSpec>> = {
  // two workloads against the real engine with the demo model: c=32 (serve.json) and c=1
  // (serve-c1.json), each against its same-run direct baseline (engine.generate in-process)
  serve: {
    cmd: [
      ["bun", "bench/serve/run.ts", "--engine", "real", "--requests", "128", "--max-tokens", "32", "--", ...DEMO_SERVE],
      [
        "bun",
        "bench/serve/run.ts",
        "--engine",
        "real",
        "--concurrency",
        "1",
        "--requests",
        "16",
        "--max-tokens",
        "32",
        "--out",
        "bench/out/serve-c1.json",
        "--",
        ...DEMO_SERVE,
      ],
    ],
  },
  // names reserved for GPU benchmarks as they appear
  graphs: { gpu: true },
  offload: { gpu: true },
  attention: { gpu: true },
};

export function discover(): BenchSpec[] {
  const specs: BenchSpec[] = [];
  for (const name of readdirSync(join(ROOT, "bench")).sort()) {
    const dir = join(ROOT, "bench", name);
    if (name === "out" || !statSync(dir).isDirectory()) continue;
    const manifestPath = join(dir, "bench.json");
    const manifest = existsSync(manifestPath)
      ? (JSON.parse(readFileSync(manifestPath, "utf8")) as { cmd?: string[][]; gpu?: boolean; outputs?: string[]; timeout_s?: number })
      : {};
    const known = KNOWN[name] ?? {};
    let cmd = manifest.cmd ?? known.cmd;
    if (!cmd) {
      if (existsSync(join(dir, "run.ts"))) cmd = [["bun", `bench/${name}/run.ts`]];
      else if (existsSync(join(dir, "run.sh"))) cmd = [["bash", `bench/${name}/run.sh`]];
      else continue;
    }
    specs.push({
      name,
      cmd,
      gpu: manifest.gpu ?? known.gpu ?? false,
      outputs: manifest.outputs ?? known.outputs,
      timeoutS: manifest.timeout_s ?? known.timeoutS ?? 900,
    });
  }
  return specs;
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : "";
}

export function machine(): string {
  const cpu = cpus()[0]?.model?.trim() ?? "unknown CPU";
  const os = (() => {
    try {
      return /PRETTY_NAME="([^"]+)"/.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? `Linux ${release()}`;
    } catch {
      return `Linux ${release()}`;
    }
  })();
  const gpus = sh("nvidia-smi", ["--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]);
  const gpu = gpus ? `; GPU ${gpus.split("\n").join(" + ")}` : "; no GPU";
  const load = (() => {
    try {
      return readFileSync("/proc/loadavg", "utf8").split(" ")[0];
    } catch {
      return "?";
    }
  })();
  return `${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os}, Bun ${Bun.version}${gpu} (load average ${load} at start)`;
}

export function hasGpu(): { yes: boolean; why: string } {
  if (process.env.CUDA_VISIBLE_DEVICES === "" || process.env.CUDA_VISIBLE_DEVICES === "-1")
    return { yes: false, why: "CUDA_VISIBLE_DEVICES hides all devices" };
  const l = sh("nvidia-smi", ["-L"]);
  return l ? { yes: true, why: l.split("\n")[0]! } : { yes: false, why: "nvidia-smi lists no GPU" };
}

function outputsOf(spec: BenchSpec, since = 0): Record<string, Json> {
  const out: Record<string, Json> = {};
  if (!existsSync(OUT)) return out;
  const names =
    spec.outputs ?? readdirSync(OUT).filter((f) => f === `${spec.name}.json` || (f.startsWith(`${spec.name}-`) && f.endsWith(".json")));
  for (const f of names.sort()) {
    const p = join(OUT, f);
    if (!existsSync(p) || statSync(p).mtimeMs < since) continue;
    try {
      out[f] = JSON.parse(readFileSync(p, "utf8")) as Json;
    } catch (e) {
      console.error(`bench: ${f} is not valid JSON (${(e as Error).message}); left out`);
    }
  }
  return out;
}

interface Args {
  gpu: boolean;
  only: Set<string> | null;
  skip: Set<string>;
  list: boolean;
  reportOnly: boolean;
  write: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { gpu: false, only: null, skip: new Set(), list: false, reportOnly: false, write: true };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    const list = () => new Set((argv[++i] ?? "").split(",").filter(Boolean));
    if (x === "--gpu") a.gpu = true;
    else if (x === "--only") a.only = list();
    else if (x === "--skip") a.skip = list();
    else if (x === "--list") a.list = true;
    else if (x === "--report-only") a.reportOnly = true;
    else if (x === "--no-write") a.write = false;
    else if (x === "--") continue;
    else throw new Error(`unknown argument ${x} (see the header of bench/run.ts)`);
  }
  return a;
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const specs = discover().filter((s) => (!args.only || args.only.has(s.name)) && !args.skip.has(s.name));
  if (args.list) {
    for (const s of specs) console.log(`${s.name.padEnd(12)} ${s.gpu ? "gpu" : "cpu"}  ${s.cmd.map((c) => c.join(" ")).join(" && ")}`);
    return 0;
  }
  const gpu = hasGpu();
  const mach = machine();
  const runs: RunInfo[] = [];
  const summary: [string, string][] = [];
  for (const spec of specs) {
    const command = spec.cmd.map((c) => c.join(" ")).join(" && ");
    if (args.reportOnly) {
      const outputs = outputsOf(spec);
      if (Object.keys(outputs).length === 0) {
        summary.push([spec.name, "no JSON in bench/out"]);
        continue;
      }
      const newest = Math.max(...Object.keys(outputs).map((f) => statSync(join(OUT, f)).mtimeMs));
      const metaPath = join(OUT, "runs", `${spec.name}.json`);
      const meta = existsSync(metaPath) ? (JSON.parse(readFileSync(metaPath, "utf8")) as Omit<RunInfo, "outputs">) : null;
      runs.push({
        ...(meta ?? {
          name: spec.name,
          date: new Date(newest).toISOString(),
          machine: `${mach} (rendered from existing JSON)`,
          command,
          wallSeconds: 0,
        }),
        outputs,
      });
      summary.push([spec.name, "rendered from bench/out"]);
      continue;
    }
    if (spec.gpu && !args.gpu) {
      summary.push([spec.name, "skipped: GPU benchmark (run with --gpu on a GPU machine)"]);
      continue;
    }
    if (spec.gpu && !gpu.yes) {
      summary.push([spec.name, `skipped: no GPU (${gpu.why})`]);
      continue;
    }
    console.log(`\n== bench ${spec.name}: ${command}`);
    const t0 = performance.now();
    const started = Date.now() - 1000;
    let status = "ok";
    for (const c of spec.cmd) {
      const [exe, ...rest] = c;
      const r = spawnSync(exe === "bun" ? BUN : exe!, rest, {
        cwd: ROOT,
        stdio: "inherit",
        timeout: spec.timeoutS * 1000,
        env: { ...process.env, HEADROOM_BENCH_GPU: args.gpu ? "1" : "0" },
      });
      if (r.status === 77) {
        status = "skipped (exit 77)";
        break;
      }
      if (r.status !== 0) {
        status = r.error ? `failed: ${r.error.message}` : `failed: exit ${r.status ?? r.signal}`;
        break;
      }
    }
    const wall = (performance.now() - t0) / 1000;
    if (status !== "ok") {
      summary.push([spec.name, status]);
      continue;
    }
    const outputs = outputsOf(spec, started);
    const info = { name: spec.name, date: new Date().toISOString(), machine: mach, command, wallSeconds: wall };
    mkdirSync(join(OUT, "runs"), { recursive: true });
    writeFileSync(join(OUT, "runs", `${spec.name}.json`), JSON.stringify(info, null, 2) + "\n"); // for --report-only
    runs.push({ ...info, outputs });
    summary.push([spec.name, `ok in ${wall.toFixed(1)} s (${Object.keys(outputs).length} JSON)`]);
  }

  if (args.write && runs.length > 0) {
    let md = existsSync(RESULTS) ? readFileSync(RESULTS, "utf8") : "# Benchmark results\n";
    for (const run of runs) md = upsertBlock(md, run.name, renderRun(run));
    writeFileSync(RESULTS, md);
    console.log(`\nbench: updated ${runs.map((r) => r.name).join(", ")} in bench/RESULTS.md`);
  }
  console.log("\nbench summary:");
  for (const [n, s] of summary) console.log(`  ${n.padEnd(12)} ${s}`);
  return summary.some(([, s]) => s.startsWith("failed")) ? 1 : 0;
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
