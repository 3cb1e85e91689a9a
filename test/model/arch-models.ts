// Tiny random-weight models of each family with the family's real config.json field names and
// tensor names, written as an HF folder (config.json + model.safetensors) and as a GGUF file
// with llama.cpp's tensor names and metadata keys (convert_hf_to_gguf.py conventions: Q/K rows
// permuted for llama/mistral only, Gemma norms stored as w + 1, Gemma 2/3 sandwich norms as
// post_attention_norm / ffn_norm / post_ffw_norm, Phi-3 fused attn_qkv and ffn_up = [gate; up],
// LongRoPE factors as rope_factors_short/long tensors). GGUF written with src/model/gguf.ts's
// serializer (a plain container writer; the name/metadata mapping here is independent of the
// loader's).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { GGML_TYPE_ID, GgufValueType, serializeGguf, type GgufKv, type GgufTensorToWrite } from "../../src/model/gguf.ts";
import { serializeSafetensors } from "../../src/model/safetensors.ts";
import { prng } from "./helpers.ts";
import type { Tensors } from "./arch-ref.ts";

type Json = Record<string, any>;

const base = {
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 97,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-6,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: "float32",
};

/** The families under test; `gguf` = also written as GGUF (false where llama.cpp has no equivalent). */
export const FAMILIES: { name: string; cfg: Json; gguf: boolean }[] = [
  {
    name: "Qwen3",
    gguf: true,
    cfg: {
      ...base,
      architectures: ["Qwen3ForCausalLM"],
      model_type: "qwen3",
      head_dim: 16,
      rope_theta: 1e6,
      attention_bias: false,
      tie_word_embeddings: true,
      use_sliding_window: false,
      sliding_window: null,
      max_window_layers: 28,
    },
  },
  {
    name: "Gemma",
    gguf: true,
    cfg: {
      ...base,
      architectures: ["GemmaForCausalLM"],
      model_type: "gemma",
      head_dim: 16,
      hidden_act: "gelu",
      hidden_activation: "gelu_pytorch_tanh",
      rope_theta: 10000,
    },
  },
  {
    name: "Gemma 2",
    gguf: true,
    cfg: {
      ...base,
      architectures: ["Gemma2ForCausalLM"],
      model_type: "gemma2",
      head_dim: 16,
      hidden_activation: "gelu_pytorch_tanh",
      rope_theta: 10000,
      query_pre_attn_scalar: 16,
      sliding_window: 8,
      attn_logit_softcapping: 2.0,
      final_logit_softcapping: 3.0,
    },
  },
  {
    name: "Gemma 3",
    gguf: true,
    cfg: {
      ...base,
      architectures: ["Gemma3ForCausalLM"],
      model_type: "gemma3_text",
      head_dim: 16,
      hidden_activation: "gelu_pytorch_tanh",
      rope_theta: 1e6,
      rope_local_base_freq: 10000,
      query_pre_attn_scalar: 16,
      sliding_window: 8,
      sliding_window_pattern: 3,
      rope_scaling: { rope_type: "linear", factor: 8.0 },
      final_logit_softcapping: null,
      attn_logit_softcapping: null,
    },
  },
  {
    name: "Phi-3 (LongRoPE)",
    gguf: true,
    cfg: {
      ...base,
      architectures: ["Phi3ForCausalLM"],
      model_type: "phi3",
      rope_theta: 10000,
      original_max_position_embeddings: 64,
      sliding_window: 16,
      hidden_act: "silu",
      rope_scaling: { type: "longrope", short_factor: [1.0, 1.1, 1.3, 1.7], long_factor: [1.5, 2.5, 4.0, 9.0] },
    },
  },
  {
    name: "Mistral v0.1 (sliding window)",
    gguf: true,
    cfg: { ...base, architectures: ["MistralForCausalLM"], model_type: "mistral", rope_theta: 10000, sliding_window: 8 },
  },
  {
    name: "Qwen2 (use_sliding_window, max_window_layers)",
    gguf: true,
    cfg: {
      ...base,
      architectures: ["Qwen2ForCausalLM"],
      model_type: "qwen2",
      rope_theta: 1e6,
      use_sliding_window: true,
      sliding_window: 8,
      max_window_layers: 1,
    },
  },
  {
    name: "Qwen2 (yarn)",
    gguf: true,
    cfg: {
      ...base,
      architectures: ["Qwen2ForCausalLM"],
      model_type: "qwen2",
      rope_theta: 1e6,
      rope_scaling: { type: "yarn", factor: 4.0, original_max_position_embeddings: 64 },
    },
  },
  {
    name: "Llama (dynamic NTK)",
    gguf: false,
    cfg: {
      ...base,
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      rope_theta: 10000,
      rope_scaling: { type: "dynamic", factor: 2.0 },
    },
  },
];

