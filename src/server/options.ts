// `headroom serve` options: one typed object (ServeOptions) shared by the CLI, the HTTP server
// and the engine factory. Every flag can also come from an environment variable
// HEADROOM_<NAME> (flag name upper-cased, dashes to underscores); a flag wins over the variable.

export type DeviceKind = "auto" | "cpu" | "cuda";
/** Compute dtype (src/model/dtype.ts DtypeFlag): auto = float32 on CPU, bfloat16 on CUDA. */
export type DtypeOption = "auto" | "float32" | "bfloat16" | "float16";
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
  /** Seconds an engine step may make no progress (while there is work) before it counts as hung. */
  engineStepTimeout: number;
  /** Seconds SIGTERM/SIGINT lets in-flight requests finish before ending them (finish_reason "abort"). */
  shutdownTimeout: number;
}

export class OptionsError extends Error {
  override name = "OptionsError";
}

type Kind = "string" | "int" | "float" | "bytes" | "bool" | "intlist" | "choice";

interface FlagSpec {
  flag: string;
  key: keyof ServeOptions;
  kind: Kind;
  help: string;
  choices?: readonly string[];
  nullable?: boolean;
  min?: number;
  max?: number;
  /** Exclusive minimum. */
  gt?: number;
  secret?: boolean;
}

export const SERVE_FLAGS: readonly FlagSpec[] = [
  { flag: "model", key: "model", kind: "string", nullable: true, help: "HF model folder, GGUF file, or Hugging Face repo id ORG/NAME[@REVISION][:QUANT] (downloaded into $HF_HOME/hub; HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE honoured) (default: built-in demo model with random weights)" },
  { flag: "gguf-file", key: "ggufFile", kind: "string", nullable: true, help: "the GGUF file to use from a Hub repo (or a folder) holding several" },
  { flag: "chat-template", key: "chatTemplate", kind: "string", nullable: true, help: "chat template: a file, or the Jinja text itself (default: the model's chat_template.jinja / tokenizer_config.json / GGUF template)" },
  { flag: "generation-config", key: "generationConfig", kind: "string", help: "'auto': the model's generation_config.json (extra EOS ids, default temperature/top_p/top_k/min_p/repetition_penalty/max_new_tokens); 'none': ignore it; or a folder holding one" },
  { flag: "host", key: "host", kind: "string", help: "address to listen on" },
  { flag: "port", key: "port", kind: "int", min: 0, max: 65535, help: "port to listen on (0 = ephemeral)" },
  { flag: "device", key: "device", kind: "choice", choices: ["auto", "cpu", "cuda"], help: "backend" },
  { flag: "dtype", key: "dtype", kind: "choice", choices: ["auto", "float32", "bfloat16", "float16"], help: "compute dtype of weights, activations and KV cache (logits stay float32); auto = float32 on CPU, bfloat16 on CUDA; the CPU backend supports float32 only" },
  { flag: "device-memory", key: "deviceMemory", kind: "bytes", nullable: true, gt: 0, help: "CPU backend device capacity (bytes; K/M/G/KiB/MiB/GiB suffixes)" },
  { flag: "gpu-memory-utilization", key: "gpuMemoryUtilization", kind: "float", gt: 0, max: 1, help: "fraction of total device memory this instance may use" },
  { flag: "kv-cache-memory-bytes", key: "kvCacheMemoryBytes", kind: "bytes", nullable: true, gt: 0, help: "explicit KV cache size (skips the profile run)" },
  { flag: "max-model-len", key: "maxModelLen", kind: "int", nullable: true, min: 1, help: "context length (prompt + completion); default: the model's" },
  { flag: "max-num-seqs", key: "maxNumSeqs", kind: "int", min: 1, help: "most sequences running in one step" },
  { flag: "max-num-batched-tokens", key: "maxNumBatchedTokens", kind: "int", nullable: true, min: 1, help: "most tokens in one step (sizes the activation arena)" },
  { flag: "block-size", key: "blockSize", kind: "int", min: 1, max: 1024, help: "tokens per KV block" },
  { flag: "enforce-eager", key: "enforceEager", kind: "bool", help: "never capture graphs" },
  { flag: "cudagraph-capture-sizes", key: "cudagraphCaptureSizes", kind: "intlist", nullable: true, help: "batch sizes to capture (comma separated); default 1,2,4,8,16,… up to min(2×max-num-seqs, 512)" },
  { flag: "max-cudagraph-capture-size", key: "maxCudagraphCaptureSize", kind: "int", nullable: true, min: 1, help: "largest decode batch size to capture as a graph (caps the capture list)" },
  { flag: "api-key", key: "apiKey", kind: "string", nullable: true, secret: true, help: "require 'Authorization: Bearer <key>' on /v1 routes" },
  { flag: "served-model-name", key: "servedModelName", kind: "string", nullable: true, help: "model name in the API (default: the model's id)" },
  { flag: "max-waiting", key: "maxWaiting", kind: "int", min: 0, help: "waiting requests allowed before 503 + Retry-After" },
  { flag: "cpu-offload-gb", key: "cpuOffloadGb", kind: "float", min: 0, help: "GiB of weights kept in host memory and streamed per layer" },
  { flag: "cpu-offload-trigger-percent", key: "cpuOffloadTriggerPercent", kind: "float", nullable: true, gt: 0, max: 100, help: "offload the remaining weights once device usage reaches this percent" },
  { flag: "offload-prefetch-layers", key: "offloadPrefetchLayers", kind: "int", min: 1, help: "device staging slots for offloaded layers" },
  { flag: "log-level", key: "logLevel", kind: "choice", choices: ["debug", "info", "warn", "error"], help: "log verbosity" },
  { flag: "max-request-body-bytes", key: "maxRequestBodyBytes", kind: "bytes", min: 1024, help: "largest request body (413 above)" },
  { flag: "max-prompt-chars", key: "maxPromptChars", kind: "int", min: 1, help: "longest prompt text in characters, all prompts/messages of a request together (400 above; checked before tokenizing)" },
  { flag: "tokenizer-workers", key: "tokenizerWorkers", kind: "int", min: 1, max: 64, help: "tokenizer worker threads (tokenization runs off the HTTP thread)" },
  { flag: "engine-step-timeout", key: "engineStepTimeout", kind: "float", gt: 0, help: "seconds an engine step may go without progress before the engine counts as hung (killed and restarted, in-flight requests fail)" },
  { flag: "shutdown-timeout", key: "shutdownTimeout", kind: "float", min: 0, help: "seconds SIGTERM/SIGINT waits for in-flight requests before ending them (finish_reason \"abort\")" },
];

