// Where weights live on the device: one buffer for the tensors used every step (embeddings,
// final norm, LM head: "resident") and one buffer per decoder layer, tensors at 256-byte
// aligned offsets. Few, large, per-layer allocations make the allocator's footprint exactly
// predictable (the planner simulates them) and give weight offload one copy per layer.
//
// Fused projections: within a layer, q|k|v (and their biases) and gate|up are laid out as one
// row-concatenated tensor each (self_attn.qkv_proj.*, mlp.gate_up_proj.weight), so the forward
// pass runs one matmul for each group. Rows of a weight are independent (a quantized row is
// whole blocks), so concatenating rows is exact; only parts of one storage type can share a
// matmul, so a layer whose parts differ (Q4_K_M stores attn_v as Q6_K on some layers) keeps
// them apart. The canonical per-projection tensors are row ranges (`parts`) of the fused one.
import { expectedTensors, type ModelConfig } from "./config.ts";
import { isMatrixWeight, numel } from "./weights.ts";

export const WEIGHT_ALIGN = 256;

/**
 * Tensors not stored as numel × compute element size, by canonical name: device bytes and a
 * storage code — the HR_QTYPE_* (>= HR_QTYPE_BASE, 100) of a tensor kept block-quantized (GGUF,
 * the file's bytes), or the element size of a plain matrix stored narrower (16-bit on CPU).
 * Tensors absent from the map are plain in the compute dtype (storage code 0).
 */
export type StoredTensors = ReadonlyMap<string, { bytes: number; code: number }>;
/** The block-quantized tensors alone (weights.ts quantizedTensors): codes are HR_QTYPE_*. */
export type QuantizedTensors = StoredTensors;
/** Storage codes of HR_QTYPE_* start here (headroom.h HR_QTYPE_BASE). */
export const QTYPE_BASE = 100;

export interface LayoutPart {
  /** Canonical tensor name (what the weight set holds). */
  name: string;
  shape: number[];
  /** Byte offset inside the fused tensor. */
  offset: number;
  bytes: number;
}

export interface LayoutTensor {
  name: string;
  shape: number[];
  /** Byte offset inside the buffer. */
  offset: number;
  bytes: number;
  /** A fused tensor: the canonical tensors it concatenates by rows, in order. */
  parts?: LayoutPart[];
}

export interface WeightBufferLayout {
  /** "resident" or "layer.<i>". */
  name: string;
  layer: number | null;
  bytes: number;
  tensors: LayoutTensor[];
}

/** Fused groups of a decoder layer: fused name suffix -> canonical part suffixes (row order). */
export const FUSED_GROUPS: readonly { fused: string; parts: readonly string[]; follows?: string }[] = [
  { fused: "self_attn.qkv_proj.weight", parts: ["self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"] },
  // The biases are fused exactly when their weights are (one matmul adds one bias vector).
  {
    fused: "self_attn.qkv_proj.bias",
    parts: ["self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"],
    follows: "self_attn.qkv_proj.weight",
  },
  { fused: "mlp.gate_up_proj.weight", parts: ["mlp.gate_proj.weight", "mlp.up_proj.weight"] },
];

/**
 * Whether layer tensors `parts` (full names) can be one fused tensor: all present and of one
 * storage type (all plain — converted to the compute dtype — or all of one quantized type).
 */
function sameStorage(parts: string[], present: ReadonlyMap<string, number[]>, quantized?: StoredTensors): boolean {
  if (!parts.every((n) => present.has(n))) return false;
  const code = (n: string) => quantized?.get(n)?.code ?? 0;
  return parts.every((n) => code(n) === code(parts[0]!));
}

/**
 * Buffers in allocation order: resident first, then layers 0 … L−1. `quantized` (storedWeightBytes)
 * gives the size and storage type of tensors not stored in the compute dtype (block-quantized:
 * the file's bytes; 16-bit matrices on CPU); storage types decide which groups can fuse. `fuse`
 * false lays every projection out on its own (tests and benchmarks compare the two; the engine
 * and the planner always fuse).
 */
export function weightLayout(cfg: ModelConfig, elemBytes: number, quantized?: StoredTensors, fuse = true): WeightBufferLayout[] {
  const resident: WeightBufferLayout = { name: "resident", layer: null, bytes: 0, tensors: [] };
  const layers: WeightBufferLayout[] = Array.from({ length: cfg.numLayers }, (_, i) => ({
    name: `layer.${i}`,
    layer: i,
    bytes: 0,
    tensors: [],
  }));
  const expected = expectedTensors(cfg);
  const sizeOf = (name: string) => quantized?.get(name)?.bytes ?? numel(expected.get(name)!) * elemBytes;
  const place = (buf: WeightBufferLayout, t: Omit<LayoutTensor, "offset">) => {
    buf.tensors.push({ ...t, offset: buf.bytes });
    buf.bytes += Math.ceil(Math.max(t.bytes, 1) / WEIGHT_ALIGN) * WEIGHT_ALIGN;
  };
  // Per layer: the fused groups that apply (by fused suffix), decided before placing anything.
  const fusedIn = (prefix: string) => {
    const on = new Set<string>();
    if (!fuse) return on;
    for (const g of FUSED_GROUPS) {
      const parts = g.parts.map((s) => prefix + s);
      if (g.follows && !on.has(g.follows)) continue;
      if (sameStorage(parts, expected, quantized)) on.add(g.fused);
    }
    return on;
  };
  let currentLayer = -1;
  let on = new Set<string>();
  for (const [name, shape] of expected) {
    const m = /^(model\.layers\.(\d+)\.)(.+)$/.exec(name);
    if (!m) {
      place(resident, { name, shape, bytes: sizeOf(name) });
      continue;
    }
    const [, prefix, layerStr, suffix] = m as unknown as [string, string, string, string];
    const buf = layers[Number(layerStr)]!;
    if (Number(layerStr) !== currentLayer) {
      currentLayer = Number(layerStr);
      on = fusedIn(prefix);
    }
    const g = FUSED_GROUPS.find((f) => on.has(f.fused) && f.parts.includes(suffix));
    if (!g) {
      place(buf, { name, shape, bytes: sizeOf(name) });
      continue;
    }
    if (suffix !== g.parts[0]) continue; // placed with the group's first part
    const parts: LayoutPart[] = [];
    let at = 0;
    for (const s of g.parts) {
      const pn = prefix + s;
      const bytes = sizeOf(pn);
      parts.push({ name: pn, shape: expected.get(pn)!, offset: at, bytes });
      at += bytes;
    }
    const rows = parts.reduce((a, p) => a + p.shape[0]!, 0);
    place(buf, { name: prefix + g.fused, shape: [rows, ...shape.slice(1)], bytes: at, parts });
  }
  return [resident, ...layers];
}

/**
 * Per-tensor byte sizes that differ from numel × compute element size, for weightLayout: the
 * quantized tensors at their file size, and — when the weight dtype is narrower than the compute
 * dtype (CPU, --dtype bfloat16/float16) — every other matrix weight at numel × weightElemBytes.
 */
export function storedWeightBytes(
  cfg: ModelConfig,
  computeElemBytes: number,
  weightElemBytes: number,
  quantized?: QuantizedTensors,
): Map<string, { bytes: number; code: number }> {
  const m = new Map<string, { bytes: number; code: number }>(quantized ?? []);
  if (weightElemBytes === computeElemBytes) return m;
  for (const [name, shape] of expectedTensors(cfg))
    if (isMatrixWeight(name) && !m.has(name)) m.set(name, { bytes: numel(shape) * weightElemBytes, code: weightElemBytes });
  return m;
}
