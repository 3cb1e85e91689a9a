// bench/peer: headroom side by side with llama.cpp on the same weights, in one run.
//
//   bun bench/peer/run.ts [--quick] [--formats F32,F16,Q8_0,Q4_K_M] [--reps 3] [--threads 2]
//                         [--cache ~/.cache/headroom/peer] [--no-http] [--no-hf] [--no-kernels]
//                         [--budgets 64,128,256,512 [--budget-reps 1]] [--headroom-budget N]
//                         [--variants "ARGS;ARGS"]
//                         [--out bench/out/peer.json]
//   bun bench/run.ts --only peer      the same, then bench/RESULTS.md's "Peer: llama.cpp" block
//
// 1. builds llama.cpp (llama-bench, llama-batched-bench, llama-server, llama-quantize) from the
//    source node-llama-cpp carries, into the cache (reused; llama-build.ts);
// 2. writes one set of random s110m-shaped weights as an F32 GGUF and an HF folder, and F16 /
//    Q8_0 / Q4_K_M GGUFs with the built llama-quantize (cached; models.ts);
// 3. per file, repetition by repetition, alternating which goes first: llama-bench (pp128, tg32 at
//    depth 0 and 128) and llama-batched-bench (16 × 128-token prompts, 32 decode steps) against
//    the same tests on headroom's engine in this process (headroom-side.ts);
// 4. greedy continuations of one prompt from llama-server and from headroom's engine, compared
//    token by token; for quantized files also llama.cpp on the file dequantized to F32 (exact
//    arithmetic on the same weights) against headroom on the quantized file; and headroom from
//    the HF folder against headroom from the GGUF;
// 5. the HTTP row: llama-server and `headroom serve` on the F32 file, 16 concurrent streaming
//    clients (llama-server's native /completion, headroom's /v1/completions: http.ts says why),
//    repetitions alternating between the servers, outputs compared request by request;
//    --budgets adds `headroom serve` runs at other --max-num-batched-tokens values;
//    --variants runs further `headroom serve` instances with extra flags (e.g. "--step-time-factor 3;
//    --step-time-factor 0 --max-num-batched-tokens 128"), interleaved with the two servers in
//    every repetition (the same load for all); --no-kernels skips step 3 (the HTTP row alone).
// Both systems get the same thread count and, where the machine has more cores than threads,
// the same CPUs (taskset; this process re-executes itself under it). The load average is
// recorded before every repetition: on a shared machine the figures are only as good as it.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, homedir } from "node:os";
import { dirname, join, resolve } from "node:path";

import { HeadroomKernel, type KernelShape } from "./headroom-side.ts";
import { compareTexts, promptsForRun, runHttp, workloadPrompts, type HttpResult, type HttpWorkload } from "./http.ts";
import { ensureLlamaBuild } from "./llama-build.ts";
import { batchedBench, llamaBench, pick, type LlamaBenchRow, type Pin } from "./llama-side.ts";
import { ensureModels, FORMATS, type Format } from "./models.ts";
import { renderPeerTables } from "./render.ts";
import { llamaGreedy, startHeadroomServer, startLlamaServer } from "./servers.ts";
import { agreement, compare, describeAgreement, loadAverage, type Agreement, type Comparison } from "./stats.ts";

const ROOT = resolve(import.meta.dir, "../..");
const MiB = 2 ** 20;

export interface PeerArgs {
  quick: boolean;
  formats: Format[];
  reps: number;
  threads: number;
  cache: string;
  http: boolean;
  /** The per-format kernel rows (llama-bench / batched-bench vs the engine in-process). */
  kernels: boolean;
  hf: boolean;
  budgets: number[];
  budgetReps: number;
  headroomBudget: number | null;
  /** Extra `headroom serve` argument sets, run in every HTTP repetition. */
  variants: string[][];
  out: string;
}

