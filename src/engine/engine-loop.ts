// The engine core's main loop, independent of where it runs (engine-process.ts: its own
// process, the default; worker.ts: a Worker of the server process, for comparison). It owns the
// device, the model and the EngineCore; messages (protocol.ts) are handled between steps, so a
// cancel takes effect within one step.
import { HostPressureReleaser } from "../memory/pressure.ts";
import { EngineCore } from "./engine-core.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";
import type { StepView } from "./fault.ts";
import { toWire } from "./protocol.ts";
import { startEngine, type StartedEngine } from "./startup.ts";

/** The channel to the engine client. */
export interface EnginePort {
  post(m: FromWorker): void;
  /** Registers the one handler for messages from the client. */
  onMessage(handler: (m: ToWorker) => void): void;
}

export interface LoopHooks {
  /** Called before step `n` (1-based) runs; test fault injection (fault.ts) lives here. */
  beforeStep?: (n: number, view: StepView) => void;
}

/** Runs until a shutdown message; rejects when a step (or start-up bookkeeping) throws. */
export async function runEngineLoop(port: EnginePort, hooks: LoopHooks = {}): Promise<void> {
  const post = port.post;
  const inbox: ToWorker[] = [];
  let wake: (() => void) | null = null;
  // Assigned inside handle(): typed with `as` so control flow analysis does not narrow to null.
  let core = null as EngineCore | null;
  let started = null as StartedEngine | null;
  let stopping = false as boolean;
  let steps = 0;

  function wakeLoop(): void {
    const w = wake;
    wake = null;
    w?.();
  }

  port.onMessage((m) => {
    inbox.push(m);
    wakeLoop();
  });

  function handle(m: ToWorker): void {
    switch (m.type) {
      case "start": {
        try {
          started = startEngine(
            m.options,
            (message) => post({ type: "log", message }),
            (p) => post({ type: "progress", ...p }),
          );
          core = new EngineCore(started, {
            maxNumSeqs: m.options.maxNumSeqs,
            maxWaiting: m.options.maxWaiting,
            servedModelName: m.options.servedModelName,
          });
          post({ type: "ready", model: core.model(), startupLine: started.startupLine });
          // Unified-memory devices: give cached allocator memory back when the host runs low.
          const releaser = new HostPressureReleaser(started.dev);
          const timer = setInterval(() => {
            if (stopping) return clearInterval(timer);
            const n = releaser.check();
            if (n > 0) post({ type: "log", message: `host memory pressure: released ${n} B of cached allocator memory` });
          }, 1000);
          (timer as { unref?: () => void }).unref?.();
        } catch (e) {
          post({ type: "failed", error: toWire(e) });
          stopping = true;
        }
        return;
      }
      case "generate":
        try {
          if (!core) throw Object.assign(new Error("engine is not ready"), { code: "engine_dead" });
          if (m.req.params.structured) {
            // The grammar compiles first (async); the loop is woken once the request is queued.
            const id = m.req.requestId;
            core.addAsync(m.req).then(wakeLoop, (e) => post({ type: "request-error", requestId: id, error: toWire(e) }));
          } else core.add(m.req);
        } catch (e) {
          post({ type: "request-error", requestId: m.req.requestId, error: toWire(e) });
        }
        return;
      case "abort": {
        const ev = core?.abort(m.requestId);
        if (ev) post({ type: "events", events: [ev] });
        return;
      }
      case "call":
        try {
          if (!core) throw new Error("engine is not ready");
          let result: unknown;
          if (m.method === "stats") result = core.stats();
          else if (m.method === "memory") result = core.memory();
          else result = core.allocator();
          post({ type: "reply", id: m.id, result });
        } catch (e) {
          post({ type: "reply", id: m.id, error: toWire(e) });
        }
        return;
      case "shutdown":
        stopping = true;
        return;
    }
  }

  for (;;) {
    while (inbox.length > 0) handle(inbox.shift()!);
    if (stopping) break;
    if (core?.hasWork()) {
      hooks.beforeStep?.(++steps, core);
      // Structured outputs: the grammar masks are computed while the step's forward pass runs
      // (launched first; asynchronous on CUDA), before the sampling tail that applies them.
      const events = await core.stepAsync();
      // Every step reports something, so the client's watchdog sees progress.
      post(events.length > 0 ? { type: "events", events } : { type: "tick" });
      // Let queued messages (new requests, cancels) in before the next step.
      await new Promise<void>((r) => setImmediate(r));
    } else {
      await new Promise<void>((r) => {
        if (inbox.length > 0) r();
        else wake = r;
      });
    }
  }
  try {
    started?.close();
  } finally {
    post({ type: "closed" });
  }
}
