// Which models POST /v1/memory/plan may open, and what its errors may say.
//
// A plan request names a model; the server must not become a file prober. Allowed: the served
// model (by its path or served name, or by giving no model), `synthetic:` specs, an inline HF
// config (handled by the caller), and files under `--models-dir` (after resolving symlinks).
// Errors name only what the client sent, never bytes or values read from a file.
import { realpathSync } from "node:fs";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { isSyntheticSpec } from "../model/synthetic.ts";
import { PlanRequestError } from "./plan-request.ts";

export interface PlanModelPolicy {
  /** The served model's path (null: the built-in demo model). */
  servedModel: string | null;
  /** Names that mean the served model (served name, model id). */
  servedNames: readonly string[];
  /** `--models-dir`; null = no path may be given. */
  modelsDir: string | null;
}

function inside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === "" || (!rel.startsWith(".." + sep) && rel !== ".." && !isAbsolute(rel));
}

/** The model path/spec a plan request may open, or a PlanRequestError saying why not. */
export function resolvePlanModel(model: string | null | undefined, policy: PlanModelPolicy): string {
  const served =
    model === undefined || model === null || model === "" || model === policy.servedModel || policy.servedNames.includes(model);
  if (served) {
    if (policy.servedModel === null)
      throw new PlanRequestError(
        "the served model is the built-in demo model: give `model` (a synthetic:… spec or a model under --models-dir) or `config`",
      );
    return policy.servedModel;
  }
  if (isSyntheticSpec(model)) return model;
  const what = JSON.stringify(model);
  if (policy.modelsDir === null)
    throw new PlanRequestError(
      `model ${what} is not the served model; this server plans only the served model, synthetic:… specs and inline \`config\` objects (start it with --models-dir to allow models from a folder)`,
    );
  // Lexical check first: paths outside the folder are refused without touching the file system.
  const dir = resolve(policy.modelsDir);
  const lexical = resolve(dir, model);
  if (!inside(dir, lexical)) throw new PlanRequestError(`model ${what} is not under --models-dir`);
  let real: string;
  try {
    real = realpathSync(lexical);
  } catch {
    throw new PlanRequestError(`no model ${what} under --models-dir`);
  }
  if (!inside(realpathSync(dir), real)) throw new PlanRequestError(`model ${what} is not under --models-dir`);
  return real;
}

/** A failure to read a model the client named, without the reader's details (they quote files). */
export function unreadableModel(model: string): PlanRequestError {
  return new PlanRequestError(
    `cannot read model ${JSON.stringify(model)}: not a supported HF model folder (config.json + safetensors) or GGUF file`,
  );
}