export function parseArgs(argv: string[]): PeerArgs {
  const a: PeerArgs = {
    quick: false,
    formats: [...FORMATS],
    reps: 3,
    threads: 2,
    cache: process.env.HEADROOM_PEER_CACHE ?? join(homedir(), ".cache/headroom/peer"),
    http: true,
    kernels: true,
    hf: true,
    budgets: [],
    budgetReps: 1,
    headroomBudget: null,
    variants: [],
    out: "bench/out/peer.json",
  };
  let formatsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    const v = () => {
      const y = argv[++i];
      if (y === undefined) throw new Error(`${x} needs a value`);
      return y;
    };
    const int = (lo: number) => {
      const n = Number(v());
      if (!Number.isInteger(n) || n < lo) throw new Error(`${x} needs an integer >= ${lo}`);
      return n;
    };
    if (x === "--quick") a.quick = true;
    else if (x === "--formats") {
      formatsGiven = true;
      a.formats = v()
        .split(",")
        .map((f) => {
          const u = f.trim().toUpperCase() as Format;
          if (!FORMATS.includes(u)) throw new Error(`--formats: ${f} is not one of ${FORMATS.join(", ")}`);
          return u;
        });
    } else if (x === "--reps") a.reps = int(3);
    else if (x === "--threads") a.threads = int(1);
    else if (x === "--cache") a.cache = resolve(v());
    else if (x === "--no-http") a.http = false;
    else if (x === "--no-hf") a.hf = false;
    else if (x === "--no-kernels") a.kernels = false;
    else if (x === "--budgets") a.budgets = v().split(",").map(Number);
    else if (x === "--budget-reps") a.budgetReps = int(1);
    else if (x === "--headroom-budget") a.headroomBudget = int(1);
    else if (x === "--variants")
      a.variants = v()
        .split(";")
        .map((t) => t.trim().split(/\s+/).filter(Boolean))
        .filter((t) => t.length > 0);
    else if (x === "--out") a.out = v();
    else throw new Error(`unknown argument ${x} (see the header of bench/peer/run.ts)`);
  }
  if (a.budgets.some((b) => !Number.isInteger(b) || b < 1)) throw new Error("--budgets: positive integers, comma separated");
  if (a.quick && !formatsGiven) a.formats = ["F32", "Q4_K_M"];
  return a;
}

/** The CPUs both systems are pinned to: the first `threads` this process may use, when there are more. */
function pinning(threads: number): { pin: Pin; note: string } {
  const r = spawnSync("taskset", ["-cp", String(process.pid)], { encoding: "utf8" });
  const n = cpus().length;
  if (r.status !== 0) return { pin: [], note: `not pinned (no taskset); ${threads} threads each` };
  if (n <= threads) return { pin: [], note: `${threads} threads each on all ${n} cores (no pinning needed)` };
  const list = `0-${threads - 1}`;
  return { pin: ["taskset", "-c", list], note: `${threads} threads each, pinned to CPUs ${list} (taskset)` };
}

interface FormatResult {
  format: Format;
  file: string;
  fileBytes: number;
  error?: string;
  comparisons: Comparison[];
  greedy?: { agreement: Agreement; text: string; llama: number[]; headroom: number[] };
  /**
   * Quantized files: llama.cpp on the file dequantized to F32 vs headroom on the quantized file.
   * llama.cpp's quantized matmuls round the activations to 8 bits, headroom's do not, so on
   * random weights the two can part early; against the dequantized file they should agree.
   */
  greedyDequantized?: { agreement: Agreement; text: string; llama: number[] };
  /** headroom from the HF folder vs headroom from this GGUF (F32 only). */
  hfVsGguf?: Agreement;
  llamaSettings?: Partial<LlamaBenchRow> & { batched_flash_attn?: number; batched_n_kv_max?: number };
  loadAverages: number[];
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const { pin, note: pinNote } = pinning(args.threads);
  if (pin.length && !process.env.HEADROOM_PEER_PINNED) {
    // re-run this script under the same CPU set the llama.cpp tools get
    const r = spawnSync(pin[0]!, [...pin.slice(1), process.execPath, ...process.argv.slice(1)], {
      stdio: "inherit",
      env: { ...process.env, HEADROOM_PEER_PINNED: "1" },
    });
    return r.status ?? 1;
  }
  const t0 = performance.now();
  const loadStart = loadAverage();
  const log = (s: string) =>
    console.error(`[peer ${((performance.now() - t0) / 1000).toFixed(0)} s, load ${loadAverage()[0].toFixed(2)}] ${s}`);
  const shape: KernelShape = { prompt: 128, gen: args.quick ? 16 : 32, depths: [0, 128], batch: 16 };
  const greedyTokens = args.quick ? 32 : 64;
  const workload: HttpWorkload = args.quick
    ? { concurrency: 16, requests: 32, promptTokens: 128, maxTokens: 32 }
    : { concurrency: 16, requests: 64, promptTokens: 128, maxTokens: 64 };

