// Helpers for test/proc: a real `headroom serve` process (bun src/cli.ts) over stories260K on
// the CPU backend, real HTTP clients, SSE parsing.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { spawnHeadroom, waitHealthy, type Spawned } from "../ship/proc.ts";

const ROOT = resolve(import.meta.dir, "../..");
const MODELS = process.env.HEADROOM_MODELS_DIR ?? resolve(ROOT, "../shared/models");
export const GGUF = resolve(MODELS, "stories260K/stories260K.gguf");
export const HAVE = existsSync(GGUF) && existsSync(resolve(ROOT, "build/libheadroom_cpu.so"));

export interface Served extends Spawned {
  base: string;
}

/** Starts the server and waits until /health is 200. */
export async function serve(extra: string[] = [], env: Record<string, string | undefined> = {}): Promise<Served> {
  const s = spawnHeadroom(
    [
      process.execPath,
      resolve(ROOT, "src/cli.ts"),
      "serve",
      "--model",
      GGUF,
      "--device",
      "cpu",
      "--device-memory",
      "256MiB",
      "--max-model-len",
      "256",
      "--port",
      "0",
      ...extra,
    ],
    { cwd: ROOT, env: { HEADROOM_TEST_FAULT: undefined, ...env } },
  );
  const base = await s.url;
  await waitHealthy(base);
  return Object.assign(s, { base });
}

export function complete(base: string, body: Record<string, unknown>): Promise<Response> {
  return fetch(`${base}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: "Once upon a time", temperature: 0, ...body }),
  });
}

/** The `data:` payloads of an SSE body, JSON-parsed except "[DONE]". */
export function sseEvents(text: string): unknown[] {
  return text
    .split("\n\n")
    .filter((b) => b.startsWith("data: "))
    .map((b) => b.slice(6))
    .map((d) => (d === "[DONE]" ? "[DONE]" : (JSON.parse(d) as unknown)));
}

/** Sequences the engine holds (running + waiting), from GET /v1/kv. */
export async function engineSequences(base: string): Promise<number> {
  const kv = (await (await fetch(`${base}/v1/kv`)).json()) as { running: number; waiting: number };
  return kv.running + kv.waiting;
}

/** The JSON log lines of a server. */
export function logLines(s: Spawned): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of s.lines) {
    try {
      out.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  }
  return out;
}
