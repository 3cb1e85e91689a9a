/*
 * The K/V write's conversion f32 -> KV dtype (f32 / f16 / bf16 / fp8 E4M3 / fp8 E5M2), vectorized.
 * Bit-identical to the scalar reference in core/float_formats.c (hr_kv_store_row): the same
 * division by the scale in f32, then the same integer rounding rule, lane by lane:
 *   a = |x| as bits; Eb = max(biased exponent, 1); mant = 24-bit significand (implicit bit iff E > 0)
 *   shift = 23 - mbits + max(0, (1 - bias) - (Eb - 127))       (subnormal targets shift further)
 *   r = round-to-nearest-even(mant >> shift)                   (shift clamped to 31: r = 0)
 *   code = (max(Eb - 128 + bias, 0) << mbits) + r, then min(code, cap)
 * cap is the infinity code for f16/bf16 (overflow -> inf) and the max finite code for fp8
 * (saturation; infinities included). NaN inputs take the reference's NaN codes. Hardware
 * converters are not used on purpose: vcvtneps2bf16 flushes subnormal inputs to zero.
 * Tails (n not a multiple of the vector width) use the scalar reference itself.
 */
#include <string.h>

#include "../core/float_formats.h"
#include "../include/headroom.h"
#include "ops_cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#define HR_X86 1
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx2,fma")))
#define T256 __attribute__((target("avx2,fma")))
#endif

typedef struct {
  int mbits, bias, bytes; /* target mantissa bits, exponent bias, bytes per element */
  uint32_t cap;           /* codes above it become it (inf for f16/bf16, max finite for fp8) */
  int nan_kind;           /* 0: f16 (0x7e00 | payload >> 13), 1: bf16 ((u >> 16) | 0x40), 2: fp8 (0x7f) */
} kv_fmt;

static const kv_fmt FMT_F16 = {10, 15, 2, 0x7c00u, 0};
static const kv_fmt FMT_BF16 = {7, 127, 2, 0x7f80u, 1};
static const kv_fmt FMT_E4M3 = {3, 7, 1, 0x7eu, 2};
static const kv_fmt FMT_E5M2 = {2, 15, 1, 0x7bu, 2};

static void store_scalar(int64_t dt, void *dst, const float *src, int64_t n, float scale) {
  hr_kv_store_row(dt, dst, src, n, scale);
}

#ifdef HR_X86
/* ---- AVX-512: 16 lanes ---- */
T512 static inline __m512i encode512(__m512 x, const kv_fmt *f) {
  __m512i u = _mm512_castps_si512(x);
  __m512i a = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
  __m512i E = _mm512_srli_epi32(a, 23);
  __mmask16 normal = _mm512_cmpneq_epi32_mask(E, _mm512_setzero_si512());
  __m512i mant = _mm512_mask_or_epi32(_mm512_and_si512(a, _mm512_set1_epi32(0x7fffff)), normal,
                                      _mm512_and_si512(a, _mm512_set1_epi32(0x7fffff)), _mm512_set1_epi32(0x800000));
  __m512i Eb = _mm512_max_epi32(E, _mm512_set1_epi32(1));
  /* extra shift for targets' subnormals: max(0, (1 - bias) - (Eb - 127)) = max(0, 128 - bias - Eb) */
  __m512i extra = _mm512_max_epi32(_mm512_sub_epi32(_mm512_set1_epi32(128 - f->bias), Eb), _mm512_setzero_si512());
  __m512i shift = _mm512_min_epi32(_mm512_add_epi32(extra, _mm512_set1_epi32(23 - f->mbits)), _mm512_set1_epi32(31));
  __m512i one = _mm512_set1_epi32(1);
  __m512i half_m1 = _mm512_sub_epi32(_mm512_sllv_epi32(one, _mm512_sub_epi32(shift, one)), one);
  __m512i odd = _mm512_and_si512(_mm512_srlv_epi32(mant, shift), one);
  __m512i r = _mm512_srlv_epi32(_mm512_add_epi32(_mm512_add_epi32(mant, half_m1), odd), shift);
  __m512i ex = _mm512_max_epi32(_mm512_add_epi32(Eb, _mm512_set1_epi32(f->bias - 128)), _mm512_setzero_si512());
  __m512i code = _mm512_add_epi32(_mm512_sllv_epi32(ex, _mm512_set1_epi32(f->mbits)), r);
  code = _mm512_min_epu32(code, _mm512_set1_epi32((int)f->cap));
  int sign_shift = 32 - 8 * f->bytes;
  __m512i sign =
      _mm512_srlv_epi32(_mm512_andnot_si512(_mm512_set1_epi32(0x7fffffff), u), _mm512_set1_epi32(sign_shift));
  __mmask16 nan = _mm512_cmpgt_epu32_mask(a, _mm512_set1_epi32(0x7f800000));
  __m512i nanc;
  if (f->nan_kind == 0)
    nanc = _mm512_or_si512(_mm512_set1_epi32(0x7e00),
                           _mm512_and_si512(_mm512_srli_epi32(a, 13), _mm512_set1_epi32(0x3ff)));
  else if (f->nan_kind == 1)
    nanc =
        _mm512_and_si512(_mm512_or_si512(_mm512_srli_epi32(a, 16), _mm512_set1_epi32(0x40)), _mm512_set1_epi32(0x7fff));
  else
    nanc = _mm512_set1_epi32(0x7f);
  code = _mm512_mask_mov_epi32(code, nan, nanc);
  return _mm512_or_si512(code, sign);
}

