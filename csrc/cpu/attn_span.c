/*
 * CPU attention span kernels (attn_span.h): AVX-512 and AVX2 instances of attn_span_body.h per
 * KV dtype and head_dim (64, 128, any multiple of the vector width), a portable scalar kernel,
 * and the run-time choice between them.
 */
#include "attn_span.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/float_formats.h"
#include "../include/headroom.h"
#include "ops_cpu.h"

#define CH 16 /* keys per chunk */

/* ---------------------------------------------------------------- scalar */

/* One key at a time: classic online softmax; rows converted element by element. */
static inline float kv_at(int64_t dt, const uint8_t *row, int64_t i, const float *fp8) {
  switch (dt) {
    case HR_DTYPE_F32: {
      float v;
      memcpy(&v, row + 4 * i, 4);
      return v;
    }
    case HR_DTYPE_F16: {
      uint16_t h;
      memcpy(&h, row + 2 * i, 2);
      return hr_f16_to_f32(h);
    }
    case HR_DTYPE_BF16: {
      uint16_t h;
      memcpy(&h, row + 2 * i, 2);
      return hr_bf16_to_f32(h);
    }
    default: return fp8[row[i]];
  }
}

static void span_scalar(const hr_attn_span *s, int64_t t0, int64_t t1, int64_t dt) {
  const float *fp8 = dt == HR_DTYPE_FP8_E4M3 || dt == HR_DTYPE_FP8_E5M2 ? hr_fp8_table(dt) : NULL;
  int64_t d = s->d;
  for (int64_t t = t0; t < t1; t++) {
    int64_t o = ((int64_t)s->bt[t / s->bs] * s->bs + t % s->bs) * s->row_bytes + s->head_bytes;
    const uint8_t *k = s->kc + o, *v = s->vc + o;
    for (int64_t h = 0; h < s->nh; h++) {
      const float *q = s->q + h * d;
      float *acc = s->acc + h * d;
      float dot = 0;
      for (int64_t i = 0; i < d; i++) dot += q[i] * kv_at(dt, k, i, fp8);
      float sc = dot * s->qk_scale;
      if (s->softcap > 0.0f) sc = s->softcap * tanhf(sc / s->softcap);
      float m = s->m[h];
      if (sc > m) { /* new max: rescale what was accumulated */
        float corr = m == -INFINITY ? 0.0f : expf(m - sc);
        for (int64_t i = 0; i < d; i++) acc[i] *= corr;
        s->l[h] *= corr;
        s->m[h] = m = sc;
      }
      float w = expf(sc - m);
      s->l[h] += w;
      for (int64_t i = 0; i < d; i++) acc[i] += w * kv_at(dt, v, i, fp8);
    }
  }
}

#define SCALAR_FN(name, dt) \
  static void name(const hr_attn_span *s, int64_t t0, int64_t t1) { span_scalar(s, t0, t1, dt); }
SCALAR_FN(span_scalar_f32, HR_DTYPE_F32)
SCALAR_FN(span_scalar_f16, HR_DTYPE_F16)
SCALAR_FN(span_scalar_bf16, HR_DTYPE_BF16)
SCALAR_FN(span_scalar_e4m3, HR_DTYPE_FP8_E4M3)
SCALAR_FN(span_scalar_e5m2, HR_DTYPE_FP8_E5M2)

static hr_attn_span_fn pick_scalar_fn(int64_t dt) {
  switch (dt) {
    case HR_DTYPE_F16: return span_scalar_f16;
    case HR_DTYPE_BF16: return span_scalar_bf16;
    case HR_DTYPE_FP8_E4M3: return span_scalar_e4m3;
    case HR_DTYPE_FP8_E5M2: return span_scalar_e5m2;
    default: return span_scalar_f32;
  }
}

