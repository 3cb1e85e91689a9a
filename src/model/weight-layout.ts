// Where weights live on the device: one buffer for the tensors used every step (embeddings,
// final norm, LM head: "resident") and one buffer per decoder layer, tensors at 256-byte
// aligned offsets. Few, large, per-layer allocations make the allocator's footprint exactly
// predictable (the planner simulates them) and give weight offload one copy per layer.
import { expectedTensors, type ModelConfig } from "./config.ts";
import { isMatrixWeight, numel } from "./weights.ts";

export const WEIGHT_ALIGN = 256;

export interface WeightBufferLayout {
  /** "resident" or "layer.<i>". */
  name: string;
  layer: number | null;
  bytes: number;
  tensors: { name: string; shape: number[]; offset: number; bytes: number }[];
}

/**
 * Buffers in allocation order: resident first, then layers 0 … L−1. `quantizedBytes` gives the
 * size of tensors kept block-quantized (GGUF): they take the file's bytes, not numel × elemBytes.
 */
export function weightLayout(cfg: ModelConfig, elemBytes: number, quantizedBytes?: ReadonlyMap<string, number>): WeightBufferLayout[] {
  const resident: WeightBufferLayout = { name: "resident", layer: null, bytes: 0, tensors: [] };
  const layers: WeightBufferLayout[] = Array.from({ length: cfg.numLayers }, (_, i) => ({
    name: `layer.${i}`,
    layer: i,
    bytes: 0,
    tensors: [],
  }));
  for (const [name, shape] of expectedTensors(cfg)) {
    const m = /^model\.layers\.(\d+)\./.exec(name);
    const buf = m ? layers[Number(m[1])]! : resident;
    const bytes = quantizedBytes?.get(name) ?? numel(shape) * elemBytes;
    buf.tensors.push({ name, shape, offset: buf.bytes, bytes });
    buf.bytes += Math.ceil(Math.max(bytes, 1) / WEIGHT_ALIGN) * WEIGHT_ALIGN;
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
  quantizedBytes?: ReadonlyMap<string, number>,
): Map<string, number> {
  const m = new Map<string, number>(quantizedBytes ?? []);
  if (weightElemBytes === computeElemBytes) return m;
  for (const [name, shape] of expectedTensors(cfg)) if (isMatrixWeight(name) && !m.has(name)) m.set(name, numel(shape) * weightElemBytes);
  return m;
}
