/*
 * f32 <-> f16 / bf16 / fp8 (E4M3, E5M2): the scalar reference (see float_formats.h).
 * One encoder for all four formats: the f32 value is mant24 * 2^(e - 23) exactly; it is
 * rounded to an integer number r of the target's quanta at exponent max(e, emin), ties to
 * even, and the code is ((exponent + bias - 1) << mbits) + r, which covers subnormals, the
 * carry into the next binade and the implicit bit in one expression.
 */
#include "float_formats.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "../include/headroom.h"

static inline uint32_t f32_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  return u;
}
static inline float bits_f32(uint32_t u) {
  float x;
  memcpy(&x, &u, 4);
  return x;
}

/* |x| (finite, as bits without sign) rounded to nearest even in a format with mbits mantissa
 * bits and exponent bias `bias`; returns the unsigned code, unbounded above (the caller
 * saturates or overflows to inf). */
static uint32_t encode_abs(uint32_t a, int mbits, int bias) {
  int E = (int)(a >> 23);
  uint32_t mant24 = E ? (a & 0x7fffffu) | 0x800000u : a & 0x7fffffu;
  int e = E ? E - 127 : -126; /* a = mant24 * 2^(e - 23) */
  if (mant24 == 0) return 0;
  int emin = 1 - bias; /* the format's smallest normal exponent */
  int e8 = e > emin ? e : emin;
  int shift = 23 + e8 - mbits - e; /* >= 23 - mbits > 0 */
  uint32_t r;
  if (shift > 25) {
    r = 0; /* below a quarter quantum: rounds to 0 */
  } else {
    r = mant24 >> shift;
    uint32_t rem = mant24 & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) r++;
  }
  return ((uint32_t)(e8 + bias - 1) << mbits) + r;
}

uint16_t hr_f32_to_f16(float x) {
  uint32_t u = f32_bits(x), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* quiet NaN, payload kept */
  if (a == 0x7f800000u) return (uint16_t)(sign | 0x7c00u);
  uint32_t c = encode_abs(a, 10, 15);
  return (uint16_t)(sign | (c >= 0x7c00u ? 0x7c00u : c)); /* overflow: inf */
}

uint16_t hr_f32_to_bf16(float x) {
  uint32_t u = f32_bits(x), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
  if (a == 0x7f800000u) return (uint16_t)(sign | 0x7f80u);
  uint32_t c = encode_abs(a, 7, 127);
  return (uint16_t)(sign | (c >= 0x7f80u ? 0x7f80u : c));
}

uint8_t hr_f32_to_e4m3(float x) {
  uint32_t u = f32_bits(x), sign = (u >> 24) & 0x80u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint8_t)(sign | 0x7fu);
  if (a == 0x7f800000u) return (uint8_t)(sign | 0x7eu); /* saturate */
  uint32_t c = encode_abs(a, 3, 7);
  return (uint8_t)(sign | (c > 0x7eu ? 0x7eu : c));
}

uint8_t hr_f32_to_e5m2(float x) {
  uint32_t u = f32_bits(x), sign = (u >> 24) & 0x80u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint8_t)(sign | 0x7fu);
  if (a == 0x7f800000u) return (uint8_t)(sign | 0x7bu);
  uint32_t c = encode_abs(a, 2, 15);
  return (uint8_t)(sign | (c > 0x7bu ? 0x7bu : c));
}

/* value of an unsigned code with mbits mantissa bits and bias (finite codes only) */
static float decode_abs(uint32_t c, int mbits, int bias) {
  uint32_t m = c & ((1u << mbits) - 1), E = c >> mbits;
  if (E == 0) return ldexpf((float)m, 1 - bias - mbits);
  return ldexpf((float)((1u << mbits) | m), (int)E - bias - mbits);
}

