// ModelConfig: the normalized Llama-family configuration every loader produces (HF config.json,
// GGUF metadata, the built-in demo model), and the list of tensors such a model must have.
import { ModelFileError } from "./errors.ts";

export type Architecture = "llama" | "mistral" | "qwen2" | "qwen3" | "gemma" | "gemma2" | "gemma3" | "phi3";

/** dtype of a tensor as stored in a file. */
export type SourceDtype = "f32" | "f16" | "bf16";

export type RopeScaling =
  | { type: "linear"; factor: number }
  | {
      type: "llama3";
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    }
  /** GGUF Llama-3.x: per-frequency divisors stored as the tensor `rope_freqs.weight` [headDim/2]. */
  | { type: "freq_factors" }
  /** HF "yarn" (modeling_rope_utils._compute_yarn_parameters). */
  | {
      type: "yarn";
      factor: number;
      originalMaxPositionEmbeddings: number;
      betaFast: number;
      betaSlow: number;
      /** Explicit attention_factor, else derived from mscale / mscale_all_dim / factor. */
      attentionFactor: number | null;
      mscale: number | null;
      mscaleAllDim: number | null;
      truncate: boolean;
    }
  /** HF "dynamic" NTK: base grows with the sequence length beyond max_position_embeddings. */
  | { type: "dynamic"; factor: number }
  /** HF "longrope" (Phi-3 "su"): per-frequency divisors, short below the original context, long above. */
  | {
      type: "longrope";
      factor: number;
      shortFactor: number[];
      longFactor: number[];
      originalMaxPositionEmbeddings: number;
      attentionFactor: number | null;
    };

/** Attention type of a layer (Gemma 2/3 alternate; Mistral v0.1 / Phi-3: every layer sliding). */
export type LayerType = "full" | "sliding";

