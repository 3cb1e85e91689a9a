// Tiny random-weight GGUF models with llama.cpp's exact tensor names and metadata keys
// (llama.cpp src/llama-arch.cpp LLM_TENSOR_NAMES / LLM_KV_NAMES, gguf-py constants), and a real
// tokenizer copied from a vocab-only GGUF (../shared/models/vocab). Deterministic per seed.
import { readFileSync } from "node:fs";

import { GgufValueType, parseGguf, type GgufValue } from "../../src/model/gguf.ts";
import { type GgufMeta, type GgufScalarType, type GgufTensor, type TensorType, meta, writeGguf } from "./gguf-writer.ts";

/** Llama-3 style rope scaling, stored in GGUF as the per-frequency divisors `rope_freqs.weight`. */
export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalContext: number;
}

export interface TinyModelSpec {
  /** general.architecture (llama.cpp's name). */
  arch: string;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  /** attention.key_length/value_length, written only when given (default hidden / heads). */
  headDim?: number;
  ffn: number;
  ropeTheta: number;
  rmsEps: number;
  contextLength: number;
  ropeScaling?: Llama3RopeScaling;
  /** attn_q/k/v biases (Qwen2). */
  qkvBias?: boolean;
  /** attn_q_norm / attn_k_norm [head_dim] (Qwen3, Gemma 3). */
  qkNorm?: boolean;
  /** post_attention_norm and post_ffw_norm around attention/FFN outputs (Gemma 2/3). */
  sandwichNorms?: boolean;
  /** Phi-3 layout: one attn_qkv [q+2kv, hidden] and ffn_up [2*ffn, hidden] (gate rows first), no ffn_gate. */
  fused?: boolean;
  /** More `${arch}.*` metadata (softcapping, sliding window, ...): key without the arch prefix. */
  archMetadata?: Record<string, GgufMeta>;
  /** No output.weight: the output projection is token_embd. */
  tiedEmbeddings?: boolean;
  /** Type of the 2-D weights; 1-D tensors (norms, biases, rope_freqs) stay F32 as llama.cpp's converter writes them. */
  tensorType: TensorType;
  /** A .gguf or .gguf.gz whose tokenizer.* metadata is copied (sets the vocabulary size). */
  vocabFile: string;
  seed: number;
  /** Standard deviation of the logits at initialisation (default 4): keeps greedy choices well separated. */
  logitStd?: number;
  /**
   * Scale of each layer's attention and FFN outputs (default 1). Gemma multiplies the tied
   * embedding by sqrt(hidden), which otherwise dominates the residual stream so that greedy
   * decoding just repeats the last token.
   */
  outScale?: number;
}

/** mulberry32 + Box-Muller: deterministic standard normals. */
export function normals(seed: number): () => number {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

function randn(rand: () => number, n: number, std: number, mean = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * rand();
  return out;
}

function toMeta(v: GgufValue, type: GgufValueType, elem: GgufValueType | undefined): GgufMeta {
  if (type === GgufValueType.ARRAY) {
    if (!Array.isArray(v) || elem === undefined || elem === GgufValueType.ARRAY)
      throw new Error("nested tokenizer arrays are not expected");
    return meta.arr(elem as GgufScalarType, v as (number | bigint | boolean | string)[]);
  }
  return { type: type as GgufScalarType, value: v as number | bigint | boolean | string };
}

/** The tokenizer.* metadata of a (possibly gzipped) GGUF, types kept, and its vocabulary size. */
export function tokenizerMetadata(file: string): { md: Map<string, GgufMeta>; vocabSize: number } {
  let buf = new Uint8Array(readFileSync(file));
  if (file.endsWith(".gz")) buf = Bun.gunzipSync(buf);
  const g = parseGguf(file, buf);
  const md = new Map<string, GgufMeta>();
  for (const [k, v] of g.metadata) {
    if (!k.startsWith("tokenizer.")) continue;
    const [t, e] = g.metadataTypes.get(k)!;
    md.set(k, toMeta(v, t, e));
  }
  const tokens = g.metadata.get("tokenizer.ggml.tokens");
  if (!Array.isArray(tokens)) throw new Error(`${file}: no tokenizer.ggml.tokens`);
  return { md, vocabSize: tokens.length };
}

/** convert_hf_to_gguf.py (LlamaModel.generate_extra_tensors) for rope_type "llama3". */
export function llama3RopeFreqs(headDim: number, theta: number, s: Llama3RopeScaling): Float32Array {
  const out = new Float32Array(headDim / 2);
  const lowWavelen = s.originalContext / s.lowFreqFactor;
  const highWavelen = s.originalContext / s.highFreqFactor;
  for (let i = 0; i < headDim / 2; i++) {
    const freq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / headDim)));
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalContext / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

