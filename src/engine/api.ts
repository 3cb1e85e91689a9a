// The contract between the HTTP server (frontend) and the engine. The engine core runs in its own
// process (or, for comparison, a worker); everything here is async and serializable. The engine
// sees token ids only: tokenizing, chat templates, detokenizing, stop strings and logprob
// strings live in the frontend (src/frontend), which aborts a request when a stop string matches.

import type { AllocatorReport, MemoryReport } from "../memory/report-schema.ts";
import type { StructuredSpec } from "../structured/spec.ts";

export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  /** 0 or -1 = off. */
  topK: number;
  minP: number;
  seed?: number;
  maxTokens: number;
  /** Token ids that end generation with finish reason "stop" (the model's EOS ids are added by the engine unless ignoreEos). */
  stopTokenIds: number[];
  ignoreEos: boolean;
  /** Number of top alternatives to return per token (0..20); undefined = no logprobs. */
  logprobs?: number;
  presencePenalty: number;
  frequencyPenalty: number;
  repetitionPenalty: number;
  /**
   * Structured output: the grammar the tokens must follow (compiled and validated by the
   * frontend; the engine masks the logits with its matcher each step).
   */
  structured?: StructuredSpec;
  /** EOS and stop token ids are banned (and stops not checked) until this many tokens were generated. */
  minTokens?: number;
  /** Additive logit bias per token id, [id, bias] pairs (OpenAI logit_bias; applied before penalties). */
  logitBias?: [number, number][];
  /** Logprobs of the prompt tokens with this many alternatives (echo + logprobs); undefined = none. */
  promptLogprobs?: number;
}

export interface GenerateRequest {
  requestId: string;
  /** Token ids (tokenized and templated by the frontend). */
  promptTokenIds: number[];
  params: SamplingParams;
}

/** Logprobs of one sampled token: ids and values only (the frontend adds the strings). */
export interface TokenLogprob {
  tokenId: number;
  logprob: number;
  /** The top-n alternatives, most likely first (n = SamplingParams.logprobs). */
  top: { tokenId: number; logprob: number }[];
}

export type FinishReason = "stop" | "length" | "abort";

/** One streamed step of one request. */
export interface TokenEvent {
  requestId: string;
  /**
   * New token ids this step (usually one). With finishReason "stop" the last id is the EOS or
   * stop token that ended the request (counted, never detokenized).
   */
  tokenIds: number[];
  /** One entry per token id when logprobs were asked for. */
  logprobs?: TokenLogprob[];
  /** With promptLogprobs: one entry per prompt token (the first is null), on the first event. */
  promptLogprobs?: (TokenLogprob | null)[];
  finishReason: FinishReason | null;
  promptTokens: number;
  completionTokens: number;
}

/** A chat message as the template sees it (tool_calls with parsed arguments, tool_call_id, name, ...). */
export interface ChatMessage {
  role: string;
  content: string;
  [field: string]: unknown;
}

/** Request fields that shape the chat template render (vLLM's names in comments). */
export interface ChatTemplateRequest {
  /** add_generation_prompt (default true). */
  addGenerationPrompt?: boolean;
  /** continue_final_message: end the prompt inside the last (assistant) message. */
  continueFinalMessage?: boolean;
  /** tools: OpenAI tool definitions, given to the template (and select a "tool_use" template). */
  tools?: unknown[] | null;
  /** chat_template_kwargs: more template variables (enable_thinking, ...). */
  kwargs?: Record<string, unknown>;
}

/** Request defaults from the model's generation_config.json (a request's own value wins). */
export type { SamplingDefaults } from "../model/generation-config.ts";
import type { SamplingDefaults } from "../model/generation-config.ts";

export interface EngineStats {
  running: number;
  waiting: number;
  blocksTotal: number;
  blocksUsed: number;
  blocksFree: number;
  /** Free blocks that still hold a reusable prefix (blocks in use count as used, never as cached). */
  blocksCached: number;
  blockSize: number;
  /** The KV cache's element type (kv-dtype.ts KvCacheDtype), bytes per block over all layers, layers with checkpoint scales. */
  kvCacheDtype: string;
  kvBytesPerBlock: number;
  kvScalesFromCheckpoint: number;
  prefixCacheQueries: number;
  prefixCacheHits: number;
  prefixCacheHitRate: number;
  generatedTokens: number;
  promptTokens: number;
  tokensPerSecond: number;
  preemptions: number;
  steps: number;
}

/** "restarting": the engine died or hung and is being restarted (in-flight requests failed). */
export type EngineHealth = "starting" | "ready" | "restarting" | "dead";

export interface ModelDescription {
  /** Name served in /v1/models. */
  id: string;
  maxModelLen: number;
  vocabSize: number;
  randomWeights: boolean;
  /** generation_config.json's sampling defaults (absent or {} = none). */
  samplingDefaults?: SamplingDefaults;
}

export interface Engine {
  health(): EngineHealth;
  /** Resolves when the engine is ready; rejects with the start-up error. */
  ready(): Promise<void>;
  model(): ModelDescription;
  /**
   * Streams events until one has a finishReason. Aborting `signal` (or leaving the loop early)
   * cancels the request: the frontend does so when a stop string matches.
   */
  generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<TokenEvent>;
  stats(): Promise<EngineStats>;
  /** GET /v1/memory payload (snapshot, profiling result, breakdown, suggestions). */
  memory(): Promise<MemoryReport>;
  /** GET /v1/memory/allocator payload (stats + segments). */
  allocator(): Promise<AllocatorReport>;
  /** Times a supervised engine was restarted after a crash, exception or hang. */
  restarts?(): number;
  close(): Promise<void>;
}
