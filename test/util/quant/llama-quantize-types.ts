// Which type llama-quantize gives each tensor (llama.cpp src/llama-quant.cpp, no importance
// matrix, no overrides), for the Llama layout the tests write. Two modes:
//  - `pure(type)`: every quantizable weight as `type` (llama-quantize --pure);
//  - `Q4_K_M`: the mixture of llama_tensor_get_type_impl for LLAMA_FTYPE_MOSTLY_Q4_K_M.
// Shapes a type cannot hold take tensor_type_fallback's route: Q4_K -> Q5_0, Q5_K -> Q5_1,
// Q6_K -> Q8_0, and F16 for a row that fits no block (stories260K's 172-wide ffn_down).
import { quantTypeByName } from "../../../src/model/quant.ts";

export interface TensorInfo {
  name: string;
  /** ne[], innermost (row length) first. */
  dims: readonly number[];
}

/** A tensor's target type name (a quantized type of src/model/quant.ts or "F16"), or null to copy it unchanged. */
export type TypePicker = (t: TensorInfo) => string | null;

/** tensor_allows_quantization for a dense Llama: 2-D weights, norms excluded. */
export function quantizable(t: TensorInfo): boolean {
  return t.dims.length >= 2 && t.name.endsWith("weight") && !t.name.includes("_norm.weight");
}

const FALLBACK: Record<string, string> = { Q4_K: "Q5_0", Q5_K: "Q5_1", Q6_K: "Q8_0" };

/** tensor_type_fallback: the first of `type` and its fallback whose block divides the row, else F16. */
export function fitType(type: string, rowLen: number): string {
  for (const t of [type, FALLBACK[type]]) {
    if (t && rowLen % quantTypeByName(t)!.blockElems === 0) return t;
  }
  return "F16";
}

export function pure(type: string): TypePicker {
  return (t) => (quantizable(t) ? fitType(type, t.dims[0]!) : null);
}

/** llama_tensor_get_type_impl's use_more_bits: the first and last eighth of the layers and every third between. */
export function useMoreBits(i: number, n: number): boolean {
  return i < Math.trunc(n / 8) || i >= Math.trunc((7 * n) / 8) || (i - Math.trunc(n / 8)) % 3 === 2;
}

/**
 * LLAMA_FTYPE_MOSTLY_Q4_K_M for a dense, untied Llama with `nLayers` layers (one attn_v and one
 * ffn_down per layer, in layer order as llama-quantize counts them): output.weight Q6_K,
 * attn_v and ffn_down Q6_K on the layers useMoreBits picks, every other weight Q4_K.
 */
export function q4KM(nLayers: number): TypePicker {
  return (t) => {
    if (!quantizable(t)) return null;
    const layer = /^blk\.(\d+)\./.exec(t.name);
    const i = layer ? Number(layer[1]) : -1;
    let type = "Q4_K";
    if (t.name === "output.weight") type = t.dims[0]! % 256 === 0 ? "Q6_K" : "Q8_0";
    else if ((t.name.endsWith("attn_v.weight") || t.name.endsWith("ffn_down.weight")) && useMoreBits(i, nLayers)) type = "Q6_K";
    return fitType(type, t.dims[0]!);
  };
}

/** llama_ftype values written as general.file_type (llama.h). */
export const LLAMA_FTYPE: Record<string, number> = {
  Q4_0: 2,
  Q4_1: 3,
  Q8_0: 7,
  Q5_0: 8,
  Q5_1: 9,
  Q4_K_S: 14,
  Q4_K_M: 15,
  Q5_K_S: 16,
  Q6_K: 18,
};
