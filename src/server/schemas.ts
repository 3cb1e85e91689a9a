// TypeBox schemas for every route (request bodies, queries and responses). They feed both
// validation and the OpenAPI document.
import { Type, type IntegerOptions, type ObjectOptions, type TProperties } from "@sinclair/typebox";
import { t, type Static, type TSchema } from "elysia";
import { CHAT_EXAMPLE, COMPLETION_EXAMPLE } from "./openapi-examples.ts";

/** Plain JSON-schema integer. (Elysia's t.Integer also accepts numeric strings and shows up in
 *  the OpenAPI document as `string | integer`, which generated clients then type wrongly.) */
const Int = (o?: IntegerOptions) => Type.Integer(o);

/** Objects state additionalProperties explicitly: Elysia otherwise adds it in place when it
 *  compiles a validator, which would make the OpenAPI document depend on what ran before.
 *  (Unknown request fields are dropped, not rejected, as vLLM does.) */
export const Obj = <P extends TProperties>(props: P, o?: ObjectOptions) => t.Object(props, { additionalProperties: false, ...o });

/** Optional and nullable (OpenAI clients send null for "unset"). */
const opt = <T extends TSchema>(s: T, description?: string) => t.Optional(t.Union([s, t.Null()], description ? { description } : {}));

// ---------- errors ----------

