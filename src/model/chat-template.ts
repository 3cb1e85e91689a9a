// Chat templates rendered with @huggingface/jinja the way transformers' apply_chat_template
// renders them with Python Jinja2 (trim_blocks, lstrip_blocks, HF's tojson, raise_exception,
// strftime_now; variables messages, tools, documents, add_generation_prompt, the special tokens
// and chat_template_kwargs; continue_final_message trimming). Where the template comes from:
// chat-template-source.ts. Byte-for-byte agreement with Python is checked by
// test/model/chat-template-oracle.test.ts over the real templates.
import { Environment, parse, tokenize } from "@huggingface/jinja";

import { ModelFileError } from "./errors.ts";
import { HfInterpreter } from "./jinja-hf.ts";
import { pythonStrftime } from "./python-strftime.ts";
import type { Tokenizer } from "./tokenizer.ts";

/** A message as templates see it: OpenAI fields, tool call arguments already parsed to objects. */
export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool" | (string & {});
  content: string | null;
  [field: string]: unknown;
}

export interface RenderOptions {
  /** End with the opening of an assistant turn (default true). */
  addGenerationPrompt?: boolean;
  /** Cut the render right after the last message's content, so the model continues it. */
  continueFinalMessage?: boolean;
  /** OpenAI tool definitions; also selects a template named "tool_use" when the model has one. */
  tools?: readonly unknown[] | null;
  /** chat_template_kwargs: more template variables (enable_thinking, date_string, ...). */
  kwargs?: Record<string, unknown>;
  /** Clock for strftime_now (tests pin it). */
  now?: () => Date;
}

/** A request problem found while rendering (the template raised, or the options conflict): a 400. */
export class ChatTemplateError extends Error {
  override name = "ChatTemplateError";
  /** The server maps engine errors with this code to 400 (src/server/errors.ts fromEngineError). */
  readonly code = "invalid_request";
}

/** Variables the renderer sets itself; chat_template_kwargs may not replace them. */
export const RESERVED_TEMPLATE_VARIABLES = [
  "messages",
  "tools",
  "documents",
  "add_generation_prompt",
  "continue_final_message",
  "raise_exception",
  "strftime_now",
] as const;

/**
 * Used when a model ships no chat template: ChatML (`<|im_start|>role\n...<|im_end|>\n`), the
 * format transformers used as its default template. It adds no BOS (encode adds it per the
 * tokenizer's add_bos setting). Models without ChatML special tokens see the markers as text.
 */
export const FALLBACK_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

type Program = ReturnType<typeof parse>;

/** Parsed templates by source: a model is opened by the engine and the frontend, tests open many. */
const compiled = new Map<string, Program>();

function compile(source: string, origin: string): Program {
  const hit = compiled.get(source);
  if (hit) return hit;
  try {
    // HF's Jinja environment: trim_blocks and lstrip_blocks on.
    const program = parse(tokenize(source, { lstrip_blocks: true, trim_blocks: true }));
    if (compiled.size >= 64) compiled.delete(compiled.keys().next().value!);
    compiled.set(source, program);
    return program;
  } catch (e) {
    throw new ModelFileError(origin, `chat template does not parse: ${(e as Error).message}`);
  }
}

