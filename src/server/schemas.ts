// TypeBox schemas for every route (request bodies, queries and responses). They feed both
// validation and the OpenAPI document.
import { t, type Static, type TSchema } from "elysia";

/** Optional and nullable (OpenAI clients send null for "unset"). */
const opt = <T extends TSchema>(s: T, description?: string) =>
  t.Optional(t.Union([s, t.Null()], description ? { description } : {}));

// ---------- errors ----------

export const ErrorResponse = t.Object(
  {
    error: t.Object({
      message: t.String(),
      type: t.String(),
      param: t.Union([t.String(), t.Null()]),
      code: t.Union([t.String(), t.Integer(), t.Null()]),
    }),
  },
  { description: "OpenAI-style error" },
);
export type ErrorResponse = Static<typeof ErrorResponse>;

/** Error responses every /v1 generation route can give. */
export const generationErrors = {
  400: ErrorResponse,
  401: ErrorResponse,
  404: ErrorResponse,
  413: ErrorResponse,
  500: ErrorResponse,
  503: ErrorResponse,
} as const;

// ---------- shared sampling fields ----------

const Stop = t.Union([t.String(), t.Array(t.String(), { maxItems: 16 })], {
  description: "Up to 16 sequences where generation stops; excluded from the text",
});

const StreamOptions = t.Object({
  include_usage: opt(t.Boolean(), "Send a last chunk with usage (choices: [])"),
});

const sampling = {
  n: opt(t.Integer({ minimum: 1, maximum: 128 }), "Choices per prompt (default 1)"),
  stream: opt(t.Boolean()),
  stream_options: opt(StreamOptions),
  stop: opt(Stop),
  stop_token_ids: opt(t.Array(t.Integer({ minimum: 0 }), { maxItems: 64 }), "Extra token ids that end generation (vLLM extension)"),
  seed: opt(t.Integer(), "Same seed and parameters ⇒ same output"),
  temperature: opt(t.Number({ minimum: 0, maximum: 2 }), "0 = greedy (default 1)"),
  top_p: opt(t.Number({ exclusiveMinimum: 0, maximum: 1 })),
  top_k: opt(t.Integer({ minimum: -1 }), "0 or -1 = off (vLLM extension)"),
  min_p: opt(t.Number({ minimum: 0, maximum: 1 }), "vLLM extension"),
  presence_penalty: opt(t.Number({ minimum: -2, maximum: 2 })),
  frequency_penalty: opt(t.Number({ minimum: -2, maximum: 2 })),
  repetition_penalty: opt(t.Number({ exclusiveMinimum: 0, maximum: 10 }), "1 = off (vLLM extension)"),
  ignore_eos: opt(t.Boolean(), "vLLM extension"),
  user: opt(t.String()),
};

// ---------- completions ----------

export const CompletionRequest = t.Object({
  model: opt(t.String(), "Served model name (default: the only model)"),
  prompt: t.Union(
    [
      t.String(),
      t.Array(t.String(), { minItems: 1, maxItems: 1024 }),
      t.Array(t.Integer({ minimum: 0 }), { minItems: 1 }),
      t.Array(t.Array(t.Integer({ minimum: 0 }), { minItems: 1 }), { minItems: 1, maxItems: 1024 }),
    ],
    { description: "Text, list of texts, token ids or list of token-id lists" },
  ),
  max_tokens: opt(t.Integer({ minimum: 1 }), "Default 16"),
  logprobs: opt(t.Integer({ minimum: 0, maximum: 20 }), "Top alternatives per token to return"),
  echo: opt(t.Boolean(), "Prepend the prompt to the completion"),
  suffix: opt(t.String(), "Not supported (must be empty)"),
  best_of: opt(t.Integer({ minimum: 1 }), "Only best_of == n is supported"),
  ...sampling,
});
export type CompletionRequest = Static<typeof CompletionRequest>;

const CompletionLogprobs = t.Object({
  tokens: t.Array(t.String()),
  token_logprobs: t.Array(t.Union([t.Number(), t.Null()])),
  top_logprobs: t.Array(t.Union([t.Record(t.String(), t.Number()), t.Null()])),
  text_offset: t.Array(t.Integer()),
});
export type CompletionLogprobs = Static<typeof CompletionLogprobs>;

const FinishReason = t.Union([t.Literal("stop"), t.Literal("length"), t.Literal("abort"), t.Null()]);

export const Usage = t.Object({
  prompt_tokens: t.Integer(),
  completion_tokens: t.Integer(),
  total_tokens: t.Integer(),
});
export type Usage = Static<typeof Usage>;