  log(`llama.cpp: ensuring the build in ${args.cache}`);
  const build = ensureLlamaBuild(args.cache, log);
  log(
    `llama.cpp ${build.commit.slice(0, 12)} (node-llama-cpp ${build.tag})${build.buildSeconds ? `, built in ${build.buildSeconds.toFixed(0)} s` : ", cached build"}`,
  );
  const models = ensureModels(args.cache, build.bin["llama-quantize"], build.commit, args.formats, log);
  const greedyPrompt = workloadPrompts({ concurrency: 1, requests: 1, promptTokens: 32, maxTokens: 0 }, models.vocabSize, 99)[0]!;

  const formats: FormatResult[] = [];
  for (const f of args.kernels ? args.formats : []) {
    const file = models.gguf[f];
    const res: FormatResult = { format: f, file, fileBytes: Bun.file(file).size, comparisons: [], loadAverages: [] };
    formats.push(res);
    log(`${f}: loading headroom engine`);
    let kernel: HeadroomKernel;
    try {
      kernel = new HeadroomKernel(file, args.threads, shape);
      kernel.warmUp();
    } catch (e) {
      res.error = `headroom could not run this file: ${(e as Error).message}`;
      log(res.error);
      continue;
    }
    const L = { pp: [] as number[], tg: shape.depths.map(() => [] as number[]), b: [] as number[] };
    const H = { pp: [] as number[], tg: shape.depths.map(() => [] as number[]), b: [] as number[] };
    for (let r = 0; r < args.reps; r++) {
      res.loadAverages.push(loadAverage()[0]);
      const sides = r % 2 === 0 ? (["llama", "headroom"] as const) : (["headroom", "llama"] as const);
      for (const side of sides) {
        if (side === "llama") {
          const rows = llamaBench(build.bin["llama-bench"], pin, file, args.threads, shape.prompt, shape.gen, shape.depths);
          L.pp.push(pick(rows, "pp", 0).avg_ts);
          shape.depths.forEach((d, i) => L.tg[i]!.push(pick(rows, "tg", d).avg_ts));
          const b = batchedBench(build.bin["llama-batched-bench"], pin, file, args.threads, shape.prompt, shape.gen, shape.batch);
          L.b.push(b.speed_tg);
          const s = pick(rows, "tg", 0);
          res.llamaSettings = {
            flash_attn: s.flash_attn,
            type_k: s.type_k,
            type_v: s.type_v,
            n_batch: s.n_batch,
            n_ubatch: s.n_ubatch,
            n_threads: s.n_threads,
            build_commit: s.build_commit,
            cpu_info: s.cpu_info,
            model_type: s.model_type,
            batched_flash_attn: b.flash_attn,
            batched_n_kv_max: b.n_kv_max,
          };
        } else {
          H.pp.push(kernel.prefill());
          shape.depths.forEach((d, i) => H.tg[i]!.push(kernel.decodeAt(d)));
          H.b.push(kernel.batchDecode());
        }
      }
      log(
        `${f} rep ${r + 1}/${args.reps}: pp${shape.prompt} ${L.pp.at(-1)!.toFixed(1)} vs ${H.pp.at(-1)!.toFixed(1)}, ` +
          `tg${shape.gen} ${L.tg[0]!.at(-1)!.toFixed(1)} vs ${H.tg[0]!.at(-1)!.toFixed(1)}, ` +
          `batch ${L.b.at(-1)!.toFixed(1)} vs ${H.b.at(-1)!.toFixed(1)} tok/s (llama.cpp vs headroom)`,
      );
    }
    res.comparisons.push(compare(`prefill ${shape.prompt} tokens`, "tok/s", "higher", L.pp, H.pp));
    shape.depths.forEach((d, i) =>
      res.comparisons.push(compare(`decode batch 1, depth ${d} (tg${shape.gen})`, "tok/s", "higher", L.tg[i]!, H.tg[i]!)),
    );
    res.comparisons.push(
      compare(`decode ${shape.batch} sequences (aggregate, after ${shape.prompt}-token prompts)`, "tok/s", "higher", L.b, H.b),
    );

    const hg = kernel.greedy(greedyPrompt, greedyTokens);
    kernel.close();
    const server = await startLlamaServer(build.bin["llama-server"], pin, file, args.threads, 1, 512);
    try {
      const lg = await llamaGreedy(server.url, greedyPrompt, greedyTokens);
      res.greedy = { agreement: agreement(lg.tokens, hg.tokens, lg.top2, hg.top2), text: "", llama: lg.tokens, headroom: hg.tokens };
      res.greedy.text = describeAgreement(res.greedy.agreement);
      log(`${f}: greedy ${greedyTokens} tokens, llama.cpp vs headroom: ${res.greedy.text}`);
    } finally {
      await server.stop();
    }
    const deq = models.dequantized[f];
    if (deq) {
      const ds = await startLlamaServer(build.bin["llama-server"], pin, deq, args.threads, 1, 512);
      try {
        const lg = await llamaGreedy(ds.url, greedyPrompt, greedyTokens);
        const a = agreement(lg.tokens, hg.tokens, lg.top2, hg.top2);
        res.greedyDequantized = { agreement: a, text: describeAgreement(a), llama: lg.tokens };
        log(`${f}: greedy, llama.cpp on the dequantized F32 file vs headroom on ${f}: ${res.greedyDequantized.text}`);
      } finally {
        await ds.stop();
      }
    }
    if (f === "F32" && args.hf) {
      const hk = new HeadroomKernel(models.hf, args.threads, shape);
      const hfg = hk.greedy(greedyPrompt, greedyTokens);
      hk.close();
      res.hfVsGguf = agreement(hg.tokens, hfg.tokens, hg.top2, hfg.top2);
      log(`F32: headroom HF folder vs GGUF: ${describeAgreement(res.hfVsGguf)}`);
    }
  }

