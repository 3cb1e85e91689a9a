// The engine client's supervision (src/engine/index.ts) over a scripted transport: failures end
// in-flight work with engine_error, stale messages of a dead engine are ignored, the watchdog
// fires only while there is work, the restart policy bounds restarts; plus the fault-spec parser
// and the in-process (worker) mode producing what the engine process produces.
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { TokenEvent } from "../../src/engine/api.ts";
import { createEngine, EngineClient } from "../../src/engine/index.ts";
import { loadTextModel } from "../../src/frontend/text-model.ts";
import { faultHook, parseFault } from "../../src/engine/fault.ts";
import type { FromWorker, ToWorker } from "../../src/engine/protocol.ts";
import { RestartPolicy } from "../../src/engine/restart-policy.ts";
import type { TransportFactory, TransportHandlers } from "../../src/engine/transport.ts";
import { defaultServeOptions } from "../../src/server/options.ts";
import { engineOptions, greedyParams } from "./engine-helpers.ts";

/** One scripted engine incarnation: the test plays the engine's side. */
interface Scripted {
  start: number;
  sent: ToWorker[];
  killed: boolean;
  h: TransportHandlers;
  emit(m: FromWorker): void;
}

function scripted(): { factory: TransportFactory; incarnations: Scripted[] } {
  const incarnations: Scripted[] = [];
  const factory: TransportFactory = (h, start) => {
    const inc: Scripted = { start, sent: [], killed: false, h, emit: (m) => h.onMessage(m) };
    incarnations.push(inc);
    return {
      send: (m) => {
        inc.sent.push(m);
        // Like engine-loop.ts: a shutdown is answered with `closed`, then the process ends.
        if (m.type === "shutdown")
          queueMicrotask(() => {
            h.onMessage({ type: "closed" });
            h.onExit("exit code 0");
          });
      },
      kill: () => void (inc.killed = true),
    };
  };
  return { factory, incarnations };
}

const model = { id: "m", maxModelLen: 64, vocabSize: 100, randomWeights: false };
const ready: FromWorker = { type: "ready", model, startupLine: "" };
const fast = { maxRestarts: 2, windowMs: 60_000, backoffMs: 1, maxBackoffMs: 4 };

function tokenEvent(requestId: string, tokenId: number, finish: TokenEvent["finishReason"] = null): TokenEvent {
  return { requestId, tokenIds: [tokenId], finishReason: finish, promptTokens: 1, completionTokens: 1 };
}

async function collect(it: AsyncIterable<TokenEvent>): Promise<TokenEvent[] | Error> {
  const out: TokenEvent[] = [];
  try {
    for await (const ev of it) out.push(ev);
    return out;
  } catch (e) {
    return e as Error;
  }
}