/** Python's range(stop) / range(start, stop[, step]). */
function pyRange(...args: unknown[]): number[] {
  const n = args.map((a) => {
    if (typeof a !== "number" || !Number.isInteger(a)) throw new Error(`range() arguments must be integers, got ${JSON.stringify(a)}`);
    return a;
  });
  const [start, stop, step] = n.length === 1 ? [0, n[0]!, 1] : [n[0] ?? 0, n[1] ?? 0, n[2] ?? 1];
  if (step === 0) throw new Error("range() arg 3 must not be zero");
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

/**
 * Template.render of @huggingface/jinja, but with our raise_exception and strftime_now (its own
 * globals cannot be replaced through render's variables: "Variable already declared").
 */
function run(program: Program, vars: Record<string, unknown>): string {
  const env = new Environment();
  const globals: Record<string, unknown> = { false: false, true: true, none: null, False: false, True: true, None: null, range: pyRange };
  for (const [k, v] of Object.entries({ ...globals, ...vars })) env.set(k, v);
  const result = new HfInterpreter(env).run(program);
  return String(result.value);
}

/** transformers' continue_final_message: keep the render up to the end of the final message's text. */
export function cutAfterFinalMessage(text: string, messages: readonly ChatMessage[]): string {
  const final = messages[messages.length - 1]?.content;
  if (typeof final !== "string") throw new ChatTemplateError("continue_final_message needs a final message with text content.");
  const stripped = final.trim();
  if (!text.includes(stripped))
    throw new ChatTemplateError(
      "continue_final_message is set but the final message does not appear in the chat after applying the chat template!",
    );
  const loc = text.lastIndexOf(stripped);
  // Keep the message's trailing spacing when the template kept it, else cut at the stripped text.
  const lstripped = final.trimStart();
  return text.slice(0, loc + (text.slice(loc, loc + lstripped.length) === final ? lstripped.length : stripped.length));
}

export class ChatTemplate {
  private readonly template: Program;
  private readonly named = new Map<string, Program>();

  constructor(
    readonly source: string,
    readonly bosToken: string | null = null,
    readonly eosToken: string | null = null,
    /** Where the template came from ("tokenizer_config.json", "gguf", "fallback", ...). */
    readonly origin = "fallback",
    /** More templates by name (tokenizer_config.json's list form), e.g. "tool_use". */
    readonly namedSources: Readonly<Record<string, string>> = {},
  ) {
    this.template = compile(source, origin);
    for (const [name, src] of Object.entries(namedSources)) this.named.set(name, compile(src, `${origin} (template "${name}")`));
  }

  get isFallback(): boolean {
    return this.origin === "fallback";
  }

  /** The text of every template (default and named), e.g. to tell which tool-call format it teaches. */
  get allSources(): string[] {
    return [this.source, ...Object.values(this.namedSources)];
  }

  /** Names of the extra templates ("tool_use", ...). */
  get templateNames(): string[] {
    return [...this.named.keys()];
  }

  render(messages: readonly ChatMessage[], opts: RenderOptions = {}): string {
    const addGenerationPrompt = opts.addGenerationPrompt ?? !opts.continueFinalMessage;
    if (addGenerationPrompt && opts.continueFinalMessage)
      throw new ChatTemplateError("Cannot set both `continue_final_message` and `add_generation_prompt` to true.");
    const kwargs = opts.kwargs ?? {};
    for (const k of RESERVED_TEMPLATE_VARIABLES)
      if (k in kwargs) throw new ChatTemplateError(`chat_template_kwargs may not set '${k}' (it is set by the server).`);
    const tools = opts.tools ?? null;
    // HF: a template named "tool_use" is used when tools are given.
    const template = (tools !== null && this.named.get("tool_use")) || this.template;
    const now = opts.now ?? (() => new Date());
    const vars: Record<string, unknown> = {
      // Special tokens the tokenizer defines (HF passes special_tokens_map; unset ones stay undefined).
      ...(this.bosToken !== null ? { bos_token: this.bosToken } : {}),
      ...(this.eosToken !== null ? { eos_token: this.eosToken } : {}),
      ...kwargs,
      messages: structuredClone(messages),
      tools: tools === null ? null : structuredClone(tools),
      documents: null,
      add_generation_prompt: addGenerationPrompt,
      raise_exception: (message: unknown) => {
        throw new ChatTemplateError(String(message));
      },
      strftime_now: (format: unknown) => pythonStrftime(now(), String(format)),
    };
    let text: string;
    try {
      text = run(template, vars);
    } catch (e) {
      if (e instanceof ChatTemplateError) throw e;
      throw new ChatTemplateError(`chat template (${this.origin}) failed for these messages: ${(e as Error).message}`);
    }
    return opts.continueFinalMessage ? cutAfterFinalMessage(text, messages) : text;
  }

  /** Renders and encodes; BOS is added only when the rendered text does not already start with it. */
  encode(tok: Tokenizer, messages: readonly ChatMessage[], opts: RenderOptions = {}): number[] {
    const text = this.render(messages, opts);
    const hasBos = this.bosToken !== null && this.bosToken !== "" && text.startsWith(this.bosToken);
    return tok.encode(text, { addBos: tok.addBos && !hasBos });
  }
}