  let http: {
    workload: HttpWorkload;
    llamaArgv: string[];
    headroomArgv: string[];
    comparisons: Comparison[];
    outputs: ReturnType<typeof compareTexts>;
    loadAverages: number[];
    runs: { llama: Omit<HttpResult, "texts">[]; headroom: Omit<HttpResult, "texts">[] };
    budgets: { budget: number; runs: Omit<HttpResult, "texts">[] }[];
    variants: { args: string[]; runs: Omit<HttpResult, "texts">[] }[];
  } | null = null;
  if (args.http && args.formats.includes("F32")) {
    const file = models.gguf.F32;
    const ctxPerSlot = Math.ceil((workload.promptTokens + workload.maxTokens + 1) / 256) * 256;
    const kvBytes = 512 * MiB;
    log(
      `HTTP: starting llama-server and headroom serve (${workload.concurrency} clients, ${workload.requests} requests × ${workload.maxTokens} tokens)`,
    );
    const ls = await startLlamaServer(build.bin["llama-server"], pin, file, args.threads, workload.concurrency, ctxPerSlot);
    const hs = await startHeadroomServer(pin, file, args.threads, workload.concurrency, args.headroomBudget, kvBytes).catch(async (e) => {
      await ls.stop();
      throw e;
    });
    const runs = { llama: [] as HttpResult[], headroom: [] as HttpResult[] };
    const vs: { args: string[]; server: Awaited<ReturnType<typeof startHeadroomServer>> | null; runs: HttpResult[] }[] = args.variants.map(
      (a) => ({ args: a, server: null, runs: [] }),
    );
    const loads: number[] = [];
    try {
      for (const v of vs)
        v.server = await startHeadroomServer(pin, file, args.threads, workload.concurrency, args.headroomBudget, kvBytes, v.args);
      for (let r = 0; r < args.reps; r++) {
        loads.push(loadAverage()[0]);
        const order = r % 2 === 0 ? ([ls, hs] as const) : ([hs, ls] as const);
        for (const s of order) {
          const x = await runHttp(s.url, s === ls ? "llama" : "openai", workload, promptsForRun(workload, models.vocabSize, r));
          (s === ls ? runs.llama : runs.headroom).push(x);
          log(
            `HTTP rep ${r + 1}/${args.reps} ${s.name}: ${x.output_tokens_per_s.toFixed(1)} tok/s, TTFT p50 ${x.ttft_ms.p50.toFixed(0)} ms, ITL p50/p99 ${x.itl_ms.p50.toFixed(0)}/${x.itl_ms.p99.toFixed(0)} ms, failed ${x.failed}`,
          );
          // the variants next to the headroom run of this repetition
          if (s !== hs) continue;
          for (const v of vs) {
            const y = await runHttp(v.server!.url, "openai", workload, promptsForRun(workload, models.vocabSize, r));
            v.runs.push(y);
            log(
              `HTTP rep ${r + 1}/${args.reps} headroom serve ${v.args.join(" ")}: ${y.output_tokens_per_s.toFixed(1)} tok/s, TTFT p50 ${y.ttft_ms.p50.toFixed(0)} ms, ITL p50/p99 ${y.itl_ms.p50.toFixed(0)}/${y.itl_ms.p99.toFixed(0)} ms, failed ${y.failed}`,
            );
          }
        }
      }
    } finally {
      for (const v of vs) await v.server?.stop();
      await hs.stop();
      await ls.stop();
    }
    const strip = (x: HttpResult): Omit<HttpResult, "texts"> => {
      const { texts: _t, ...rest } = x;
      return rest;
    };
    const g = (xs: HttpResult[], f: (x: HttpResult) => number) => xs.map(f);
    const budgets: { budget: number; runs: Omit<HttpResult, "texts">[] }[] = [];
    for (const b of args.budgets) {
      log(`HTTP: headroom serve --max-num-batched-tokens ${b}`);
      const s = await startHeadroomServer(pin, file, args.threads, workload.concurrency, b, kvBytes);
      const rs: Omit<HttpResult, "texts">[] = [];
      try {
        for (let r = 0; r < args.budgetReps; r++) {
          const x = await runHttp(s.url, "openai", workload, promptsForRun(workload, models.vocabSize, args.reps + r));
          rs.push(strip(x));
          log(
            `HTTP budget ${b}: ${x.output_tokens_per_s.toFixed(1)} tok/s, TTFT p50 ${x.ttft_ms.p50.toFixed(0)} ms, ITL p50/p99 ${x.itl_ms.p50.toFixed(0)}/${x.itl_ms.p99.toFixed(0)} ms`,
          );
        }
      } finally {
        await s.stop();
      }
      budgets.push({ budget: b, runs: rs });
    }
    http = {
      workload,
      llamaArgv: ls.argv,
      headroomArgv: hs.argv,
      comparisons: [
        compare(
          "HTTP throughput (output tokens/s)",
          "tok/s",
          "higher",
          g(runs.llama, (x) => x.output_tokens_per_s),
          g(runs.headroom, (x) => x.output_tokens_per_s),
        ),
        compare(
          "HTTP TTFT p50",
          "ms",
          "lower",
          g(runs.llama, (x) => x.ttft_ms.p50),
          g(runs.headroom, (x) => x.ttft_ms.p50),
        ),
        compare(
          "HTTP inter-token p50",
          "ms",
          "lower",
          g(runs.llama, (x) => x.itl_ms.p50),
          g(runs.headroom, (x) => x.itl_ms.p50),
        ),
        compare(
          "HTTP inter-token p99",
          "ms",
          "lower",
          g(runs.llama, (x) => x.itl_ms.p99),
          g(runs.headroom, (x) => x.itl_ms.p99),
        ),
      ],
      outputs: compareTexts(runs.llama.at(-1)!.texts, runs.headroom.at(-1)!.texts),
      loadAverages: loads,
      runs: { llama: runs.llama.map(strip), headroom: runs.headroom.map(strip) },
      budgets,
      variants: vs.map((v) => ({ args: v.args, runs: v.runs.map(strip) })),
    };
    const failed = [...runs.llama, ...runs.headroom].reduce((a, x) => a + x.failed, 0);
    if (failed > 0) log(`HTTP: ${failed} requests failed (see the JSON)`);
  }

