/*
 * Internal: GGUF weight rows unpacked for the int8 dot-product matmul (matmul_q8.c).
 *
 * Every block type is rewritten as one byte per weight plus a scale and an offset per 16
 * weights:  w[i] = sw[i / 16] * q[i] + mw[i / 16].  q is unsigned (0..63) for every type
 * but Q8_0, whose q stays signed int8 (and mw = 0); the subtracted zero point of Q4_0/Q5_0/
 * Q6_K and the min of Q4_1/Q5_1/Q4_K/Q5_K become mw. One kernel then serves all eight
 * types: sum_i w[i] x[i] = sum_g sw[g] * dot16(q, xq) * dx[g] + sum_g mw[g] * dx[g] * sum16(xq).
 * Exact: sw and mw are products of an fp16 and a small integer, so they are exact in fp32.
 */
#ifndef HR_CPU_QUANT_UNPACK_H
#define HR_CPU_QUANT_UNPACK_H

#include <stdint.h>

/* Unpacks nblocks blocks (nblocks * block_elems weights) into q, sw, mw (block_elems / 16 each). */
typedef void (*hr_qunpack_fn)(const uint8_t *src, int64_t nblocks, uint8_t *q, float *sw, float *mw);

typedef struct {
  hr_qunpack_fn unpack;
  int signed_q;   /* q is int8 (Q8_0), else uint8 */
  int has_offset; /* some mw may be nonzero */
} hr_qunpack_info;

/* NULL when qtype is not a supported quantized type. */
const hr_qunpack_info *hr_qunpack_lookup(int64_t qtype);

#endif
