// Fused checkpoint tensors -> the canonical per-projection tensors of a weight set.
// Phi-3 stores q/k/v as one qkv_proj [q + 2 kv, hidden] and gate/up as one gate_up_proj
// [2 inter, hidden] (gate first, as HF's `chunk(2, dim=-1)` and llama.cpp's fused ffn_up);
// row slices of a row-major tensor are contiguous, so each part is a zero-copy view. The
// device layout (weight-layout.ts) fuses every family's q|k|v and gate|up again, so for Phi-3
// the parts land back to back: the device holds the file's fused tensor, run as one matmul.
// Gemma's RMSNorm multiplies by (1 + w): HF checkpoints store w, so their norm weights are
// read with +1 (llama.cpp's converter already stored w + 1 in GGUF files).
import type { ModelConfig } from "./config.ts";
import { ModelFileError } from "./errors.ts";
import { quantRowBytes } from "./quant.ts";
import { DTYPE_BYTES, rowLength, type TensorSource } from "./weights.ts";

/** Splits `t` by rows into consecutive parts [canonical name, rows]. */
export function splitRows(t: TensorSource, parts: [string, number][]): TensorSource[] {
  const total = parts.reduce((a, [, r]) => a + r, 0);
  if (t.shape.length !== 2 || t.shape[0] !== total) {
    throw new ModelFileError(
      t.file,
      `shape [${t.shape.join(", ")}] cannot be split into ${parts.map(([n, r]) => `${n} (${r} rows)`).join(" + ")}`,
      t.fileName,
    );
  }
  if (!t.data || t.rowPerm) throw new ModelFileError(t.file, "a fused tensor must be a plain file tensor", t.fileName);
  // a quantized row is whole blocks, so row slices stay contiguous and block-aligned
  const rowBytes = t.quant ? quantRowBytes(t.quant, rowLength(t.shape)) : rowLength(t.shape) * DTYPE_BYTES[t.dtype];
  const out: TensorSource[] = [];
  let at = 0;
  for (const [name, rows] of parts) {
    out.push({ ...t, name, shape: [rows, t.shape[1]!], data: t.data.subarray(at * rowBytes, (at + rows) * rowBytes) });
    at += rows;
  }
  return out;
}

/** Replaces each fused tensor of `tensors` (canonical names) by its parts, per layer. */
export function unfuse(tensors: Map<string, TensorSource>, fused: string, parts: (layerPrefix: string) => [string, number][]): void {
  for (const [name, t] of [...tensors]) {
    const m = /^(model\.layers\.\d+\.)(.+)$/.exec(name);
    if (!m || m[2] !== fused) continue;
    tensors.delete(name);
    for (const p of splitRows(t, parts(m[1]!))) tensors.set(p.name, p);
  }
}

/** Phi-3's fused qkv_proj and gate_up_proj split into the Llama tensors (HF folders and GGUF alike). */
export function unfusePhi3(config: ModelConfig, tensors: Map<string, TensorSource>): void {
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const I = config.intermediateSize;
  unfuse(tensors, "self_attn.qkv_proj.weight", (p) => [
    [`${p}self_attn.q_proj.weight`, q],
    [`${p}self_attn.k_proj.weight`, kv],
    [`${p}self_attn.v_proj.weight`, kv],
  ]);
  unfuse(tensors, "mlp.gate_up_proj.weight", (p) => [
    [`${p}mlp.gate_proj.weight`, I],
    [`${p}mlp.up_proj.weight`, I],
  ]);
}

/** Gemma HF checkpoints: every RMSNorm weight is applied as (1 + w). */
export function markGemmaNorms(tensors: Map<string, TensorSource>): void {
  for (const [name, t] of tensors) if (name.endsWith("norm.weight")) t.addOne = true;
}
