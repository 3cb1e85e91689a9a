// The one place `serve` gets its engine: `createEngine(options, hooks?)` exported by
// src/engine/index.ts (written by the engine owner). Loaded lazily so the server, its tests
// and `headroom openapi` work before that file exists.
import type { Engine } from "../engine/api.ts";
import type { ServeOptions } from "./options.ts";
import type { ProgressHook } from "./progress.ts";

export interface EngineHooks {
  /** Start-up progress (weights loading, profiling, graph capture) for the terminal display. */
  onProgress?: ProgressHook;
}

/** Expected signature of `createEngine` in src/engine/index.ts. */
export type CreateEngine = (options: ServeOptions, hooks?: EngineHooks) => Engine | Promise<Engine>;

export class EngineUnavailableError extends Error {
  override name = "EngineUnavailableError";
}

export async function loadCreateEngine(): Promise<CreateEngine> {
  let mod: { createEngine?: unknown };
  try {
    // @ts-ignore -- src/engine/index.ts may not exist yet; the error below says so.
    mod = (await import("../engine/index.ts")) as { createEngine?: unknown };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (/Cannot find module|not found|ENOENT/i.test(msg))
      throw new EngineUnavailableError(
        "No engine available: src/engine/index.ts (which must export `createEngine(options: ServeOptions, hooks?): Engine | Promise<Engine>`) does not exist in this build yet.",
      );
    throw e;
  }
  if (typeof mod.createEngine !== "function")
    throw new EngineUnavailableError("src/engine/index.ts does not export a function `createEngine(options: ServeOptions, hooks?)`.");
  return mod.createEngine as CreateEngine;
}

export async function createEngine(options: ServeOptions, hooks: EngineHooks = {}): Promise<Engine> {
  const create = await loadCreateEngine();
  return await create(options, hooks);
}
