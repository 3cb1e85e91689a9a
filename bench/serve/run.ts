// bench/serve: a bounded streaming load generator for the HTTP server.
//
//   bun bench/serve/run.ts [--engine fake|real] [--concurrency 32] [--requests 256]
//                          [--max-tokens 64] [--prompt-len 128] [--fake-step-ms 0]
//                          [--out bench/out/serve.json] [-- <headroom serve flags for --engine real>]
//
// Runs the same workload in fresh child processes, each with its own engine:
//  1. direct: consumed from engine.generate, engine in a Worker of that process (the baseline);
//  2. http:   through the server (POST /v1/completions, stream: true, SSE) from this process,
//             the engine in its own process as `headroom serve` runs it;
// and, for the real engine, the other two combinations (direct with the engine process, HTTP
// with the engine in-process), so the engine process's per-token cost shows next to in-process.
// Reports requests/s, output tokens/s, TTFT / inter-token latency / e2e percentiles, and the
// server's own overhead per streamed token: the difference in mean inter-token latency and in
// CPU time per token of the server and engine processes (the client's CPU is not counted).
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { cpus } from "node:os";
import { treeCpuUs } from "./cpu.ts";
import { runWorkload, type BenchConfig, type RequestTiming, type Summary } from "./workload.ts";

const root = resolve(import.meta.dir, "../..");
const child = resolve(import.meta.dir, "child.ts");

function parseArgs(argv: string[]): BenchConfig & { out: string } {
  const cfg = {
    engine: "fake" as "fake" | "real",
    engineMode: "process" as "process" | "worker",
    serveArgs: [] as string[],
    fakeStepMs: 0,
    concurrency: 32,
    requests: 256,
    maxTokens: 64,
    prompt: "",
    out: "bench/out/serve.json",
  };
  let promptLen = 128;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === "--") {
      cfg.serveArgs = argv.slice(i + 1);
      break;
    } else if (a === "--engine") {
      const e = v();
      if (e !== "fake" && e !== "real") throw new Error("--engine fake|real");
      cfg.engine = e;
    } else if (a === "--concurrency") cfg.concurrency = Number(v());
    else if (a === "--requests") cfg.requests = Number(v());
    else if (a === "--max-tokens") cfg.maxTokens = Number(v());
    else if (a === "--prompt-len") promptLen = Number(v());
    else if (a === "--fake-step-ms") cfg.fakeStepMs = Number(v());
    else if (a === "--out") cfg.out = v();
    else throw new Error(`unknown argument ${a}`);
  }
  for (const [k, x] of [
    ["concurrency", cfg.concurrency],
    ["requests", cfg.requests],
    ["max-tokens", cfg.maxTokens],
  ] as const)
    if (!Number.isInteger(x) || x < 1 || x > 100_000) throw new Error(`--${k} must be an integer in 1..100000`);
  const base = "The quick brown fox jumps over the lazy dog. ";
  cfg.prompt = base.repeat(Math.ceil(promptLen / base.length)).slice(0, promptLen);
  return cfg;
}

function spawnChild(mode: "serve" | "direct", cfg: BenchConfig) {
  return Bun.spawn([process.execPath, child, mode, JSON.stringify(cfg)], { cwd: root, stdout: "pipe", stderr: "inherit" });
}

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    const nl = buf.indexOf("\n");
    if (nl >= 0) {
      reader.releaseLock();
      return buf.slice(0, nl);
    }
  }
  return buf;
}