export const CompletionResponse = t.Object(
  {
    id: t.String({ description: "cmpl-…" }),
    object: t.Literal("text_completion"),
    created: t.Integer(),
    model: t.String(),
    system_fingerprint: t.Optional(t.Union([t.String(), t.Null()])),
    choices: t.Array(
      t.Object({
        index: t.Integer(),
        text: t.String(),
        logprobs: t.Union([CompletionLogprobs, t.Null()]),
        finish_reason: FinishReason,
      }),
    ),
    usage: Usage,
  },
  {
    description:
      "With stream=true the response is text/event-stream: `data: <chunk>` lines (same shape, object 'text_completion', partial text; `usage` only in the last chunk when stream_options.include_usage) ending with `data: [DONE]`.",
  },
);
export type CompletionResponse = Static<typeof CompletionResponse>;

// ---------- chat ----------

const ContentPart = t.Object({
  type: t.String({ description: "Only 'text' is supported" }),
  text: t.Optional(t.String()),
});

export const ChatMessageIn = t.Object({
  role: t.Union([t.Literal("system"), t.Literal("developer"), t.Literal("user"), t.Literal("assistant"), t.Literal("tool")]),
  content: t.Union([t.String(), t.Array(ContentPart), t.Null()]),
  name: t.Optional(t.String()),
});

export const ChatCompletionRequest = t.Object({
  model: opt(t.String(), "Served model name (default: the only model)"),
  messages: t.Array(ChatMessageIn, { minItems: 1 }),
  max_tokens: opt(t.Integer({ minimum: 1 }), "Deprecated alias of max_completion_tokens"),
  max_completion_tokens: opt(t.Integer({ minimum: 1 }), "Default: what fits in max_model_len"),
  logprobs: opt(t.Boolean()),
  top_logprobs: opt(t.Integer({ minimum: 0, maximum: 20 })),
  ...sampling,
});
export type ChatCompletionRequest = Static<typeof ChatCompletionRequest>;

const TopLogprob = t.Object({
  token: t.String(),
  logprob: t.Number(),
  bytes: t.Union([t.Array(t.Integer()), t.Null()]),
});
export const ChatLogprobs = t.Object({
  content: t.Union([
    t.Array(
      t.Object({
        token: t.String(),
        logprob: t.Number(),
        bytes: t.Union([t.Array(t.Integer()), t.Null()]),
        top_logprobs: t.Array(TopLogprob),
      }),
    ),
    t.Null(),
  ]),
});
export type ChatLogprobs = Static<typeof ChatLogprobs>;

export const ChatCompletionResponse = t.Object(
  {
    id: t.String({ description: "chatcmpl-…" }),
    object: t.Literal("chat.completion"),
    created: t.Integer(),
    model: t.String(),
    system_fingerprint: t.Optional(t.Union([t.String(), t.Null()])),
    choices: t.Array(
      t.Object({
        index: t.Integer(),
        message: t.Object({
          role: t.Literal("assistant"),
          content: t.Union([t.String(), t.Null()]),
          refusal: t.Optional(t.Union([t.String(), t.Null()])),
        }),
        logprobs: t.Union([ChatLogprobs, t.Null()]),
        finish_reason: FinishReason,
      }),
    ),
    usage: Usage,
  },
  {
    description:
      "With stream=true the response is text/event-stream of chat.completion.chunk objects (`choices[].delta` with role first, then content), ending with `data: [DONE]`.",
  },
);
export type ChatCompletionResponse = Static<typeof ChatCompletionResponse>;

// ---------- models ----------

export const ModelCard = t.Object({
  id: t.String(),
  object: t.Literal("model"),
  created: t.Integer(),
  owned_by: t.String(),
  root: t.String(),
  max_model_len: t.Integer(),
  random_weights: t.Boolean({ description: "True for the built-in demo model" }),
});
export const ModelList = t.Object({ object: t.Literal("list"), data: t.Array(ModelCard) });

// ---------- memory / kv ----------

export const MemoryPayload = t.Record(t.String(), t.Unknown(), {
  description:
    "What the engine reports, in bytes: `snapshot` (total, free, used, allocator reserved/allocated/peak, non_allocator), `profile` (weights, peak_activation, non_allocator_increase, cuda_graph, non_kv_total, kv_budget, time), `breakdown` by category, `suggestions` (kv_cache_memory_bytes values that fit the request / fully use the device).",
});
export const AllocatorPayload = t.Record(t.String(), t.Unknown(), {
  description: "Caching-allocator stats (allocated/reserved/active bytes current & peak, retries, OOMs) and a snapshot of segments and blocks.",
});

export const KvStats = t.Object({
  block_size: t.Integer(),
  blocks_total: t.Integer(),
  blocks_used: t.Integer(),
  blocks_free: t.Integer(),
  blocks_cached: t.Integer({ description: "Free blocks that still hold a reusable cached prefix" }),
  usage: t.Number({ description: "blocks_used / blocks_total" }),
  prefix_cache_queries: t.Integer(),
  prefix_cache_hits: t.Integer(),
  prefix_cache_hit_rate: t.Number(),
  running: t.Integer(),
  waiting: t.Integer(),
  preemptions: t.Integer(),
});

// ---------- health ----------

export const Health = t.Object({
  status: t.Union([t.Literal("ok"), t.Literal("starting"), t.Literal("dead")]),
});
