// The engine worker: owns the device, the model and the EngineCore, and runs the step loop
// off the HTTP thread. Messages (protocol.ts) are handled between steps, so a cancel takes
// effect within one step.
import { EngineCore } from "./engine-core.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";
import { toWire } from "./protocol.ts";
import { startEngine, type StartedEngine } from "./startup.ts";
import { HostPressureReleaser } from "../memory/pressure.ts";

declare const self: Worker;

const post = (m: FromWorker) => self.postMessage(m);
const inbox: ToWorker[] = [];
let wake: (() => void) | null = null;
let core: EngineCore | null = null;
let started: StartedEngine | null = null;
let stopping = false;

function wakeLoop(): void {
  const w = wake;
  wake = null;
  w?.();
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  inbox.push(e.data);
  const w = wake;
  wake = null;
  w?.();
};

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
          // The grammar compiles first (async); the loop is woken when the request is queued.
          const id = m.req.requestId;
          core.addAsync(m.req).then(wakeLoop, (e) => {
            post({ type: "request-error", requestId: id, error: toWire(e) });
          });
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

async function loop(): Promise<void> {
  for (;;) {
    while (inbox.length > 0) handle(inbox.shift()!);
    if (stopping) break;
    if (core?.hasWork()) {
      // Structured outputs: the grammar masks are computed while the forward pass runs.
      const events = await core.stepAsync();
      if (events.length > 0) post({ type: "events", events });
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

void loop();
