// GGUF -> ModelConfig + canonical tensors. Llama metadata keys ({arch}.embedding_length, ...)
// map onto the same config as HF config.json; GGUF tensor names (token_embd, blk.N.attn_q, ...)
// map onto HF names; Q/K rows of "llama" GGUF files, which llama.cpp's converter permuted into
// Meta's interleaved RoPE layout, are permuted back to HF's rotate-half layout at read time.
import { basename } from "node:path";

import { type Architecture, type LayerType, type ModelConfig, type RopeScaling, validateConfig } from "./config.ts";
import { ModelFileError } from "./errors.ts";
import { unfusePhi3 } from "./fused.ts";
import { type GgufFile, type GgufValue, readGguf } from "./gguf.ts";
import { checkTensors, tensorToF32, type TensorSource, type WeightSet } from "./weights.ts";

const ARCHS: Record<string, Architecture> = {
  llama: "llama",
  mistral: "mistral",
  qwen2: "qwen2",
  qwen3: "qwen3",
  gemma: "gemma",
  gemma2: "gemma2",
  gemma3: "gemma3",
  phi3: "phi3",
};
const SUPPORTED = Object.keys(ARCHS).join(", ");

const LAYER_MAP: Record<string, string> = {
  "attn_norm.weight": "input_layernorm.weight",
  "attn_q.weight": "self_attn.q_proj.weight",
  "attn_k.weight": "self_attn.k_proj.weight",
  "attn_v.weight": "self_attn.v_proj.weight",
  "attn_q.bias": "self_attn.q_proj.bias",
  "attn_k.bias": "self_attn.k_proj.bias",
  "attn_v.bias": "self_attn.v_proj.bias",
  "attn_output.weight": "self_attn.o_proj.weight",
  "ffn_norm.weight": "post_attention_layernorm.weight",
  "ffn_gate.weight": "mlp.gate_proj.weight",
  "ffn_up.weight": "mlp.up_proj.weight",
  "ffn_down.weight": "mlp.down_proj.weight",
  "attn_q_norm.weight": "self_attn.q_norm.weight",
  "attn_k_norm.weight": "self_attn.k_norm.weight",
};
/** Gemma 2/3 (llama.cpp tensor_mapping): the HF post-attention norm is the sandwich norm; ffn_norm is the pre-FFN one. */
const SANDWICH_MAP: Record<string, string> = {
  ...LAYER_MAP,
  "post_attention_norm.weight": "post_attention_layernorm.weight",
  "ffn_norm.weight": "pre_feedforward_layernorm.weight",
  "post_ffw_norm.weight": "post_feedforward_layernorm.weight",
};
/** Phi-3: fused attn_qkv and ffn_up (gate rows first), split after mapping. */
const PHI3_MAP: Record<string, string> = {
  ...LAYER_MAP,
  "attn_qkv.weight": "self_attn.qkv_proj.weight",
  "ffn_up.weight": "mlp.gate_up_proj.weight",
};
const GLOBAL_MAP: Record<string, string> = {
  "token_embd.weight": "model.embed_tokens.weight",
  "output_norm.weight": "model.norm.weight",
  "output.weight": "lm_head.weight",
  "rope_freqs.weight": "rope_freqs.weight",
  "rope_factors_long.weight": "rope_factors_long.weight",
  "rope_factors_short.weight": "rope_factors_short.weight",
};

/** GGUF tensor name -> canonical HF name (undefined when unknown) for architecture `arch`. */
export function canonicalGgufName(name: string, arch: Architecture = "llama"): string | undefined {
  const g = GLOBAL_MAP[name];
  if (g) return g;
  const m = /^blk\.(\d{1,6})\.(.+)$/.exec(name);
  if (!m) return undefined;
  const map = arch === "gemma2" || arch === "gemma3" ? SANDWICH_MAP : arch === "phi3" ? PHI3_MAP : LAYER_MAP;
  const rest = map[m[2]!];
  return rest ? `model.layers.${Number(m[1])}.${rest}` : undefined;
}

/**
 * Row order that undoes llama.cpp's `permute` (convert_hf_to_gguf.py) for a Q or K weight with
 * `nHeads` heads: HF row h*hd + s*hd/2 + j  <-  GGUF row h*hd + 2j + s.
 */
