// createEngine: the Engine the server talks to. It starts the engine core in its own process
// (process-transport.ts; `mode: "worker"` runs it in a Worker instead, for comparison) and
// returns at once; /health answers 503 until the engine reports ready.
//
// Supervision: when the engine dies (signal, exception, exit) or hangs (no progress for
// `stepTimeoutMs` while it has work), every in-flight request and call fails with an
// `engine_error`, the cause is reported through hooks.onIncident, and the engine is restarted
// with the same options after a backoff (restart-policy.ts). When the policy gives up, health
// is "dead" and hooks.onGiveUp runs (the CLI exits non-zero).
import { engineOptionsFrom as engineRowsOf, type ServeOptions } from "../options/table.ts";
import type { StartupProgress } from "../server/progress.ts";
import type { Engine, EngineHealth, EngineStats, GenerateRequest, ModelDescription, TokenEvent } from "./api.ts";
import type { AllocatorReport, MemoryReport } from "../memory/report-schema.ts";
import { processTransport } from "./process-transport.ts";
import { fromWire, type CallMethod, type FromWorker, type ToWorker } from "./protocol.ts";
import { DEFAULT_RESTART_POLICY, RestartPolicy, type RestartPolicyOptions } from "./restart-policy.ts";
import type { EngineOptions } from "./startup.ts";
import { EventQueue } from "./event-queue.ts";
import type { EngineTransport, TransportFactory } from "./transport.ts";
import { workerTransport } from "./worker-transport.ts";

export type IncidentLevel = "debug" | "info" | "warn" | "error";

export interface EngineHooks {
  onProgress?: (p: StartupProgress) => void;
  /** Engine log lines (the start-up memory line among them). */
  onLog?: (message: string) => void;
  /** Supervision events: deaths with their cause, restarts, the engine's stray output (debug). */
  onIncident?: (level: IncidentLevel, message: string, fields?: Record<string, unknown>) => void;
  /** The restart policy gave up: the engine stays dead. */
  onGiveUp?: (cause: string) => void;
}

export interface SupervisorOptions {
  /** "process" (default): the engine core in its own process; "worker": in a Worker. */
  mode?: "process" | "worker";
  /** A step with no progress for this long while the engine has work is a hang. */
  stepTimeoutMs?: number;
  restart?: RestartPolicyOptions;
}

/** The error every in-flight request gets when the engine dies (HTTP 503, code engine_error). */
export class EngineError extends Error {
  override name = "EngineError";
  readonly code = "engine_error";
}

/** The engine's options: the rows marked `engine` in src/options/table.ts (type-checked here). */
export function engineOptionsFrom(o: ServeOptions): EngineOptions {
  return engineRowsOf(o);
}

export class EngineClient implements Engine {
  private transport: EngineTransport | null = null;
  /** Engine processes started (1 = the first); `live` is the one whose messages count (0 = none). */
  private start = 0;
  private live = 0;
  private everReady = false;
  private state: EngineHealth = "starting";
  private desc: ModelDescription | null = null;
  private readonly streams = new Map<string, EventQueue>();
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextCall = 1;
  private readonly readyPromise: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (e: Error) => void;
  private closing = false;
  private closedResolve: (() => void) | null = null;
  private lastProgress = performance.now();
  private readonly watchdog: ReturnType<typeof setInterval>;
  private restartTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly policy: RestartPolicy;
  private readonly stepTimeoutMs: number;
  startupLine = "";

