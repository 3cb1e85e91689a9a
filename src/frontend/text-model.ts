// The text side of a model, loaded by the frontend (HTTP process) and its tokenizer workers
// without touching weights: the tokenizer and the chat template, from the same path the engine
// opens (HF folder, .gguf file, synthetic spec, or nothing = the built-in demo model).
import { existsSync, statSync } from "node:fs";
import { basename, join } from "node:path";

import { ChatTemplate } from "../model/chat-template.ts";
import { chatTemplateForFolder, chatTemplateFromGguf, readChatTemplateOption } from "../model/chat-template-source.ts";
import { demoChatTemplate, demoTokenizer } from "../model/demo-model.ts";
import { ModelFileError } from "../model/errors.ts";
import { readGguf } from "../model/gguf.ts";
import { ggufConfig } from "../model/gguf-model.ts";
import { ggufTokenizer } from "../model/gguf-tokenizer.ts";
import { parseHfConfig } from "../model/hf-config.ts";
import { readJsonFile } from "../model/hf-model.ts";
import { isSyntheticSpec } from "../model/synthetic.ts";
import { Tokenizer } from "../model/tokenizer.ts";

export interface TextModel {
  tokenizer: Tokenizer;
  chatTemplate: ChatTemplate;
  source: "hf" | "gguf" | "demo";
}

/** Tokenizer + chat template of `path` (null: the demo model), as openModel would give them. */
export function loadTextModel(path: string | null, opts: { chatTemplate?: string | null } = {}): TextModel {
  if (!path || isSyntheticSpec(path)) {
    // --chat-template applies to the demo model too (it was silently ignored).
    const o = opts.chatTemplate ? readChatTemplateOption(opts.chatTemplate) : null;
    return {
      tokenizer: demoTokenizer(),
      chatTemplate: o ? new ChatTemplate(o.source, "<s>", "</s>", o.origin) : demoChatTemplate(),
      source: "demo",
    };
  }
  if (!existsSync(path)) throw new ModelFileError(path, "does not exist");
  if (statSync(path).isDirectory()) {
    const configPath = join(path, "config.json");
    // EOS ids from config.json join the tokenizer's (same as openModel: weights.config.eosTokenIds).
    const eos = existsSync(configPath) ? parseHfConfig(readJsonFile(configPath), configPath, basename(path)).eosTokenIds : [];
    const cfgPath = join(path, "tokenizer_config.json");
    const tcfg = existsSync(cfgPath) ? readJsonFile(cfgPath) : {};
    return {
      tokenizer: Tokenizer.fromFolder(path, eos),
      chatTemplate: chatTemplateForFolder(path, tcfg, opts.chatTemplate ?? null),
      source: "hf",
    };
  }
  const gguf = readGguf(path);
  const tokenizer = ggufTokenizer(gguf, ggufConfig(gguf).eosTokenIds);
  return { tokenizer, chatTemplate: chatTemplateFromGguf(gguf, tokenizer, opts.chatTemplate ?? null), source: "gguf" };
}
