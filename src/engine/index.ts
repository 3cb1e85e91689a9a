// createEngine: the Engine the server talks to. It starts the engine worker (worker.ts) and
// returns at once; /health answers 503 until the worker reports ready.
import { engineOptionsFrom as engineRowsOf, type ServeOptions } from "../options/table.ts";
import type { StartupProgress } from "../server/progress.ts";
import type { Engine, EngineHealth, EngineStats, GenerateRequest, ModelDescription, TokenEvent } from "./api.ts";
import type { AllocatorReport, MemoryReport } from "../memory/report-schema.ts";
import { fromWire, type CallMethod, type FromWorker, type ToWorker } from "./protocol.ts";
import type { EngineOptions } from "./startup.ts";

export interface EngineHooks {
  onProgress?: (p: StartupProgress) => void;
  /** Engine log lines (the start-up memory line among them). */
  onLog?: (message: string) => void;
}

type Item = TokenEvent | Error;

/** An unbounded async queue of one request's events. */
class EventQueue {
  private items: Item[] = [];
  private waiter: (() => void) | null = null;
  push(x: Item): void {
    this.items.push(x);
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
  async next(): Promise<Item> {
    while (this.items.length === 0) await new Promise<void>((r) => (this.waiter = r));
    return this.items.shift()!;
  }
}

/** The engine's options: the rows marked `engine` in src/options/table.ts (type-checked here). */
export function engineOptionsFrom(o: ServeOptions): EngineOptions {
  return engineRowsOf(o);
}

export class WorkerEngine implements Engine {
  private readonly worker: Worker;
  private state: EngineHealth = "starting";
  private desc: ModelDescription | null = null;
  private readonly streams = new Map<string, EventQueue>();
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextCall = 1;
  private readonly readyPromise: Promise<void>;
  private closedResolve: (() => void) | null = null;
  startupLine = "";

  constructor(
    options: EngineOptions,
    private readonly hooks: EngineHooks = {},
  ) {
    // In the single binary (src/ship/compile.ts: entry points src/cli.ts + src/engine/worker.ts,
    // root src/) import.meta.url is the executable's /$bunfs/root/<name>, the worker /$bunfs/root/engine/worker.js.
    const workerUrl = Bun.isStandaloneExecutable ? new URL("./engine/worker.ts", import.meta.url) : new URL("./worker.ts", import.meta.url);
    this.worker = new Worker(workerUrl.href);
    let resolveReady!: () => void;
    let rejectReady!: (e: Error) => void;
    this.readyPromise = new Promise<void>((res, rej) => {
      resolveReady = res;
      rejectReady = rej;
    });
    this.readyPromise.catch(() => {}); // observed through ready()
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => {
      const m = e.data;
      switch (m.type) {
        case "ready":
          this.desc = m.model;
          this.startupLine = m.startupLine;
          this.state = "ready";
          resolveReady();
          return;
        case "failed":
          this.state = "dead";
          rejectReady(fromWire(m.error));
          this.failAll(fromWire(m.error));
          return;
        case "events":
          for (const ev of m.events) this.streams.get(ev.requestId)?.push(ev);
          return;
        case "request-error":
          this.streams.get(m.requestId)?.push(fromWire(m.error));
          return;
        case "reply": {
          const c = this.calls.get(m.id);
          this.calls.delete(m.id);
          if (m.error) c?.reject(fromWire(m.error));
          else c?.resolve(m.result);
          return;
        }
        case "progress":
          this.hooks.onProgress?.({ stage: m.stage, done: m.done, total: m.total, unit: m.unit, message: m.message });
          return;
        case "log":
          this.hooks.onLog?.(m.message);
          return;
        case "closed":
          this.state = "dead";
          this.closedResolve?.();
          return;
      }
    };
    this.worker.onerror = (e: ErrorEvent) => {
      const err = Object.assign(new Error(`engine worker crashed: ${e.message}`), { code: "engine_dead" });
      this.state = "dead";
      rejectReady(err);
      this.failAll(err);
    };
    this.post({ type: "start", options });
  }

  private post(m: ToWorker): void {
    this.worker.postMessage(m);
  }

  private failAll(err: Error): void {
    for (const q of this.streams.values()) q.push(err);
    for (const c of this.calls.values()) c.reject(err);
    this.calls.clear();
  }

  private call<T>(method: CallMethod, args: unknown[]): Promise<T> {
    if (this.state === "dead") return Promise.reject(Object.assign(new Error("engine is dead"), { code: "engine_dead" }));
    const id = this.nextCall++;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.post({ type: "call", id, method, args } as ToWorker);
    });
  }

  health(): EngineHealth {
    return this.state;
  }

  ready(): Promise<void> {
    return this.readyPromise;
  }

  model(): ModelDescription {
    if (!this.desc) throw Object.assign(new Error("engine is still starting"), { code: "engine_starting" });
    return this.desc;
  }

  async *generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<TokenEvent> {
    if (this.state !== "ready") throw Object.assign(new Error(`engine is ${this.state}`), { code: "engine_dead" });
    if (this.streams.has(req.requestId)) throw Object.assign(new Error(`duplicate request id ${req.requestId}`), { code: "invalid_request" });
    const q = new EventQueue();
    this.streams.set(req.requestId, q);
    let finished = false;
    const onAbort = () => {
      if (!finished) this.post({ type: "abort", requestId: req.requestId });
    };
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    this.post({ type: "generate", req });
    try {
      for (;;) {
        const item = await q.next();
        if (item instanceof Error) {
          finished = true;
          throw item;
        }
        if (item.finishReason !== null) finished = true;
        yield item;
        if (finished) return;
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.streams.delete(req.requestId);
      if (!finished) this.post({ type: "abort", requestId: req.requestId }); // consumer went away
    }
  }

  stats(): Promise<EngineStats> {
    return this.call("stats", []);
  }

  memory(): Promise<MemoryReport> {
    return this.call("memory", []);
  }

  allocator(): Promise<AllocatorReport> {
    return this.call("allocator", []);
  }

  async close(): Promise<void> {
    if (this.state === "dead") {
      this.worker.terminate();
      return;
    }
    const closed = new Promise<void>((r) => (this.closedResolve = r));
    this.post({ type: "shutdown" });
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
    this.state = "dead";
    this.worker.terminate();
  }
}

export function createEngine(options: ServeOptions, hooks: EngineHooks = {}): Engine {
  return new WorkerEngine(engineOptionsFrom(options), hooks);
}