export function unpermuteRows(rows: number, nHeads: number): Int32Array {
  const hd = rows / nHeads;
  const half = hd / 2;
  const perm = new Int32Array(rows);
  for (let h = 0; h < nHeads; h++) {
    for (let s = 0; s < 2; s++) for (let j = 0; j < half; j++) perm[h * hd + s * half + j] = h * hd + 2 * j + s;
  }
  return perm;
}

function meta(g: GgufFile, key: string): GgufValue | undefined {
  return g.metadata.get(key);
}

function metaNum(g: GgufFile, key: string, fallback?: number): number {
  const v = meta(g, key);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new ModelFileError(g.path, `missing metadata "${key}"`);
  }
  if (typeof v !== "number" || !Number.isFinite(v))
    throw new ModelFileError(g.path, `metadata "${key}" must be a number, got ${String(v)}`);
  return v;
}

function metaStr(g: GgufFile, key: string): string | undefined {
  const v = meta(g, key);
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new ModelFileError(g.path, `metadata "${key}" must be a string`);
  return v;
}

function tokenId(g: GgufFile, key: string): number | null {
  const v = meta(g, key);
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v === 0xffffffff) return null;
  return v;
}

/** Sliding-window period or per-layer flags (llama.cpp's get_key_or_arr) -> layer types. */
function swaLayers(g: GgufFile, key: string, n: number, period: number): LayerType[] {
  const v = meta(g, key);
  if (Array.isArray(v)) {
    if (v.length !== n) throw new ModelFileError(g.path, `metadata "${key}" has ${v.length} entries for ${n} layers`);
    return v.map((x) => (x ? "sliding" : "full"));
  }
  const per = typeof v === "number" ? v : period;
  // llama.cpp set_swa_pattern: layer il is sliding iff il % period < period - 1 (period 0/1 = all sliding)
  return Array.from({ length: n }, (_, il) => (per <= 1 || il % per < per - 1 ? "sliding" : "full"));
}

/**
 * Family features from GGUF metadata, following llama.cpp (src/models/<arch>.cpp): Gemma's
 * embedding scale and GeGLU, Gemma 2/3 sandwich norms, soft-capping, sliding layers and the
 * attention scale (GGUF has no query_pre_attn_scalar: llama.cpp uses n_embd/n_head for the
 * 27B models, head_dim otherwise), Qwen3/Gemma 3 q/k norms, Mistral/Qwen2/Phi-3 windows.
 */
function familyFeatures(g: GgufFile, c: ModelConfig): void {
  const p = metaStr(g, "general.architecture")!;
  const a = c.architecture;
  const optNum = (key: string): number | null => {
    const v = meta(g, key);
    return typeof v === "number" && v > 0 ? v : null;
  };
  if (a === "gemma" || a === "gemma2" || a === "gemma3") {
    c.hiddenAct = "gelu_tanh";
    c.embedScale = true;
  }
  if (a === "qwen3" || a === "gemma3") c.qkNorm = true;
  if (a === "gemma2" || a === "gemma3") {
    c.sandwichNorm = true;
    const big = a === "gemma2" ? c.numLayers === 46 : c.numLayers === 62;
    c.queryPreAttnScalar = big ? c.hiddenSize / c.numHeads : c.headDim;
  }
  if (a === "gemma2") {
    c.attnSoftcap = meta(g, `${p}.attn_logit_softcapping`) === undefined ? 50 : optNum(`${p}.attn_logit_softcapping`);
    c.finalSoftcap = meta(g, `${p}.final_logit_softcapping`) === undefined ? 30 : optNum(`${p}.final_logit_softcapping`);
    c.slidingWindow = metaNum(g, `${p}.attention.sliding_window`, 4096);
    c.layerTypes = swaLayers(g, `${p}.attention.sliding_window_pattern`, c.numLayers, 2);
    c.ropeLocalTheta = optNum(`${p}.rope.freq_base_swa`) ?? c.ropeTheta;
  } else if (a === "gemma3") {
    c.finalSoftcap = optNum(`${p}.final_logit_softcapping`);
    const sw = optNum(`${p}.attention.sliding_window`);
    if (sw !== null) {
      c.slidingWindow = sw;
      c.layerTypes = swaLayers(g, `${p}.attention.sliding_window_pattern`, c.numLayers, 6);
      c.ropeLocalTheta = optNum(`${p}.rope.freq_base_swa`) ?? 10000;
    }
  } else if (a === "mistral" || a === "qwen2" || a === "qwen3" || a === "phi3" || a === "llama") {
    // Every layer sliding when the file says so (Mistral v0.1). Phi-3: HF applies its
    // sliding_window to every layer; llama.cpp currently ignores it (see report).
    c.slidingWindow = optNum(`${p}.attention.sliding_window`);
    // per-layer flags when the converter wrote them (Qwen-style layer_types), else every layer
    if (c.slidingWindow !== null && meta(g, `${p}.attention.sliding_window_pattern`) !== undefined) {
      c.layerTypes = swaLayers(g, `${p}.attention.sliding_window_pattern`, c.numLayers, 0);
    }
  }
}

