// Where a model's chat template comes from, first match wins (as in vLLM/transformers):
//   1. --chat-template FILE|STRING (a path that exists is read, anything else is the template);
//   2. chat_template.jinja in the HF folder (transformers >= 4.43 saves it there);
//   3. tokenizer_config.json `chat_template`: a string, or a list of {name, template} ("default",
//      plus e.g. "tool_use" which is used when a request has tools);
//   4. GGUF metadata `tokenizer.chat_template` (plus `tokenizer.chat_template.<name>`);
//   5. the built-in ChatML fallback, with a warning (a model without a template).
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

import { ChatTemplate, FALLBACK_CHAT_TEMPLATE } from "./chat-template.ts";
import { ModelFileError } from "./errors.ts";
import type { GgufFile } from "./gguf.ts";
import type { Tokenizer } from "./tokenizer.ts";

export interface TemplateSources {
  /** The default template. */
  source: string;
  /** Other named templates ("tool_use", ...). */
  named: Record<string, string>;
}

function tokenContent(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return null;
}

/** tokenizer_config.json's chat_template: a string, or a list of named templates. */
export function chatTemplateSources(cfg: unknown, file = "tokenizer_config.json"): TemplateSources | null {
  if (!cfg || typeof cfg !== "object") return null;
  const ct = (cfg as { chat_template?: unknown }).chat_template;
  if (ct === undefined || ct === null) return null;
  if (typeof ct === "string") return { source: ct, named: {} };
  if (Array.isArray(ct)) {
    const named: Record<string, string> = {};
    for (const [i, x] of ct.entries()) {
      if (!x || typeof x !== "object" || typeof x.name !== "string" || typeof x.template !== "string")
        throw new ModelFileError(file, `chat_template[${i}] must be an object {name, template} of strings`);
      named[x.name] = x.template;
    }
    const source = named.default;
    // transformers refuses a list without "default" too ("multiple chat templates with no default").
    if (source === undefined)
      throw new ModelFileError(
        file,
        `chat_template lists templates ${Object.keys(named)
          .map((n) => `"${n}"`)
          .join(", ")} but none named "default"`,
      );
    delete named.default;
    return { source, named };
  }
  throw new ModelFileError(file, "chat_template must be a string or a list of {name, template}");
}

/** The default template of tokenizer_config.json, if any (kept for callers that need only the text). */
export function chatTemplateSource(cfg: unknown, file = "tokenizer_config.json"): string | null {
  return chatTemplateSources(cfg, file)?.source ?? null;
}

/** `--chat-template`: a file when the value names one, else the template text itself. */
export function readChatTemplateOption(value: string): { source: string; origin: string } {
  if (existsSync(value) && statSync(value).isFile()) {
    try {
      return { source: readFileSync(value, "utf8"), origin: value };
    } catch (e) {
      throw new ModelFileError(value, `cannot be read: ${(e as Error).message}`);
    }
  }
  // A value that looks like a path but is not a template is a typo, not a template.
  if (!/[{}]/.test(value))
    throw new ModelFileError(value, "--chat-template: no such file, and the value is not a Jinja template (no {{ }} or {% %})");
  return { source: value, origin: "--chat-template" };
}

/** The chat template of an HF folder: --chat-template, chat_template.jinja, tokenizer_config.json, or the fallback. */
export function chatTemplateForFolder(dir: string, tokenizerConfig: unknown, override: string | null = null): ChatTemplate {
  const c = (tokenizerConfig && typeof tokenizerConfig === "object" ? tokenizerConfig : {}) as Record<string, unknown>;
  const bos = tokenContent(c.bos_token);
  const eos = tokenContent(c.eos_token);
  const cfgPath = join(dir, "tokenizer_config.json");
  const fromConfig = chatTemplateSources(tokenizerConfig, cfgPath);
  if (override !== null) {
    const o = readChatTemplateOption(override);
    return new ChatTemplate(o.source, bos, eos, o.origin);
  }
  const jinjaPath = join(dir, "chat_template.jinja");
  if (existsSync(jinjaPath)) {
    let text: string;
    try {
      text = readFileSync(jinjaPath, "utf8");
    } catch (e) {
      throw new ModelFileError(jinjaPath, `cannot be read: ${(e as Error).message}`);
    }
    return new ChatTemplate(text, bos, eos, jinjaPath, fromConfig?.named ?? {});
  }
  if (fromConfig) return new ChatTemplate(fromConfig.source, bos, eos, cfgPath, fromConfig.named);
  return new ChatTemplate(FALLBACK_CHAT_TEMPLATE, bos, eos, "fallback");
}

/** The chat template of tokenizer_config.json alone (no folder), or the fallback. */
export function chatTemplateFromConfig(cfg: unknown, file = "tokenizer_config.json"): ChatTemplate {
  const c = (cfg && typeof cfg === "object" ? cfg : {}) as Record<string, unknown>;
  const src = chatTemplateSources(cfg, file);
  return new ChatTemplate(
    src?.source ?? FALLBACK_CHAT_TEMPLATE,
    tokenContent(c.bos_token),
    tokenContent(c.eos_token),
    src ? file : "fallback",
    src?.named ?? {},
  );
}

/** The chat template of a GGUF file (--chat-template, tokenizer.chat_template[.<name>]), or the fallback. */
export function chatTemplateFromGguf(g: GgufFile, tok: Tokenizer, override: string | null = null): ChatTemplate {
  if (override !== null) {
    const o = readChatTemplateOption(override);
    return new ChatTemplate(o.source, tok.bosToken, tok.eosToken, o.origin);
  }
  const src = g.metadata.get("tokenizer.chat_template");
  if (src !== undefined && typeof src !== "string") throw new ModelFileError(g.path, `metadata "tokenizer.chat_template" must be a string`);
  const named: Record<string, string> = {};
  for (const [k, v] of g.metadata) {
    const m = /^tokenizer\.chat_template\.(.+)$/.exec(k);
    if (m && typeof v === "string") named[m[1]!] = v;
  }
  return new ChatTemplate(
    src ?? FALLBACK_CHAT_TEMPLATE,
    tok.bosToken,
    tok.eosToken,
    src ? `${g.path} (tokenizer.chat_template)` : "fallback",
    src ? named : {},
  );
}
