// One entry point: a path (HF folder or .gguf file) or nothing (the demo model) -> config,
// mapped weights, tokenizer and chat template. Nothing is uploaded here (see upload.ts).
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";

import type { ModelConfig } from "./config.ts";
import { ChatTemplate, chatTemplateFromConfig, chatTemplateFromGguf } from "./chat-template.ts";
import { demoChatTemplate, demoTokenizer, demoWeights, syntheticWeights } from "./demo-model.ts";
import { isSyntheticSpec, syntheticConfig } from "./synthetic.ts";
import { ModelFileError } from "./errors.ts";
import { readGguf } from "./gguf.ts";
import { ggufWeights } from "./gguf-model.ts";
import { ggufTokenizer } from "./gguf-tokenizer.ts";
import { loadHfWeights, readJsonFile } from "./hf-model.ts";
import { Tokenizer } from "./tokenizer.ts";
import type { WeightSet } from "./weights.ts";

export interface OpenedModel {
  config: ModelConfig;
  weights: WeightSet;
  tokenizer: Tokenizer;
  chatTemplate: ChatTemplate;
  source: "hf" | "gguf" | "demo";
}

/** Opens a model: an HF folder, a .gguf file, a synthetic spec, or (no path) the built-in demo model. */
export function openModel(path?: string | null): OpenedModel {
  if (!path) {
    const weights = demoWeights();
    return { config: weights.config, weights, tokenizer: demoTokenizer(), chatTemplate: demoChatTemplate(), source: "demo" };
  }
  if (isSyntheticSpec(path)) {
    const weights = syntheticWeights(syntheticConfig(path));
    return { config: weights.config, weights, tokenizer: demoTokenizer(), chatTemplate: demoChatTemplate(), source: "demo" };
  }
  if (!existsSync(path)) throw new ModelFileError(path, "does not exist");
  if (statSync(path).isDirectory()) {
    const weights = loadHfWeights(path);
    const cfgPath = join(path, "tokenizer_config.json");
    const tcfg = existsSync(cfgPath) ? readJsonFile(cfgPath) : {};
    const tokenizer = Tokenizer.fromFolder(path, weights.config.eosTokenIds);
    return { config: weights.config, weights, tokenizer, chatTemplate: chatTemplateFromConfig(tcfg, cfgPath), source: "hf" };
  }
  const gguf = readGguf(path);
  const weights = ggufWeights(gguf);
  const tokenizer = ggufTokenizer(gguf, weights.config.eosTokenIds);
  return { config: weights.config, weights, tokenizer, chatTemplate: chatTemplateFromGguf(gguf, tokenizer), source: "gguf" };
}