/** Config from GGUF metadata (the tensors supply what metadata may omit, e.g. vocab size). */
export function ggufConfig(g: GgufFile): ModelConfig {
  const archName = metaStr(g, "general.architecture");
  if (archName === undefined) throw new ModelFileError(g.path, `missing metadata "general.architecture"`);
  const arch = ARCHS[archName];
  if (!arch) throw new ModelFileError(g.path, `unknown architecture "${archName}" (supported: ${SUPPORTED})`);
  const p = archName;
  const hidden = metaNum(g, `${p}.embedding_length`);
  const heads = metaNum(g, `${p}.attention.head_count`);
  const emb = g.tensors.get("token_embd.weight");
  const tokens = meta(g, "tokenizer.ggml.tokens");
  const vocab = metaNum(g, `${p}.vocab_size`, emb?.shape[0] ?? (Array.isArray(tokens) ? tokens.length : 0));
  const headDim = metaNum(g, `${p}.attention.key_length`, heads > 0 && hidden % heads === 0 ? hidden / heads : 0);
  let ropeScaling: RopeScaling | null = null;
  const st = metaStr(g, `${p}.rope.scaling.type`);
  if (st === "linear") ropeScaling = { type: "linear", factor: metaNum(g, `${p}.rope.scaling.factor`) };
  else if (st === "yarn") {
    // llama.cpp's converter writes factor and original_context_length; beta/attention factors when the config had them.
    const orig = metaNum(g, `${p}.rope.scaling.original_context_length`);
    const af = meta(g, `${p}.rope.scaling.attn_factor`);
    ropeScaling = {
      type: "yarn",
      factor: metaNum(g, `${p}.rope.scaling.factor`),
      originalMaxPositionEmbeddings: orig,
      betaFast: metaNum(g, `${p}.rope.scaling.yarn_beta_fast`, 32),
      betaSlow: metaNum(g, `${p}.rope.scaling.yarn_beta_slow`, 1),
      attentionFactor: typeof af === "number" ? af : null,
      mscale: null,
      mscaleAllDim: null,
      truncate: true,
    };
  } else if (st !== undefined && st !== "none")
    throw new ModelFileError(g.path, `rope scaling type "${st}" is not supported (supported: linear, yarn)`);
  if (g.tensors.has("rope_freqs.weight")) {
    if (ropeScaling) throw new ModelFileError(g.path, "has both rope scaling metadata and rope_freqs", "rope_freqs.weight");
    ropeScaling = { type: "freq_factors" };
  }
  const eos: number[] = [];
  for (const k of ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"]) {
    const id = tokenId(g, k);
    if (id !== null && !eos.includes(id)) eos.push(id);
  }
  const name = metaStr(g, "general.name");
  const cfg: ModelConfig = {
    name: name && name !== "llama" ? name : basename(g.path).replace(/\.gguf$/i, ""),
    architecture: arch,
    hiddenSize: hidden,
    intermediateSize: metaNum(g, `${p}.feed_forward_length`),
    numLayers: metaNum(g, `${p}.block_count`),
    numHeads: heads,
    numKvHeads: metaNum(g, `${p}.attention.head_count_kv`, heads),
    headDim,
    rmsNormEps: metaNum(g, `${p}.attention.layer_norm_rms_epsilon`, 1e-5),
    ropeTheta: metaNum(g, `${p}.rope.freq_base`, 10000),
    ropeScaling,
    ropeLayout: "neox",
    tieWordEmbeddings: !g.tensors.has("output.weight"),
    qkvBias: arch === "qwen2",
    maxPositionEmbeddings: metaNum(g, `${p}.context_length`, 2048),
    slidingWindow: null,
    vocabSize: vocab,
    bosTokenId: tokenId(g, "tokenizer.ggml.bos_token_id"),
    eosTokenIds: eos,
    dtype: emb?.dtype ?? "f32",
  };
  familyFeatures(g, cfg);
  const rd = meta(g, `${p}.rope.dimension_count`);
  if (typeof rd === "number" && rd !== headDim)
    throw new ModelFileError(g.path, `partial RoPE (rope.dimension_count ${rd} != head dim ${headDim}) is not supported`);
  return validateConfig(cfg, g.path);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  const step = 1 << 16;
  for (let i = 0; i < a.byteLength; i += step) {
    const n = Math.min(step, a.byteLength - i);
    if (Buffer.compare(a.subarray(i, i + n), b.subarray(i, i + n)) !== 0) return false;
  }
  return true;
}