  constructor(
    private readonly options: EngineOptions,
    private readonly hooks: EngineHooks = {},
    private readonly factory: TransportFactory = processTransport,
    sup: Omit<SupervisorOptions, "mode"> = {},
  ) {
    this.stepTimeoutMs = sup.stepTimeoutMs ?? 60_000;
    this.policy = new RestartPolicy(sup.restart ?? DEFAULT_RESTART_POLICY);
    this.readyPromise = new Promise<void>((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    this.readyPromise.catch(() => {}); // observed through ready()
    this.watchdog = setInterval(() => this.checkProgress(), Math.max(10, Math.min(1000, this.stepTimeoutMs / 4)));
    this.watchdog.unref();
    this.spawn();
  }

  private incident(level: IncidentLevel, message: string, fields?: Record<string, unknown>): void {
    if (this.hooks.onIncident) this.hooks.onIncident(level, message, fields);
    else if (level === "error" || level === "warn") console.error(JSON.stringify({ level, msg: message, ...fields }));
  }

  private spawn(): void {
    const n = ++this.start;
    this.live = n;
    try {
      this.transport = this.factory(
        {
          onMessage: (m) => {
            if (n === this.live) this.onMessage(m);
          },
          onExit: (cause) => {
            if (n === this.live) this.died(cause);
          },
          onOutput: (line) => this.incident("debug", "engine output", { line }),
        },
        n,
      );
    } catch (e) {
      // Could not even start it (executable gone, out of processes): one more failure.
      this.died(`cannot start the engine process: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    this.transport.send({ type: "start", options: this.options });
  }

  private onMessage(m: FromWorker): void {
    this.lastProgress = performance.now();
    switch (m.type) {
      case "ready":
        this.desc = m.model;
        this.startupLine = m.startupLine;
        this.state = "ready";
        if (this.everReady) this.incident("info", "engine restarted", { start: this.start });
        this.everReady = true;
        this.resolveReady();
        return;
      case "failed":
        // Start-up failed: the first time it is the server's start-up error (no restart);
        // after a restart it counts as one more death.
        if (!this.everReady) {
          this.state = "dead";
          this.rejectReady(fromWire(m.error));
          this.failAll(fromWire(m.error));
          this.live = 0;
          this.transport?.kill();
          this.transport = null;
        } else this.died(`start-up failed: ${m.error.message}`);
        return;
      case "fatal":
        this.died(`exception: ${m.error.name}: ${m.error.message}`);
        return;
      case "events":
        for (const ev of m.events) this.streams.get(ev.requestId)?.push(ev);
        return;
      case "tick":
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
        this.closedResolve?.();
        return;
    }
  }

  /** Watchdog: work outstanding and nothing heard for stepTimeoutMs = a hung step. */
  private checkProgress(): void {
    if (this.state !== "ready" || (this.streams.size === 0 && this.calls.size === 0)) return;
    const silent = performance.now() - this.lastProgress;
    if (silent > this.stepTimeoutMs)
      this.died(`hung: no progress for ${Math.round(silent)} ms (--engine-step-timeout ${this.stepTimeoutMs} ms)`);
  }

  /** The current incarnation is gone (or must go): fail its work, then restart or give up. */
  private died(cause: string): void {
    const t = this.transport;
    this.transport = null;
    this.live = 0; // ignore anything more from the dead incarnation
    t?.kill();
    if (this.closing) {
      this.state = "dead";
      this.closedResolve?.();
      return;
    }
    if (!this.everReady) {
      // Died during the first start-up: that is the server's start-up error.
      const err = new EngineError(`engine failed during start-up (${cause})`);
      this.state = "dead";
      this.incident("error", "engine died during start-up", { cause });
      this.rejectReady(err);
      this.failAll(err);
      return;
    }
    this.incident("error", "engine died", { cause, in_flight: this.streams.size, start: this.start });
    this.failAll(new EngineError(`The engine failed (${cause}) and is restarting; the request was not completed.`));
    const delay = this.policy.next(Date.now());
    if (delay === null) {
      this.state = "dead";
      this.incident("error", "engine keeps failing; giving up", { cause, starts: this.start });
      this.hooks.onGiveUp?.(cause);
      return;
    }
    this.state = "restarting";
    this.incident("warn", "restarting engine", { delay_ms: delay, start: this.start + 1 });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (!this.closing) this.spawn();
    }, delay);
  }

  private failAll(err: Error): void {
    for (const q of this.streams.values()) q.push(err);
    for (const c of this.calls.values()) c.reject(err);
    this.calls.clear();
  }

  private post(m: ToWorker): void {
    this.transport?.send(m);
  }

  private notReady(): Error {
    return this.state === "restarting"
      ? new EngineError("The engine is restarting after a failure; retry shortly.")
      : Object.assign(new Error(`engine is ${this.state}`), { code: "engine_dead" });
  }

  /** Work arriving at an idle engine restarts the watchdog's clock. */
  private touch(): void {
    if (this.streams.size === 0 && this.calls.size === 0) this.lastProgress = performance.now();
  }

  private call<T>(method: CallMethod, args: unknown[]): Promise<T> {
    if (this.state !== "ready") return Promise.reject(this.notReady());
    this.touch();
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
    if (this.state !== "ready") throw this.notReady();
    if (this.streams.has(req.requestId))
      throw Object.assign(new Error(`duplicate request id ${req.requestId}`), { code: "invalid_request" });
    this.touch();
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

  restarts(): number {
    return Math.max(0, this.start - 1);
  }

  /** Asks the engine to release the device and exit; kills it after 5 s. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.watchdog);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const t = this.transport;
    if (t) {
      const closed = new Promise<void>((r) => (this.closedResolve = r));
      t.send({ type: "shutdown" });
      await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
      t.kill();
      this.transport = null;
    }
    this.state = "dead";
    this.failAll(Object.assign(new Error("engine closed"), { code: "engine_dead" }));
  }
}

export function createEngine(options: ServeOptions, hooks: EngineHooks = {}, sup: SupervisorOptions = {}): EngineClient {
  const factory = sup.mode === "worker" ? workerTransport : processTransport;
  return new EngineClient(engineOptionsFrom(options), hooks, factory, { stepTimeoutMs: options.engineStepTimeout * 1000, ...sup });
}
