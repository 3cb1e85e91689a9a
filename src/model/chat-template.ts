// Chat templates: the model's Jinja template (tokenizer_config.json `chat_template`, or GGUF
// `tokenizer.chat_template`) rendered with @huggingface/jinja, the same way transformers'
// apply_chat_template does (messages, bos_token, eos_token, add_generation_prompt,
// raise_exception, strftime_now). Models without one get FALLBACK_CHAT_TEMPLATE.
import { Template } from "@huggingface/jinja";

import { ModelFileError } from "./errors.ts";
import type { GgufFile } from "./gguf.ts";
import type { Tokenizer } from "./tokenizer.ts";

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool" | (string & {});
  content: string;
}

export interface RenderOptions {
  /** End with the opening of an assistant turn (default true). */
  addGenerationPrompt?: boolean;
  /** More variables for the template (tools, date_string, ...). */
  extra?: Record<string, unknown>;
}

/**
 * Used when a model ships no chat template: ChatML (`<|im_start|>role\n...<|im_end|>\n`), the
 * format transformers used as its default template. It adds no BOS (encode adds it per the
 * tokenizer's add_bos setting). Models without ChatML special tokens see the markers as text.
 */
export const FALLBACK_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export class ChatTemplate {
  private readonly template: Template;

  constructor(
    readonly source: string,
    readonly bosToken: string | null = null,
    readonly eosToken: string | null = null,
    /** Where the template came from ("tokenizer_config.json", "gguf", "fallback"). */
    readonly origin = "fallback",
  ) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new ModelFileError(origin, `chat template does not parse: ${(e as Error).message}`);
    }
  }

  get isFallback(): boolean {
    return this.origin === "fallback";
  }

  render(messages: readonly ChatMessage[], opts: RenderOptions = {}): string {
    return this.template.render({
      ...opts.extra,
      messages: messages.map((m) => ({ ...m })),
      bos_token: this.bosToken ?? "",
      eos_token: this.eosToken ?? "",
      add_generation_prompt: opts.addGenerationPrompt ?? true,
    });
  }

  /** Renders and encodes; BOS is added only when the rendered text does not already start with it. */
  encode(tok: Tokenizer, messages: readonly ChatMessage[], opts: RenderOptions = {}): number[] {
    const text = this.render(messages, opts);
    const hasBos = this.bosToken !== null && this.bosToken !== "" && text.startsWith(this.bosToken);
    return tok.encode(text, { addBos: tok.addBos && !hasBos });
  }
}

function content(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return null;
}

/** Template source from tokenizer_config.json's chat_template (a string, or a list of named templates). */
export function chatTemplateSource(cfg: unknown, file = "tokenizer_config.json"): string | null {
  if (!cfg || typeof cfg !== "object") return null;
  const ct = (cfg as { chat_template?: unknown }).chat_template;
  if (ct === undefined || ct === null) return null;
  if (typeof ct === "string") return ct;
  if (Array.isArray(ct)) {
    const named = ct.filter((x): x is { name: string; template: string } => !!x && typeof x.name === "string" && typeof x.template === "string");
    return (named.find((x) => x.name === "default") ?? named[0])?.template ?? null;
  }
  throw new ModelFileError(file, "chat_template must be a string or a list of {name, template}");
}

/** The chat template of an HF model (tokenizer_config.json), or the fallback. */
export function chatTemplateFromConfig(cfg: unknown, file = "tokenizer_config.json"): ChatTemplate {
  const c = (cfg && typeof cfg === "object" ? cfg : {}) as Record<string, unknown>;
  const src = chatTemplateSource(cfg, file);
  return new ChatTemplate(src ?? FALLBACK_CHAT_TEMPLATE, content(c.bos_token), content(c.eos_token), src ? file : "fallback");
}

/** The chat template of a GGUF file (tokenizer.chat_template), or the fallback. */
export function chatTemplateFromGguf(g: GgufFile, tok: Tokenizer): ChatTemplate {
  const src = g.metadata.get("tokenizer.chat_template");
  if (src !== undefined && typeof src !== "string") throw new ModelFileError(g.path, `metadata "tokenizer.chat_template" must be a string`);
  return new ChatTemplate(src ?? FALLBACK_CHAT_TEMPLATE, tok.bosToken, tok.eosToken, src ? `${g.path} (tokenizer.chat_template)` : "fallback");
}
