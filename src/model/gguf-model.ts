// GGUF -> ModelConfig + canonical tensors. Llama metadata keys ({arch}.embedding_length, ...)
// map onto the same config as HF config.json; GGUF tensor names (token_embd, blk.N.attn_q, ...)
// map onto HF names; Q/K rows of "llama" GGUF files, which llama.cpp's converter permuted into
// Meta's interleaved RoPE layout, are permuted back to HF's rotate-half layout at read time.
import { basename } from "node:path";

import { type Architecture, type ModelConfig, type RopeScaling, validateConfig } from "./config.ts";
import { ModelFileError } from "./errors.ts";
import { type GgufFile, type GgufValue, readGguf } from "./gguf.ts";
import { checkTensors, type TensorSource, type WeightSet } from "./weights.ts";

const ARCHS: Record<string, Architecture> = { llama: "llama", mistral: "mistral", qwen2: "qwen2" };

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
};
const GLOBAL_MAP: Record<string, string> = {
  "token_embd.weight": "model.embed_tokens.weight",
  "output_norm.weight": "model.norm.weight",
  "output.weight": "lm_head.weight",
  "rope_freqs.weight": "rope_freqs.weight",
};

/** GGUF tensor name -> canonical HF name (undefined when unknown). */
export function canonicalGgufName(name: string): string | undefined {
  const g = GLOBAL_MAP[name];
  if (g) return g;
  const m = /^blk\.(\d{1,6})\.(.+)$/.exec(name);
  if (!m) return undefined;
  const rest = LAYER_MAP[m[2]!];
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
  if (typeof v !== "number" || !Number.isFinite(v)) throw new ModelFileError(g.path, `metadata "${key}" must be a number, got ${String(v)}`);
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

/** Config from GGUF metadata (the tensors supply what metadata may omit, e.g. vocab size). */
export function ggufConfig(g: GgufFile): ModelConfig {
  const archName = metaStr(g, "general.architecture");
  if (archName === undefined) throw new ModelFileError(g.path, `missing metadata "general.architecture"`);
  const arch = ARCHS[archName];
  if (!arch) throw new ModelFileError(g.path, `unknown architecture "${archName}" (supported: llama, mistral, qwen2)`);
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
  else if (st !== undefined && st !== "none") throw new ModelFileError(g.path, `rope scaling type "${st}" is not supported (supported: linear)`);
  if (g.tensors.has("rope_freqs.weight")) {
    if (ropeScaling) throw new ModelFileError(g.path, "has both rope scaling metadata and rope_freqs", "rope_freqs.weight");
    ropeScaling = { type: "freq_factors" };
  }
  const eos: number[] = [];
  for (const k of ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"]) {
    const id = tokenId(g, k);
    if (id !== null && !eos.includes(id)) eos.push(id);
  }
  const sw = meta(g, `${p}.attention.sliding_window`);
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
    slidingWindow: typeof sw === "number" && sw > 0 ? sw : null,
    vocabSize: vocab,
    bosTokenId: tokenId(g, "tokenizer.ggml.bos_token_id"),
    eosTokenIds: eos,
    dtype: emb?.dtype ?? "f32",
  };
  const rd = meta(g, `${p}.rope.dimension_count`);
  if (typeof rd === "number" && rd !== headDim) throw new ModelFileError(g.path, `partial RoPE (rope.dimension_count ${rd} != head dim ${headDim}) is not supported`);
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
    const name = canonicalGgufName(t.name);
    if (!name) throw new ModelFileError(g.path, `unexpected tensor (not a known ${config.architecture} GGUF tensor name)`, t.name);
    const src: TensorSource = { name, shape: t.shape, dtype: t.dtype, file: g.path, fileName: t.name, data: t.data, ...(t.quant ? { quant: t.quant } : {}) };
    // llama.cpp permutes Q/K only for the "llama" architecture (Qwen2 uses NeoX RoPE as is).
    if (config.architecture !== "qwen2" && t.shape.length >= 1) {
      const heads = name.endsWith("q_proj.weight") || name.endsWith("q_proj.bias") ? config.numHeads
        : name.endsWith("k_proj.weight") || name.endsWith("k_proj.bias") ? config.numKvHeads : 0;
      if (heads) {
        const rows = t.shape[0]!;
        if (rows !== heads * config.headDim) {
          throw new ModelFileError(g.path, `shape [${t.shape.join(", ")}] does not match the config (${heads} heads × head dim ${config.headDim} rows)`, t.name);
        }
        src.rowPerm = unpermuteRows(rows, heads);
      }
    }
    tensors.set(name, src);
  }
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

export function loadGgufWeights(path: string): { gguf: GgufFile; weights: WeightSet } {
  const gguf = readGguf(path);
  return { gguf, weights: ggufWeights(gguf) };
}
