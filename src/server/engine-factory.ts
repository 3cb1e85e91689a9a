// The one place `serve` gets its engine: `createEngine(options, hooks?)` from src/engine.
import type { Engine } from "../engine/api.ts";
import { createEngine as createWorkerEngine, type EngineHooks } from "../engine/index.ts";
import type { ServeOptions } from "./options.ts";

export type { EngineHooks };

export type CreateEngine = (options: ServeOptions, hooks?: EngineHooks) => Engine | Promise<Engine>;

export class EngineUnavailableError extends Error {
  override name = "EngineUnavailableError";
}

export async function createEngine(options: ServeOptions, hooks: EngineHooks = {}): Promise<Engine> {
  return await createWorkerEngine(options, hooks);
}
