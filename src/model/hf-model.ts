// Hugging Face folder -> weight set: config.json plus model.safetensors, or the shards listed in
// model.safetensors.index.json. HF tensor names are already the canonical names.
import { existsSync, readFileSync } from "node:fs";
import { takeKvScales } from "./kv-dtype.ts";
import { basename, join, resolve, sep } from "node:path";

import { ModelFileError } from "./errors.ts";
import { parseHfConfig } from "./hf-config.ts";
import { readSafetensors, type SafetensorsFile } from "./safetensors.ts";
import { markGemmaNorms, unfusePhi3 } from "./fused.ts";
import { checkTensors, type TensorSource, type WeightSet } from "./weights.ts";

export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ModelFileError(path, `cannot be read: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelFileError(path, `is not valid JSON: ${(e as Error).message}`);
  }
}

/** Shard file names of a sharded checkpoint, each mapped to the tensors it must hold. */
function readIndex(dir: string, indexPath: string): Map<string, string[]> {
  const j = readJsonFile(indexPath);
  const wm = (j as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== "object" || wm === null || Array.isArray(wm)) throw new ModelFileError(indexPath, `has no "weight_map" object`);
  const shards = new Map<string, string[]>();
  const root = resolve(dir) + sep;
  for (const [tensor, file] of Object.entries(wm)) {
    if (typeof file !== "string" || file === "" || !resolve(dir, file).startsWith(root)) {
      throw new ModelFileError(indexPath, `weight_map entry ${JSON.stringify(file)} is not a file inside the model folder`, tensor);
    }
    const list = shards.get(file) ?? [];
    list.push(tensor);
    shards.set(file, list);
  }
  if (shards.size === 0) throw new ModelFileError(indexPath, "weight_map is empty");
  return shards;
}

const IGNORABLE = /(^|\.)rotary_emb\.inv_freq$/;

/** Loads config.json and maps the safetensors of an HF model folder (no tensor data is read). */
export function loadHfWeights(dir: string): WeightSet {
  const configPath = join(dir, "config.json");
  if (!existsSync(configPath)) throw new ModelFileError(dir, "has no config.json (expected a Hugging Face model folder or a .gguf file)");
  const config = parseHfConfig(readJsonFile(configPath), configPath, basename(resolve(dir)));

  const single = join(dir, "model.safetensors");
  const indexPath = join(dir, "model.safetensors.index.json");
  const files: SafetensorsFile[] = [];
  const tensors = new Map<string, TensorSource>();
  const add = (f: SafetensorsFile, only?: Set<string>) => {
    for (const e of f.tensors.values()) {
      if (only && !only.has(e.name))
        throw new ModelFileError(f.path, `tensor is not listed for this shard in model.safetensors.index.json`, e.name);
      const prev = tensors.get(e.name);
      if (prev) throw new ModelFileError(f.path, `tensor also appears in ${prev.file}`, e.name);
      tensors.set(e.name, { name: e.name, shape: e.shape, dtype: e.dtype, file: f.path, fileName: e.name, data: e.data });
    }
  };
  if (existsSync(indexPath)) {
    for (const [file, names] of readIndex(dir, indexPath)) {
      const f = readSafetensors(join(dir, file));
      const want = new Set(names);
      for (const n of want)
        if (!f.tensors.has(n))
          throw new ModelFileError(f.path, `tensor is listed in model.safetensors.index.json but missing from this shard`, n);
      add(f, want);
      files.push(f);
    }
  } else if (existsSync(single)) {
    const f = readSafetensors(single);
    add(f);
    files.push(f);
  } else {
    throw new ModelFileError(dir, "has neither model.safetensors nor model.safetensors.index.json");
  }
  if (config.architecture === "phi3") unfusePhi3(config, tensors);
  if (config.architecture.startsWith("gemma")) markGemmaNorms(tensors);
  config.dtype = tensors.get("model.embed_tokens.weight")?.dtype ?? config.dtype;
  const kvScales = takeKvScales(config.numLayers, tensors, dir);
  checkTensors(config, tensors, files[0]?.path ?? dir, (n) => IGNORABLE.test(n) || (config.tieWordEmbeddings && n === "lm_head.weight"));
  return { config, format: "safetensors", files: files.map((f) => f.path), tensors, ...(kvScales ? { kvScales } : {}) };
}
