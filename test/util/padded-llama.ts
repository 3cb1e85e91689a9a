// A trained Llama widened with zeros so that every weight row is a whole number of 256-element
// K-quant super-blocks, computing the same function: stories260K (hidden 64, ffn 172, 8 heads of
// 8, 4 KV heads) becomes hidden 256, ffn 256, 32 heads of 8, 16 KV heads. The only small models
// with K-quant-compatible shapes are random ones, whose greedy paths are full of near-ties; this
// one keeps a real model's well-separated continuations (and its published story).
//
// Why it is the same model: the padded hidden dimensions are zero in the embedding and in every
// weight's output rows, so they stay zero through the residual stream. RMSNorm averages over 4x
// the dimensions (mean square / 4); the norm weights are halved and epsilon quartered to give
// exactly x / sqrt(ms + eps) * w again. Added heads have zero q, k and v rows (uniform attention
// over zero values: zero output) and added FFN rows give silu(0) * 0 = 0. Head dim and RoPE dims
// stay 8 (attention.key_length/value_length written). Only fp32 summation orders change.
import { writeFileSync } from "node:fs";

import { GgufValueType, metadataToKvs, readGguf, serializeGguf, type GgufKv, type GgufTensorToWrite } from "../../src/model/gguf.ts";

export interface PaddedShape {
  hidden: number;
  ffn: number;
  heads: number;
  kvHeads: number;
}

export const STORIES_K_QUANT_SHAPE: PaddedShape = { hidden: 256, ffn: 256, heads: 32, kvHeads: 16 };

/** Copies a [rows, cols] F32 matrix (cols innermost) into the top-left corner of a zero [rows2, cols2] one, times `scale`. */
function pad(data: Uint8Array, cols: number, rows: number, cols2: number, rows2: number, scale = 1): Uint8Array {
  const src = new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const out = new Float32Array(rows2 * cols2);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols2 + c] = src[r * cols + c]! * scale;
  return new Uint8Array(out.buffer);
}

/** Writes the zero-padded copy of an F32 Llama GGUF (dense, untied or tied, no biases). */
export function writePaddedLlama(srcPath: string, outPath: string, to: PaddedShape = STORIES_K_QUANT_SHAPE): void {
  const g = readGguf(srcPath);
  const num = (k: string) => Number(g.metadata.get(`llama.${k}`));
  const H = num("embedding_length");
  const F = num("feed_forward_length");
  const nh = num("attention.head_count");
  const nkv = num("attention.head_count_kv");
  const hd = H / nh;
  if (to.hidden < H || to.ffn < F || to.heads < nh || to.kvHeads * (nh / nkv) !== to.heads)
    throw new Error("the padded shape must be at least as large and keep the GQA ratio");
  const q2 = to.heads * hd;
  const kv2 = to.kvHeads * hd;
  // [ne0 (input), ne1 (output)] of each tensor before and after.
  const shapes: Record<string, [number, number, number, number]> = {
    "token_embd.weight": [H, 0, to.hidden, 0],
    "output.weight": [H, 0, to.hidden, 0],
    attn_q: [H, nh * hd, to.hidden, q2],
    attn_k: [H, nkv * hd, to.hidden, kv2],
    attn_v: [H, nkv * hd, to.hidden, kv2],
    attn_output: [nh * hd, H, q2, to.hidden],
    ffn_gate: [H, F, to.hidden, to.ffn],
    ffn_up: [H, F, to.hidden, to.ffn],
    ffn_down: [F, H, to.ffn, to.hidden],
  };
  const tensors: GgufTensorToWrite[] = [];
  for (const t of g.tensors.values()) {
    if (t.ggmlType !== 0) throw new Error(`${t.name}: only F32 sources`);
    if (t.dims.length === 1) {
      // RMSNorm weights: halve for 4x the averaged dimensions (sqrt(H2 / H) in general).
      tensors.push({ name: t.name, dims: [to.hidden], ggmlType: 0, data: pad(t.data, H, 1, to.hidden, 1, Math.sqrt(H / to.hidden)) });
      continue;
    }
    const key = t.name.startsWith("blk.") ? t.name.split(".")[2]! : t.name;
    const s = shapes[key];
    if (!s) throw new Error(`${t.name}: no padding rule`);
    const [c, r, c2, r2] = [s[0], s[1] || t.dims[1]!, s[2], s[3] || t.dims[1]!];
    tensors.push({ name: t.name, dims: [c2, r2], ggmlType: 0, data: pad(t.data, c, r, c2, r2) });
  }
  const set = new Map<string, GgufKv>();
  const u32 = (key: string, value: number) => set.set(key, { key, type: GgufValueType.U32, value });
  u32("llama.embedding_length", to.hidden);
  u32("llama.feed_forward_length", to.ffn);
  u32("llama.attention.head_count", to.heads);
  u32("llama.attention.head_count_kv", to.kvHeads);
  u32("llama.attention.key_length", hd);
  u32("llama.attention.value_length", hd);
  const eps = Number(g.metadata.get("llama.attention.layer_norm_rms_epsilon"));
  set.set("llama.attention.layer_norm_rms_epsilon", {
    key: "llama.attention.layer_norm_rms_epsilon",
    type: GgufValueType.F32,
    value: (eps * H) / to.hidden,
  });
  const kvs = metadataToKvs(g.metadata, g.metadataTypes).map((kv) => set.get(kv.key) ?? kv);
  for (const [k, kv] of set) if (!g.metadata.has(k)) kvs.push(kv);
  writeFileSync(outPath, serializeGguf(kvs, tensors, g.alignment));
}