/** Writes the model to `path`; returns the file size. */
export function writeTinyModel(path: string, s: TinyModelSpec): number {
  const { md: tok, vocabSize } = tokenizerMetadata(s.vocabFile);
  const hd = s.headDim ?? s.hidden / s.heads;
  const q = s.heads * hd;
  const kv = s.kvHeads * hd;
  const a = s.arch;
  const md = new Map<string, GgufMeta>([
    ["general.architecture", meta.str(a)],
    ["general.name", meta.str(`tiny-${a}-seed${s.seed}`)],
    ["general.file_type", meta.u32(s.tensorType === "F32" ? 0 : s.tensorType === "F16" ? 1 : 32)],
    [`${a}.context_length`, meta.u32(s.contextLength)],
    [`${a}.embedding_length`, meta.u32(s.hidden)],
    [`${a}.block_count`, meta.u32(s.layers)],
    [`${a}.feed_forward_length`, meta.u32(s.ffn)],
    [`${a}.attention.head_count`, meta.u32(s.heads)],
    [`${a}.attention.head_count_kv`, meta.u32(s.kvHeads)],
    [`${a}.rope.freq_base`, meta.f32(s.ropeTheta)],
    [`${a}.attention.layer_norm_rms_epsilon`, meta.f32(s.rmsEps)],
    [`${a}.vocab_size`, meta.u32(vocabSize)],
    [`${a}.rope.dimension_count`, meta.u32(hd)],
  ]);
  if (s.headDim !== undefined) {
    md.set(`${a}.attention.key_length`, meta.u32(hd));
    md.set(`${a}.attention.value_length`, meta.u32(hd));
  }
  for (const [k, v] of Object.entries(s.archMetadata ?? {})) md.set(`${a}.${k}`, v);
  for (const [k, v] of tok) md.set(k, v);

  const rand = normals(s.seed);
  const W = (name: string, rows: number, cols: number, std: number): GgufTensor => ({
    name,
    shape: [rows, cols],
    type: s.tensorType,
    data: randn(rand, rows * cols, std),
  });
  const V = (name: string, n: number, std: number, mean = 0): GgufTensor => ({
    name,
    shape: [n],
    type: "F32",
    data: randn(rand, n, std, mean),
  });
  const H = s.hidden;
  const logitStd = s.logitStd ?? 4;
  const o = s.outScale ?? 1;
  const t: GgufTensor[] = [W("token_embd.weight", vocabSize, H, s.tiedEmbeddings ? logitStd / Math.sqrt(H) : 1)];
  if (s.ropeScaling)
    t.push({ name: "rope_freqs.weight", shape: [hd / 2], type: "F32", data: llama3RopeFreqs(hd, s.ropeTheta, s.ropeScaling) });
  for (let i = 0; i < s.layers; i++) {
    const p = `blk.${i}.`;
    t.push(V(`${p}attn_norm.weight`, H, 0.1, 1));
    if (s.fused) t.push(W(`${p}attn_qkv.weight`, q + 2 * kv, H, 2 / Math.sqrt(H)));
    else {
      t.push(W(`${p}attn_q.weight`, q, H, 2 / Math.sqrt(H)));
      t.push(W(`${p}attn_k.weight`, kv, H, 2 / Math.sqrt(H)));
      t.push(W(`${p}attn_v.weight`, kv, H, 1 / Math.sqrt(H)));
    }
    if (s.qkvBias) {
      t.push(V(`${p}attn_q.bias`, q, 0.5));
      t.push(V(`${p}attn_k.bias`, kv, 0.5));
      t.push(V(`${p}attn_v.bias`, kv, 0.5));
    }
    if (s.qkNorm) {
      t.push(V(`${p}attn_q_norm.weight`, hd, 0.1, 1));
      t.push(V(`${p}attn_k_norm.weight`, hd, 0.1, 1));
    }
    t.push(W(`${p}attn_output.weight`, H, q, o / Math.sqrt(q)));
    if (s.sandwichNorms) t.push(V(`${p}post_attention_norm.weight`, H, 0.1 * o, o));
    t.push(V(`${p}ffn_norm.weight`, H, 0.1, 1));
    if (s.fused) t.push(W(`${p}ffn_up.weight`, 2 * s.ffn, H, 1 / Math.sqrt(H)));
    else {
      t.push(W(`${p}ffn_gate.weight`, s.ffn, H, 1 / Math.sqrt(H)));
      t.push(W(`${p}ffn_up.weight`, s.ffn, H, 1 / Math.sqrt(H)));
    }
    t.push(W(`${p}ffn_down.weight`, H, s.ffn, o / Math.sqrt(s.ffn)));
    if (s.sandwichNorms) t.push(V(`${p}post_ffw_norm.weight`, H, 0.1 * o, o));
  }
  t.push(V("output_norm.weight", H, 0.1, 1));
  if (!s.tiedEmbeddings) t.push(W("output.weight", vocabSize, H, logitStd / Math.sqrt(H)));
  return writeGguf(path, md, t);
}
