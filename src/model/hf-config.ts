// Hugging Face config.json (Llama, Mistral, Qwen2/3, Gemma 1/2/3, Phi-3) -> ModelConfig. Field
// names and defaults follow transformers' configuration_*.py; anything this engine cannot run
// exactly is refused with a message naming the field.
import { type Architecture, type LayerType, type ModelConfig, type RopeScaling, type SourceDtype, validateConfig } from "./config.ts";
import { ModelFileError } from "./errors.ts";

type Json = Record<string, unknown>;

const ARCH_BY_MODEL_TYPE: Record<string, Architecture> = {
  llama: "llama",
  mistral: "mistral",
  qwen2: "qwen2",
  qwen3: "qwen3",
  gemma: "gemma",
  gemma2: "gemma2",
  gemma3_text: "gemma3",
  phi3: "phi3",
};
const ARCH_BY_CLASS: Record<string, Architecture> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
  GemmaForCausalLM: "gemma",
  Gemma2ForCausalLM: "gemma2",
  Gemma3ForCausalLM: "gemma3",
  Phi3ForCausalLM: "phi3",
};
const SUPPORTED = "llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3_text, phi3";
const GEMMA: ReadonlySet<Architecture> = new Set(["gemma", "gemma2", "gemma3"]);

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
    if (typeof x !== "number" || !Number.isSafeInteger(x))
      throw new ModelFileError(file, `"${key}" must be a token id or a list of ids, got ${JSON.stringify(v)}`);
  }
  return list as number[];
}

function numList(r: Json, key: string, file: string): number[] {
  const v = r[key];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "number" || !Number.isFinite(x))) {
    throw new ModelFileError(file, `"rope_scaling.${key}" must be a list of numbers`);
  }
  return v as number[];
}

function optNum(r: Json, key: string, file: string): number | null {
  return r[key] === undefined || r[key] === null ? null : num(r, key, file);
}

/** rope_scaling (or a transformers-5 rope_parameters entry) -> RopeScaling; `top` is the whole config. */
function ropeScaling(v: unknown, top: Json, file: string): RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "object" || Array.isArray(v)) throw new ModelFileError(file, `"rope_scaling" must be an object`);
  const r = v as Json;
  const type = r.rope_type ?? r.type;
  const maxPos = int(top, "max_position_embeddings", file, 2048);
  if (type === "default" || type === undefined) return null;
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
  if (type === "yarn") {
    // transformers: an explicit original_max_position_embeddings replaces `factor` by
    // max_position_embeddings / original_max_position_embeddings.
    const orig = r.original_max_position_embeddings;
    const hasOrig = orig !== undefined && orig !== null;
    const original = hasOrig ? int(r, "original_max_position_embeddings", file) : maxPos;
    return {
      type: "yarn",
      factor: hasOrig ? maxPos / original : num(r, "factor", file),
      originalMaxPositionEmbeddings: original,
      betaFast: optNum(r, "beta_fast", file) || 32,
      betaSlow: optNum(r, "beta_slow", file) || 1,
      attentionFactor: optNum(r, "attention_factor", file),
      mscale: optNum(r, "mscale", file),
      mscaleAllDim: optNum(r, "mscale_all_dim", file),
      truncate: r.truncate !== false,
    };
  }
  if (type === "dynamic") return { type: "dynamic", factor: num(r, "factor", file) };
  if (type === "longrope" || type === "su") {
    // Phi-3 keeps original_max_position_embeddings at the top level; the factor is then the ratio.
    const topOrig = top.original_max_position_embeddings;
    const hasOrig = typeof topOrig === "number" && topOrig > 0;
    const original = hasOrig ? int(top, "original_max_position_embeddings", file) : maxPos;
    const factor = hasOrig ? maxPos / original : (optNum(r, "factor", file) ?? 1);
    return {
      type: "longrope",
      factor,
      shortFactor: numList(r, "short_factor", file),
      longFactor: numList(r, "long_factor", file),
      originalMaxPositionEmbeddings: original,
      attentionFactor: optNum(r, "attention_factor", file),
    };
  }
  throw new ModelFileError(
    file,
    `rope_scaling type ${JSON.stringify(type)} is not supported (supported: linear, llama3, yarn, dynamic, longrope)`,
  );
}

