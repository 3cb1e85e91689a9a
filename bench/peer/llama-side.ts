// llama.cpp's figures from its own tools (built by llama-build.ts), llama.cpp defaults otherwise
// (flash attention auto, f16 KV cache, n_batch 2048 / n_ubatch 512), the settings recorded:
//   llama-bench -p P -n G -d 0,D -r 1 -o json      → pp P, tg G at depth 0 and D
//   llama-batched-bench -npp P -ntg G -npl B       → 16-sequence aggregate decode (S_TG)
import { spawnSync } from "node:child_process";

export interface LlamaBenchRow {
  n_prompt: number;
  n_gen: number;
  n_depth: number;
  avg_ts: number;
  samples_ts: number[];
  flash_attn?: number | boolean;
  type_k?: string;
  type_v?: string;
  n_batch?: number;
  n_ubatch?: number;
  n_threads?: number;
  build_commit?: string;
  cpu_info?: string;
  model_type?: string;
}

export interface BatchedRow {
  pp: number;
  tg: number;
  pl: number;
  n_kv_max: number;
  n_threads: number;
  flash_attn: number;
  speed_pp: number;
  speed_tg: number;
  t_tg: number;
}

/** Prefix for pinning a command to CPUs (taskset), or nothing. */
export type Pin = string[];

function exec(pin: Pin, bin: string, args: string[], timeoutS = 600): string {
  const [cmd, ...rest] = pin.length ? [...pin, bin, ...args] : [bin, ...args];
  const r = spawnSync(cmd!, rest, { encoding: "utf8", timeout: timeoutS * 1000, maxBuffer: 64 << 20 });
  if (r.status !== 0)
    throw new Error(
      `${bin.split("/").at(-1)} ${args.join(" ")} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}):\n${(r.stderr ?? "").slice(-3000)}`,
    );
  return r.stdout;
}

/** pp `prompt` and tg `gen` at each depth, one timed repetition (llama-bench warms up first). */
export function llamaBench(
  bin: string,
  pin: Pin,
  model: string,
  threads: number,
  prompt: number,
  gen: number,
  depths: number[],
): LlamaBenchRow[] {
  const out = exec(pin, bin, [
    "-m",
    model,
    "-t",
    String(threads),
    "-p",
    String(prompt),
    "-n",
    String(gen),
    "-d",
    depths.join(","),
    "-r",
    "1",
    "-o",
    "json",
  ]);
  return JSON.parse(out) as LlamaBenchRow[];
}

export function pick(rows: LlamaBenchRow[], kind: "pp" | "tg", depth: number): LlamaBenchRow {
  const r = rows.find((x) => x.n_depth === depth && (kind === "pp" ? x.n_prompt > 0 && x.n_gen === 0 : x.n_gen > 0 && x.n_prompt === 0));
  if (!r) throw new Error(`llama-bench printed no ${kind} row at depth ${depth}`);
  return r;
}

/** `batch` sequences, each its own `prompt`-token prompt, then `gen` steps decoding all of them. */
export function batchedBench(
  bin: string,
  pin: Pin,
  model: string,
  threads: number,
  prompt: number,
  gen: number,
  batch: number,
): BatchedRow {
  const ctx = Math.ceil((batch * (prompt + gen)) / 256) * 256;
  const out = exec(pin, bin, [
    "-m",
    model,
    "-t",
    String(threads),
    "-tb",
    String(threads),
    "-c",
    String(ctx),
    "-npp",
    String(prompt),
    "-ntg",
    String(gen),
    "-npl",
    String(batch),
    "--output-format",
    "jsonl",
  ]);
  const line = out
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("{"))
    .at(-1);
  if (!line) throw new Error(`llama-batched-bench printed no JSON line:\n${out.slice(-2000)}`);
  return JSON.parse(line) as BatchedRow;
}