hr_attn_kernel hr_attn_pick_scalar(int64_t kv_dtype) {
  hr_attn_kernel k = {pick_scalar_fn(kv_dtype), 1.0f, "scalar"};
  return k;
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define T256 __attribute__((target("avx2,fma,f16c")))

#include "vexp.h"

/* Scores -> weights for one head over a chunk (n <= 16): scale (or soft-cap), the chunk max,
 * the new running max, exps, the running sum. Returns exp(old max - new max). */
static inline float smx_scalar_prep(float *w, int n, float qk, float cap) {
  float mx = -INFINITY;
  for (int j = 0; j < n; j++) {
    float v = w[j] * qk;
    if (cap > 0.0f) v = cap * tanhf(v / cap);
    w[j] = v;
    mx = v > mx ? v : mx;
  }
  return mx;
}

static inline float new_max(float *m, float mx, float *corr) {
  float mo = *m, mn = mx > mo ? mx : mo;
  *corr = mo == -INFINITY ? 0.0f : expf(mo - mn);
  *m = mn;
  return mn;
}

T512 static inline float smx16_512(float *w, int n, float qk, float cap, float *m, float *l) {
  float mx = smx_scalar_prep(w, n, qk, cap), corr;
  float mn = new_max(m, mx, &corr);
  __mmask16 k = (__mmask16)((1u << n) - 1);
  __m512 e = _mm512_maskz_mov_ps(k, hr_exp512(_mm512_sub_ps(_mm512_loadu_ps(w), _mm512_set1_ps(mn))));
  _mm512_storeu_ps(w, e);
  *l = *l * corr + _mm512_reduce_add_ps(e);
  return corr;
}

T256 static inline float smx16_256(float *w, int n, float qk, float cap, float *m, float *l) {
  float mx = smx_scalar_prep(w, n, qk, cap), corr;
  float mn = new_max(m, mx, &corr);
  static const int32_t lanes[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  __m256i vn = _mm256_set1_epi32(n);
  __m256 m0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(vn, _mm256_loadu_si256((const __m256i *)lanes)));
  __m256 m1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(vn, _mm256_loadu_si256((const __m256i *)(lanes + 8))));
  __m256 vm = _mm256_set1_ps(mn);
  __m256 e0 = _mm256_and_ps(m0, hr_exp256(_mm256_sub_ps(_mm256_loadu_ps(w), vm)));
  __m256 e1 = _mm256_and_ps(m1, hr_exp256(_mm256_sub_ps(_mm256_loadu_ps(w + 8), vm)));
  _mm256_storeu_ps(w, e0);
  _mm256_storeu_ps(w + 8, e1);
  __m256 t = _mm256_add_ps(e0, e1);
  __m128 r = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  *l = *l * corr + _mm_cvtss_f32(r);
  return corr;
}

/* Lane sums of four vectors into out[0..3]. */
T256 static inline void red4_256(__m256 a, __m256 b, __m256 c, __m256 d, float *out) {
  __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d), abcd = _mm256_hadd_ps(ab, cd);
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1)));
}
T512 static inline __m256 half512(__m512 a) {
  return _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}
T512 static inline void red4_512(__m512 a, __m512 b, __m512 c, __m512 d, float *out) {
  red4_256(half512(a), half512(b), half512(c), half512(d), out);
}

/* ---- loaders: W elements of a stored row from element i, as floats ---- */
T512 static inline __m512 ld512_f32(const uint8_t *r, int64_t i) { return _mm512_loadu_ps((const float *)r + i); }
T512 static inline __m512 ld512_f16(const uint8_t *r, int64_t i) {
  return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(r + 2 * i)));
}
T512 static inline __m512 ld512_bf16(const uint8_t *r, int64_t i) {
  __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(r + 2 * i)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}
T512 static inline __m512 ld512_e5m2(const uint8_t *r, int64_t i) { /* the top byte of an f16 */
  __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(r + i)));
  return _mm512_cvtph_ps(_mm256_slli_epi16(w, 8));
}
/* E4M3 s.eeee.mmm as the f16 s.0eeee.mmm0000000 is exactly value / 256 (subnormals too): sign-
 * extend the byte to 16 bits, shift left by 7 and clear bit 14 (the sign's copy). The NaN code
 * 0x7f would read 1.875, the only code that does, so that value becomes NaN. */
T512 static inline __m512 ld512_e4m3(const uint8_t *r, int64_t i) {
  __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(r + i)));
  __m512 f = _mm512_cvtph_ps(_mm256_and_si256(_mm256_slli_epi16(w, 7), _mm256_set1_epi16((short)0xbfff)));
  __mmask16 nan = _mm512_cmp_ps_mask(_mm512_abs_ps(f), _mm512_set1_ps(1.875f), _CMP_EQ_OQ);
  return _mm512_mask_mov_ps(f, nan, _mm512_set1_ps(NAN));
}
T256 static inline __m256 ld256_f32(const uint8_t *r, int64_t i) { return _mm256_loadu_ps((const float *)r + i); }
T256 static inline __m256 ld256_f16(const uint8_t *r, int64_t i) {
  return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r + 2 * i)));
}
T256 static inline __m256 ld256_bf16(const uint8_t *r, int64_t i) {
  __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(r + 2 * i)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
T256 static inline __m256 ld256_e5m2(const uint8_t *r, int64_t i) {
  __m128i w = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(r + i)));
  return _mm256_cvtph_ps(_mm_slli_epi16(w, 8));
}
T256 static inline __m256 ld256_e4m3(const uint8_t *r, int64_t i) {
  __m128i w = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(r + i)));
  __m256 f = _mm256_cvtph_ps(_mm_and_si128(_mm_slli_epi16(w, 7), _mm_set1_epi16((short)0xbfff)));
  __m256 a = _mm256_and_ps(f, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
  return _mm256_blendv_ps(f, _mm256_set1_ps(NAN), _mm256_cmp_ps(a, _mm256_set1_ps(1.875f), _CMP_EQ_OQ));
}

/* ---- AVX-512 instances ---- */
#define SPAN_TGT T512
#define VEC __m512
#define W 16
#define VZERO() _mm512_setzero_ps()
#define VLOADF(p) _mm512_loadu_ps(p)
#define VSTOREF(p, v) _mm512_storeu_ps((p), (v))
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VSET1(x) _mm512_set1_ps(x)
#define RED4 red4_512
#define SMX16 smx16_512