export interface ModelConfig {
  /** Display name (folder or file name; the demo model says "random weights"). */
  name: string;
  architecture: Architecture;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** Q/K row layout of the loaded weights: always rotate-half ("neox"), GGUF rows are converted. */
  ropeLayout: "neox";
  tieWordEmbeddings: boolean;
  /** q/k/v projections have biases (Qwen2). */
  qkvBias: boolean;
  maxPositionEmbeddings: number;
  /** Sliding-window size of the "sliding" layers (Mistral v0.1, Qwen2, Gemma 2/3, Phi-3), null = none. */
  slidingWindow: number | null;
  /**
   * Per-layer attention type; absent = every layer "sliding" when slidingWindow is set (Mistral,
   * Phi-3), else all "full". Qwen2/3 max_window_layers and Gemma's patterns fill it.
   */
  layerTypes?: LayerType[];
  /** MLP activation: SwiGLU (silu) or Gemma's GeGLU (gelu_pytorch_tanh). Default silu. */
  hiddenAct?: "silu" | "gelu_tanh";
  /** Per-head RMSNorm of q and k before RoPE (Qwen3, Gemma 3): self_attn.q_norm / k_norm [headDim]. */
  qkNorm?: boolean;
  /** Gemma 2/3 sandwich norms: post_attention_layernorm on the attention output, pre/post_feedforward_layernorm. */
  sandwichNorm?: boolean;
  /** Gemma: embeddings scaled by sqrt(hiddenSize). */
  embedScale?: boolean;
  /** Gemma 2 attention logit soft-capping (null/absent = off). */
  attnSoftcap?: number | null;
  /** Gemma 2/3 final logit soft-capping (null/absent = off). */
  finalSoftcap?: number | null;
  /** Gemma 2/3 query_pre_attn_scalar: attention scale = its -1/2 power instead of headDim's. */
  queryPreAttnScalar?: number | null;
  /** Gemma 3: RoPE base of the sliding layers (rope_local_base_freq; no scaling there). */
  ropeLocalTheta?: number | null;
  vocabSize: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** dtype the checkpoint is stored in (the device copy is the backend's compute dtype). */
  dtype: SourceDtype;
  /** True only for the built-in demo model. */
  randomWeights?: boolean;
}

function isPosInt(v: number): boolean {
  return Number.isSafeInteger(v) && v > 0;
}

/** Checks internal consistency; throws ModelFileError naming `file`. */
export function validateConfig(c: ModelConfig, file: string): ModelConfig {
  const ints: [string, number][] = [
    ["hidden size", c.hiddenSize],
    ["intermediate size", c.intermediateSize],
    ["number of layers", c.numLayers],
    ["number of attention heads", c.numHeads],
    ["number of KV heads", c.numKvHeads],
    ["head dim", c.headDim],
    ["vocab size", c.vocabSize],
    ["max position embeddings", c.maxPositionEmbeddings],
  ];
  for (const [what, v] of ints) {
    if (!isPosInt(v)) throw new ModelFileError(file, `${what} must be a positive integer, got ${v}`);
  }
  const limits: [string, number, number][] = [
    ["hidden size", c.hiddenSize, 1 << 20],
    ["intermediate size", c.intermediateSize, 1 << 22],
    ["number of layers", c.numLayers, 4096],
    ["number of attention heads", c.numHeads, 4096],
    ["head dim", c.headDim, 4096],
    ["vocab size", c.vocabSize, 1 << 24],
  ];
  for (const [what, v, max] of limits) {
    if (v > max) throw new ModelFileError(file, `${what} ${v} is implausibly large (limit ${max})`);
  }
  if (c.numHeads % c.numKvHeads !== 0) {
    throw new ModelFileError(file, `number of attention heads (${c.numHeads}) is not a multiple of KV heads (${c.numKvHeads})`);
  }
  if (c.headDim % 2 !== 0) throw new ModelFileError(file, `head dim ${c.headDim} must be even for RoPE`);
  if (!(c.rmsNormEps > 0 && c.rmsNormEps < 1)) throw new ModelFileError(file, `rms_norm_eps ${c.rmsNormEps} out of range`);
  if (!(c.ropeTheta > 0 && Number.isFinite(c.ropeTheta))) throw new ModelFileError(file, `rope theta ${c.ropeTheta} out of range`);
  if (c.ropeScaling && c.ropeScaling.type !== "freq_factors" && !(c.ropeScaling.factor > 0)) {
    throw new ModelFileError(file, `rope scaling factor ${c.ropeScaling.factor} must be > 0`);
  }
  if (c.layerTypes && c.layerTypes.length !== c.numLayers) {
    throw new ModelFileError(file, `layer_types has ${c.layerTypes.length} entries for ${c.numLayers} layers`);
  }
  if (c.slidingWindow !== null && !isPosInt(c.slidingWindow))
    throw new ModelFileError(file, `sliding_window ${c.slidingWindow} must be a positive integer`);
  for (const [what, v] of [
    ["attn_logit_softcapping", c.attnSoftcap],
    ["final_logit_softcapping", c.finalSoftcap],
    ["query_pre_attn_scalar", c.queryPreAttnScalar],
    ["rope_local_base_freq", c.ropeLocalTheta],
  ] as const) {
    if (v !== undefined && v !== null && !(v > 0 && Number.isFinite(v))) throw new ModelFileError(file, `${what} ${v} must be > 0`);
  }
  const rs = c.ropeScaling;
  if (rs?.type === "longrope") {
    for (const [what, f] of [
      ["short_factor", rs.shortFactor],
      ["long_factor", rs.longFactor],
    ] as const) {
      if (f.length !== c.headDim / 2)
        throw new ModelFileError(file, `rope_scaling.${what} has ${f.length} entries, head_dim/2 = ${c.headDim / 2} needed`);
      if (f.some((x) => !(x > 0 && Number.isFinite(x)))) throw new ModelFileError(file, `rope_scaling.${what} entries must be > 0`);
    }
  }
  for (const id of [...c.eosTokenIds, ...(c.bosTokenId === null ? [] : [c.bosTokenId])]) {
    if (!Number.isSafeInteger(id) || id < 0 || id >= c.vocabSize) {
      throw new ModelFileError(file, `special token id ${id} is outside the vocabulary (size ${c.vocabSize})`);
    }
  }
  return c;
}

/** Canonical (HF Llama) tensor names and their row-major shapes, outermost first. */
export function expectedTensors(c: ModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const h = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  m.set("model.embed_tokens.weight", [c.vocabSize, h]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}.`;
    m.set(`${p}input_layernorm.weight`, [h]);
    m.set(`${p}self_attn.q_proj.weight`, [q, h]);
    m.set(`${p}self_attn.k_proj.weight`, [kv, h]);
    m.set(`${p}self_attn.v_proj.weight`, [kv, h]);
    if (c.qkvBias) {
      m.set(`${p}self_attn.q_proj.bias`, [q]);
      m.set(`${p}self_attn.k_proj.bias`, [kv]);
      m.set(`${p}self_attn.v_proj.bias`, [kv]);
    }
    if (c.qkNorm) {
      m.set(`${p}self_attn.q_norm.weight`, [c.headDim]);
      m.set(`${p}self_attn.k_norm.weight`, [c.headDim]);
    }
    m.set(`${p}self_attn.o_proj.weight`, [h, q]);
    m.set(`${p}post_attention_layernorm.weight`, [h]);
    if (c.sandwichNorm) {
      m.set(`${p}pre_feedforward_layernorm.weight`, [h]);
      m.set(`${p}post_feedforward_layernorm.weight`, [h]);
    }
    m.set(`${p}mlp.gate_proj.weight`, [c.intermediateSize, h]);
    m.set(`${p}mlp.up_proj.weight`, [c.intermediateSize, h]);
    m.set(`${p}mlp.down_proj.weight`, [h, c.intermediateSize]);
  }
  m.set("model.norm.weight", [h]);
  if (!c.tieWordEmbeddings) m.set("lm_head.weight", [c.vocabSize, h]);
  if (c.ropeScaling?.type === "freq_factors") m.set("rope_freqs.weight", [c.headDim / 2]);
  return m;
}

/** Number of parameters (elements) of a model with this config. */
export function parameterCount(c: ModelConfig): number {
  let n = 0;
  for (const shape of expectedTensors(c).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}

/** Attention type of layer `l`. */
export function layerType(c: ModelConfig, l: number): LayerType {
  if (c.slidingWindow === null) return "full";
  return c.layerTypes ? c.layerTypes[l]! : "sliding";
}

/** Sliding window of layer `l` in tokens, 0 = full attention (the ops' convention). */
export function layerWindow(c: ModelConfig, l: number): number {
  return layerType(c, l) === "sliding" ? c.slidingWindow! : 0;
}
