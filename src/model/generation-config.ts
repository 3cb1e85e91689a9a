// generation_config.json (transformers' GenerationConfig as saved next to config.json): extra
// end-of-sequence ids (Llama 3.1 lists <|eot_id|> and <|eom_id|> only here) and the sampling
// defaults the model's authors recommend. As in vLLM's --generation-config: "auto" reads the
// model folder's file, "none" (vLLM: "vllm") ignores it, a folder path reads that folder's.
// Only repetition_penalty, temperature, top_k, top_p, min_p and max_new_tokens become request
// defaults (vLLM's get_diff_sampling_param); do_sample and the rest are ignored, as in vLLM.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";

import { ModelFileError } from "./errors.ts";
import { readJsonFile } from "./hf-model.ts";

/** Request defaults (a request field wins); absent = the server's own default. */
export interface SamplingDefaults {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
  /** max_new_tokens: the completion length when the request sets none. */
  maxTokens?: number;
}

export interface GenerationConfig {
  /** The file read, or null (none found, or --generation-config none). */
  file: string | null;
  /** eos_token_id of the file (an int or a list), to end generation like the model's own EOS. */
  eosTokenIds: number[];
  defaults: SamplingDefaults;
}

export const NO_GENERATION_CONFIG: GenerationConfig = { file: null, eosTokenIds: [], defaults: {} };

const FIELDS: [json: string, key: keyof SamplingDefaults, check: (v: number) => boolean][] = [
  ["temperature", "temperature", (v) => v >= 0],
  ["top_p", "topP", (v) => v > 0 && v <= 1],
  ["top_k", "topK", (v) => Number.isInteger(v) && v >= -1],
  ["min_p", "minP", (v) => v >= 0 && v <= 1],
  ["repetition_penalty", "repetitionPenalty", (v) => v > 0],
  ["max_new_tokens", "maxTokens", (v) => Number.isInteger(v) && v >= 1],
];

/** Parses generation_config.json's content; `vocabSize` bounds the eos ids. */
export function parseGenerationConfig(json: unknown, file: string, vocabSize: number): GenerationConfig {
  if (!json || typeof json !== "object" || Array.isArray(json)) throw new ModelFileError(file, "must be a JSON object");
  const j = json as Record<string, unknown>;
  const eosRaw = j.eos_token_id;
  const eos = eosRaw === undefined || eosRaw === null ? [] : Array.isArray(eosRaw) ? eosRaw : [eosRaw];
  for (const id of eos)
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= vocabSize)
      throw new ModelFileError(file, `eos_token_id ${JSON.stringify(id)} is not a token id of this model (vocabulary size ${vocabSize})`);
  const defaults: SamplingDefaults = {};
  for (const [name, key, ok] of FIELDS) {
    const v = j[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v))
      throw new ModelFileError(file, `${name} ${JSON.stringify(v)} is out of range`);
    defaults[key] = v;
  }
  return { file, eosTokenIds: [...new Set(eos as number[])], defaults };
}

/**
 * --generation-config: "auto" reads <modelDir>/generation_config.json when present, "none"/"vllm"
 * reads nothing, anything else is a folder holding generation_config.json (which must exist).
 */
export function loadGenerationConfig(setting: string, modelDir: string | null, vocabSize: number): GenerationConfig {
  if (setting === "none" || setting === "vllm") return NO_GENERATION_CONFIG;
  if (setting === "auto") {
    if (modelDir === null) return NO_GENERATION_CONFIG;
    const file = join(modelDir, "generation_config.json");
    return existsSync(file) ? parseGenerationConfig(readJsonFile(file), file, vocabSize) : NO_GENERATION_CONFIG;
  }
  if (!existsSync(setting) || !statSync(setting).isDirectory())
    throw new ModelFileError(setting, "--generation-config: not 'auto', 'none' or a folder");
  const file = join(setting, "generation_config.json");
  if (!existsSync(file)) throw new ModelFileError(setting, "--generation-config: the folder has no generation_config.json");
  return parseGenerationConfig(readJsonFile(file), file, vocabSize);
}