float hr_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, a = h & 0x7fffu;
  if (a >= 0x7c00u) return bits_f32(sign | 0x7f800000u | ((a & 0x3ffu) << 13)); /* inf / NaN */
  float v = decode_abs(a, 10, 15);
  return sign ? -v : v;
}

float hr_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

float hr_e4m3_to_f32(uint8_t b) {
  uint32_t a = b & 0x7fu;
  if (a == 0x7fu) return bits_f32(((uint32_t)(b & 0x80u) << 24) | 0x7fc00000u);
  float v = decode_abs(a, 3, 7);
  return (b & 0x80u) ? -v : v;
}

float hr_e5m2_to_f32(uint8_t b) {
  /* E5M2 is the top byte of an IEEE half */
  return hr_f16_to_f32((uint16_t)((uint16_t)b << 8));
}

int64_t hr_kv_elem_bytes(int64_t kv_dtype) {
  switch (kv_dtype) {
    case HR_DTYPE_F32: return 4;
    case HR_DTYPE_F16:
    case HR_DTYPE_BF16: return 2;
    case HR_DTYPE_FP8_E4M3:
    case HR_DTYPE_FP8_E5M2: return 1;
    default: return 0;
  }
}

void hr_kv_store_row(int64_t kv_dtype, void *dst, const float *src, int64_t n, float scale) {
  switch (kv_dtype) {
    case HR_DTYPE_F32: {
      float *d = dst;
      if (scale == 1.0f)
        memcpy(d, src, (size_t)n * sizeof(float));
      else
        for (int64_t i = 0; i < n; i++) d[i] = src[i] / scale;
      return;
    }
    case HR_DTYPE_F16: {
      uint16_t *d = dst;
      for (int64_t i = 0; i < n; i++) d[i] = hr_f32_to_f16(src[i] / scale);
      return;
    }
    case HR_DTYPE_BF16: {
      uint16_t *d = dst;
      for (int64_t i = 0; i < n; i++) d[i] = hr_f32_to_bf16(src[i] / scale);
      return;
    }
    case HR_DTYPE_FP8_E4M3: {
      uint8_t *d = dst;
      for (int64_t i = 0; i < n; i++) d[i] = hr_f32_to_e4m3(src[i] / scale);
      return;
    }
    case HR_DTYPE_FP8_E5M2: {
      uint8_t *d = dst;
      for (int64_t i = 0; i < n; i++) d[i] = hr_f32_to_e5m2(src[i] / scale);
      return;
    }
    default: return;
  }
}

static float tables[2][256];
static atomic_int tables_ready;

const float *hr_fp8_table(int64_t kv_dtype) {
  if (!atomic_load_explicit(&tables_ready, memory_order_acquire)) {
    /* idempotent: racing threads write the same values */
    for (int i = 0; i < 256; i++) {
      tables[0][i] = hr_e4m3_to_f32((uint8_t)i);
      tables[1][i] = hr_e5m2_to_f32((uint8_t)i);
    }
    atomic_store_explicit(&tables_ready, 1, memory_order_release);
  }
  return tables[kv_dtype == HR_DTYPE_FP8_E5M2];
}

void hr_kv_load_row(int64_t kv_dtype, float *dst, const void *src, int64_t n) {
  switch (kv_dtype) {
    case HR_DTYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); return;
    case HR_DTYPE_F16: {
      const uint16_t *s = src;
      for (int64_t i = 0; i < n; i++) dst[i] = hr_f16_to_f32(s[i]);
      return;
    }
    case HR_DTYPE_BF16: {
      const uint16_t *s = src;
      for (int64_t i = 0; i < n; i++) dst[i] = hr_bf16_to_f32(s[i]);
      return;
    }
    case HR_DTYPE_FP8_E4M3:
    case HR_DTYPE_FP8_E5M2: {
      const uint8_t *s = src;
      const float *t = hr_fp8_table(kv_dtype);
      for (int64_t i = 0; i < n; i++) dst[i] = t[s[i]];
      return;
    }
    default: return;
  }
}