#define LOADKV ld512_f32
#define SPAN_PREFIX span_avx512_f32
#include "attn_span_inst.h"
#define LOADKV ld512_f16
#define SPAN_PREFIX span_avx512_f16
#include "attn_span_inst.h"
#define LOADKV ld512_bf16
#define SPAN_PREFIX span_avx512_bf16
#include "attn_span_inst.h"
#define LOADKV ld512_e4m3
#define SPAN_PREFIX span_avx512_e4m3
#include "attn_span_inst.h"
#define LOADKV ld512_e5m2
#define SPAN_PREFIX span_avx512_e5m2
#include "attn_span_inst.h"
#undef VEC
#undef W
#undef VZERO
#undef VLOADF
#undef VSTOREF
#undef VFMA
#undef VMUL
#undef VADD
#undef VSET1
#undef RED4
#undef SMX16
#undef SPAN_TGT

/* ---- AVX2 instances ---- */
#define SPAN_TGT T256
#define VEC __m256
#define W 8
#define VZERO() _mm256_setzero_ps()
#define VLOADF(p) _mm256_loadu_ps(p)
#define VSTOREF(p, v) _mm256_storeu_ps((p), (v))
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VMUL(a, b) _mm256_mul_ps((a), (b))
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VSET1(x) _mm256_set1_ps(x)
#define RED4 red4_256
#define SMX16 smx16_256
#define LOADKV ld256_f32
#define SPAN_PREFIX span_avx2_f32
#include "attn_span_inst.h"
#define LOADKV ld256_f16
#define SPAN_PREFIX span_avx2_f16
#include "attn_span_inst.h"
#define LOADKV ld256_bf16
#define SPAN_PREFIX span_avx2_bf16
#include "attn_span_inst.h"
#define LOADKV ld256_e4m3
#define SPAN_PREFIX span_avx2_e4m3
#include "attn_span_inst.h"
#define LOADKV ld256_e5m2
#define SPAN_PREFIX span_avx2_e5m2
#include "attn_span_inst.h"
#undef W

typedef struct {
  hr_attn_span_fn d64, d128, dn;
} span_set;

static const span_set AVX512[5] = {
    {span_avx512_f32_d64, span_avx512_f32_d128, span_avx512_f32_dn},
    {span_avx512_f16_d64, span_avx512_f16_d128, span_avx512_f16_dn},
    {span_avx512_bf16_d64, span_avx512_bf16_d128, span_avx512_bf16_dn},
    {span_avx512_e4m3_d64, span_avx512_e4m3_d128, span_avx512_e4m3_dn},
    {span_avx512_e5m2_d64, span_avx512_e5m2_d128, span_avx512_e5m2_dn},
};
static const span_set AVX2[5] = {
    {span_avx2_f32_d64, span_avx2_f32_d128, span_avx2_f32_dn},
    {span_avx2_f16_d64, span_avx2_f16_d128, span_avx2_f16_dn},
    {span_avx2_bf16_d64, span_avx2_bf16_d128, span_avx2_bf16_dn},
    {span_avx2_e4m3_d64, span_avx2_e4m3_d128, span_avx2_e4m3_dn},
    {span_avx2_e5m2_d64, span_avx2_e5m2_d128, span_avx2_e5m2_dn},
};

static int has_f16c(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("f16c");
}
#endif

static const char *const DT_NAMES[5] = {"f32", "f16", "bf16", "fp8_e4m3", "fp8_e5m2"};

hr_attn_kernel hr_attn_pick(int64_t kv_dtype, int64_t d) {
  hr_attn_kernel k = hr_attn_pick_scalar(kv_dtype);
  if (kv_dtype < 0 || kv_dtype > 4) return k;
#if defined(__x86_64__) || defined(__i386__)
  int isa = hr_cpu_isa();
  const span_set *set = NULL;
  int w = 0;
  if (isa == HR_ISA_AVX512) {
    set = &AVX512[kv_dtype];
    w = 16;
  } else if (isa == HR_ISA_AVX2 && has_f16c()) {
    set = &AVX2[kv_dtype];
    w = 8;
  }
  if (set && d % w == 0) {
    static char names[2][5][3][32];
    int vi = d == 64 ? 0 : d == 128 ? 1 : 2, ii = w == 16 ? 0 : 1;
    k.fn = vi == 0 ? set->d64 : vi == 1 ? set->d128 : set->dn;
    k.unit = kv_dtype == HR_DTYPE_FP8_E4M3 ? 256.0f : 1.0f;
    char *nm = names[ii][kv_dtype][vi];
    if (!nm[0]) /* racing writers write the same bytes */
      snprintf(nm, 32, "%s %s d%s", w == 16 ? "avx512" : "avx2", DT_NAMES[kv_dtype],
               vi == 0   ? "64"
               : vi == 1 ? "128"
                         : "n");
    k.name = nm;
  }
#else
  (void)d;
#endif
  return k;
}
