// A real server process whose engine process segfaults, throws or hangs at a given step
// (HEADROOM_TEST_FAULT, src/engine/fault.ts): in-flight requests end with an OpenAI-style
// engine_error (503 JSON, or a final SSE error event + [DONE] for streams), /health is 503
// while the engine is down, the cause is logged without source snippets, the engine restarts
// and serves again; an engine that keeps dying makes the server exit non-zero.
import { afterAll, describe, expect, test } from "bun:test";
import { complete, HAVE, logLines, serve, sseEvents, type Served } from "./serve-proc.ts";

if (!HAVE) console.warn("[engine-faults] skipped: stories260K or build/libheadroom_cpu.so missing");

const procs: Served[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
});

interface ErrBody {
  error: { message: string; type: string; code: string };
}

/** Two streams and two non-streams in flight when the engine fails (`:inflight=4`: at the
 *  first step from 5 on at which all four have produced tokens, however slowly they arrive). */
async function failInflight(s: Served): Promise<void> {
  const reqs = [true, false, true, false].map(async (stream) => {
    const res = await complete(s.base, { max_tokens: 200, ignore_eos: true, stream });
    return { stream, status: res.status, text: await res.text() };
  });
  for (const r of await Promise.all(reqs)) {
    if (r.stream) {
      // Headers went out with the first token: the stream ends with an error event + [DONE].
      expect(r.status).toBe(200);
      const events = sseEvents(r.text);
      expect(events.at(-1)).toBe("[DONE]");
      const err = events.at(-2) as ErrBody;
      expect(err.error).toMatchObject({ type: "engine_error", code: "engine_error" });
    } else {
      expect(r.status).toBe(503);
      const body = JSON.parse(r.text) as ErrBody;
      expect(body.error).toMatchObject({ type: "engine_error", code: "engine_error" });
      // All four were running when it died: each failed inside the engine.
      expect(body.error.message).toMatch(/The engine failed/);
    }
  }
}

/** After a failure: /health 503 until the restarted engine is ready, then it serves again. */
async function recovers(s: Served): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < 600; i++) {
    const r = await fetch(`${s.base}/health`);
    const b = (await r.json()) as { status: string };
    seen.push(`${r.status} ${b.status}`);
    if (r.status === 200) break;
    await Bun.sleep(25);
  }
  expect(seen[0]).toBe("503 restarting");
  expect(seen.at(-1)).toBe("200 ok");
  const ok = await complete(s.base, { max_tokens: 30 });
  expect(ok.status).toBe(200);
  const body = (await ok.json()) as { choices: { text: string }[] };
  expect(body.choices[0]!.text).toStartWith(", there was a little girl named Lily.");
  return seen;
}

/** The death is logged with its cause; no stack frame or source line reaches the log. */
function loggedCause(s: Served): string {
  const lines = logLines(s);
  const died = lines.find((l) => l.msg === "engine died");
  expect(died).toBeDefined();
  expect(lines.find((l) => l.msg === "engine restarted")).toBeDefined();
  for (const raw of s.lines) {
    expect(raw).not.toMatch(/\.ts:\d+/);
    expect(raw).not.toContain("at <anonymous>");
  }
  return String(died!.cause);
}

describe.skipIf(!HAVE)("engine failures", () => {
  test("segfault: requests fail with engine_error, the engine restarts", async () => {
    const s = await serve([], { HEADROOM_TEST_FAULT: "segfault@5:inflight=4" });
    procs.push(s);
    await failInflight(s);
    await recovers(s);
    expect(loggedCause(s)).toBe("signal SIGSEGV");
    expect(await (await fetch(`${s.base}/metrics`)).text()).toMatch(/^headroom_engine_restarts_total 1$/m);
    await s.kill();
  }, 60_000);

  test("exception: the message is logged, not the source", async () => {
    const s = await serve([], { HEADROOM_TEST_FAULT: "throw@5:inflight=4" });
    procs.push(s);
    await failInflight(s);
    await recovers(s);
    expect(loggedCause(s)).toMatch(/^exception: Error: injected fault: throw at step \d+$/);
    await s.kill();
  }, 60_000);

  test("hang: the watchdog (--engine-step-timeout) kills and restarts it", async () => {
    const s = await serve(["--engine-step-timeout", "1"], { HEADROOM_TEST_FAULT: "hang@5:inflight=4" });
    procs.push(s);
    const t0 = performance.now();
    await failInflight(s);
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThan(900);
    expect(ms).toBeLessThan(10_000);
    await recovers(s);
    expect(loggedCause(s)).toStartWith("hung: no progress for ");
    await s.kill();
  }, 60_000);

  test("an engine that keeps dying: bounded restarts, then the server exits non-zero", async () => {
    const s = await serve([], { HEADROOM_TEST_FAULT: "throw@1:every" });
    procs.push(s);
    let code: number | null = null;
    void s.exited.then((c) => (code = c));
    const t0 = performance.now();
    // Each engine incarnation dies at its first step: keep sending work until the server gives up.
    while (code === null && performance.now() - t0 < 60_000) {
      const r = await complete(s.base, { max_tokens: 4 }).catch(() => null);
      if (r) {
        // Either the request met the failure, or it arrived while the engine was restarting.
        expect(r.status).toBe(503);
        expect(((await r.json()) as ErrBody).error.code).toBe("engine_error");
      }
      await Bun.sleep(100);
    }
    expect(await s.exited).toBe(1);
    const lines = logLines(s);
    expect(lines.filter((l) => l.msg === "engine died")).toHaveLength(4); // first start + 3 restarts
    expect(lines.find((l) => l.msg === "engine keeps failing; giving up")).toBeDefined();
  }, 90_000);
});

describe.skipIf(!HAVE || process.platform !== "linux")("engine process lifetime", () => {
  test("a hung engine does not outlive a server killed with SIGKILL", async () => {
    const s = await serve([], { HEADROOM_TEST_FAULT: "hang@1" });
    procs.push(s);
    const children = () =>
      Bun.spawnSync(["ps", "-o", "pid=", "--ppid", String(s.proc.pid)])
        .stdout.toString()
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
    const [engine] = children();
    expect(engine).toBeGreaterThan(0);
    void complete(s.base, { max_tokens: 4 }).catch(() => {}); // the engine spins at step 1
    await Bun.sleep(300);
    s.proc.kill("SIGKILL");
    await s.exited;
    const alive = () => Bun.spawnSync(["kill", "-0", String(engine)]).exitCode === 0;
    for (let i = 0; i < 40 && alive(); i++) await Bun.sleep(50);
    expect(alive()).toBe(false);
  }, 30_000);
});