/** HF tensor names and shapes of a config (Phi-3 fused, Qwen2 biases, Gemma sandwich/qk norms). */
export function hfShapes(c: Json): Map<string, number[]> {
  const H = c.hidden_size,
    nh = c.num_attention_heads,
    nkv = c.num_key_value_heads ?? nh,
    hd = c.head_dim ?? H / nh,
    I = c.intermediate_size;
  const mt = c.model_type;
  const m = new Map<string, number[]>();
  m.set("model.embed_tokens.weight", [c.vocab_size, H]);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    m.set(`${p}input_layernorm.weight`, [H]);
    if (mt === "phi3") m.set(`${p}self_attn.qkv_proj.weight`, [(nh + 2 * nkv) * hd, H]);
    else {
      m.set(`${p}self_attn.q_proj.weight`, [nh * hd, H]);
      m.set(`${p}self_attn.k_proj.weight`, [nkv * hd, H]);
      m.set(`${p}self_attn.v_proj.weight`, [nkv * hd, H]);
    }
    if (mt === "qwen2")
      for (const [n, r] of [
        ["q", nh * hd],
        ["k", nkv * hd],
        ["v", nkv * hd],
      ] as const)
        m.set(`${p}self_attn.${n}_proj.bias`, [r]);
    if (mt === "qwen3" || mt === "gemma3_text") {
      m.set(`${p}self_attn.q_norm.weight`, [hd]);
      m.set(`${p}self_attn.k_norm.weight`, [hd]);
    }
    m.set(`${p}self_attn.o_proj.weight`, [H, nh * hd]);
    m.set(`${p}post_attention_layernorm.weight`, [H]);
    if (mt === "gemma2" || mt === "gemma3_text") {
      m.set(`${p}pre_feedforward_layernorm.weight`, [H]);
      m.set(`${p}post_feedforward_layernorm.weight`, [H]);
    }
    if (mt === "phi3") m.set(`${p}mlp.gate_up_proj.weight`, [2 * I, H]);
    else {
      m.set(`${p}mlp.gate_proj.weight`, [I, H]);
      m.set(`${p}mlp.up_proj.weight`, [I, H]);
    }
    m.set(`${p}mlp.down_proj.weight`, [H, I]);
  }
  m.set("model.norm.weight", [H]);
  const tie = c.tie_word_embeddings ?? ["gemma", "gemma2", "gemma3_text"].includes(mt);
  if (!tie) m.set("lm_head.weight", [c.vocab_size, H]);
  return m;
}

/** Seeded random fp32 weights: matrices ~ U(±1.5/sqrt(fan_in)), norms 1 ± 0.2 (Gemma: w ± 0.2, applied as 1 + w). */
export function randomWeights(c: Json, seed: number): Map<string, { shape: number[]; v: Float32Array }> {
  const rnd = prng(seed);
  const gemma = ["gemma", "gemma2", "gemma3_text"].includes(c.model_type);
  const out = new Map<string, { shape: number[]; v: Float32Array }>();
  for (const [name, shape] of hfShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    const isNorm = name.endsWith("norm.weight");
    const amp = isNorm
      ? 0.2
      : name.endsWith(".bias")
        ? 0.1
        : name.includes("embed_tokens") || name === "lm_head.weight"
          ? 1
          : 1.5 / Math.sqrt(shape[1]!);
    for (let i = 0; i < n; i++) v[i] = (isNorm && !gemma ? 1 : 0) + (rnd() * 2 - 1) * amp;
    out.set(name, { shape, v });
  }
  return out;
}

export function asFloat64(w: Map<string, { shape: number[]; v: Float32Array }>): Tensors {
  return new Map([...w].map(([k, t]) => [k, Float64Array.from(t.v)]));
}

const bytes = (v: Float32Array) => new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));

export function writeHfFolder(dir: string, c: Json, w: Map<string, { shape: number[]; v: Float32Array }>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(c, null, 2));
  writeFileSync(
    join(dir, "model.safetensors"),
    serializeSafetensors([...w].map(([name, t]) => ({ name, dtype: "F32" as const, shape: t.shape, data: bytes(t.v) }))),
  );
}

/** llama.cpp convert_hf_to_gguf.py `permute`: HF rotate-half rows -> interleaved rows. */
function permute(v: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  const out = new Float32Array(v.length);
  const hd = rows / nHead,
    half = hd / 2;
  for (let h = 0; h < nHead; h++)
    for (let j = 0; j < half; j++)
      for (let s = 0; s < 2; s++)
        out.set(v.subarray((h * hd + s * half + j) * cols, (h * hd + s * half + j + 1) * cols), (h * hd + 2 * j + s) * cols);
  return out;
}

const GGUF_ARCH: Record<string, string> = {
  qwen3: "qwen3",
  gemma: "gemma",
  gemma2: "gemma2",
  gemma3_text: "gemma3",
  phi3: "phi3",
  mistral: "llama",
  llama: "llama",
  qwen2: "qwen2",
};

/** The GGUF tensor name llama.cpp gives an HF tensor of this family. */
function ggufName(mt: string, name: string): string {
  const g: Record<string, string> = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
  };
  if (g[name]) return g[name]!;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name)!;
  const sandwich = mt === "gemma2" || mt === "gemma3_text";
  const layer: Record<string, string> = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.qkv_proj.weight": "attn_qkv.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": sandwich ? "post_attention_norm.weight" : "ffn_norm.weight",
    "pre_feedforward_layernorm.weight": "ffn_norm.weight",
    "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.gate_up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
  };
  return `blk.${m[1]}.${layer[m[2]!]!}`;
}