/** Per-layer attention types from config.json's layer_types, or the family's rule. */
function layerTypes(j: Json, arch: Architecture, n: number, file: string): LayerType[] | undefined {
  if (Array.isArray(j.layer_types)) {
    return j.layer_types.map((t, i) => {
      if (t === "full_attention") return "full";
      if (t === "sliding_attention") return "sliding";
      throw new ModelFileError(file, `layer_types[${i}] ${JSON.stringify(t)} is not supported (full_attention, sliding_attention)`);
    });
  }
  const all = (f: (i: number) => boolean) => Array.from({ length: n }, (_, i) => (f(i) ? "sliding" : "full") as LayerType);
  if (arch === "qwen2" || arch === "qwen3") {
    const mwl = int(j, "max_window_layers", file, 28);
    return all((i) => i >= mwl);
  }
  if (arch === "gemma2") return all((i) => (i + 1) % 2 !== 0);
  if (arch === "gemma3") {
    const pattern = int(j, "sliding_window_pattern", file, 6);
    return all((i) => (i + 1) % pattern !== 0);
  }
  return undefined; // Mistral, Phi-3: every layer
}

/** The window of the sliding layers, or null (families without one, or turned off). */
function slidingWindow(j: Json, arch: Architecture, file: string): number | null {
  if (arch === "gemma" || arch === "llama") return null;
  if ((arch === "qwen2" || arch === "qwen3") && j.use_sliding_window !== true) return null;
  const fallback = arch === "gemma2" || arch === "gemma3" ? 4096 : undefined;
  const v = j.sliding_window;
  if (v === null || (v === undefined && fallback === undefined)) return null;
  return int(j, "sliding_window", file, fallback);
}

/** Reads a softcap field: null/absent = off, with the family's default when absent. */
function softcap(j: Json, key: string, file: string, fallback: number | null): number | null {
  if (j[key] === null) return null;
  if (j[key] === undefined) return fallback;
  return num(j, key, file);
}

const DTYPES: Record<string, SourceDtype> = { float32: "f32", float16: "f16", bfloat16: "bf16" };

