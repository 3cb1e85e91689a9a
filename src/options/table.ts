// THE options table: every setting of `headroom serve`, one row per flag. Everything else is
// derived from it: the --flags and HEADROOM_* variables (argv.ts), --help, the defaults, the
// engine's options (engineOptionsFrom), `headroom plan`'s flags (src/cli/plan.ts) and the body
// of POST /v1/memory/plan (src/memory/plan-options.ts).
//
// Adding an option: a field in ServeOptions and a row in OPTIONS with the same key (the
// compiler insists on both). A row says:
//   flag      kebab-case name: --flag, env HEADROOM_FLAG (upper case, "-" → "_")
//   kind      string | int | float | bytes (512MiB, 8GiB, …) | bool | intlist (1,2,4) | choice
//   default   the value when neither flag nor variable is given
//   help      one line for --help and the OpenAPI description
//   choices / nullable / min / max / gt (exclusive minimum) / secret — validation (values.ts)
//   engine: true   passed to the engine (src/engine/startup.ts EngineOptions)
//   plan: true     a memory-planner input: `headroom plan --flag`, POST /v1/memory/plan field
//                  `planField` (default: the flag in snake_case); the HTTP default is the
//                  running server's value
//   aliases        other flag names accepted for it
import type { ValueSpec } from "./values.ts";

export type DeviceKind = "auto" | "cpu" | "cuda";
/** Compute dtype (src/model/dtype.ts DtypeFlag): auto = float32 on CPU, bfloat16 on CUDA. */
export type DtypeOption = "auto" | "float32" | "bfloat16" | "float16";
/** KV cache dtype (src/model/kv-dtype.ts KvCacheDtypeFlag): auto = the compute dtype; fp8 = fp8_e4m3. */
export type KvCacheDtypeOption = "auto" | "float16" | "bfloat16" | "fp8" | "fp8_e4m3" | "fp8_e5m2";
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface ServeOptions {
  /** HF folder or GGUF file; null = the built-in demo model (random weights). */
  model: string | null;
  /** Chat template file or text; null = the model's own (chat_template.jinja, tokenizer_config.json, GGUF). */
  chatTemplate: string | null;
  /** "auto" = the model's generation_config.json, "none" = ignore it, else a folder holding one. */
  generationConfig: string;
  /** With a Hub repo id (or a folder): the GGUF file to use. */
  ggufFile: string | null;
  host: string;
  port: number;
  device: DeviceKind;
  /** Weights, activations and KV cache element type (logits stay float32); 16-bit needs CUDA. */
  dtype: DtypeOption;
  /** KV cache element type (auto = the compute dtype); narrower caches hold more tokens. */
  kvCacheDtype: KvCacheDtypeOption;
  /** CPU backend: device capacity in bytes; null = the backend's default share of RAM. */
  deviceMemory: number | null;
  /** Per-instance fraction of total device memory (0, 1]. */
  gpuMemoryUtilization: number;
  /** Explicit KV cache size in bytes (skips the profile run); null = sized by profiling. */
  kvCacheMemoryBytes: number | null;
  /** null = the model's max_position_embeddings. */
  maxModelLen: number | null;
  maxNumSeqs: number;
  /** null = engine default (max(max_model_len, 2048)-like). */
  maxNumBatchedTokens: number | null;
  /** Prompt chunks paced by time: a step in which sequences decode may take this × a decode step; 0 = off; null = backend default. */
  stepTimeFactor: number | null;
  /** Floor of a paced step's tokens (decodes + prompt tokens); null = 128. */
  minStepTokens: number | null;
  blockSize: number;
  enforceEager: boolean;
  /** null = default list (1, 2, 4, then steps of 8 up to min(2 × max_num_seqs, 512)). */
  cudagraphCaptureSizes: number[] | null;
  /** Largest batch size to capture (caps the list); null = no cap. */
  maxCudagraphCaptureSize: number | null;
  /** When set, every /v1 route requires `Authorization: Bearer <key>`. */
  apiKey: string | null;
  /** Name served in /v1/models and accepted in `model`; null = the engine's model id. */
  servedModelName: string | null;
  /** Requests allowed to wait (not running) before new ones get 503 + Retry-After. */
  maxWaiting: number;
  /** GiB of weights kept in pinned host memory and streamed per layer. */
  cpuOffloadGb: number;
  /** Weights go to the device until device usage reaches this percent of total; null = off. */
  cpuOffloadTriggerPercent: number | null;
  /** Staging slots (layers prefetched ahead) for offloaded weights. */
  offloadPrefetchLayers: number;
  logLevel: LogLevel;
  /** Largest accepted request body (413 above). */
  maxRequestBodyBytes: number;
  /** Longest prompt text, in characters over the request's prompts / messages (400 above, checked before tokenizing). */
  maxPromptChars: number;
  /** Tokenizer worker threads (tokenization runs off the HTTP thread). */
  tokenizerWorkers: number;
  /** Seconds a request body may take to arrive (408 after). */
  requestBodyTimeout: number;
  /** Seconds an engine step may make no progress (while there is work) before it counts as hung. */
  engineStepTimeout: number;
  /** Seconds SIGTERM/SIGINT lets in-flight requests finish before ending them (finish_reason "abort"). */
  shutdownTimeout: number;
  /** Folder whose models POST /v1/memory/plan may open by path; null = none (only the served model). */
  modelsDir: string | null;
  /** Tool-call format parsed from chat outputs; "auto" = recognised from the chat template. */
  toolCallParser: ToolCallParserOption;
  /** Origins allowed to call the API from a browser (CORS): comma list or "*"; null = none (no CORS headers). */
  allowedOrigins: string | null;
  /** Seconds between periodic stats log lines (throughput, queue, KV usage); 0 = off. */
  statsInterval: number;
}

