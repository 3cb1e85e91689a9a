/*
 * Internal: GGUF (ggml) block-quantized weight formats, kept on the device exactly as the
 * file stores them. One weight row of k elements is k / block_elems blocks of block_bytes.
 * The layouts and the dequantization rule follow ggml (ggml-common.h, ggml-quants.c), so a
 * tensor read from a GGUF file needs no conversion; hr_quant_dequantize_row is the scalar
 * reference every kernel (CPU and CUDA) is tested against.
 */
#ifndef HR_CORE_QUANT_H
#define HR_CORE_QUANT_H

#include <stdint.h>

#include "../include/headroom.h"

typedef struct {
  int64_t qtype;       /* HR_QTYPE_* */
  const char *name;    /* "Q4_K" */
  int64_t block_elems; /* 32 or 256 */
  int64_t block_bytes;
} hr_quant_info;

/* NULL when qtype is not a supported quantized type. */
const hr_quant_info *hr_quant_lookup(int64_t qtype);
static inline int hr_is_qtype(int64_t t) { return t > HR_QTYPE_BASE && hr_quant_lookup(t) != 0; }

/* Dequantizes one row of k elements (k a multiple of the block size) into fp32. */
void hr_quant_dequantize_row(int64_t qtype, const void *src, float *dst, int64_t k);

float hr_half_to_float(uint16_t h);

#endif