export function defaultServeOptions(): ServeOptions {
  return {
    model: null,
    chatTemplate: null,
    generationConfig: "auto",
    ggufFile: null,
    host: "127.0.0.1",
    port: 8000,
    device: "auto",
    dtype: "auto",
    deviceMemory: null,
    gpuMemoryUtilization: 0.9,
    kvCacheMemoryBytes: null,
    maxModelLen: null,
    maxNumSeqs: 256,
    maxNumBatchedTokens: null,
    blockSize: 16,
    enforceEager: false,
    cudagraphCaptureSizes: null,
    maxCudagraphCaptureSize: null,
    apiKey: null,
    servedModelName: null,
    maxWaiting: 1024,
    cpuOffloadGb: 0,
    cpuOffloadTriggerPercent: null,
    offloadPrefetchLayers: 2,
    logLevel: "info",
    maxRequestBodyBytes: 32 * 1024 * 1024,
    maxPromptChars: 1024 * 1024,
    tokenizerWorkers: 2,
    // vLLM's engine iteration timeout; a CPU prefill of a long prompt stays well under it.
    engineStepTimeout: 60,
    // Under Kubernetes' default 30 s termination grace period, so requests end with a final chunk.
    shutdownTimeout: 25,
  };
}

export function envName(flag: string): string {
  return "HEADROOM_" + flag.toUpperCase().replace(/-/g, "_");
}

const BYTE_UNITS: Record<string, number> = {
  "": 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  ki: 1024, kib: 1024, mi: 1024 ** 2, mib: 1024 ** 2, gi: 1024 ** 3, gib: 1024 ** 3, ti: 1024 ** 4, tib: 1024 ** 4,
};

/** "4GiB" → 4294967296, "1.5G" → 1.5e9, "4096" → 4096. */
export function parseBytes(text: string): number {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? BYTE_UNITS[(m[2] ?? "").toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`not a byte size: '${text}' (examples: 4096, 512MiB, 8GiB, 1.5G)`);
  return Math.floor(Number(m[1]) * unit);
}

