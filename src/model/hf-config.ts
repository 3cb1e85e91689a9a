// Hugging Face config.json (Llama, Mistral, Qwen2) -> ModelConfig.
import { type Architecture, type ModelConfig, type RopeScaling, type SourceDtype, validateConfig } from "./config.ts";
import { ModelFileError } from "./errors.ts";

type Json = Record<string, unknown>;

const ARCH_BY_MODEL_TYPE: Record<string, Architecture> = { llama: "llama", mistral: "mistral", qwen2: "qwen2" };
const ARCH_BY_CLASS: Record<string, Architecture> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
};

function num(j: Json, key: string, file: string, fallback?: number): number {
  const v = j[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ModelFileError(file, `missing "${key}"`);
  }
  if (typeof v !== "number" || !Number.isFinite(v)) throw new ModelFileError(file, `"${key}" must be a number, got ${JSON.stringify(v)}`);
  return v;
}

function int(j: Json, key: string, file: string, fallback?: number): number {
  const v = num(j, key, file, fallback);
  if (!Number.isSafeInteger(v)) throw new ModelFileError(file, `"${key}" must be an integer, got ${v}`);
  return v;
}

function ids(v: unknown, key: string, file: string): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const x of list) {
    if (typeof x !== "number" || !Number.isSafeInteger(x)) throw new ModelFileError(file, `"${key}" must be a token id or a list of ids, got ${JSON.stringify(v)}`);
  }
  return list as number[];
}

function ropeScaling(v: unknown, file: string): RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "object" || Array.isArray(v)) throw new ModelFileError(file, `"rope_scaling" must be an object`);
  const r = v as Json;
  const type = r.rope_type ?? r.type;
  if (type === "default") return null;
  if (type === "linear") return { type: "linear", factor: num(r, "factor", file) };
  if (type === "llama3") {
    return {
      type: "llama3",
      factor: num(r, "factor", file),
      lowFreqFactor: num(r, "low_freq_factor", file),
      highFreqFactor: num(r, "high_freq_factor", file),
      originalMaxPositionEmbeddings: int(r, "original_max_position_embeddings", file),
    };
  }
  throw new ModelFileError(file, `rope_scaling type ${JSON.stringify(type)} is not supported (supported: linear, llama3)`);
}

const DTYPES: Record<string, SourceDtype> = { float32: "f32", float16: "f16", bfloat16: "bf16" };

/** Parses a config.json object. `name` is the display name (usually the folder name). */
export function parseHfConfig(json: unknown, file: string, name: string): ModelConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ModelFileError(file, "is not a JSON object");
  const j = json as Json;
  const modelType = typeof j.model_type === "string" ? j.model_type : undefined;
  const classes = Array.isArray(j.architectures) ? (j.architectures as unknown[]) : [];
  let arch: Architecture | undefined = modelType ? ARCH_BY_MODEL_TYPE[modelType] : undefined;
  if (!arch) for (const c of classes) if (typeof c === "string" && ARCH_BY_CLASS[c]) arch = ARCH_BY_CLASS[c];
  if (!arch) {
    const what = modelType ?? (classes.length ? classes.join(", ") : "(none given)");
    throw new ModelFileError(file, `unknown architecture ${JSON.stringify(what)} (supported: llama, mistral, qwen2)`);
  }
  if (j.hidden_act !== undefined && j.hidden_act !== "silu") {
    throw new ModelFileError(file, `hidden_act ${JSON.stringify(j.hidden_act)} is not supported (only silu)`);
  }
  if (arch !== "qwen2" && j.attention_bias === true) throw new ModelFileError(file, `attention_bias=true is not supported`);
  if (j.mlp_bias === true) throw new ModelFileError(file, `mlp_bias=true is not supported`);

  const hiddenSize = int(j, "hidden_size", file);
  const numHeads = int(j, "num_attention_heads", file);
  const headDimDefault = numHeads > 0 && hiddenSize % numHeads === 0 ? hiddenSize / numHeads : 0;
  const eos = ids(j.eos_token_id, "eos_token_id", file);
  const bos = ids(j.bos_token_id, "bos_token_id", file);
  const sw = j.use_sliding_window === false ? null : j.sliding_window;
  const dtype = typeof j.torch_dtype === "string" ? DTYPES[j.torch_dtype] : typeof j.dtype === "string" ? DTYPES[j.dtype] : undefined;
  const cfg: ModelConfig = {
    name,
    architecture: arch,
    hiddenSize,
    intermediateSize: int(j, "intermediate_size", file),
    numLayers: int(j, "num_hidden_layers", file),
    numHeads,
    numKvHeads: int(j, "num_key_value_heads", file, numHeads),
    headDim: int(j, "head_dim", file, headDimDefault),
    rmsNormEps: num(j, "rms_norm_eps", file, 1e-6),
    ropeTheta: num(j, "rope_theta", file, 10000),
    ropeScaling: ropeScaling(j.rope_scaling, file),
    ropeLayout: "neox",
    tieWordEmbeddings: j.tie_word_embeddings === true,
    qkvBias: arch === "qwen2",
    maxPositionEmbeddings: int(j, "max_position_embeddings", file, 2048),
    slidingWindow: typeof sw === "number" && Number.isSafeInteger(sw) && sw > 0 ? sw : null,
    vocabSize: int(j, "vocab_size", file),
    bosTokenId: bos[0] ?? null,
    eosTokenIds: eos,
    dtype: dtype ?? "f32",
  };
  return validateConfig(cfg, file);
}
