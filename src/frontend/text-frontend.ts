// The text side of the server (vLLM's frontend processor + output processor): tokenizer and chat
// template on a worker pool, and, on the HTTP thread, the per-sequence output processors
// (incremental detokenizer, stop strings, logprob strings). The engine sees token ids only.
import type { ChatMessage, ChatTemplateRequest, EngineHealth } from "../engine/api.ts";
import type { ChatTemplate } from "../model/chat-template.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import type { StructuredSpec } from "../structured/spec.ts";
import { GrammarCompilerCache, grammarVocab } from "../structured/xgrammar.ts";
import { OutputProcessor, type OutputProcessorOptions } from "./output-processor.ts";
import { loadTextModel } from "./text-model.ts";
import { TokenizerPool } from "./tokenizer-pool.ts";

export interface TextFrontendOptions {
  /** Model path (null: the built-in demo model), the same one the engine opens. */
  model: string | null;
  /** --chat-template (a file or the template text); null/absent = the model's own. */
  chatTemplate?: string | null;
  /** Tokenizer workers (default 2). */
  workers?: number;
}

export class TextFrontend {
  private state: EngineHealth = "starting";
  private tokenizer: Tokenizer | null = null;
  private grammars: GrammarCompilerCache | null = null;
  private template: ChatTemplate | null = null;
  private pool: TokenizerPool | null = null;
  private started: Promise<void> | null = null;
  private failure: Error | null = null;

  constructor(private readonly opts: TextFrontendOptions) {}

  /** Loads the tokenizer here and in the workers. Idempotent; the server calls it when it listens. */
  start(): Promise<void> {
    this.started ??= (async () => {
      try {
        this.pool = new TokenizerPool(this.opts.model, this.opts.workers ?? 2, this.opts.chatTemplate ?? null);
        // Yield first so a listening server answers /health (503 "starting") during the load.
        await new Promise((r) => setTimeout(r, 0));
        const tm = loadTextModel(this.opts.model, { chatTemplate: this.opts.chatTemplate ?? null });
        this.tokenizer = tm.tokenizer;
        this.template = tm.chatTemplate;
        await this.pool.ready;
        this.state = "ready";
      } catch (e) {
        this.failure = e instanceof Error ? e : new Error(String(e));
        this.state = "dead";
        throw this.failure;
      }
    })();
    this.started.catch(() => {});
    return this.started;
  }

  health(): EngineHealth {
    if (this.state === "ready" && this.pool?.error) return "dead";
    return this.state;
  }

  /** Why the text side is dead, if it is. */
  get error(): Error | null {
    return this.failure ?? this.pool?.error ?? null;
  }

  private ready(): { tok: Tokenizer; pool: TokenizerPool } {
    if (this.health() !== "ready" || !this.tokenizer || !this.pool)
      throw Object.assign(new Error(`the tokenizer is ${this.health()}${this.error ? `: ${this.error.message}` : ""}`), {
        code: "engine_dead",
      });
    return { tok: this.tokenizer, pool: this.pool };
  }

  /** Token ids of a text prompt (off the HTTP thread; dropped unstarted once `signal` aborts). */
  encode(text: string, addSpecialTokens = true, signal?: AbortSignal): Promise<Int32Array> {
    return this.ready().pool.encode(text, addSpecialTokens, signal);
  }

  /** The model's chat template rendered per `opts` and tokenized (off the HTTP thread). */
  chat(messages: ChatMessage[], opts: ChatTemplateRequest = {}, signal?: AbortSignal): Promise<Int32Array> {
    return this.ready().pool.chat(messages, opts, signal);
  }

  /** The text of the chat templates in use (default and named), e.g. to recognise the tool-call format. */
  chatTemplateSources(): string[] {
    this.ready();
    return this.template?.allSources ?? [];
  }

  /** The tokenizer (detokenizing ids for /detokenize, special-token lookups). */
  get tok(): Tokenizer {
    return this.ready().tok;
  }

  /** A fresh output processor for one sequence of `promptTokenIds`. */
  processor(promptTokenIds: ArrayLike<number>, opts: OutputProcessorOptions): OutputProcessor {
    return new OutputProcessor(this.ready().tok, promptTokenIds, opts);
  }

  /**
   * Compiles a structured-output grammar for this tokenizer (cached per spec); rejects with
   * GrammarError when xgrammar refuses it. `vocabSize` is the logits width (the model's).
   * Also the way for other features (tool calls) to check a schema / structural tag up front.
   */
  async compileGrammar(spec: StructuredSpec, vocabSize: number): Promise<void> {
    const tok = this.ready().tok;
    if (!this.grammars || this.grammars.vocab.vocabSize !== Math.max(vocabSize, tok.vocabSize))
      this.grammars = new GrammarCompilerCache(grammarVocab(tok, vocabSize));
    await this.grammars.compile(spec);
  }

  /** Stops the tokenizer workers; generation is refused (503) afterwards. */
  close(): void {
    this.pool?.close();
    this.state = "dead";
  }
}
