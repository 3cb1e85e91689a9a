// Messages between the engine client (index.ts, in the server process) and the engine core
// (engine-loop.ts), which runs in its own process (engine-process.ts, over Bun's IPC channel)
// or, for comparison, in a Worker of the server process (worker.ts). Every message is a plain
// structured-cloneable object; Bun frames them (length-prefixed) on the channel.
// Token ids only: no text crosses this boundary (the frontend tokenizes and detokenizes).
import type { GenerateRequest, ModelDescription, TokenEvent } from "./api.ts";
import type { EngineOptions } from "./startup.ts";

export type CallMethod = "stats" | "memory" | "allocator";

export type ToWorker =
  | { type: "start"; options: EngineOptions }
  | { type: "generate"; req: GenerateRequest }
  | { type: "abort"; requestId: string }
  | { type: "call"; id: number; method: "stats" | "memory" | "allocator"; args: [] }
  | { type: "shutdown" };

export interface WireError {
  name: string;
  message: string;
  code?: string;
}

export type FromWorker =
  | { type: "progress"; stage: string; done: number; total: number; unit?: string; message?: string }
  | { type: "ready"; model: ModelDescription; startupLine: string }
  | { type: "failed"; error: WireError }
  | { type: "events"; events: TokenEvent[] }
  | { type: "request-error"; requestId: string; error: WireError }
  | { type: "reply"; id: number; result?: unknown; error?: WireError }
  | { type: "log"; message: string }
  /** A step that produced no events (prefill chunk): progress for the client's watchdog. */
  | { type: "tick" }
  /** An exception escaped the engine loop; the engine process exits right after this. */
  | { type: "fatal"; error: WireError }
  | { type: "closed" };

export function toWire(e: unknown): WireError {
  const err = e as { name?: unknown; message?: unknown; code?: unknown };
  return {
    name: typeof err?.name === "string" ? err.name : "Error",
    message: typeof err?.message === "string" ? err.message : String(e),
    code: typeof err?.code === "string" ? err.code : undefined,
  };
}

/** Rebuilds an Error that keeps name and code, so the server can map it to a status. */
export function fromWire(w: WireError): Error & { code?: string } {
  const e = new Error(w.message) as Error & { code?: string };
  e.name = w.name;
  if (w.code) e.code = w.code;
  return e;
}
