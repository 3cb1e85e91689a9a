// Graceful shutdown of a real server process: SIGTERM with 20 requests in flight (10 streams,
// 10 non-streams) lets every one finish; with a short --shutdown-timeout they end early with
// finish_reason "abort", a complete JSON body or a final chunk + [DONE]; the process exits 0.
import { afterAll, describe, expect, test } from "bun:test";
import { complete, engineSequences, HAVE, logLines, serve, sseEvents, type Served } from "./serve-proc.ts";

if (!HAVE) console.warn("[shutdown] skipped: stories260K or build/libheadroom_cpu.so missing");

const procs: Served[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
});

interface Outcome {
  status: number;
  stream: boolean;
  finish: string | null;
  completionTokens: number;
  done: boolean;
}

/** One request; the outcome says whether the client got a complete response. */
async function run(base: string, stream: boolean, maxTokens: number): Promise<Outcome> {
  const res = await complete(base, {
    max_tokens: maxTokens,
    ignore_eos: true,
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
  });
  const text = await res.text(); // throws on a reset connection
  if (!stream) {
    const body = JSON.parse(text) as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } };
    return {
      status: res.status,
      stream,
      finish: body.choices[0]!.finish_reason,
      completionTokens: body.usage.completion_tokens,
      done: true,
    };
  }
  const events = sseEvents(text) as (
    | { choices: { finish_reason: string | null }[]; usage?: { completion_tokens: number } | null }
    | "[DONE]"
  )[];
  let finish: string | null = null;
  let tokens = -1;
  for (const e of events) {
    if (e === "[DONE]") continue;
    for (const c of e.choices) if (c.finish_reason !== null) finish = c.finish_reason;
    if (e.usage) tokens = e.usage.completion_tokens;
  }
  return { status: res.status, stream, finish, completionTokens: tokens, done: events.at(-1) === "[DONE]" };
}

/** 20 requests in flight (all admitted by the engine), then the signal. */
async function signalWithInflight(
  s: Served,
  maxTokens: number,
  signal: "SIGTERM" | "SIGINT",
): Promise<{ outcomes: Outcome[]; code: number; ms: number }> {
  const all = Array.from({ length: 20 }, (_, i) => run(s.base, i % 2 === 0, maxTokens));
  const t0 = performance.now();
  while ((await engineSequences(s.base)) < 20) {
    if (performance.now() - t0 > 20_000) throw new Error("requests did not reach the engine");
    await Bun.sleep(20);
  }
  const tSig = performance.now();
  s.proc.kill(signal);
  // The listener closes at once: a new connection is refused (or, at worst, told 503).
  await Bun.sleep(100);
  const late = await fetch(`${s.base}/health`).then(
    (r) => r.status,
    () => "refused",
  );
  expect(late === "refused" || late === 503).toBe(true);
  const outcomes = await Promise.all(all);
  const code = await s.exited;
  return { outcomes, code, ms: performance.now() - tSig };
}

describe.skipIf(!HAVE)("graceful shutdown", () => {
  test("SIGTERM with 20 in-flight requests: every one completes, exit 0", async () => {
    const s = await serve();
    procs.push(s);
    // 200 tokens each: long enough that the first admitted is still running when the last arrives
    // on a loaded machine (the signal waits for all 20 to be in the engine).
    const { outcomes, code } = await signalWithInflight(s, 200, "SIGTERM");
    expect(code).toBe(0);
    for (const o of outcomes) expect(o).toEqual({ status: 200, stream: o.stream, finish: "length", completionTokens: 200, done: true });
    const logs = logLines(s);
    expect(logs.find((l) => l.msg === "draining")).toBeDefined();
    expect(logs.find((l) => l.msg === "stopped")).toMatchObject({ requests_ended_by_timeout: false });
  }, 90_000);

  test("SIGINT with --shutdown-timeout 0.5: the rest end with finish_reason abort, a final chunk and [DONE]", async () => {
    // stories260K's whole context (512): a request admitted first may still finish within the
    // 0.5 s on a fast machine (a step of 20 sequences takes about a millisecond); it must then be
    // complete, and the ones still running at the deadline end with "abort".
    const s = await serve(["--shutdown-timeout", "0.5", "--max-model-len", "512"]);
    procs.push(s);
    const maxTokens = 500;
    const { outcomes, code, ms } = await signalWithInflight(s, maxTokens, "SIGINT");
    expect(code).toBe(0);
    expect(ms).toBeLessThan(8000);
    for (const o of outcomes) {
      expect(o.status).toBe(200);
      expect(o.done).toBe(true);
      if (o.finish === "length") expect(o.completionTokens).toBe(maxTokens);
      else {
        expect(o.finish).toBe("abort");
        expect(o.completionTokens).toBeGreaterThanOrEqual(0);
        expect(o.completionTokens).toBeLessThan(maxTokens);
      }
    }
    expect(outcomes.filter((o) => o.finish === "abort").length).toBeGreaterThan(0);
    expect(logLines(s).find((l) => l.msg === "stopped")).toMatchObject({ requests_ended_by_timeout: true });
  }, 90_000);
});
