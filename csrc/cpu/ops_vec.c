/*
 * Small fp32 vector helpers used by the non-matmul ops (attention,
 * norms, activations). Each helper has AVX-512F, AVX2+FMA and portable variants, chosen at
 * run time (functions compiled with target attributes, so the .so runs on any x86-64).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops_cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#define HR_X86 1
#include <immintrin.h>

#include "vexp.h"
#define T512 __attribute__((target("avx512f,avx2,fma")))
#define T256 __attribute__((target("avx2,fma")))
#endif

/* ---- portable ---- */

static float dot_c(const float *a, const float *b, int64_t n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; i++) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

static void silu_mul_c(float *out, const float *g, const float *u, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

#ifdef HR_X86
/* ---- AVX2 ---- */
T256 static inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

T256 static inline __m256i tailmask256(int64_t r) {
  static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256((const __m256i *)(m + 8 - r));
}

T256 static float dot_avx2(const float *a, const float *b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  if (i < n) {
    __m256i m = tailmask256(n - i);
    s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
  }
  return hsum256(_mm256_add_ps(s0, s1));
}

T256 static void axpy_avx2(float *y, float a, const float *x, int64_t n) {
  __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += a * x[i];
}

T256 static void silu_mul_avx2(float *out, const float *g, const float *u, int64_t n) {
  int64_t i = 0;
  __m256 one = _mm256_set1_ps(1.0f);
  for (; i + 8 <= n; i += 8) {
    __m256 vg = _mm256_loadu_ps(g + i);
    __m256 e = hr_exp256(_mm256_sub_ps(_mm256_setzero_ps(), vg));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(vg, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
  }
  silu_mul_c(out + i, g + i, u + i, n - i);
}

/* ---- AVX-512 ---- */
T512 static float dot_avx512(const float *a, const float *b, int64_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

T512 static void axpy_avx512(float *y, float a, const float *x, int64_t n) {
  __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m,
                          _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

T512 static void silu_mul_avx512(float *out, const float *g, const float *u, int64_t n) {
  int64_t i = 0;
  __m512 one = _mm512_set1_ps(1.0f);
  for (; i + 16 <= n; i += 16) {
    __m512 vg = _mm512_loadu_ps(g + i);
    __m512 e = hr_exp512(_mm512_sub_ps(_mm512_setzero_ps(), vg));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_div_ps(vg, _mm512_add_ps(one, e)), _mm512_loadu_ps(u + i)));
  }
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    __m512 vg = _mm512_maskz_loadu_ps(m, g + i);
    __m512 e = hr_exp512(_mm512_sub_ps(_mm512_setzero_ps(), vg));
    _mm512_mask_storeu_ps(out + i, m,
                          _mm512_mul_ps(_mm512_div_ps(vg, _mm512_add_ps(one, e)), _mm512_maskz_loadu_ps(m, u + i)));
  }
}
#endif

float hr_vdot(const float *a, const float *b, int64_t n) {
#ifdef HR_X86
  int isa = hr_cpu_isa();
  if (isa == HR_ISA_AVX512) return dot_avx512(a, b, n);
  if (isa == HR_ISA_AVX2) return dot_avx2(a, b, n);
#endif
  return dot_c(a, b, n);
}

void hr_vaxpy(float *y, float a, const float *x, int64_t n) {
#ifdef HR_X86
  int isa = hr_cpu_isa();
  if (isa == HR_ISA_AVX512) {
    axpy_avx512(y, a, x, n);
    return;
  }
  if (isa == HR_ISA_AVX2) {
    axpy_avx2(y, a, x, n);
    return;
  }
#endif
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void hr_vscale(float *y, float a, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] *= a;
}

void hr_vsilu_mul(float *out, const float *gate, const float *up, int64_t n) {
#ifdef HR_X86
  int isa = hr_cpu_isa();
  if (isa == HR_ISA_AVX512) {
    silu_mul_avx512(out, gate, up, n);
    return;
  }
  if (isa == HR_ISA_AVX2) {
    silu_mul_avx2(out, gate, up, n);
    return;
  }
#endif
  silu_mul_c(out, gate, up, n);
}
