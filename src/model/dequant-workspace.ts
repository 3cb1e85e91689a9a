// The dequantization workspace of quantized matmuls on CUDA (hr_op_matmul_q_ws): prefill-sized
// matmuls (more than MATMUL_Q_GEMM_MIN_M rows) dequantize chunks of weight rows into it, in the
// compute dtype, and run the tensor-core GEMM. One arena buffer serves every layer (ops run in
// stream order); it holds the largest quantized matrix of the layout (fused tensors as fused)
// up to a cap, beyond which the kernel simply runs more, still large, chunks. The CPU backend
// dequantizes panels in cache and needs none.
import { MATMUL_Q_GEMM_MIN_M } from "../native/ops.ts";
import type { BatchLimits } from "./arena.ts";
import type { ModelConfig } from "./config.ts";
import { QTYPE_BASE, weightLayout, type QuantizedTensors } from "./weight-layout.ts";

/** Largest workspace: 64 MiB is 32 Mi bf16 weights, e.g. 8192 rows of k = 4096 per GEMM. */
export const DEQUANT_WORKSPACE_CAP = 64 * 2 ** 20;

export function dequantWorkspaceBytes(
  cfg: ModelConfig,
  elemBytes: number,
  quantized: QuantizedTensors | undefined,
  limits: BatchLimits,
  backend: string,
): number {
  if (backend !== "cuda" || !quantized || quantized.size === 0) return 0;
  // matmuls see up to maxTokens rows, logits up to maxSeqs: never above the threshold -> unused
  if (Math.max(limits.maxTokens, limits.maxSeqs) <= MATMUL_Q_GEMM_MIN_M) return 0;
  let largest = 0;
  let maxRow = 0;
  for (const buf of weightLayout(cfg, elemBytes, quantized)) {
    for (const t of buf.tensors) {
      const code = quantized.get(t.parts ? t.parts[0]!.name : t.name)?.code ?? 0;
      if (t.shape.length !== 2 || code < QTYPE_BASE) continue; // block-quantized matrices only
      largest = Math.max(largest, t.shape[0]! * t.shape[1]! * elemBytes);
      maxRow = Math.max(maxRow, t.shape[1]! * elemBytes);
    }
  }
  return largest === 0 ? 0 : Math.min(largest, Math.max(DEQUANT_WORKSPACE_CAP, maxRow));
}
