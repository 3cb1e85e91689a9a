// Quantized GGUF files for tests: writers that re-encode a GGUF file's F32 weights with ggml's
// reference quantizers (quant/: every type headroom keeps quantized, pure or as llama-quantize's
// Q4_K_M mixture), random blocks of any type (finite fp16 scales), and a small synthetic Llama
// whose tensors use a mix of block types, next to an F32 copy holding exactly the dequantized values.
import { writeFileSync } from "node:fs";

import { GgufValueType, metadataToKvs, readGguf, serializeGguf, type GgufKv, type GgufTensorToWrite } from "../../src/model/gguf.ts";
import { dequantizeRow, quantRowBytes, quantTypeByName, type QuantType } from "../../src/model/quant.ts";
import { numel } from "../../src/model/weights.ts";
import { prng } from "../model/helpers.ts";
import { quantize } from "./quant/index.ts";
import { LLAMA_FTYPE, quantizable, type TypePicker } from "./quant/llama-quantize-types.ts";

/**
 * fp16 exponents (2^x) of the block scale `d` and min `m` per type, chosen so the dequantized
 * weights are ~0.01-0.1 like a trained model's (a d that is fine for Q8_0 makes K-quant weights,
 * d × 6-bit scale × quant, hundreds of times larger and the model's logits span thousands).
 */
const SCALE_EXP: Record<string, { d: number; m: number }> = {
  Q8_0: { d: -11, m: 0 },
  Q4_0: { d: -7, m: 0 },
  Q4_1: { d: -8, m: -5 },
  Q5_0: { d: -8, m: 0 },
  Q5_1: { d: -9, m: -5 },
  Q4_K: { d: -12, m: -10 },
  Q5_K: { d: -13, m: -10 },
  Q6_K: { d: -14, m: 0 },
};

/** Random blocks of `q` for `elems` elements: random quant bits, fp16 scales sized per type (SCALE_EXP). */
export function randomBlocks(q: QuantType, elems: number, rnd: () => number): Uint8Array {
  const n = elems / q.blockElems;
  const out = new Uint8Array(n * q.blockBytes);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rnd() * 256);
  const exp = SCALE_EXP[q.name]!;
  // sign | exponent field (x + 15, one octave of jitter) | random mantissa
  const scale = (x: number) => (rnd() < 0.5 ? 0x8000 : 0) | ((x + 15 + Math.floor(rnd() * 2)) << 10) | Math.floor(rnd() * 1024);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < n; b++) {
    const at = b * q.blockBytes;
    if (q.name === "Q6_K") dv.setUint16(at + 208, scale(exp.d), true);
    else {
      dv.setUint16(at, scale(exp.d), true);
      if (["Q4_1", "Q5_1", "Q4_K", "Q5_K"].includes(q.name)) dv.setUint16(at + 2, scale(exp.m), true);
    }
  }
  return out;
}

