// ggml's reference quantizers (what llama-quantize writes without an importance matrix), by type name.
import { quantizeQ4_K, quantizeQ5_K, quantizeQ6_K } from "./k-quants.ts";
import { quantizeQ4_0, quantizeQ4_1, quantizeQ5_0, quantizeQ5_1, quantizeQ8_0 } from "./legacy.ts";

export { quantizeQ4_0, quantizeQ4_1, quantizeQ5_0, quantizeQ5_1, quantizeQ8_0, quantizeQ4_K, quantizeQ5_K, quantizeQ6_K };

export const QUANTIZERS: Record<string, (x: Float32Array) => Uint8Array> = {
  Q4_0: quantizeQ4_0,
  Q4_1: quantizeQ4_1,
  Q5_0: quantizeQ5_0,
  Q5_1: quantizeQ5_1,
  Q8_0: quantizeQ8_0,
  Q4_K: quantizeQ4_K,
  Q5_K: quantizeQ5_K,
  Q6_K: quantizeQ6_K,
};

/** Quantizes whole blocks of `x` as `type` (a name of src/model/quant.ts), row-major rows concatenated. */
export function quantize(type: string, x: Float32Array): Uint8Array {
  const q = QUANTIZERS[type];
  if (!q) throw new Error(`no reference quantizer for ${type}`);
  return q(x);
}