/** Builds the weight set of a parsed GGUF file. */
export function ggufWeights(g: GgufFile): WeightSet {
  const config = ggufConfig(g);
  const tensors = new Map<string, TensorSource>();
  for (const t of g.tensors.values()) {
    const name = canonicalGgufName(t.name, config.architecture);
    if (!name) throw new ModelFileError(g.path, `unexpected tensor (not a known ${config.architecture} GGUF tensor name)`, t.name);
    const src: TensorSource = {
      name,
      shape: t.shape,
      dtype: t.dtype,
      file: g.path,
      fileName: t.name,
      data: t.data,
      ...(t.quant ? { quant: t.quant } : {}),
    };
    // llama.cpp permutes Q/K only for Llama/Mistral (the other families use NeoX RoPE as is).
    if ((config.architecture === "llama" || config.architecture === "mistral") && t.shape.length >= 1) {
      const heads =
        name.endsWith("q_proj.weight") || name.endsWith("q_proj.bias")
          ? config.numHeads
          : name.endsWith("k_proj.weight") || name.endsWith("k_proj.bias")
            ? config.numKvHeads
            : 0;
      if (heads) {
        const rows = t.shape[0]!;
        if (rows !== heads * config.headDim) {
          throw new ModelFileError(
            g.path,
            `shape [${t.shape.join(", ")}] does not match the config (${heads} heads × head dim ${config.headDim} rows)`,
            t.name,
          );
        }
        src.rowPerm = unpermuteRows(rows, heads);
      }
    }
    tensors.set(name, src);
  }
  if (config.architecture === "phi3") unfusePhi3(config, tensors);
  longropeFromTensors(g, config, tensors);
  // An output matrix byte-identical to the embedding is stored once (tied).
  const out = tensors.get("lm_head.weight");
  const emb = tensors.get("model.embed_tokens.weight");
  if (out?.data && emb?.data && out.dtype === emb.dtype && out.quant === emb.quant && sameBytes(out.data, emb.data)) {
    tensors.delete("lm_head.weight");
    config.tieWordEmbeddings = true;
  }
  checkTensors(config, tensors, g.path);
  return { config, format: "gguf", files: [g.path], tensors };
}

/**
 * Phi-3 GGUF: LongRoPE factors are the tensors rope_factors_short/long [headDim/2] and the
 * attention factor the metadata rope.scaling.attn_factor; they become the config's
 * longrope scaling (as HF's config.json carries them) and leave the tensor set.
 */
function longropeFromTensors(g: GgufFile, config: ModelConfig, tensors: Map<string, TensorSource>): void {
  const long = tensors.get("rope_factors_long.weight");
  const short = tensors.get("rope_factors_short.weight");
  if (!long && !short) return;
  if (!long || !short)
    throw new ModelFileError(g.path, "has only one of rope_factors_long / rope_factors_short", (long ?? short)!.fileName);
  if (config.ropeScaling) throw new ModelFileError(g.path, "has both rope scaling metadata and rope_factors tensors", long.fileName);
  tensors.delete("rope_factors_long.weight");
  tensors.delete("rope_factors_short.weight");
  const p = metaStr(g, "general.architecture")!;
  const original = metaNum(g, `${p}.rope.scaling.original_context_length`, config.maxPositionEmbeddings);
  const af = meta(g, `${p}.rope.scaling.attn_factor`);
  config.ropeScaling = {
    type: "longrope",
    factor: config.maxPositionEmbeddings / original,
    shortFactor: Array.from(tensorToF32(short)),
    longFactor: Array.from(tensorToF32(long)),
    originalMaxPositionEmbeddings: original,
    attentionFactor: typeof af === "number" ? af : null,
  };
  validateConfig(config, g.path);
}

export function loadGgufWeights(path: string): { gguf: GgufFile; weights: WeightSet } {
  const gguf = readGguf(path);
  return { gguf, weights: ggufWeights(gguf) };
}