T512 static void store512(const kv_fmt *f, void *dst, const float *src, int64_t n, float scale) {
  __m512 s = _mm512_set1_ps(scale);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i c = encode512(_mm512_div_ps(_mm512_loadu_ps(src + i), s), f);
    if (f->bytes == 2)
      _mm256_storeu_si256((__m256i *)((uint16_t *)dst + i), _mm512_cvtepi32_epi16(c));
    else
      _mm_storeu_si128((__m128i *)((uint8_t *)dst + i), _mm512_cvtepi32_epi8(c));
  }
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    __m512i c = encode512(_mm512_div_ps(_mm512_maskz_loadu_ps(m, src + i), s), f);
    if (f->bytes == 2)
      _mm512_mask_cvtepi32_storeu_epi16((uint16_t *)dst + i, m, c);
    else
      _mm512_mask_cvtepi32_storeu_epi8((uint8_t *)dst + i, m, c);
  }
}

T512 static void div512(float *dst, const float *src, int64_t n, float scale) {
  __m512 s = _mm512_set1_ps(scale);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_div_ps(_mm512_loadu_ps(src + i), s));
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, src + i), s));
  }
}

/* ---- AVX2: 8 lanes (the same steps) ---- */
T256 static inline __m256i encode256(__m256 x, const kv_fmt *f) {
  __m256i u = _mm256_castps_si256(x);
  __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
  __m256i E = _mm256_srli_epi32(a, 23);
  __m256i normal = _mm256_cmpgt_epi32(E, _mm256_setzero_si256()); /* E <= 255: signed compare is fine */
  __m256i mant = _mm256_or_si256(_mm256_and_si256(a, _mm256_set1_epi32(0x7fffff)),
                                 _mm256_and_si256(normal, _mm256_set1_epi32(0x800000)));
  __m256i Eb = _mm256_max_epi32(E, _mm256_set1_epi32(1));
  __m256i extra = _mm256_max_epi32(_mm256_sub_epi32(_mm256_set1_epi32(128 - f->bias), Eb), _mm256_setzero_si256());
  __m256i shift = _mm256_min_epi32(_mm256_add_epi32(extra, _mm256_set1_epi32(23 - f->mbits)), _mm256_set1_epi32(31));
  __m256i one = _mm256_set1_epi32(1);
  __m256i half_m1 = _mm256_sub_epi32(_mm256_sllv_epi32(one, _mm256_sub_epi32(shift, one)), one);
  __m256i odd = _mm256_and_si256(_mm256_srlv_epi32(mant, shift), one);
  __m256i r = _mm256_srlv_epi32(_mm256_add_epi32(_mm256_add_epi32(mant, half_m1), odd), shift);
  __m256i ex = _mm256_max_epi32(_mm256_add_epi32(Eb, _mm256_set1_epi32(f->bias - 128)), _mm256_setzero_si256());
  __m256i code = _mm256_add_epi32(_mm256_sllv_epi32(ex, _mm256_set1_epi32(f->mbits)), r);
  code = _mm256_min_epu32(code, _mm256_set1_epi32((int)f->cap));
  __m256i sign =
      _mm256_srlv_epi32(_mm256_andnot_si256(_mm256_set1_epi32(0x7fffffff), u), _mm256_set1_epi32(32 - 8 * f->bytes));
  /* a > 0x7f800000 (a < 2^31, so the signed compare is exact) */
  __m256i nan = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000));
  __m256i nanc;
  if (f->nan_kind == 0)
    nanc = _mm256_or_si256(_mm256_set1_epi32(0x7e00),
                           _mm256_and_si256(_mm256_srli_epi32(a, 13), _mm256_set1_epi32(0x3ff)));
  else if (f->nan_kind == 1)
    nanc =
        _mm256_and_si256(_mm256_or_si256(_mm256_srli_epi32(a, 16), _mm256_set1_epi32(0x40)), _mm256_set1_epi32(0x7fff));
  else
    nanc = _mm256_set1_epi32(0x7f);
  code = _mm256_blendv_epi8(code, nanc, nan);
  return _mm256_or_si256(code, sign);
}

