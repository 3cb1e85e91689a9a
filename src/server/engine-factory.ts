// The one place `serve` gets its engine: `createEngine(options, hooks?)` from src/engine.
import type { Engine } from "../engine/api.ts";
import { createEngine as createWorkerEngine } from "../engine/index.ts";
import type { ServeOptions } from "./options.ts";
import type { ProgressHook } from "./progress.ts";

export interface EngineHooks {
  /** Start-up progress (weights loading, profiling, graph capture) for the terminal display. */
  onProgress?: ProgressHook;
  /** Engine log lines (the start-up memory line among them). */
  onLog?: (message: string) => void;
  /** Supervision: engine deaths and their cause, restarts, stray engine output (debug). */
  onIncident?: (level: "debug" | "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) => void;
  /** The engine kept dying and will not be restarted again. */
  onGiveUp?: (cause: string) => void;
}

export type CreateEngine = (options: ServeOptions, hooks?: EngineHooks) => Engine | Promise<Engine>;

export class EngineUnavailableError extends Error {
  override name = "EngineUnavailableError";
}

export async function createEngine(options: ServeOptions, hooks: EngineHooks = {}): Promise<Engine> {
  return await createWorkerEngine(options, hooks);
}
