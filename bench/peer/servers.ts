// The two servers of the HTTP row, started the way a user would start them, on loopback:
//   llama-server -m F -t T -tb T -np S -c S*ctx --no-webui        (llama.cpp defaults otherwise)
//   headroom serve --model F --device cpu --max-num-seqs S …      (HEADROOM_NUM_THREADS=T)
// both under the same CPU pinning, and llama.cpp's greedy continuation from its native
// /completion endpoint (token ids and top-2 probabilities).
import { resolve } from "node:path";
import type { Subprocess } from "bun";

import { BAN_BIAS } from "./http.ts";
import type { Pin } from "./llama-side.ts";

const ROOT = resolve(import.meta.dir, "../..");

export interface Server {
  name: string;
  url: string;
  proc: Subprocess;
  /** What it was started with. */
  argv: string[];
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("") });
  const p = s.port!;
  await s.stop(true);
  return p;
}

async function waitHealthy(s: Server, timeoutS: number, stderrTail: () => string): Promise<void> {
  const until = performance.now() + timeoutS * 1000;
  while (performance.now() < until) {
    if (s.proc.exitCode !== null) throw new Error(`${s.name} exited (${s.proc.exitCode}) before it was ready:\n${stderrTail()}`);
    try {
      const r = await fetch(`${s.url}/health`);
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await Bun.sleep(200);
  }
  await s.stop();
  throw new Error(`${s.name} not healthy after ${timeoutS} s:\n${stderrTail()}`);
}

async function start(name: string, argv: string[], env: Record<string, string>, port: number): Promise<Server> {
  const proc = Bun.spawn(argv, { cwd: ROOT, env: { ...process.env, ...env }, stdout: "ignore", stderr: "pipe" });
  let tail = "";
  void (async () => {
    const dec = new TextDecoder();
    const reader = (proc.stderr as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      tail = (tail + dec.decode(value, { stream: true })).slice(-4000);
    }
  })();
  const s: Server = {
    name,
    url: `http://127.0.0.1:${port}`,
    proc,
    argv,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 15_000);
        await proc.exited;
        clearTimeout(t);
      }
    },
  };
  await waitHealthy(s, 300, () => tail);
  return s;
}

export async function startLlamaServer(
  bin: string,
  pin: Pin,
  model: string,
  threads: number,
  slots: number,
  ctxPerSlot: number,
): Promise<Server> {
  const port = await freePort();
  const args = [
    "-m",
    model,
    "-t",
    String(threads),
    "-tb",
    String(threads),
    "-np",
    String(slots),
    "-c",
    String(slots * ctxPerSlot),
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--no-webui",
  ];
  return start("llama-server", [...pin, bin, ...args], {}, port);
}

export async function startHeadroomServer(
  pin: Pin,
  model: string,
  threads: number,
  slots: number,
  budget: number | null,
  kvBytes: number,
  extra: string[] = [],
): Promise<Server> {
  const port = await freePort();
  const args = [
    "src/cli.ts",
    "serve",
    "--model",
    model,
    "--device",
    "cpu",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--max-num-seqs",
    String(slots),
    "--kv-cache-memory-bytes",
    String(kvBytes),
    "--log-level",
    "warn",
    ...(budget === null ? [] : ["--max-num-batched-tokens", String(budget)]),
    ...extra,
  ];
  return start("headroom serve", [...pin, process.execPath, ...args], { HEADROOM_NUM_THREADS: String(threads) }, port);
}

export interface Continuation {
  tokens: number[];
  /** Top-2 logprobs at each generated position. */
  top2: [number, number][];
}

/** llama-server's greedy continuation of `prompt` (token ids, used as given: no BOS added). */
export async function llamaGreedy(url: string, prompt: number[], n: number): Promise<Continuation> {
  const r = await fetch(`${url}/completion`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      prompt,
      n_predict: n,
      temperature: 0,
      n_probs: 2,
      ignore_eos: true,
      logit_bias: BAN_BIAS,
      cache_prompt: false,
      return_tokens: true,
      post_sampling_probs: false,
    }),
  });
  if (r.status !== 200) throw new Error(`llama-server /completion: HTTP ${r.status} ${await r.text()}`);
  const j = (await r.json()) as {
    tokens?: number[];
    tokens_evaluated?: number;
    completion_probabilities?: { id: number; logprob: number; top_logprobs?: { id: number; logprob: number }[] }[];
  };
  if (j.tokens_evaluated !== undefined && j.tokens_evaluated !== prompt.length)
    throw new Error(`llama-server evaluated ${j.tokens_evaluated} prompt tokens, sent ${prompt.length}`);
  const probs = j.completion_probabilities ?? [];
  const tokens = j.tokens ?? probs.map((p) => p.id);
  return { tokens, top2: probs.map((p) => [p.top_logprobs?.[0]?.logprob ?? NaN, p.top_logprobs?.[1]?.logprob ?? NaN]) };
}