function f32Bytes(x: Float32Array): Uint8Array {
  return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

/**
 * Re-encodes a GGUF file's F32 weights with ggml's reference quantizers (quant/*.ts, what
 * llama-quantize writes without an importance matrix): `pick` names each tensor's type (null =
 * copy unchanged, "F16" = round to nearest even as ggml does; see quant/llama-quantize-types.ts). Metadata is copied, general.file_type set
 * to `fileType` when given. Returns how many tensors got each type.
 */
export function writeQuantizedCopy(srcPath: string, outPath: string, pick: TypePicker, fileType?: number): Record<string, number> {
  const g = readGguf(srcPath);
  const tensors: GgufTensorToWrite[] = [];
  const counts: Record<string, number> = {};
  for (const t of g.tensors.values()) {
    const type = t.dtype === "f32" && !t.quant ? pick({ name: t.name, dims: t.dims }) : null;
    if (type === null) {
      tensors.push({ name: t.name, dims: t.dims, ggmlType: t.ggmlType, data: t.data });
      continue;
    }
    const x = new Float32Array(numel(t.dims));
    new Uint8Array(x.buffer).set(t.data);
    if (type === "F16") tensors.push({ name: t.name, dims: t.dims, ggmlType: 1, data: new Uint8Array(new Float16Array(x).buffer) });
    else tensors.push({ name: t.name, dims: t.dims, ggmlType: quantTypeByName(type)!.ggmlType, data: quantize(type, x) });
    counts[type] = (counts[type] ?? 0) + 1;
  }
  const kvs = metadataToKvs(g.metadata, g.metadataTypes).filter((kv) => fileType === undefined || kv.key !== "general.file_type");
  if (fileType !== undefined) kvs.splice(1, 0, { key: "general.file_type", type: GgufValueType.U32, value: fileType });
  writeFileSync(outPath, serializeGguf(kvs, tensors, g.alignment));
  return counts;
}

/**
 * Every 2-D F32 weight whose rows are whole Q8_0 blocks as Q8_0, the rest kept as they are (F32,
 * where llama-quantize would write F16); returns the quantized and kept tensor counts.
 */
export function writeQ8_0Copy(srcPath: string, outPath: string): { quantized: number; kept: number } {
  const pick: TypePicker = (t) => (quantizable(t) && t.dims[0]! % 32 === 0 ? "Q8_0" : null);
  const counts = writeQuantizedCopy(srcPath, outPath, pick, LLAMA_FTYPE.Q8_0);
  const quantized = counts.Q8_0 ?? 0;
  return { quantized, kept: readGguf(srcPath).tensors.size - quantized };
}

/** Tensor types of the synthetic model, like llama-quantize's Q4_K_M mix plus every other type somewhere. */
export const SYNTHETIC_MIX: Record<string, string> = {
  "token_embd.weight": "Q4_K",
  "output.weight": "Q6_K",
  "attn_q.weight": "Q4_K",
  "attn_k.weight": "Q5_0",
  "attn_v.weight": "Q6_K",
  "attn_output.weight": "Q5_K",
  "ffn_gate.weight": "Q4_0",
  "ffn_up.weight": "Q8_0",
  "ffn_down.weight": "Q4_1",
};

/**
 * A 2-layer Llama (hidden 256, ffn 512, 4 heads, 2 KV heads, stories260K's 512-token vocab and
 * tokenizer) with quantized weights of `mix` types (a key "blk.<l>.<name>" overrides <name> for layer l;
 * layer 1 swaps in Q5_1 for ffn_down so every type
 * appears), written twice: `quantPath` (quantized) and `f32Path` (the same weights dequantized).
 */
export function writeSyntheticQuantLlama(vocabFrom: string, quantPath: string, f32Path: string, seed = 7, mix = SYNTHETIC_MIX): void {
  const vocabSrc = readGguf(vocabFrom);
  const rnd = prng(seed);
  const D = 256,
    F = 512,
    L = 2,
    H = 4,
    HK = 2,
    V = 512;
  const kvs: GgufKv[] = metadataToKvs(new Map([...vocabSrc.metadata].filter(([k]) => k.startsWith("tokenizer."))), vocabSrc.metadataTypes);
  const u32 = (key: string, value: number): GgufKv => ({ key, type: GgufValueType.U32, value });
  kvs.unshift(
    { key: "general.architecture", type: GgufValueType.STRING, value: "llama" },
    { key: "general.name", type: GgufValueType.STRING, value: "synthetic-quant-llama" },
    u32("llama.context_length", 512),
    u32("llama.embedding_length", D),
    u32("llama.block_count", L),
    u32("llama.feed_forward_length", F),
    u32("llama.attention.head_count", H),
    u32("llama.attention.head_count_kv", HK),
    u32("llama.rope.dimension_count", D / H),
    { key: "llama.rope.freq_base", type: GgufValueType.F32, value: 10000 },
    { key: "llama.attention.layer_norm_rms_epsilon", type: GgufValueType.F32, value: 1e-5 },
  );
  const quant: GgufTensorToWrite[] = [];
  const plain: GgufTensorToWrite[] = [];
  const addQuant = (name: string, dims: number[], type: string) => {
    const q = quantTypeByName(type)!;
    const data = randomBlocks(q, dims[0]! * dims[1]!, rnd);
    const f = new Float32Array(dims[0]! * dims[1]!);
    const rb = quantRowBytes(q, dims[0]!);
    for (let r = 0; r < dims[1]!; r++) dequantizeRow(q, data, r * rb, dims[0]!, f, r * dims[0]!);
    quant.push({ name, dims, ggmlType: q.ggmlType, data });
    plain.push({ name, dims, ggmlType: 0, data: f32Bytes(f) });
  };
  const addNorm = (name: string) => {
    const f = Float32Array.from({ length: D }, () => 0.8 + 0.4 * rnd());
    quant.push({ name, dims: [D], ggmlType: 0, data: f32Bytes(f) });
    plain.push({ name, dims: [D], ggmlType: 0, data: f32Bytes(f) });
  };
  addQuant("token_embd.weight", [D, V], mix["token_embd.weight"]!);
  for (let l = 0; l < L; l++) {
    const p = `blk.${l}.`;
    const type = (name: string) => mix[p + name] ?? mix[name]!;
    addNorm(`${p}attn_norm.weight`);
    addQuant(`${p}attn_q.weight`, [D, D], type("attn_q.weight"));
    addQuant(`${p}attn_k.weight`, [D, (D / H) * HK], type("attn_k.weight"));
    addQuant(`${p}attn_v.weight`, [D, (D / H) * HK], type("attn_v.weight"));
    addQuant(`${p}attn_output.weight`, [D, D], type("attn_output.weight"));
    addNorm(`${p}ffn_norm.weight`);
    addQuant(`${p}ffn_gate.weight`, [D, F], type("ffn_gate.weight"));
    addQuant(`${p}ffn_up.weight`, [D, F], type("ffn_up.weight"));
    addQuant(`${p}ffn_down.weight`, [F, D], l === 1 && !mix[`${p}ffn_down.weight`] ? "Q5_1" : type("ffn_down.weight"));
  }
  addNorm("output_norm.weight");
  addQuant("output.weight", [D, V], mix["output.weight"]!);
  writeFileSync(quantPath, serializeGguf(kvs, quant));
  writeFileSync(f32Path, serializeGguf(kvs, plain));
}
