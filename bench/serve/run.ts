// bench/serve: a bounded streaming load generator for the HTTP server.
//
//   bun bench/serve/run.ts [--engine fake|real] [--concurrency 32] [--requests 256]
//                          [--max-tokens 64] [--prompt-len 128] [--fake-step-ms 0]
//                          [--out bench/out/serve.json] [-- <headroom serve flags for --engine real>]
//
// Runs the same workload twice, each in a fresh child process with its own engine:
//  1. direct: consumed in-process from engine.generate (the baseline);
//  2. http:   through the server (POST /v1/completions, stream: true, SSE) from this process.
// Reports requests/s, output tokens/s, TTFT / inter-token latency / e2e percentiles, and the
// server's own overhead per streamed token: the difference in mean inter-token latency and in
// CPU time per token of the engine+server process (the client's CPU is not counted).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { cpus } from "node:os";
import { runWorkload, type BenchConfig, type RequestTiming, type Summary } from "./workload.ts";

const root = resolve(import.meta.dir, "../..");
const child = resolve(import.meta.dir, "child.ts");

function parseArgs(argv: string[]): BenchConfig & { out: string } {
  const cfg = { engine: "fake" as "fake" | "real", serveArgs: [] as string[], fakeStepMs: 0, concurrency: 32, requests: 256, maxTokens: 64, prompt: "", out: "bench/out/serve.json" };
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
  for (const [k, x] of [["concurrency", cfg.concurrency], ["requests", cfg.requests], ["max-tokens", cfg.maxTokens]] as const)
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

/** utime + stime of a process in µs (Linux); NaN elsewhere. */
function cpuUs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8");
    const parts = f.slice(f.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(parts[11]) + Number(parts[12]);
    return (ticks / 100) * 1e6; // CLK_TCK = 100 on Linux
  } catch {
    return NaN;
  }
}

async function httpRequest(url: string, cfg: BenchConfig): Promise<RequestTiming> {
  const start = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: cfg.prompt, max_tokens: cfg.maxTokens, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) return { start, tokenTimes: [], tokens: 0, end: performance.now(), ok: false, error: `HTTP ${res.status}: ${await res.text()}` };
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
console.error(`bench/serve: engine=${cfg.engine} concurrency=${cfg.concurrency} requests=${cfg.requests} max_tokens=${cfg.maxTokens} prompt=${cfg.prompt.length} chars`);

// 1. direct baseline (fresh process, fresh engine)
const d = spawnChild("direct", cfg);
const directText = await new Response(d.stdout).text();
if ((await d.exited) !== 0) throw new Error("direct run failed");
const direct = JSON.parse(directText.trim().split("\n").at(-1)!) as Summary & { cpu_us: number };

// 2. through HTTP + SSE
const s = spawnChild("serve", cfg);
const { url } = JSON.parse(await firstLine(s.stdout)) as { url: string };
// warm-up (JIT, connection pool)
await Promise.all(Array.from({ length: Math.min(cfg.concurrency, 8) }, () => httpRequest(url, { ...cfg, maxTokens: 4 })));
const cpu0 = cpuUs(s.pid);
const http = await runWorkload(cfg, () => httpRequest(url, cfg));
const httpCpu = cpuUs(s.pid) - cpu0;
s.kill("SIGTERM");
await s.exited;

const overheadItlUs = (http.itl_mean_ms - direct.itl_mean_ms) * 1000;
const overheadTpotUs = (http.tpot_mean_ms - direct.tpot_mean_ms) * 1000;
const cpuPerTokDirect = direct.cpu_us / direct.output_tokens;
const cpuPerTokHttp = httpCpu / http.output_tokens;
const result = {
  bench: "serve",
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, platform: process.platform, bun: Bun.version },
  config: { ...cfg, prompt: undefined, prompt_chars: cfg.prompt.length },
  direct,
  http: { ...http, cpu_us: httpCpu },
  overhead: {
    per_token_itl_us: overheadItlUs,
    per_token_tpot_us: overheadTpotUs,
    cpu_per_token_direct_us: cpuPerTokDirect,
    cpu_per_token_http_us: cpuPerTokHttp,
    server_cpu_per_token_us: cpuPerTokHttp - cpuPerTokDirect,
    throughput_ratio_http_vs_direct: http.output_tokens_per_s / direct.output_tokens_per_s,
  },
};

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
const row = (name: string, r: Summary) =>
  `| ${name} | ${r.requests - r.failed}/${r.requests} | ${f(r.requests_per_s, 1)} | ${f(r.output_tokens_per_s, 0)} | ${f(r.ttft_ms.p50)} / ${f(r.ttft_ms.p90)} / ${f(r.ttft_ms.p99)} | ${f(r.itl_ms.p50, 3)} / ${f(r.itl_ms.p90, 3)} / ${f(r.itl_ms.p99, 3)} | ${f(r.e2e_ms.p50, 1)} / ${f(r.e2e_ms.p99, 1)} |`;
console.log(`\nbench/serve — engine ${cfg.engine}, concurrency ${cfg.concurrency}, ${cfg.requests} requests × ${cfg.maxTokens} tokens, prompt ${cfg.prompt.length} chars`);
console.log("| path | ok | req/s | tok/s | TTFT ms p50/p90/p99 | ITL ms p50/p90/p99 | e2e ms p50/p99 |");
console.log("|---|---:|---:|---:|---:|---:|---:|");
console.log(row("direct (engine.generate)", direct));
console.log(row("HTTP + SSE", http));
console.log(
  `\nserver overhead per streamed token: ${f(overheadItlUs, 1)} µs (mean ITL), ${f(overheadTpotUs, 1)} µs (mean TPOT); ` +
    `CPU per token ${f(cpuPerTokHttp, 1)} µs via HTTP vs ${f(cpuPerTokDirect, 1)} µs direct (server share ${f(cpuPerTokHttp - cpuPerTokDirect, 1)} µs); ` +
    `throughput HTTP/direct ${f(result.overhead.throughput_ratio_http_vs_direct, 3)}`,
);
const out = resolve(root, cfg.out);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
console.log(`wrote ${cfg.out}`);
if (http.failed > 0 || direct.failed > 0) process.exitCode = 1;