async function httpRequest(url: string, cfg: BenchConfig): Promise<RequestTiming> {
  const start = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      prompt: cfg.prompt,
      max_tokens: cfg.maxTokens,
      temperature: 0,
      ignore_eos: true,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (res.status !== 200)
    return { start, tokenTimes: [], tokens: 0, end: performance.now(), ok: false, error: `HTTP ${res.status}: ${await res.text()}` };
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  const times: number[] = [];
  let tokens = 0;
  let buf = "";
  let done = false;
  while (!done) {
    const r = await reader.read();
    if (r.done) break;
    const now = performance.now();
    buf += dec.decode(r.value, { stream: true });
    let sep: number;
    while ((sep = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, sep);
      buf = buf.slice(sep + 2);
      if (!ev.startsWith("data: ")) continue;
      const data = ev.slice(6);
      if (data === "[DONE]") {
        done = true;
        break;
      }
      const chunk = JSON.parse(data) as { choices: { text: string }[]; usage?: { completion_tokens: number } | null; error?: unknown };
      if (chunk.error) return { start, tokenTimes: times, tokens, end: now, ok: false, error: JSON.stringify(chunk.error) };
      if (chunk.choices[0]?.text) times.push(now);
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
  }
  return { start, tokenTimes: times, tokens, end: performance.now(), ok: tokens > 0 };
}

const cfg = parseArgs(process.argv.slice(2));
console.error(
  `bench/serve: engine=${cfg.engine} concurrency=${cfg.concurrency} requests=${cfg.requests} max_tokens=${cfg.maxTokens} prompt=${cfg.prompt.length} chars`,
);

type Measured = Summary & { cpu_us: number };

/** The direct baseline: engine.generate in a fresh child process with its own engine. */
async function runDirect(c: BenchConfig): Promise<Measured> {
  const d = spawnChild("direct", c);
  const text = await new Response(d.stdout).text();
  if ((await d.exited) !== 0) throw new Error(`direct run (${c.engineMode}) failed`);
  return JSON.parse(text.trim().split("\n").at(-1)!) as Measured;
}

/** Through HTTP + SSE: a fresh server child; CPU counted over it and its engine process. */
async function runHttp(c: BenchConfig): Promise<Measured> {
  const s = spawnChild("serve", c);
  const { url } = JSON.parse(await firstLine(s.stdout)) as { url: string };
  // warm-up (JIT, connection pool)
  await Promise.all(Array.from({ length: Math.min(c.concurrency, 8) }, () => httpRequest(url, { ...c, maxTokens: 4 })));
  const cpu0 = treeCpuUs(s.pid);
  const r = await runWorkload(c, () => httpRequest(url, c));
  const cpu = treeCpuUs(s.pid) - cpu0;
  s.kill("SIGTERM");
  await s.exited;
  return { ...r, cpu_us: cpu };
}

// The server's engine runs in its own process; for the real engine the same workload also runs
// with the engine in a Worker of the same process (in-process), to show what the process costs.
const direct = await runDirect({ ...cfg, engineMode: "worker" });
const http = await runHttp({ ...cfg, engineMode: "process" });
const real = cfg.engine === "real";
const directProcess = real ? await runDirect({ ...cfg, engineMode: "process" }) : null;
const httpInProcess = real ? await runHttp({ ...cfg, engineMode: "worker" }) : null;

const perTok = (m: Measured) => m.cpu_us / m.output_tokens;
const overheadItlUs = (http.itl_mean_ms - direct.itl_mean_ms) * 1000;
const overheadTpotUs = (http.tpot_mean_ms - direct.tpot_mean_ms) * 1000;
const cpuPerTokDirect = perTok(direct);
const cpuPerTokHttp = perTok(http);
const result = {
  bench: "serve",
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, platform: process.platform, bun: Bun.version },
  config: { ...cfg, prompt: undefined, prompt_chars: cfg.prompt.length },
  /** engine.generate, engine in a Worker of the same process (in-process baseline). */
  direct,
  /** HTTP + SSE, engine in its own process (how `headroom serve` runs). */
  http,
  /** engine.generate, engine in its own process. */
  direct_process: directProcess,
  /** HTTP + SSE, engine in a Worker of the server process. */
  http_inprocess: httpInProcess,
  overhead: {
    per_token_itl_us: overheadItlUs,
    per_token_tpot_us: overheadTpotUs,
    cpu_per_token_direct_us: cpuPerTokDirect,
    cpu_per_token_http_us: cpuPerTokHttp,
    server_cpu_per_token_us: cpuPerTokHttp - cpuPerTokDirect,
    throughput_ratio_http_vs_direct: http.output_tokens_per_s / direct.output_tokens_per_s,
    ...(directProcess && httpInProcess
      ? {
          // What the separate engine process costs per token, next to the in-process figure.
          engine_process_itl_us: (directProcess.itl_mean_ms - direct.itl_mean_ms) * 1000,
          engine_process_cpu_per_token_us: perTok(directProcess) - cpuPerTokDirect,
          engine_process_http_itl_us: (http.itl_mean_ms - httpInProcess.itl_mean_ms) * 1000,
          engine_process_http_cpu_per_token_us: cpuPerTokHttp - perTok(httpInProcess),
        }
      : {}),
  },
};

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
const row = (name: string, r: Summary) =>
  `| ${name} | ${r.requests - r.failed}/${r.requests} | ${f(r.requests_per_s, 1)} | ${f(r.output_tokens_per_s, 0)} | ${f(r.ttft_ms.p50)} / ${f(r.ttft_ms.p90)} / ${f(r.ttft_ms.p99)} | ${f(r.itl_ms.p50, 3)} / ${f(r.itl_ms.p90, 3)} / ${f(r.itl_ms.p99, 3)} | ${f(r.e2e_ms.p50, 1)} / ${f(r.e2e_ms.p99, 1)} | ${f(perTok(r as Measured), 1)} |`;
console.log(
  `\nbench/serve — engine ${cfg.engine}, concurrency ${cfg.concurrency}, ${cfg.requests} requests × ${cfg.maxTokens} tokens, prompt ${cfg.prompt.length} chars`,
);
console.log("| path | ok | req/s | tok/s | TTFT ms p50/p90/p99 | ITL ms p50/p90/p99 | e2e ms p50/p99 | CPU µs/token |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
console.log(row(real ? "direct (engine.generate), engine in-process (worker)" : "direct (engine.generate)", direct));
if (directProcess) console.log(row("direct (engine.generate), engine process", directProcess));
if (httpInProcess) console.log(row("HTTP + SSE, engine in-process (worker)", httpInProcess));
console.log(row(real ? "HTTP + SSE, engine process (serve default)" : "HTTP + SSE", http));
console.log(
  `\nserver overhead per streamed token: ${f(overheadItlUs, 1)} µs (mean ITL), ${f(overheadTpotUs, 1)} µs (mean TPOT); ` +
    `CPU per token ${f(cpuPerTokHttp, 1)} µs via HTTP vs ${f(cpuPerTokDirect, 1)} µs direct (server share ${f(cpuPerTokHttp - cpuPerTokDirect, 1)} µs); ` +
    `throughput HTTP/direct ${f(result.overhead.throughput_ratio_http_vs_direct, 3)}`,
);
if (directProcess && httpInProcess) {
  const o = result.overhead as Record<string, number>;
  console.log(
    `engine process vs in-process, per token: direct ${f(o.engine_process_itl_us!, 1)} µs mean ITL, ${f(o.engine_process_cpu_per_token_us!, 1)} µs CPU; ` +
      `HTTP ${f(o.engine_process_http_itl_us!, 1)} µs mean ITL, ${f(o.engine_process_http_cpu_per_token_us!, 1)} µs CPU`,
  );
}
const out = resolve(root, cfg.out);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
console.log(`wrote ${cfg.out}`);
if ([direct, http, directProcess, httpInProcess].some((m) => m !== null && m.failed > 0)) process.exitCode = 1;
