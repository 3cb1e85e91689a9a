// What every route needs: the engine, the options, logging, metrics and admission control.
import type { Engine, EngineHealth } from "../engine/api.ts";
import type { TextFrontend } from "../frontend/text-frontend.ts";
import { ApiError, queueFull } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { ServeOptions } from "./options.ts";
import type { ServerMetrics } from "./telemetry.ts";

export interface RequestInfo {
  id: string;
  start: number;
  route: string;
  /** Lifts Bun's idle timeout for this request (generation routes, once their body is in). */
  noIdleTimeout?: () => void;
}

export class ServerContext {
  /** Sequences (prompt × n) admitted and not yet finished. */
  inflight = 0;
  /** Set by SIGTERM/SIGINT (shutdown.ts): new generation requests get 503, /health 503. */
  draining = false;
  /** Aborted when the shutdown timeout ends in-flight generations (finish_reason "abort"). */
  private readonly drainAbort = new AbortController();
  readonly drainSignal = this.drainAbort.signal;
  readonly requests = new WeakMap<Request, RequestInfo>();
  readonly created = Math.floor(Date.now() / 1000);

  constructor(
    readonly engine: Engine,
    readonly options: ServeOptions,
    readonly log: Logger,
    readonly metrics: ServerMetrics,
    /** Tokenizer, chat template, detokenizer, stop strings: the text side (src/frontend). */
    readonly text: TextFrontend,
  ) {}

  info(req: Request): RequestInfo {
    return this.requests.get(req) ?? { id: "unknown", start: performance.now(), route: "other" };
  }

  /** The model name clients use. */
  modelName(): string {
    return this.options.servedModelName ?? this.engine.model().id;
  }

  /** The model name, or null while the engine is starting (its id is not known before it is ready). */
  modelNameIfKnown(): string | null {
    if (this.options.servedModelName !== null) return this.options.servedModelName;
    if (this.engine.health() !== "ready") return null;
    try {
      return this.engine.model().id;
    } catch {
      return null;
    }
  }

  /** Effective context length: the engine's (which applies --max-model-len), capped by the flag. */
  maxModelLen(): number {
    const m = this.engine.model().maxModelLen;
    return this.options.maxModelLen !== null ? Math.min(m, this.options.maxModelLen) : m;
  }

  /** 404 for a name that is not served; missing/empty names mean the served model. */
  checkModel(name: string | null | undefined): string {
    const served = this.modelName();
    if (name === undefined || name === null || name === "") return served;
    const accepted = new Set([served, this.engine.model().id]);
    if (this.options.model !== null) accepted.add(this.options.model);
    if (!accepted.has(name))
      throw new ApiError(
        404,
        `The model '${name}' does not exist. This server serves '${served}'.`,
        "invalid_request_error",
        "model",
        "model_not_found",
      );
    return served;
  }

  /** Ends every in-flight generation now: each finishes with finish_reason "abort". */
  endInflight(): void {
    this.drainAbort.abort(new Error("server shutting down"));
  }

  /** Engine and text side together: "ready" only when both are; "draining" once SIGTERM came. */
  health(): EngineHealth | "draining" {
    if (this.draining) return "draining";
    const e = this.engine.health();
    const t = this.text.health();
    if (e === "dead" || t === "dead") return "dead";
    if (e === "restarting") return "restarting";
    return e === "ready" && t === "ready" ? "ready" : "starting";
  }

  /** 503 unless the engine and the tokenizer are ready (and the server is not shutting down). */
  checkReady(): void {
    const h = this.health();
    if (h === "draining")
      throw new ApiError(503, "The server is shutting down.", "service_unavailable", null, "server_shutting_down", { connection: "close" });
    if (h === "starting")
      throw new ApiError(503, "The engine is starting; retry shortly.", "service_unavailable", null, "engine_starting", {
        "retry-after": "1",
      });
    if (h === "restarting")
      throw new ApiError(503, "The engine is restarting after a failure; retry shortly.", "engine_error", null, "engine_error", {
        "retry-after": "1",
      });
    if (h === "dead") {
      const why =
        this.text.health() === "dead"
          ? `The tokenizer is not available${this.text.error ? ` (${this.text.error.message})` : ""}`
          : "The engine has stopped";
      throw new ApiError(503, `${why}; the server cannot generate.`, "service_unavailable", null, "engine_dead");
    }
  }

  /**
   * Admission: at most max_num_seqs running + max_waiting waiting sequences. The count is
   * synchronous, so concurrent requests cannot overshoot. Returns a release function.
   */
  admit(seqs: number): () => void {
    const limit = this.options.maxNumSeqs + this.options.maxWaiting;
    // More sequences than the server ever holds: retrying cannot help, so it is the client's error.
    if (seqs > limit)
      throw new ApiError(
        400,
        `This request needs ${seqs} sequences (prompts × n), more than this server ever holds: max_num_seqs ${this.options.maxNumSeqs} + max_waiting ${this.options.maxWaiting} = ${limit} (see --max-num-seqs, --max-waiting). Split it into smaller requests.`,
        "invalid_request_error",
        "n",
        "too_many_sequences",
      );
    if (this.inflight + seqs > limit) {
      this.metrics.rejected.inc({ reason: "queue_full" });
      throw queueFull(
        `The server is at capacity: ${this.inflight} sequences in flight, limit ${limit} (max_num_seqs ${this.options.maxNumSeqs} + max_waiting ${this.options.maxWaiting}); retry later.`,
      );
    }
    this.inflight += seqs;
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.inflight -= seqs;
      }
    };
  }
}