  const result = {
    bench: "peer",
    date: new Date().toISOString(),
    machine: `${cpus()[0]?.model ?? "cpu"}, ${cpus().length} cores`,
    command: `bun bench/peer/run.ts ${process.argv.slice(2).join(" ")}`.trim(),
    wall_s: (performance.now() - t0) / 1000,
    threads: args.threads,
    pinning: pinNote,
    reps: args.reps,
    quick: args.quick,
    load_average_start: loadStart,
    load_average_end: loadAverage(),
    llama_cpp: { commit: build.commit, node_llama_cpp_release: build.tag, build_dir: build.dir, build_seconds: build.buildSeconds },
    model: { shape: "s110m: dim 768, 12 layers, 12 heads, FFN 2048, vocab 32000 (Llama-2 SPM), random weights", dir: models.dir },
    kernel_shape: shape,
    greedy_prompt_tokens: greedyPrompt.length,
    greedy_tokens: greedyTokens,
    formats,
    http,
  };
  const out = resolve(ROOT, args.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
  console.log(renderPeerTables(JSON.parse(JSON.stringify(result))));
  console.log(`\nwrote ${args.out} (${result.wall_s.toFixed(0)} s)`);
  const bad = formats.some((f) => f.error) || (http !== null && [...http.runs.llama, ...http.runs.headroom].some((x) => x.failed > 0));
  return bad ? 1 : 0;
}

if (import.meta.main) process.exitCode = await main();
