// ModelConfig: the normalized Llama-family configuration every loader produces (HF config.json,
// GGUF metadata, the built-in demo model), and the list of tensors such a model must have.
import { ModelFileError } from "./errors.ts";

export type Architecture = "llama" | "mistral" | "qwen2";

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
  | { type: "freq_factors" };

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
  /** Mistral v0.1 sliding-window attention size, null when full attention. */
  slidingWindow: number | null;
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
    m.set(`${p}self_attn.o_proj.weight`, [h, q]);
    m.set(`${p}post_attention_layernorm.weight`, [h]);
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
