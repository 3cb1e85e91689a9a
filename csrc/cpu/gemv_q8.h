/*
 * Internal: the small-M (decode) quantized matmul kernels. One call computes the dots of one
 * weight row, read straight from its GGUF blocks (nibbles and high bits unpacked in registers),
 * with R = 1..4 quantized activation rows (quant_act.h layout). Integer sums are accumulated per
 * block with the sub-block scales applied as integers (ggml's vec_dot_*_q8_* scheme) and the
 * block's fp32 scale applied once, so there is no unpacked scratch and no per-16 float work.
 */
#ifndef HR_CPU_GEMV_Q8_H
#define HR_CPU_GEMV_Q8_H

#include <stdint.h>

typedef struct {
  const int8_t *q[4];
  const float *d[4], *s[4]; /* per 16 elements */
  const int16_t *b[4];      /* per 16 elements */
} hr_gemv_rows;

/* out[r] = dot(weight row w (nblocks GGUF blocks), activation row r), r < R. */
typedef void (*hr_gemv_fn)(const uint8_t *w, int64_t nblocks, const hr_gemv_rows *x, float *out);

enum { HR_GEMV_AVX2, HR_GEMV_AVX512BW, HR_GEMV_AVXVNNI, HR_GEMV_AVX512VNNI };

/* The kernel for (qtype, ISA variant, R); NULL when there is none (non-x86 builds). */
hr_gemv_fn hr_gemv_q8_lookup(int64_t qtype, int variant, int rows);

#endif