T256 static void store256(int64_t dt, const kv_fmt *f, void *dst, const float *src, int64_t n, float scale) {
  __m256 s = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i c = encode256(_mm256_div_ps(_mm256_loadu_ps(src + i), s), f);
    /* codes fit in 16 (8) bits, so the unsigned-saturating packs are plain narrowing */
    __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    if (f->bytes == 2)
      _mm_storeu_si128((__m128i *)((uint16_t *)dst + i), w);
    else
      _mm_storel_epi64((__m128i *)((uint8_t *)dst + i), _mm_packus_epi16(w, w));
  }
  if (i < n) store_scalar(dt, (uint8_t *)dst + i * f->bytes, src + i, n - i, scale);
}

T256 static void div256(float *dst, const float *src, int64_t n, float scale) {
  __m256 s = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_div_ps(_mm256_loadu_ps(src + i), s));
  for (; i < n; i++) dst[i] = src[i] / scale;
}
#endif

void hr_cpu_kv_store_row(int64_t dt, void *dst, const float *src, int64_t n, float scale) {
  const kv_fmt *f = dt == HR_DTYPE_F16        ? &FMT_F16
                    : dt == HR_DTYPE_BF16     ? &FMT_BF16
                    : dt == HR_DTYPE_FP8_E4M3 ? &FMT_E4M3
                    : dt == HR_DTYPE_FP8_E5M2 ? &FMT_E5M2
                                              : NULL;
  if (dt == HR_DTYPE_F32 && scale == 1.0f) {
    memcpy(dst, src, (size_t)n * sizeof(float));
    return;
  }
#ifdef HR_X86
  int isa = hr_cpu_isa();
  if (isa == HR_ISA_AVX512) {
    if (dt == HR_DTYPE_F32)
      div512(dst, src, n, scale);
    else if (f)
      store512(f, dst, src, n, scale);
    return;
  }
  if (isa == HR_ISA_AVX2) {
    if (dt == HR_DTYPE_F32)
      div256(dst, src, n, scale);
    else if (f)
      store256(dt, f, dst, src, n, scale);
    return;
  }
#endif
  (void)f;
  store_scalar(dt, dst, src, n, scale);
}
