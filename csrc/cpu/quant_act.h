/*
 * Internal: activation rows quantized to int8 exactly as ggml's CPU backend does for the weight
 * type's vec_dot_type (ggml-cpu/arch/x86/quants.c, ggml-quants.c), so a quantized model's
 * matmuls see the same int8 activations as llama.cpp on the same file:
 *   q8_0 (Q4_0, Q5_0, Q8_0 weights), blocks of 32: amax = max |x|, d = amax / 127 stored as fp16,
 *        q = round-half-even(x * (127 / amax)) (the AVX path: 127/amax, not 1/d).
 *   q8_1 (Q4_1, Q5_1): q8_0's d and q, plus s = fp16(d * sum(q)) with the fp32 d.
 *   q8_K (K-quants), blocks of 256: max = the first element of largest |x| (with its sign),
 *        iscale = -127 / max, q = min(127, nearest_int(iscale * x)), d = 1 / iscale (fp32, so
 *        negative when max is positive), bsums = sums of 16.
 * The matmul layout of one row: q[k] int8; per 16 elements the block scale d16 (fp32 value of
 * the stored scale), s16 (the operand of the weight offsets: d16 * sum16(q) for q8_0/q8_K; for
 * q8_1 the block's s at the first 16 and 0 at the second, so offset * s matches ggml's m * s) and
 * b16 (the integer sum of the 16 q).
 */
#ifndef HR_CPU_QUANT_ACT_H
#define HR_CPU_QUANT_ACT_H

#include <stdint.h>

enum { HR_ACT_Q8_0 = 0, HR_ACT_Q8_1 = 1, HR_ACT_Q8_K = 2 };

/* The activation format ggml pairs with weight type qtype (HR_QTYPE_*); -1 for none. */
int hr_act_kind(int64_t qtype);
/* Elements per activation block: 32, or 256 for q8_K. */
int64_t hr_act_block(int kind);
/* Quantizes k elements (a multiple of the block) into the matmul layout above. */
void hr_act_quantize_row(int kind, const float *x, int64_t k, int8_t *q, float *d16, float *s16, int16_t *b16);
/* The same row as ggml's block bytes (block_q8_0 {f16 d; i8 qs[32]}, block_q8_1 {f16 d, s; i8
 * qs[32]}, block_q8_K {f32 d; i8 qs[256]; i16 bsums[16]}); returns the bytes written. For tests. */
int64_t hr_act_quantize_ggml(int kind, const float *x, int64_t k, void *out);

#endif
