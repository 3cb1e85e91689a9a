// One entry point: a path (HF folder or .gguf file) or nothing (the demo model) -> config,
// mapped weights, tokenizer, chat template and generation config. Nothing is uploaded here (see upload.ts).
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";

import type { ModelConfig } from "./config.ts";
import type { ChatTemplate } from "./chat-template.ts";
import { chatTemplateForFolder, chatTemplateFromGguf } from "./chat-template-source.ts";
import { demoChatTemplate, demoTokenizer, demoWeights, syntheticWeights } from "./demo-model.ts";
import { isSyntheticSpec, syntheticConfig } from "./synthetic.ts";
import { ModelFileError } from "./errors.ts";
import { readGguf } from "./gguf.ts";
import { ggufWeights } from "./gguf-model.ts";
import { ggufTokenizer } from "./gguf-tokenizer.ts";
import { loadGenerationConfig, NO_GENERATION_CONFIG, type GenerationConfig } from "./generation-config.ts";
import { loadHfWeights, readJsonFile } from "./hf-model.ts";
import { Tokenizer } from "./tokenizer.ts";
import type { WeightSet } from "./weights.ts";

export interface OpenedModel {
  config: ModelConfig;
  weights: WeightSet;
  tokenizer: Tokenizer;
  chatTemplate: ChatTemplate;
  /** generation_config.json: its eos ids are already merged into config.eosTokenIds. */
  generationConfig: GenerationConfig;
  source: "hf" | "gguf" | "demo";
}

export interface OpenModelOptions {
  /** --chat-template: a file or the template text; null = the model's own. */
  chatTemplate?: string | null;
  /** --generation-config: "auto" (default), "none", or a folder with generation_config.json. */
  generationConfig?: string;
}

/** Adds generation_config.json's eos ids to the model's (they then end generation like EOS). */
function withGenerationEos(config: ModelConfig, gen: GenerationConfig): void {
  config.eosTokenIds = [...new Set([...config.eosTokenIds, ...gen.eosTokenIds])];
}

/** Opens a model: an HF folder, a .gguf file, a synthetic spec, or (no path) the built-in demo model. */
export function openModel(path?: string | null, opts: OpenModelOptions = {}): OpenedModel {
  const demo = {
    tokenizer: demoTokenizer(),
    chatTemplate: demoChatTemplate(),
    generationConfig: NO_GENERATION_CONFIG,
    source: "demo" as const,
  };
  if (!path) {
    const weights = demoWeights();
    return { config: weights.config, weights, ...demo };
  }
  if (isSyntheticSpec(path)) {
    const weights = syntheticWeights(syntheticConfig(path));
    return { config: weights.config, weights, ...demo };
  }
  if (!existsSync(path)) throw new ModelFileError(path, "does not exist");
  const genSetting = opts.generationConfig ?? "auto";
  if (statSync(path).isDirectory()) {
    const weights = loadHfWeights(path);
    const generationConfig = loadGenerationConfig(genSetting, path, weights.config.vocabSize);
    withGenerationEos(weights.config, generationConfig);
    const cfgPath = join(path, "tokenizer_config.json");
    const tcfg = existsSync(cfgPath) ? readJsonFile(cfgPath) : {};
    const tokenizer = Tokenizer.fromFolder(path, weights.config.eosTokenIds);
    const chatTemplate = chatTemplateForFolder(path, tcfg, opts.chatTemplate ?? null);
    return { config: weights.config, weights, tokenizer, chatTemplate, generationConfig, source: "hf" };
  }
  const gguf = readGguf(path);
  const weights = ggufWeights(gguf);
  // A GGUF file carries no generation config; only an explicit folder applies.
  const generationConfig = loadGenerationConfig(genSetting === "auto" ? "none" : genSetting, null, weights.config.vocabSize);
  withGenerationEos(weights.config, generationConfig);
  const tokenizer = ggufTokenizer(gguf, weights.config.eosTokenIds);
  // The engine stops at config.eosTokenIds: make that every id llama.cpp treats as end of
  // generation (EOS, <|eot_id|>, <|im_end|>, <end_of_turn>, … found by the tokenizer).
  weights.config.eosTokenIds = tokenizer.eosTokenIds;
  return {
    config: weights.config,
    weights,
    tokenizer,
    chatTemplate: chatTemplateFromGguf(gguf, tokenizer, opts.chatTemplate ?? null),
    generationConfig,
    source: "gguf",
  };
}

/** Start-up log lines about what was (not) found: the chat template used, the generation config. */
export function modelNotes(m: OpenedModel): string[] {
  if (m.source === "demo") return [];
  const notes: string[] = [];
  if (m.chatTemplate.isFallback)
    notes.push(
      "warning: the model has no chat template (no --chat-template, chat_template.jinja, tokenizer_config.json chat_template or GGUF tokenizer.chat_template); /v1/chat/completions uses the built-in ChatML default",
    );
  else
    notes.push(
      `chat template: ${m.chatTemplate.origin}${m.chatTemplate.templateNames.length ? ` (also: ${m.chatTemplate.templateNames.join(", ")})` : ""}`,
    );
  const g = m.generationConfig;
  if (g.file) {
    const d = Object.entries(g.defaults)
      .map(([k, v]) => `${k}=${v}`)
      .join(", ");
    notes.push(
      `generation config: ${g.file}${g.eosTokenIds.length ? `; stop token ids ${g.eosTokenIds.join(", ")}` : ""}${d ? `; request defaults ${d} (--generation-config none to ignore)` : ""}`,
    );
  }
  return notes;
}
