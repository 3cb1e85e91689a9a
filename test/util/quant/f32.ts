// Single-precision arithmetic as ggml's C quantizers do it. Every +, -, *, / and sqrt of two fp32
// values computed in float64 and rounded once with Math.fround is the correctly rounded fp32
// result, so wrapping each C operation in `f(...)` reproduces the C code bit for bit — provided
// the C side does not contract a*b+c into a fused multiply-add (the libggml-base.so node-llama-cpp
// ships has no FMA instructions; test/util/quant.test.ts checks the outcome byte for byte).

export const f = Math.fround;

/** ggml-quants.c nearest_int: fval + 1.5·2^23 in fp32 rounds to the nearest integer, ties to even. */
export function nearestInt(fval: number): number {
  return f(fval + 12582912) - 12582912;
}

const half = new Float16Array(1);
const halfBits = new Uint16Array(half.buffer);

/** GGML_FP32_TO_FP16 (round to nearest even, subnormals kept) as raw bits. */
export function toHalfBits(x: number): number {
  half[0] = x;
  return halfBits[0]!;
}

/** GGML_FP16_TO_FP32(GGML_FP32_TO_FP16(x)): the value a stored fp16 scale really has. */
export function roundHalf(x: number): number {
  half[0] = x;
  return half[0]!;
}

/** ggml's GROUP_MAX_EPS (1e-15f): below it a group counts as all zeros. */
export const GROUP_MAX_EPS = f(1e-15);