/** Writes `w` as llama.cpp's converter would (f32 tensors). */
export function writeGgufFile(path: string, c: Json, w: Map<string, { shape: number[]; v: Float32Array }>): void {
  const mt = c.model_type;
  const a = GGUF_ARCH[mt]!;
  const H = c.hidden_size,
    nh = c.num_attention_heads,
    nkv = c.num_key_value_heads ?? nh,
    hd = c.head_dim ?? H / nh;
  const gemma = ["gemma", "gemma2", "gemma3_text"].includes(mt);
  const kvs: GgufKv[] = [];
  const u32 = (key: string, value: number) => kvs.push({ key: `${a}.${key}`, type: GgufValueType.U32, value });
  const f32 = (key: string, value: number) => kvs.push({ key: `${a}.${key}`, type: GgufValueType.F32, value });
  kvs.push({ key: "general.architecture", type: GgufValueType.STRING, value: a });
  u32("context_length", c.max_position_embeddings);
  u32("embedding_length", H);
  u32("block_count", c.num_hidden_layers);
  u32("feed_forward_length", c.intermediate_size);
  u32("attention.head_count", nh);
  u32("attention.head_count_kv", nkv);
  f32("attention.layer_norm_rms_epsilon", c.rms_norm_eps);
  u32("attention.key_length", hd);
  u32("attention.value_length", hd);
  f32("rope.freq_base", c.rope_theta);
  if (c.sliding_window && mt !== "qwen2") u32("attention.sliding_window", c.sliding_window);
  if (mt === "qwen2" && c.use_sliding_window) {
    // per-layer flags as llama.cpp's Qwen converters write layer_types (sliding from max_window_layers on)
    u32("attention.sliding_window", c.sliding_window);
    const flags = Array.from({ length: c.num_hidden_layers }, (_, i) => i >= c.max_window_layers);
    kvs.push({ key: `${a}.attention.sliding_window_pattern`, type: GgufValueType.ARRAY, elemType: GgufValueType.BOOL, value: flags });
  }
  if (mt === "gemma2") {
    f32("attn_logit_softcapping", c.attn_logit_softcapping);
    f32("final_logit_softcapping", c.final_logit_softcapping);
  }
  if (mt === "gemma3_text" && c.final_logit_softcapping) f32("final_logit_softcapping", c.final_logit_softcapping);
  // llama.cpp reads the period with get_key_or_arr (default 6; the converter omits it for 6)
  if (mt === "gemma3_text" && (c.sliding_window_pattern ?? 6) !== 6) u32("attention.sliding_window_pattern", c.sliding_window_pattern);
  if (c.rope_scaling?.rope_type === "linear" || c.rope_scaling?.type === "linear") {
    kvs.push({ key: `${a}.rope.scaling.type`, type: GgufValueType.STRING, value: "linear" });
    f32("rope.scaling.factor", c.rope_scaling.factor);
  }
  if (c.rope_scaling?.type === "yarn" || c.rope_scaling?.rope_type === "yarn") {
    // TextModel.set_gguf_parameters: type, factor, original context (llama.cpp derives the mscale)
    kvs.push({ key: `${a}.rope.scaling.type`, type: GgufValueType.STRING, value: "yarn" });
    f32("rope.scaling.factor", c.rope_scaling.factor);
    u32("rope.scaling.original_context_length", c.rope_scaling.original_max_position_embeddings);
  }
  const tensors: GgufTensorToWrite[] = [];
  const push = (name: string, shape: number[], v: Float32Array) =>
    tensors.push({ name, dims: [...shape].reverse(), ggmlType: GGML_TYPE_ID.F32!, data: bytes(v) });
  if (mt === "phi3") {
    // Phi3MiniModel: rope factors as tensors, attention factor and original context as metadata
    const orig = c.original_max_position_embeddings;
    const factor = c.max_position_embeddings / orig;
    f32("rope.scaling.attn_factor", Math.sqrt(1 + Math.log(factor) / Math.log(orig)));
    u32("rope.scaling.original_context_length", orig);
    u32("rope.dimension_count", hd);
    push("rope_factors_long.weight", [hd / 2], Float32Array.from(c.rope_scaling.long_factor));
    push("rope_factors_short.weight", [hd / 2], Float32Array.from(c.rope_scaling.short_factor));
  }
  for (const [name, t] of w) {
    let v = t.v;
    if (gemma && name.endsWith("norm.weight")) v = v.map((x) => x + 1); // converter: data_torch + 1
    if (a === "llama" && name.endsWith("q_proj.weight")) v = permute(v, t.shape[0]!, t.shape[1]!, nh);
    if (a === "llama" && name.endsWith("k_proj.weight")) v = permute(v, t.shape[0]!, t.shape[1]!, nkv);
    push(ggufName(mt, name), t.shape, v);
  }
  writeFileSync(path, serializeGguf(kvs, tensors));
}