export type ToolCallParserOption = "auto" | "hermes" | "llama3_json" | "mistral";

export interface OptionRow<V> extends ValueSpec {
  default: V;
  help: string;
  engine?: true;
  plan?: true;
  planField?: string;
  aliases?: readonly string[];
}

export const OPTIONS = {
  model: {
    flag: "model",
    kind: "string",
    nullable: true,
    default: null,
    engine: true,
    plan: true,
    help: "HF model folder, GGUF file, or Hugging Face repo id ORG/NAME[@REVISION][:QUANT] (downloaded into $HF_HOME/hub; HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE honoured) (default: built-in demo model with random weights)",
  },
  ggufFile: {
    flag: "gguf-file",
    kind: "string",
    nullable: true,
    default: null,
    help: "the GGUF file to use from a Hub repo (or a folder) holding several",
  },
  chatTemplate: {
    flag: "chat-template",
    kind: "string",
    nullable: true,
    default: null,
    engine: true,
    help: "chat template: a file, or the Jinja text itself (default: the model's chat_template.jinja / tokenizer_config.json / GGUF template)",
  },
  generationConfig: {
    flag: "generation-config",
    kind: "string",
    default: "auto",
    engine: true,
    help: "'auto': the model's generation_config.json (extra EOS ids, default temperature/top_p/top_k/min_p/repetition_penalty/max_new_tokens); 'none': ignore it; or a folder holding one",
  },
  host: { flag: "host", kind: "string", default: "127.0.0.1", help: "address to listen on" },
  port: { flag: "port", kind: "int", min: 0, max: 65535, default: 8000, help: "port to listen on (0 = ephemeral)" },
  device: {
    flag: "device",
    kind: "choice",
    choices: ["auto", "cpu", "cuda"],
    default: "auto",
    engine: true,
    plan: true,
    planField: "backend",
    aliases: ["backend"],
    help: "backend: auto = CUDA when its library is built and a GPU is visible, else CPU (plans: auto = cuda, or the server's)",
  },
  dtype: {
    flag: "dtype",
    kind: "choice",
    choices: ["auto", "float32", "bfloat16", "float16"],
    default: "auto",
    engine: true,
    plan: true,
    help: "compute dtype of weights, activations and (with --kv-cache-dtype auto) the KV cache (logits stay float32); auto = float32 on CPU, bfloat16 on CUDA; on CPU bfloat16/float16 store only the matrix weights in 16 bits (activations and norms stay float32, the KV cache too unless --kv-cache-dtype)",
  },
  kvCacheDtype: {
    flag: "kv-cache-dtype",
    kind: "choice",
    choices: ["auto", "float16", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"],
    default: "auto",
    engine: true,
    plan: true,
    help: "KV cache element type: auto = the compute dtype; float16/bfloat16 hold 2x and fp8 (= fp8_e4m3) / fp8_e5m2 4x the tokens of a float32 cache in the same memory; per-layer k_scale/v_scale from the checkpoint, else 1.0",
  },
  deviceMemory: {
    flag: "device-memory",
    kind: "bytes",
    nullable: true,
    gt: 0,
    default: null,
    engine: true,
    plan: true,
    planField: "device_memory_bytes",
    help: "device capacity in bytes (K/M/G/KiB/MiB/GiB suffixes): the CPU backend's size (default half of RAM); for plans the device's total (default 80GiB, or the server's)",
  },
  gpuMemoryUtilization: {
    flag: "gpu-memory-utilization",
    kind: "float",
    gt: 0,
    max: 1,
    default: 0.9,
    engine: true,
    plan: true,
    help: "fraction of total device memory this instance may use",
  },
  kvCacheMemoryBytes: {
    flag: "kv-cache-memory-bytes",
    kind: "bytes",
    nullable: true,
    gt: 0,
    default: null,
    engine: true,
    plan: true,
    help: "explicit KV cache size (skips the profile run)",
  },
  maxModelLen: {
    flag: "max-model-len",
    kind: "int",
    nullable: true,
    min: 2,
    default: null,
    engine: true,
    plan: true,
    help: "context length (prompt + completion); default: the model's",
  },
  maxNumSeqs: {
    flag: "max-num-seqs",
    kind: "int",
    min: 1,
    default: 256,
    engine: true,
    plan: true,
    help: "most sequences running in one step",
  },
  maxNumBatchedTokens: {
    flag: "max-num-batched-tokens",
    kind: "int",
    nullable: true,
    min: 1,
    default: null,
    engine: true,
    plan: true,
    help: "most tokens in one step, a hard cap (sizes the activation arena; caps sequences per step; long prompts are prefilled in chunks): default 512 on the CPU backend (--step-time-factor sizes the chunks within it), max(2048, min(max-model-len, 8192)) on CUDA",
  },
  stepTimeFactor: {
    flag: "step-time-factor",
    kind: "float",
    nullable: true,
    min: 0,
    default: null,
    engine: true,
    help: "chunked prefill paced by time: while sequences decode, a step carrying prompt tokens may take this many times a plain decode step of the served batch (predicted by a cost model fitted online from the engine's step timings; at least --min-step-tokens tokens a step), within --max-num-batched-tokens; 0 = off (chunks limited by --max-num-batched-tokens alone); default 4 on the CPU backend, 0 on CUDA",
  },
  minStepTokens: {
    flag: "min-step-tokens",
    kind: "int",
    nullable: true,
    min: 1,
    default: null,
    engine: true,
    help: "floor of a step paced by --step-time-factor (decodes + prompt tokens; default 128): with a lower factor, a lower floor shortens the steps that carry prompt chunks (inter-token p99) at the cost of TTFT",
  },
  blockSize: { flag: "block-size", kind: "int", min: 1, max: 1024, default: 16, engine: true, plan: true, help: "tokens per KV block" },
  enforceEager: { flag: "enforce-eager", kind: "bool", default: false, engine: true, plan: true, help: "never capture graphs" },
  cudagraphCaptureSizes: {
    flag: "cudagraph-capture-sizes",
    kind: "intlist",
    nullable: true,
    default: null,
    engine: true,
    plan: true,
    help: "batch sizes to capture (comma separated); default 1,2,4,8,16,… up to min(2×max-num-seqs, 512)",
  },
  maxCudagraphCaptureSize: {
    flag: "max-cudagraph-capture-size",
    kind: "int",
    nullable: true,
    min: 1,
    default: null,
    engine: true,
    plan: true,
    help: "largest decode batch size to capture as a graph (caps the capture list)",
  },
  apiKey: {
    flag: "api-key",
    kind: "string",
    nullable: true,
    secret: true,
    default: null,
    help: "require 'Authorization: Bearer <key>' on /v1 routes",
  },
  servedModelName: {
    flag: "served-model-name",
    kind: "string",
    nullable: true,
    default: null,
    engine: true,
    help: "model name in the API (default: the model's id)",
  },
  maxWaiting: { flag: "max-waiting", kind: "int", min: 0, default: 1024, help: "waiting sequences allowed before 503 + Retry-After" },
  cpuOffloadGb: {
    flag: "cpu-offload-gb",
    kind: "float",
    min: 0,
    default: 0,
    engine: true,
    plan: true,
    help: "GiB of weights kept in host memory and streamed per layer",
  },
  cpuOffloadTriggerPercent: {
    flag: "cpu-offload-trigger-percent",
    kind: "float",
    nullable: true,
    gt: 0,
    max: 100,
    default: null,
    engine: true,
    plan: true,
    help: "offload the remaining weights once device usage reaches this percent",
  },
  offloadPrefetchLayers: {
    flag: "offload-prefetch-layers",
    kind: "int",
    min: 1,
    default: 2,
    engine: true,
    plan: true,
    help: "device staging slots for offloaded layers",
  },
  logLevel: { flag: "log-level", kind: "choice", choices: ["debug", "info", "warn", "error"], default: "info", help: "log verbosity" },
  maxRequestBodyBytes: {
    flag: "max-request-body-bytes",
    kind: "bytes",
    min: 1024,
    default: 32 * 1024 * 1024,
    help: "largest request body, chunked or not (413 above)",
  },
  maxPromptChars: {
    flag: "max-prompt-chars",
    kind: "int",
    min: 1,
    default: 1024 * 1024,
    help: "longest prompt text in characters, all prompts/messages of a request together (400 above; checked before tokenizing)",
  },
  tokenizerWorkers: {
    flag: "tokenizer-workers",
    kind: "int",
    min: 1,
    max: 64,
    default: 2,
    help: "tokenizer worker threads (tokenization runs off the HTTP thread)",
  },
  requestBodyTimeout: {
    flag: "request-body-timeout",
    kind: "float",
    gt: 0,
    default: 30,
    help: "seconds a request body may take to arrive (408 after)",
  },
  engineStepTimeout: {
    flag: "engine-step-timeout",
    kind: "float",
    gt: 0,
    default: 60,
    help: "seconds an engine step may make no progress (with work queued) before the engine counts as hung and is restarted",
  },
  shutdownTimeout: {
    flag: "shutdown-timeout",
    kind: "float",
    min: 0,
    default: 25,
    help: 'seconds SIGTERM/SIGINT lets in-flight requests finish before ending them (finish_reason "abort")',
  },
  modelsDir: {
    flag: "models-dir",
    kind: "string",
    nullable: true,
    default: null,
    help: "folder whose models POST /v1/memory/plan may open by path (default: none: only the served model, synthetic: specs and inline configs)",
  },
  toolCallParser: {
    flag: "tool-call-parser",
    kind: "choice",
    choices: ["auto", "hermes", "llama3_json", "mistral"],
    default: "auto",
    help: "tool-call format parsed from chat outputs (tool_choice auto): hermes (<tool_call>, Hermes/Qwen), llama3_json (Llama 3.1/3.2), mistral ([TOOL_CALLS]); auto = recognised from the chat template",
  },
  allowedOrigins: {
    flag: "allowed-origins",
    kind: "string",
    nullable: true,
    default: null,
    help: "origins allowed to call the API from a browser (CORS): comma-separated list (https://app.example.com,http://localhost:3000) or *; default none: no CORS headers",
  },
  statsInterval: {
    flag: "stats-interval",
    kind: "float",
    min: 0,
    default: 10,
    help: "seconds between stats log lines (prompt/generation tokens/s, running, waiting, KV usage, prefix-cache hit rate; only while there is activity); 0 = off",
  },
} as const satisfies { [K in keyof ServeOptions]: OptionRow<ServeOptions[K]> };

type Rows = typeof OPTIONS;
export type OptionKey = keyof ServeOptions;
/** Options the engine receives. */
export type EngineKey = { [K in OptionKey]: Rows[K] extends { engine: true } ? K : never }[OptionKey];
/** Memory-planner inputs (headroom plan, POST /v1/memory/plan). */
export type PlanKey = { [K in OptionKey]: Rows[K] extends { plan: true } ? K : never }[OptionKey];

export type AnyRow = OptionRow<unknown> & { key: OptionKey };

/** The rows in table order, each with its key. */
export const OPTION_ROWS: readonly AnyRow[] = (Object.keys(OPTIONS) as OptionKey[]).map((key) => ({
  key,
  ...(OPTIONS[key] as OptionRow<unknown>),
}));

export function defaultServeOptions(): ServeOptions {
  const o = {} as Record<OptionKey, unknown>;
  for (const r of OPTION_ROWS) o[r.key] = Array.isArray(r.default) ? [...r.default] : r.default;
  return o as ServeOptions;
}

/** The engine's share of the options (src/engine/startup.ts EngineOptions). */
export function engineOptionsFrom(o: ServeOptions): Pick<ServeOptions, EngineKey> {
  const out = {} as Record<string, unknown>;
  for (const r of OPTION_ROWS) if (r.engine) out[r.key] = o[r.key];
  return out as Pick<ServeOptions, EngineKey>;
}

export function envName(flag: string): string {
  return "HEADROOM_" + flag.toUpperCase().replace(/-/g, "_");
}

/** Options for logging (secrets hidden). */
export function redactOptions(o: ServeOptions): Record<string, unknown> {
  const out: Record<string, unknown> = { ...o };
  for (const r of OPTION_ROWS) if (r.secret && out[r.key] !== null) out[r.key] = "***";
  return out;
}