function parseValue(spec: FlagSpec, raw: string, source: string): unknown {
  const where = `${source}=${spec.secret ? "***" : JSON.stringify(raw)}`;
  if (spec.nullable && (raw === "" || raw.toLowerCase() === "none" || raw.toLowerCase() === "null")) return null;
  const range = (v: number) => {
    if (spec.min !== undefined && v < spec.min) throw new OptionsError(`${where}: must be >= ${spec.min}`);
    if (spec.gt !== undefined && v <= spec.gt) throw new OptionsError(`${where}: must be > ${spec.gt}`);
    if (spec.max !== undefined && v > spec.max) throw new OptionsError(`${where}: must be <= ${spec.max}`);
    return v;
  };
  switch (spec.kind) {
    case "string":
      if (raw === "") throw new OptionsError(`${where}: empty value`);
      return raw;
    case "choice":
      if (!spec.choices?.includes(raw)) throw new OptionsError(`${where}: expected one of ${spec.choices?.join(", ")}`);
      return raw;
    case "int": {
      if (!/^-?[0-9]+$/.test(raw.trim())) throw new OptionsError(`${where}: expected an integer`);
      return range(Number(raw));
    }
    case "float": {
      const v = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(v)) throw new OptionsError(`${where}: expected a number`);
      return range(v);
    }
    case "bytes": {
      try {
        return range(parseBytes(raw));
      } catch (e) {
        if (e instanceof OptionsError) throw e;
        throw new OptionsError(`${where}: ${(e as Error).message}`);
      }
    }
    case "bool": {
      const l = raw.toLowerCase();
      if (["1", "true", "yes", "on"].includes(l)) return true;
      if (["0", "false", "no", "off"].includes(l)) return false;
      throw new OptionsError(`${where}: expected true or false`);
    }
    case "intlist": {
      const parts = raw.split(/[\s,]+/).filter((s) => s !== "");
      if (parts.length === 0 || parts.some((p) => !/^[0-9]+$/.test(p) || Number(p) < 1))
        throw new OptionsError(`${where}: expected positive integers separated by commas`);
      return [...new Set(parts.map(Number))].sort((a, b) => a - b);
    }
  }
}

function nearest(name: string, candidates: string[]): string | undefined {
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      let prev = d[0]!;
      d[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const tmp = d[j]!;
        d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = tmp;
      }
    }
    return d[b.length]!;
  };
  let best: string | undefined;
  let bestD = 4;
  for (const c of candidates) {
    const dd = dist(name, c);
    if (dd < bestD) [best, bestD] = [c, dd];
  }
  return best;
}

function assign(o: ServeOptions, key: keyof ServeOptions, value: unknown): void {
  (o as unknown as Record<string, unknown>)[key] = value;
}

/**
 * Parses `serve` flags (`--flag value`, `--flag=value`, `--bool-flag`, `--no-bool-flag`) over
 * HEADROOM_* environment variables over defaults. Throws OptionsError with a clear message.
 */
export function parseServeOptions(argv: readonly string[], env: Record<string, string | undefined> = process.env): ServeOptions {
  const o = defaultServeOptions();
  for (const spec of SERVE_FLAGS) {
    const v = env[envName(spec.flag)];
    if (v !== undefined) assign(o, spec.key, parseValue(spec, v, envName(spec.flag)));
  }
  const byFlag = new Map(SERVE_FLAGS.map((s) => [s.flag, s]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) throw new OptionsError(`unexpected argument '${arg}' (flags start with --; see --help)`);
    const eq = arg.indexOf("=");
    let name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    let inline: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    let spec = byFlag.get(name);
    if (!spec && name.startsWith("no-") && byFlag.get(name.slice(3))?.kind === "bool" && inline === undefined) {
      spec = byFlag.get(name.slice(3))!;
      name = spec.flag;
      inline = "false";
    }
    if (!spec) {
      const hint = nearest(name, [...byFlag.keys()]);
      throw new OptionsError(`unknown flag --${name}${hint ? ` (did you mean --${hint}?)` : ""}; see --help`);
    }
    let raw: string;
    if (inline !== undefined) raw = inline;
    else if (spec.kind === "bool") {
      const next = argv[i + 1];
      if (next !== undefined && /^(true|false|1|0|yes|no|on|off)$/i.test(next)) {
        raw = next;
        i++;
      } else raw = "true";
    } else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith("--") && next.length > 2)) throw new OptionsError(`--${name} needs a value`);
      raw = next;
      i++;
    }
    assign(o, spec.key, parseValue(spec, raw, `--${name}`));
  }
  return o;
}

function showDefault(v: unknown): string {
  if (v === null) return "none";
  if (Array.isArray(v)) return v.join(",");
  return String(v);
}

export function serveHelp(): string {
  const d = defaultServeOptions();
  const lines = ["Usage: headroom serve [flags]", "", "Flags (each also read from the environment variable shown; a flag wins):", ""];
  for (const s of SERVE_FLAGS) {
    const meta = s.kind === "bool" ? "" : s.kind === "choice" ? ` <${s.choices?.join("|")}>` : ` <${s.kind === "intlist" ? "n,n,…" : s.kind}>`;
    lines.push(`  --${s.flag}${meta}`);
    lines.push(`      ${s.help}`);
    lines.push(`      default: ${s.secret ? "none" : showDefault(d[s.key])}   env: ${envName(s.flag)}`);
  }
  return lines.join("\n");
}

/** Options for logging (secrets hidden). */
export function redactOptions(o: ServeOptions): Record<string, unknown> {
  return { ...o, apiKey: o.apiKey === null ? null : "***" };
}