export const ErrorResponse = Obj(
  {
    error: Obj({
      message: t.String(),
      type: t.String(),
      param: t.Union([t.String(), t.Null()]),
      code: t.Union([t.String(), Int(), t.Null()]),
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

const StreamOptions = Obj({
  include_usage: opt(t.Boolean(), "Send a last chunk with usage (choices: [])"),
});

const sampling = {
  n: opt(Int({ minimum: 1, maximum: 128 }), "Choices per prompt (default 1)"),
  stream: opt(t.Boolean()),
  stream_options: opt(StreamOptions),
  stop: opt(Stop),
  stop_token_ids: opt(t.Array(Int({ minimum: 0 }), { maxItems: 64 }), "Extra token ids that end generation (vLLM extension)"),
  seed: opt(Int(), "Same seed and parameters ⇒ same output"),
  temperature: opt(t.Number({ minimum: 0, maximum: 2 }), "0 = greedy (default 1)"),
  top_p: opt(t.Number({ exclusiveMinimum: 0, maximum: 1 })),
  top_k: opt(Int({ minimum: -1 }), "0 or -1 = off (vLLM extension)"),
  min_p: opt(t.Number({ minimum: 0, maximum: 1 }), "vLLM extension"),
  presence_penalty: opt(t.Number({ minimum: -2, maximum: 2 })),
  frequency_penalty: opt(t.Number({ minimum: -2, maximum: 2 })),
  repetition_penalty: opt(t.Number({ exclusiveMinimum: 0, maximum: 10 }), "1 = off (vLLM extension)"),
  ignore_eos: opt(t.Boolean(), "Do not stop at the model's EOS tokens (vLLM extension)"),
  min_tokens: opt(Int({ minimum: 0 }), "EOS and stop_token_ids are banned until this many tokens were generated (vLLM extension)"),
  logit_bias: opt(
    t.Record(t.String({ pattern: "^[0-9]+$" }), t.Number({ minimum: -100, maximum: 100 }), { additionalProperties: false }),
    "Token id (as a string) → bias added to its logit before sampling; -100 bans the token, 100 all but forces it",
  ),
  skip_special_tokens: opt(t.Boolean(), "Leave special tokens out of the text (default true; vLLM extension)"),
  include_stop_str_in_output: opt(
    t.Boolean(),
    "Keep the matched stop string (or stop token's text) at the end of the text (default false; vLLM extension)",
  ),
  user: opt(t.String(), "An end-user id; accepted and not used"),
};

// ---------- structured outputs (OpenAI response_format, vLLM guided_* / structured_outputs) ----------

const JsonObject = (description?: string) =>
  t.Record(t.String(), t.Unknown(), { additionalProperties: false, ...(description ? { description } : {}) });

const ResponseFormat = Obj(
  {
    type: t.Union([t.Literal("text"), t.Literal("json_object"), t.Literal("json_schema")]),
    json_schema: opt(
      Obj({
        name: t.String(),
        description: opt(t.String()),
        schema: opt(JsonObject("The JSON schema the output follows")),
        strict: opt(t.Boolean(), "Always enforced: the grammar allows only schema-valid output"),
      }),
    ),
  },
  { description: "'json_object': any JSON object; 'json_schema': JSON valid against json_schema.schema (enforced by an xgrammar grammar)" },
);

const StructuredOutputsParams = Obj(
  {
    json: opt(t.Union([t.String(), JsonObject()]), "JSON schema (object or JSON text)"),
    regex: opt(t.String()),
    choice: opt(t.Array(t.String(), { minItems: 1 })),
    grammar: opt(t.String(), "EBNF grammar (xgrammar syntax, GBNF-like; root rule 'root')"),
    json_object: opt(t.Boolean()),
    structural_tag: opt(t.String(), "xgrammar structural tag (JSON text)"),
    disable_fallback: opt(t.Boolean(), "Accepted: xgrammar is the only backend, there is no fallback"),
    disable_any_whitespace: opt(t.Boolean(), "Not supported (400)"),
    disable_additional_properties: opt(t.Boolean(), "Not supported (400)"),
    whitespace_pattern: opt(t.String(), "Not supported (400)"),
  },
  { description: "vLLM's structured outputs: exactly one of json, regex, choice, grammar, json_object, structural_tag" },
);

const structuredFields = {
  response_format: opt(ResponseFormat),
  structured_outputs: opt(StructuredOutputsParams),
  guided_json: opt(t.Union([t.String(), JsonObject()]), "vLLM (deprecated form of structured_outputs.json)"),
  guided_regex: opt(t.String(), "vLLM (deprecated form of structured_outputs.regex)"),
  guided_choice: opt(t.Array(t.String(), { minItems: 1 }), "vLLM (deprecated form of structured_outputs.choice)"),
  guided_grammar: opt(t.String(), "vLLM (deprecated form of structured_outputs.grammar)"),
  guided_decoding_backend: opt(t.String(), "Only 'xgrammar' (or 'auto') is supported"),
  guided_whitespace_pattern: opt(t.String(), "Not supported (400)"),
};

// ---------- completions ----------

export const CompletionRequest = Obj(
  {
    model: opt(t.String(), "Served model name (default: the only model)"),
    prompt: t.Union(
      [
        t.String(),
        t.Array(t.String(), { minItems: 1, maxItems: 1024 }),
        t.Array(Int({ minimum: 0 }), { minItems: 1 }),
        t.Array(t.Array(Int({ minimum: 0 }), { minItems: 1 }), { minItems: 1, maxItems: 1024 }),
      ],
      { description: "Text, list of texts, token ids or list of token-id lists" },
    ),
    max_tokens: opt(Int({ minimum: 1 }), "Default 16"),
    logprobs: opt(Int({ minimum: 0, maximum: 20 }), "Top alternatives per token to return"),
    echo: opt(
      t.Boolean(),
      "Prepend the prompt to the completion (text prompts); with logprobs, the prompt tokens' logprobs come first (the first token's is null)",
    ),
    suffix: opt(t.String(), "Not supported (must be empty)"),
    best_of: opt(Int({ minimum: 1 }), "Only best_of == n is supported (400 otherwise: best-of sampling is not implemented)"),
    ...sampling,
    ...structuredFields,
  },
  { example: COMPLETION_EXAMPLE },
);
export type CompletionRequest = Static<typeof CompletionRequest>;

const CompletionLogprobs = Obj({
  tokens: t.Array(t.String()),
  token_logprobs: t.Array(t.Union([t.Number(), t.Null()])),
  // Token strings can hold any character ("\n" among them): TypeBox's default key pattern ^(.*)$ does not match newlines.
  top_logprobs: t.Array(t.Union([t.Record(t.String({ pattern: "^[\\s\\S]*$" }), t.Number(), { additionalProperties: false }), t.Null()])),
  text_offset: t.Array(Int()),
});
export type CompletionLogprobs = Static<typeof CompletionLogprobs>;

const FinishReason = t.Union([t.Literal("stop"), t.Literal("length"), t.Literal("abort"), t.Null()]);
const ChatFinishReason = t.Union([t.Literal("stop"), t.Literal("length"), t.Literal("tool_calls"), t.Literal("abort"), t.Null()], {
  description: "'tool_calls' when the turn ends in tool calls",
});

export const Usage = Obj({
  prompt_tokens: Int(),
  completion_tokens: Int(),
  total_tokens: Int(),
});
export type Usage = Static<typeof Usage>;

export const CompletionResponse = Obj(
  {
    id: t.String({ description: "cmpl-…" }),
    object: t.Literal("text_completion"),
    created: Int(),
    model: t.String(),
    system_fingerprint: t.Optional(t.Union([t.String(), t.Null()])),
    choices: t.Array(
      Obj({
        index: Int(),
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

const ContentPart = Obj({
  type: t.String({ description: "Only 'text' is supported" }),
  text: t.Optional(t.String()),
});

const ToolCallIn = Obj({
  id: t.String(),
  type: t.Literal("function"),
  function: Obj({ name: t.String(), arguments: t.String({ description: "JSON text (given to the chat template parsed)" }) }),
});

export const ChatMessageIn = Obj({
  role: t.Union([t.Literal("system"), t.Literal("developer"), t.Literal("user"), t.Literal("assistant"), t.Literal("tool")]),
  content: t.Optional(t.Union([t.String(), t.Array(ContentPart), t.Null()])),
  name: t.Optional(t.String()),
  tool_calls: opt(t.Array(ToolCallIn), "Assistant tool calls of earlier turns (rendered by the chat template)"),
  tool_call_id: opt(t.String(), "Tool messages: the call answered"),
  reasoning_content: opt(t.String(), "Assistant reasoning of earlier turns (templates such as Qwen3 use it)"),
});

const ToolCallOut = Obj({
  id: t.String(),
  type: t.Literal("function"),
  function: Obj({ name: t.String(), arguments: t.String({ description: "JSON text of the arguments object, as the model wrote it" }) }),
});

const ToolIn = Obj({
  type: t.Literal("function"),
  function: Obj({
    name: t.String(),
    description: t.Optional(t.String()),
    parameters: t.Optional(t.Record(t.String(), t.Unknown(), { additionalProperties: false })),
    strict: opt(
      t.Boolean(),
      "true is refused (400) with tool_choice 'auto' (not enforced there); with 'required' or a named function the grammar always enforces the schema",
    ),
  }),
});

export const ChatCompletionRequest = Obj(
  {
    model: opt(t.String(), "Served model name (default: the only model)"),
    messages: t.Array(ChatMessageIn, { minItems: 1 }),
    max_tokens: opt(Int({ minimum: 1 }), "Deprecated alias of max_completion_tokens"),
    max_completion_tokens: opt(Int({ minimum: 1 }), "Default: what fits in max_model_len"),
    logprobs: opt(t.Boolean()),
    top_logprobs: opt(Int({ minimum: 0, maximum: 20 })),
    tools: opt(
      t.Array(ToolIn, { maxItems: 128 }),
      "Given to the chat template; with tool_choice 'auto' tool calls are parsed out of the output (--tool-call-parser)",
    ),
    tool_choice: opt(
      t.Union([
        t.Literal("none"),
        t.Literal("auto"),
        t.Literal("required"),
        Obj({ type: t.Literal("function"), function: Obj({ name: t.String() }) }),
      ]),
      "'auto' (default with tools): the model may call tools; 'none': plain text; 'required' / a named function: the output is forced into tool calls by a grammar (xgrammar; not combinable with response_format)",
    ),
    parallel_tool_calls: opt(t.Boolean(), "false: at most one tool call (the first) is returned"),
    add_generation_prompt: opt(t.Boolean(), "End the prompt with the assistant turn's opening (default true; vLLM extension)"),
    continue_final_message: opt(
      t.Boolean(),
      "Continue the last message instead of starting a new one (needs add_generation_prompt: false; vLLM extension)",
    ),
    chat_template_kwargs: opt(
      t.Record(t.String(), t.Unknown(), { additionalProperties: false }),
      'More chat template variables, e.g. {"enable_thinking": false} (vLLM extension)',
    ),
    ...sampling,
    ...structuredFields,
  },
  { example: CHAT_EXAMPLE },
);
export type ChatCompletionRequest = Static<typeof ChatCompletionRequest>;

const TopLogprob = Obj({
  token: t.String(),
  logprob: t.Number(),
  bytes: t.Union([t.Array(Int()), t.Null()]),
});
export const ChatLogprobs = Obj({
  content: t.Union([
    t.Array(
      Obj({
        token: t.String(),
        logprob: t.Number(),
        bytes: t.Union([t.Array(Int()), t.Null()]),
        top_logprobs: t.Array(TopLogprob),
      }),
    ),
    t.Null(),
  ]),
});
export type ChatLogprobs = Static<typeof ChatLogprobs>;

export const ChatCompletionResponse = Obj(
  {
    id: t.String({ description: "chatcmpl-…" }),
    object: t.Literal("chat.completion"),
    created: Int(),
    model: t.String(),
    system_fingerprint: t.Optional(t.Union([t.String(), t.Null()])),
    choices: t.Array(
      Obj({
        index: Int(),
        message: Obj({
          role: t.Literal("assistant"),
          content: t.Union([t.String(), t.Null()]),
          refusal: t.Optional(t.Union([t.String(), t.Null()])),
          tool_calls: t.Optional(t.Array(ToolCallOut, { description: "Tool calls parsed from the output (tool_choice 'auto')" })),
        }),
        logprobs: t.Union([ChatLogprobs, t.Null()]),
        finish_reason: ChatFinishReason,
      }),
    ),
    usage: Usage,
  },
  {
    description:
      "With stream=true the response is text/event-stream of chat.completion.chunk objects (`choices[].delta` with role first, then content; tool calls as `delta.tool_calls` [{index, id, type, function: {name, arguments: ''}}] then [{index, function: {arguments: fragment}}], as OpenAI streams them), ending with `data: [DONE]`.",
  },
);
export type ChatCompletionResponse = Static<typeof ChatCompletionResponse>;

// ---------- tokenize / detokenize (vLLM's shapes) ----------

export const TokenizeRequest = Obj(
  {
    model: opt(t.String(), "Served model name (default: the only model)"),
    prompt: t.Optional(t.String({ description: "Text to tokenize (give prompt or messages)" })),
    add_special_tokens: opt(t.Boolean(), "prompt only: add BOS etc. as /v1/completions does (default true)"),
    messages: t.Optional(
      t.Array(ChatMessageIn, {
        minItems: 1,
        description: "A chat, tokenized exactly as /v1/chat/completions would (give prompt or messages)",
      }),
    ),
    add_generation_prompt: opt(t.Boolean(), "messages only (default true)"),
    continue_final_message: opt(t.Boolean(), "messages only (default false)"),
    chat_template_kwargs: opt(t.Record(t.String(), t.Unknown(), { additionalProperties: false }), "messages only"),
    tools: opt(t.Array(ToolIn, { maxItems: 128 }), "messages only: given to the chat template"),
    return_token_strs: opt(t.Boolean(), "Also return each token's string (default false)"),
  },
  { description: "Either {prompt, add_special_tokens} or {messages, add_generation_prompt, …}" },
);
export type TokenizeRequest = Static<typeof TokenizeRequest>;

export const TokenizeResponse = Obj({
  count: Int(),
  max_model_len: Int(),
  tokens: t.Array(Int()),
  token_strs: t.Optional(t.Array(t.String(), { description: "Only with return_token_strs" })),
});

export const DetokenizeRequest = Obj({
  model: opt(t.String(), "Served model name (default: the only model)"),
  tokens: t.Array(Int({ minimum: 0 }), { description: "Token ids; special tokens are kept in the text" }),
});
export type DetokenizeRequest = Static<typeof DetokenizeRequest>;

export const DetokenizeResponse = Obj({ prompt: t.String() });

// ---------- models ----------

export const ModelCard = Obj({
  id: t.String(),
  object: t.Literal("model"),
  created: Int(),
  owned_by: t.String(),
  root: t.String(),
  max_model_len: Int(),
  random_weights: t.Boolean({ description: "True for the built-in demo model" }),
});
export const ModelList = Obj({ object: t.Literal("list"), data: t.Array(ModelCard) });

// ---------- memory / kv ----------

// GET /v1/memory and /v1/memory/allocator: full schemas in src/memory/report-schema.ts.
export { AllocatorReport as AllocatorPayload, MemoryReport as MemoryPayload } from "../memory/report-schema.ts";

export const KvStats = Obj({
  block_size: Int(),
  kv_cache_dtype: t.String({ description: "KV cache element type: f32, f16, bf16, fp8_e4m3 or fp8_e5m2 (--kv-cache-dtype)" }),
  bytes_per_block: Int({ description: "KV bytes of one block over all layers (K and V)" }),
  scales_from_checkpoint: Int({ description: "Layers whose k_scale/v_scale came from the checkpoint (else 1.0)" }),
  blocks_total: Int(),
  blocks_used: Int(),
  blocks_free: Int(),
  blocks_cached: Int({ description: "Free blocks that still hold a reusable cached prefix" }),
  usage: t.Number({ description: "blocks_used / blocks_total" }),
  prefix_cache_queries: Int(),
  prefix_cache_hits: Int(),
  prefix_cache_hit_rate: t.Number(),
  running: Int(),
  waiting: Int(),
  preemptions: Int(),
});

// ---------- health ----------

export const Health = Obj({
  status: t.Union([t.Literal("ok"), t.Literal("starting"), t.Literal("restarting"), t.Literal("draining"), t.Literal("dead")]),
});