describe("engine client supervision", () => {
  test("a death fails in-flight streams and calls with engine_error, restarts with the same options, ignores the dead engine", async () => {
    const { factory, incarnations } = scripted();
    const causes: string[] = [];
    const opts = engineOptions(null);
    const c = new EngineClient(opts, { onIncident: (_l, m, f) => m === "engine died" && causes.push(String(f?.cause)) }, factory, {
      restart: fast,
      stepTimeoutMs: 60_000,
    });
    const first = incarnations[0]!;
    expect(first.sent[0]).toEqual({ type: "start", options: opts });
    expect(c.health()).toBe("starting");
    first.emit(ready);
    await c.ready();
    const stream = collect(c.generate({ requestId: "r1", promptTokenIds: [1], params: greedyParams(4) }));
    const stats = c.stats().catch((e: Error) => e);
    await Bun.sleep(0);
    first.emit({ type: "events", events: [tokenEvent("r1", 5)] });
    first.h.onExit("signal SIGSEGV");
    const err = (await stream) as Error & { code?: string };
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe("engine_error");
    expect(err.message).toContain("signal SIGSEGV");
    expect(((await stats) as Error & { code?: string }).code).toBe("engine_error");
    expect(causes).toEqual(["signal SIGSEGV"]);
    expect(c.health()).toBe("restarting");
    await expect(c.stats()).rejects.toMatchObject({ code: "engine_error" });
    // A late message of the dead engine changes nothing.
    first.emit(ready);
    expect(c.health()).toBe("restarting");
    await Bun.sleep(20);
    expect(incarnations).toHaveLength(2);
    const second = incarnations[1]!;
    expect(second.start).toBe(2);
    expect(second.sent[0]).toEqual({ type: "start", options: opts });
    second.emit(ready);
    expect(c.health()).toBe("ready");
    const again = collect(c.generate({ requestId: "r2", promptTokenIds: [1], params: greedyParams(1) }));
    await Bun.sleep(0);
    second.emit({ type: "events", events: [tokenEvent("r2", 7, "length")] });
    expect(((await again) as TokenEvent[]).map((e) => e.tokenIds[0])).toEqual([7]);
    await c.close();
  });

  test("a fatal message (exception) is the cause; the policy gives up after maxRestarts", async () => {
    const { factory, incarnations } = scripted();
    let gaveUp = "";
    const c = new EngineClient(engineOptions(null), { onIncident: () => {}, onGiveUp: (cause) => (gaveUp = cause) }, factory, {
      restart: fast,
    });
    for (let i = 0; i < 3; i++) {
      await Bun.sleep(10);
      const inc = incarnations[i]!;
      inc.emit(ready);
      inc.emit({ type: "fatal", error: { name: "TypeError", message: `bad ${i}` } });
      expect(inc.killed).toBe(true);
    }
    expect(c.health()).toBe("dead");
    expect(gaveUp).toBe("exception: TypeError: bad 2");
    await Bun.sleep(20);
    expect(incarnations).toHaveLength(3);
    await c.close();
  });

  test("watchdog: silent with work = hung (killed, restarted); idle is not a hang", async () => {
    const { factory, incarnations } = scripted();
    const causes: string[] = [];
    const c = new EngineClient(
      engineOptions(null),
      { onIncident: (_l, m, f) => m === "engine died" && causes.push(String(f?.cause)) },
      factory,
      { restart: fast, stepTimeoutMs: 80 },
    );
    incarnations[0]!.emit(ready);
    await Bun.sleep(250); // idle: no hang
    expect(c.health()).toBe("ready");
    const stream = collect(c.generate({ requestId: "r", promptTokenIds: [1], params: greedyParams(50) }));
    // Progress (ticks) keeps it alive past the timeout…
    for (let i = 0; i < 5; i++) {
      await Bun.sleep(40);
      incarnations[0]!.emit({ type: "tick" });
    }
    expect(c.health()).toBe("ready");
    // …silence does not.
    const err = (await stream) as Error & { code?: string };
    expect(err.code).toBe("engine_error");
    expect(incarnations[0]!.killed).toBe(true);
    expect(causes[0]).toMatch(/^hung: no progress for \d+ ms/);
    await c.close();
  });

  test("an engine process that cannot be spawned on restart counts as a failure, not a server crash", async () => {
    const { factory, incarnations } = scripted();
    let spawns = 0;
    const flaky: TransportFactory = (h, start) => {
      if (++spawns > 1) throw new Error("spawn EAGAIN");
      return factory(h, start);
    };
    let gaveUp = "";
    const c = new EngineClient(engineOptions(null), { onIncident: () => {}, onGiveUp: (cause) => (gaveUp = cause) }, flaky, {
      restart: fast,
    });
    incarnations[0]!.emit(ready);
    incarnations[0]!.h.onExit("signal SIGKILL");
    await Bun.sleep(50);
    expect(c.health()).toBe("dead");
    expect(gaveUp).toBe("cannot start the engine process: spawn EAGAIN");
    expect(spawns).toBe(3); // the first, then two failed restarts (maxRestarts 2)
    await c.close();
  });

  test("start-up failure of the first engine is the server's error: no restart", async () => {
    const { factory, incarnations } = scripted();
    const c = new EngineClient(engineOptions(null), { onIncident: () => {} }, factory, { restart: fast });
    incarnations[0]!.emit({ type: "failed", error: { name: "Error", message: "no such model", code: undefined } });
    await expect(c.ready()).rejects.toThrow("no such model");
    expect(c.health()).toBe("dead");
    await Bun.sleep(20);
    expect(incarnations).toHaveLength(1);
  });
});

