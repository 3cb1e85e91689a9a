// The contract between the HTTP server and the engine. The engine runs off the HTTP thread
// (a worker / engine process); everything here is async and serializable.

export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  /** 0 or -1 = off. */
  topK: number;
  minP: number;
  seed?: number;
  maxTokens: number;
  stop: string[];
  stopTokenIds: number[];
  ignoreEos: boolean;
  /** Number of top alternatives to return per token (0..20); undefined = no logprobs. */
  logprobs?: number;
  presencePenalty: number;
  frequencyPenalty: number;
  repetitionPenalty: number;
}

export interface GenerateRequest {
  requestId: string;
  /** Token ids (already tokenized and templated by the caller through `tokenize`). */
  promptTokenIds: number[];
  params: SamplingParams;
}

export interface TokenLogprob {
  tokenId: number;
  token: string;
  logprob: number;
  top: { tokenId: number; token: string; logprob: number }[];
}

export type FinishReason = "stop" | "length" | "abort";

/** One streamed step of one request. */
export interface TokenEvent {
  requestId: string;
  /** New token ids this step (usually one). */
  tokenIds: number[];
  /** New complete UTF-8 text (stop strings already removed). */
  text: string;
  logprobs?: TokenLogprob[];
  finishReason: FinishReason | null;
  promptTokens: number;
  completionTokens: number;
}

export interface ChatMessage {
  role: string;
  content: string;
}

export interface EngineStats {
  running: number;
  waiting: number;
  blocksTotal: number;
  blocksUsed: number;
  blocksFree: number;
  blocksCached: number;
  blockSize: number;
  prefixCacheQueries: number;
  prefixCacheHits: number;
  prefixCacheHitRate: number;
  generatedTokens: number;
  promptTokens: number;
  tokensPerSecond: number;
  preemptions: number;
  steps: number;
}

export type EngineHealth = "starting" | "ready" | "dead";

export interface ModelDescription {
  /** Name served in /v1/models. */
  id: string;
  maxModelLen: number;
  vocabSize: number;
  randomWeights: boolean;
}

export interface Engine {
  health(): EngineHealth;
  /** Resolves when the engine is ready; rejects with the start-up error. */
  ready(): Promise<void>;
  model(): ModelDescription;
  tokenize(text: string, addSpecialTokens: boolean): Promise<number[]>;
  /** Renders the model's chat template (with the generation prompt) and tokenizes it. */
  applyChatTemplate(messages: ChatMessage[]): Promise<number[]>;
  /** Streams events until one has a finishReason. Aborting `signal` cancels the request. */
  generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<TokenEvent>;
  stats(): Promise<EngineStats>;
  /** GET /v1/memory payload (snapshot, profiling result, breakdown, suggestions). */
  memory(): Promise<Record<string, unknown>>;
  /** GET /v1/memory/allocator payload (stats + segments). */
  allocator(): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}
