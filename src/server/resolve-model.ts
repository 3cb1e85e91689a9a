// `--model` as a Hugging Face repo id (ORG/NAME[@REVISION][:QUANT]) becomes a local path before
// the engine starts: downloaded into the HF cache (progress through the start-up display) or
// taken from it. A local path is used as is; `--gguf-file` then picks a file inside a folder.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";

import { parseRepoSpec } from "../model/hub/repo-id.ts";
import { resolveHubModel, type ResolveOptions } from "../model/hub/resolve-model.ts";
import { isSyntheticSpec } from "../model/synthetic.ts";
import type { EngineHooks } from "./engine-factory.ts";
import { OptionsError, type ServeOptions } from "./options.ts";

export async function resolveModelOption(
  o: ServeOptions,
  hooks: EngineHooks = {},
  env: ResolveOptions["env"] = process.env,
  f?: typeof fetch,
): Promise<ServeOptions> {
  const model = o.model;
  if (model === null || isSyntheticSpec(model)) {
    if (o.ggufFile !== null) throw new OptionsError("--gguf-file needs --model (a Hub repo id or a folder)");
    return o;
  }
  if (existsSync(model)) {
    if (o.ggufFile === null) return o;
    if (!statSync(model).isDirectory())
      throw new OptionsError(`--gguf-file ${o.ggufFile}: --model ${model} is a file, not a folder or a Hub repo id`);
    return { ...o, model: join(model, o.ggufFile) };
  }
  const spec = parseRepoSpec(model);
  if (spec === null) return o; // not a repo id either: opening it reports "does not exist"
  const r = await resolveHubModel(spec, {
    ggufFile: o.ggufFile,
    env,
    ...(f ? { fetch: f } : {}),
    onProgress: (p) => hooks.onProgress?.({ stage: "download", done: p.done, total: p.total, unit: "bytes", message: p.file }),
    ...(hooks.onLog ? { log: hooks.onLog } : {}),
  });
  hooks.onLog?.(
    `model ${model}: ${r.fromCache ? "from the cache" : "downloaded"} at ${r.path} (commit ${r.commit}; ${r.files.join(", ")})`,
  );
  // As in vLLM, the model is served under the name it was asked for.
  return { ...o, model: r.path, servedModelName: o.servedModelName ?? model };
}