/** Parses a config.json object. `name` is the display name (usually the folder name). */
export function parseHfConfig(json: unknown, file: string, name: string): ModelConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ModelFileError(file, "is not a JSON object");
  const j = json as Json;
  const modelType = typeof j.model_type === "string" ? j.model_type : undefined;
  const classes = Array.isArray(j.architectures) ? (j.architectures as unknown[]) : [];
  if (modelType === "gemma3") {
    throw new ModelFileError(
      file,
      `model_type "gemma3" (Gemma3ForConditionalGeneration, text + vision) is not supported; use a text-only checkpoint (model_type "gemma3_text")`,
    );
  }
  let arch: Architecture | undefined = modelType ? ARCH_BY_MODEL_TYPE[modelType] : undefined;
  if (!arch) for (const c of classes) if (typeof c === "string" && ARCH_BY_CLASS[c]) arch = ARCH_BY_CLASS[c];
  if (!arch) {
    const what = modelType ?? (classes.length ? classes.join(", ") : "(none given)");
    throw new ModelFileError(file, `unknown architecture ${JSON.stringify(what)} (supported: ${SUPPORTED})`);
  }
  const gemma = GEMMA.has(arch);
  if (gemma) {
    // transformers' Gemma MLP uses hidden_activation (Gemma 1 falls back to gelu_pytorch_tanh even when hidden_act says "gelu").
    const act = j.hidden_activation ?? (arch === "gemma" ? "gelu_pytorch_tanh" : (j.hidden_act ?? "gelu_pytorch_tanh"));
    if (act !== "gelu_pytorch_tanh" && act !== "gelu_new") {
      throw new ModelFileError(file, `hidden_activation ${JSON.stringify(act)} is not supported (only gelu_pytorch_tanh)`);
    }
  } else if (j.hidden_act !== undefined && j.hidden_act !== "silu") {
    throw new ModelFileError(file, `hidden_act ${JSON.stringify(j.hidden_act)} is not supported (only silu)`);
  }
  if (arch !== "qwen2" && j.attention_bias === true) throw new ModelFileError(file, `attention_bias=true is not supported`);
  if (j.mlp_bias === true) throw new ModelFileError(file, `mlp_bias=true is not supported`);
  if (j.partial_rotary_factor !== undefined && j.partial_rotary_factor !== null && j.partial_rotary_factor !== 1) {
    throw new ModelFileError(file, `partial_rotary_factor ${JSON.stringify(j.partial_rotary_factor)} is not supported (only 1.0)`);
  }

  const hiddenSize = int(j, "hidden_size", file);
  const numHeads = int(j, "num_attention_heads", file);
  const numLayers = int(j, "num_hidden_layers", file);
  const headDimDefault = numHeads > 0 && hiddenSize % numHeads === 0 ? hiddenSize / numHeads : 0;
  const eos = ids(j.eos_token_id, "eos_token_id", file);
  const bos = ids(j.bos_token_id, "bos_token_id", file);
  const dtype = typeof j.torch_dtype === "string" ? DTYPES[j.torch_dtype] : typeof j.dtype === "string" ? DTYPES[j.dtype] : undefined;

  // transformers 5 writes rope_parameters (Gemma 3: one entry per attention type) instead of rope_theta + rope_scaling.
  const rp = typeof j.rope_parameters === "object" && j.rope_parameters !== null ? (j.rope_parameters as Json) : null;
  const rpGlobal = rp && typeof rp.full_attention === "object" ? (rp.full_attention as Json) : rp;
  const rpLocal = rp && typeof rp.sliding_attention === "object" ? (rp.sliding_attention as Json) : null;
  const thetaDefault = arch === "gemma3" ? 1_000_000 : 10000;
  const ropeTheta =
    j.rope_theta !== undefined
      ? num(j, "rope_theta", file)
      : rpGlobal?.rope_theta !== undefined
        ? num(rpGlobal, "rope_theta", file)
        : thetaDefault;
  const scalingSrc = j.rope_scaling !== undefined ? j.rope_scaling : rpGlobal;

  const window = slidingWindow(j, arch, file);
  const cfg: ModelConfig = {
    name,
    architecture: arch,
    hiddenSize,
    intermediateSize: int(j, "intermediate_size", file),
    numLayers,
    numHeads,
    numKvHeads: int(j, "num_key_value_heads", file, numHeads),
    headDim: int(j, "head_dim", file, headDimDefault),
    rmsNormEps: num(j, "rms_norm_eps", file, 1e-6),
    ropeTheta,
    ropeScaling: ropeScaling(scalingSrc, j, file),
    ropeLayout: "neox",
    tieWordEmbeddings: j.tie_word_embeddings === undefined ? gemma : j.tie_word_embeddings === true,
    qkvBias: arch === "qwen2",
    maxPositionEmbeddings: int(j, "max_position_embeddings", file, 2048),
    slidingWindow: window,
    vocabSize: int(j, "vocab_size", file),
    bosTokenId: bos[0] ?? null,
    eosTokenIds: eos,
    dtype: dtype ?? "f32",
  };
  if (window !== null) {
    const lt = layerTypes(j, arch, numLayers, file);
    if (lt) cfg.layerTypes = lt;
  }
  if (gemma) {
    cfg.hiddenAct = "gelu_tanh";
    cfg.embedScale = true;
  }
  if (arch === "qwen3" || arch === "gemma3") cfg.qkNorm = true;
  if (arch === "gemma2" || arch === "gemma3") {
    cfg.sandwichNorm = true;
    cfg.queryPreAttnScalar = num(j, "query_pre_attn_scalar", file, 256);
    cfg.attnSoftcap = softcap(j, "attn_logit_softcapping", file, arch === "gemma2" ? 50 : null);
    cfg.finalSoftcap = softcap(j, "final_logit_softcapping", file, arch === "gemma2" ? 30 : null);
  }
  if (arch === "gemma3") {
    cfg.ropeLocalTheta =
      j.rope_local_base_freq !== undefined
        ? num(j, "rope_local_base_freq", file)
        : rpLocal?.rope_theta !== undefined
          ? num(rpLocal, "rope_theta", file)
          : 10000;
    if (rpLocal && ropeScaling(rpLocal, j, file) !== null)
      throw new ModelFileError(file, `rope_parameters.sliding_attention: RoPE scaling on the local layers is not supported`);
  }
  return validateConfig(cfg, file);
}
