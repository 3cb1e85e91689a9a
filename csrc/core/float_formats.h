/*
 * Internal: the small float formats a KV cache may be stored in (headroom.h "KV cache dtype"):
 * IEEE half (f16), bfloat16, OCP FP8 E4M3 ("e4m3fn": no infinities, max 448, NaN = S.1111.111)
 * and OCP FP8 E5M2 (IEEE-like, max 57344). The scalar functions here are the reference rule
 * every kernel (CPU SIMD paths, CUDA) is tested against:
 *   f32 -> format: round to nearest, ties to even, on the exact value (integer arithmetic, so
 *   independent of the FP environment); f16/bf16 overflow to +-inf; fp8 saturates to the finite
 *   max (+-inf included, like CUDA's __NV_SATFINITE); NaN stays NaN (sign kept, quiet).
 *   format -> f32: exact.
 */
#ifndef HR_CORE_FLOAT_FORMATS_H
#define HR_CORE_FLOAT_FORMATS_H

#include <stdint.h>

uint16_t hr_f32_to_f16(float x);
uint16_t hr_f32_to_bf16(float x);
uint8_t hr_f32_to_e4m3(float x);
uint8_t hr_f32_to_e5m2(float x);
float hr_f16_to_f32(uint16_t h);
float hr_bf16_to_f32(uint16_t h);
float hr_e4m3_to_f32(uint8_t b);
float hr_e5m2_to_f32(uint8_t b);

/* Bytes per element of a KV dtype (HR_DTYPE_*): 4, 2, 2, 1, 1; 0 for an unknown code. */
int64_t hr_kv_elem_bytes(int64_t kv_dtype);
/* dst[i] = src[i] / scale stored as kv_dtype (the division in f32, then the rule above). */
void hr_kv_store_row(int64_t kv_dtype, void *dst, const float *src, int64_t n, float scale);
/* dst[i] = element i of src (kv_dtype) as f32, unscaled. */
void hr_kv_load_row(int64_t kv_dtype, float *dst, const void *src, int64_t n);
/* The 256 f32 values of an fp8 format (HR_DTYPE_FP8_E4M3/E5M2), for table lookups. */
const float *hr_fp8_table(int64_t kv_dtype);

#endif