describe("restart policy and fault spec", () => {
  test("backoff doubles, bounded per window", () => {
    const p = new RestartPolicy({ maxRestarts: 3, windowMs: 1000, backoffMs: 100, maxBackoffMs: 250 });
    expect([p.next(0), p.next(10), p.next(20), p.next(30)]).toEqual([100, 200, 250, null]);
    expect(p.next(1005)).toBe(250); // the first restart left the window: 2 recent ones remain
    expect(p.next(1005)).toBeNull();
  });

  test("HEADROOM_TEST_FAULT syntax", () => {
    expect(parseFault(undefined)).toBeNull();
    expect(parseFault("segfault@3")).toEqual({ kind: "segfault", step: 3, inflight: 0, every: false });
    expect(parseFault("hang@12:every")).toEqual({ kind: "hang", step: 12, inflight: 0, every: true });
    expect(parseFault("throw@5:inflight=4:every")).toEqual({ kind: "throw", step: 5, inflight: 4, every: true });
    expect(() => parseFault("crash@1")).toThrow("HEADROOM_TEST_FAULT");
    expect(() => parseFault("throw@0")).toThrow();
    expect(() => parseFault("throw@1:inflight=0")).toThrow();
  });

  test("a fault fires once, at its step, or later once enough requests are running with output", () => {
    const view = (n: number) => ({ runningWithOutput: (min: number) => (min === 2 ? n : 0) });
    const plain = faultHook(parseFault("throw@3"), 1)!;
    expect(() => plain(2, view(0))).not.toThrow();
    expect(() => plain(3, view(0))).toThrow("injected fault: throw at step 3");
    expect(() => plain(4, view(0))).not.toThrow();
    const gated = faultHook(parseFault("throw@3:inflight=4"), 1)!;
    expect(() => gated(3, view(3))).not.toThrow();
    expect(() => gated(9, view(3))).not.toThrow();
    expect(() => gated(10, view(4))).toThrow("injected fault: throw at step 10");
    // Only the first engine process faults unless `:every`.
    expect(faultHook(parseFault("throw@3"), 2)).toBeNull();
    expect(faultHook(parseFault("throw@3:every"), 2)).not.toBeNull();
  });
});

const GGUF = resolve(process.env.HEADROOM_MODELS_DIR ?? resolve(import.meta.dir, "../../../shared/models"), "stories260K/stories260K.gguf");
const HAVE = existsSync(GGUF) && existsSync(resolve(import.meta.dir, "../../build/libheadroom_cpu.so"));

describe.skipIf(!HAVE)("process and worker modes", () => {
  test("both produce the published greedy story", async () => {
    const options = {
      ...defaultServeOptions(),
      model: GGUF,
      device: "cpu" as const,
      deviceMemory: 256 * 2 ** 20,
      maxModelLen: 256,
      maxNumSeqs: 8,
      maxNumBatchedTokens: 256,
    };
    const tok = loadTextModel(GGUF).tokenizer;
    const ids = tok.encode("Once upon a time");
    for (const mode of ["process", "worker"] as const) {
      const e = createEngine(options, { onIncident: () => {} }, { mode });
      await e.ready();
      const evs = (await collect(e.generate({ requestId: mode, promptTokenIds: ids, params: greedyParams(12) }))) as TokenEvent[];
      expect(tok.decode(evs.flatMap((x) => x.tokenIds))).toStartWith(", there was a little girl named Lily.");
      await e.close();
      expect(e.health()).toBe("dead");
    }
  }, 60_000);
});
