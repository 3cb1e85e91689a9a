/*
 * 16-bit weights (bf16 or f16, kept 16-bit in memory) times fp32 activations into fp32:
 * y[M, N] = x[M, K] . W[N, K]^T (+ bias). Half the bytes of fp32 weights to stream.
 *
 *   bf16 weights + AVX512-BF16: x is rounded to bf16 once per call and vdpbf16ps does 32
 *     products per instruction (as llama.cpp does for bf16); the products and sums are fp32,
 *     the only extra error is x's rounding (relative <= 2^-8 per element).
 *   otherwise (f16, or no AVX512-BF16): each weight vector is widened to fp32 in registers
 *     (bf16: a shift; f16: vcvtph2ps, F16C/AVX-512F) and multiplied with fp32 FMAs; exact x.
 *
 * Tiles of up to 4 (AVX-512) or 2 (AVX2) x rows by 4 W rows read W in place (no packing),
 * the widening shared by the tile's x rows; threads split N (and M when N is small).
 */
#include <stdlib.h>
#include <string.h>

#include "../core/quant.h"
#include "../core/status.h"
#include "ops_cpu.h"
#include "threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#define HR_X86 1
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define T512BF __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))
#define T256 __attribute__((target("avx2,fma,f16c")))
#endif

enum { P16_SCALAR, P16_AVX2, P16_AVX512, P16_AVX512BF16 };
#define RN16 4
#define MC16 64

typedef struct {
  const float *x[4];       /* fp32 x rows (paths without vdpbf16ps) */
  const uint16_t *xb[4];   /* bf16 x rows, zero padded to a multiple of 32 (vdpbf16ps) */
  const uint16_t *w[RN16]; /* weight rows (past the last row: the last row again, outputs dropped) */
  int64_t k;
} t16;

static inline float bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
/* fp32 -> bf16, round to nearest even (NaN stays NaN) */
static inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

/* ---- portable ---- */
static void tile16_c(int rm, int f16, const t16 *t, float *out) {
  for (int i = 0; i < rm; i++)
    for (int j = 0; j < RN16; j++) {
      const uint16_t *w = t->w[j];
      float s0 = 0, s1 = 0;
      int64_t kk = 0;
      for (; kk + 2 <= t->k; kk += 2) {
        s0 += t->x[i][kk] * (f16 ? hr_half_to_float(w[kk]) : bf16_to_f32(w[kk]));
        s1 += t->x[i][kk + 1] * (f16 ? hr_half_to_float(w[kk + 1]) : bf16_to_f32(w[kk + 1]));
      }
      if (kk < t->k) s0 += t->x[i][kk] * (f16 ? hr_half_to_float(w[kk]) : bf16_to_f32(w[kk]));
      out[i * RN16 + j] = s0 + s1;
    }
}

#ifdef HR_X86
/* ---- AVX-512: widen 16 weights to fp32, fp32 FMAs; RM <= 4 ---- */
T512 static inline __m512 widen512(int f16, __m256i h) {
  return f16 ? _mm512_cvtph_ps(h) : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
T512 static inline __attribute__((always_inline)) void tile16_512(const int RM, const int F16, const t16 *t,
                                                                  float *out) {
  __m512 acc[4][RN16];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
    for (int j = 0; j < RN16; j++) acc[i][j] = _mm512_setzero_ps();
  const int64_t K = t->k;
  for (int64_t kk = 0; kk < K; kk += 16) {
    const __mmask16 km = K - kk >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (K - kk)) - 1);
    __m512 a[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
      if (i < RM) a[i] = _mm512_maskz_loadu_ps(km, t->x[i] + kk);
#pragma GCC unroll 4
    for (int j = 0; j < RN16; j++) {
      const __m512 w = widen512(F16, _mm256_maskz_loadu_epi16(km, t->w[j] + kk));
#pragma GCC unroll 4
      for (int i = 0; i < 4; i++)
        if (i < RM) acc[i][j] = _mm512_fmadd_ps(a[i], w, acc[i][j]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
    for (int j = 0; j < RN16; j++)
      if (i < RM) out[i * RN16 + j] = _mm512_reduce_add_ps(acc[i][j]);
}

/* ---- AVX512-BF16: vdpbf16ps on bf16 x and bf16 W; RM <= 4 ---- */
T512BF static inline __attribute__((always_inline)) void tile16_bf(const int RM, const t16 *t, float *out) {
  __m512 acc[4][RN16];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
    for (int j = 0; j < RN16; j++) acc[i][j] = _mm512_setzero_ps();
  const int64_t K = t->k;
  for (int64_t kk = 0; kk < K; kk += 32) {
    const __mmask32 km = K - kk >= 32 ? ~(__mmask32)0 : (((__mmask32)1 << (K - kk)) - 1);
    __m512i a[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
      if (i < RM) a[i] = _mm512_loadu_si512(t->xb[i] + kk); /* padded with zeros */
#pragma GCC unroll 4
    for (int j = 0; j < RN16; j++) {
      const __m512i w = _mm512_maskz_loadu_epi16(km, t->w[j] + kk);
#pragma GCC unroll 4
      for (int i = 0; i < 4; i++)
        if (i < RM) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)a[i], (__m512bh)w);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
    for (int j = 0; j < RN16; j++)
      if (i < RM) out[i * RN16 + j] = _mm512_reduce_add_ps(acc[i][j]);
}

/* ---- AVX2 (+F16C): widen 8 weights; RM <= 2 ---- */
T256 static inline __m256 widen256(int f16, __m128i h) {
  return f16 ? _mm256_cvtph_ps(h) : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
T256 static inline __attribute__((always_inline)) void tile16_256(const int RM, const int F16, const t16 *t,
                                                                  float *out) {
  __m256 acc[2][RN16];
#pragma GCC unroll 2
  for (int i = 0; i < 2; i++)
#pragma GCC unroll 4
    for (int j = 0; j < RN16; j++) acc[i][j] = _mm256_setzero_ps();
  const int64_t K = t->k, K8 = K & ~(int64_t)7;
  for (int64_t kk = 0; kk < K8; kk += 8) {
    __m256 a[2];
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
      if (i < RM) a[i] = _mm256_loadu_ps(t->x[i] + kk);
#pragma GCC unroll 4
    for (int j = 0; j < RN16; j++) {
      const __m256 w = widen256(F16, _mm_loadu_si128((const __m128i *)(t->w[j] + kk)));
#pragma GCC unroll 2
      for (int i = 0; i < 2; i++)
        if (i < RM) acc[i][j] = _mm256_fmadd_ps(a[i], w, acc[i][j]);
    }
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; i++) {
    if (i >= RM) continue;
#pragma GCC unroll 4
    for (int j = 0; j < RN16; j++) {
      __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[i][j]), _mm256_extractf128_ps(acc[i][j], 1));
      h = _mm_add_ps(h, _mm_movehl_ps(h, h));
      h = _mm_add_ss(h, _mm_movehdup_ps(h));
      float s = _mm_cvtss_f32(h);
      const uint16_t *w = t->w[j];
      for (int64_t kk = K8; kk < K; kk++) s += t->x[i][kk] * (F16 ? hr_half_to_float(w[kk]) : bf16_to_f32(w[kk]));
      out[i * RN16 + j] = s;
    }
  }
}

typedef void (*tile16_fn)(const t16 *t, float *out);
#define DEF16(NAME, CALL, ATTR) \
  ATTR static void NAME(const t16 *t, float *out) { CALL; }
DEF16(t512_1_bf, tile16_512(1, 0, t, out), T512)
DEF16(t512_2_bf, tile16_512(2, 0, t, out), T512)
DEF16(t512_3_bf, tile16_512(3, 0, t, out), T512)
DEF16(t512_4_bf, tile16_512(4, 0, t, out), T512)
DEF16(t512_1_h, tile16_512(1, 1, t, out), T512)
DEF16(t512_2_h, tile16_512(2, 1, t, out), T512)
DEF16(t512_3_h, tile16_512(3, 1, t, out), T512)
DEF16(t512_4_h, tile16_512(4, 1, t, out), T512)
DEF16(tdp_1, tile16_bf(1, t, out), T512BF)
DEF16(tdp_2, tile16_bf(2, t, out), T512BF)
DEF16(tdp_3, tile16_bf(3, t, out), T512BF)
DEF16(tdp_4, tile16_bf(4, t, out), T512BF)
DEF16(t256_1_bf, tile16_256(1, 0, t, out), T256)
DEF16(t256_2_bf, tile16_256(2, 0, t, out), T256)
DEF16(t256_1_h, tile16_256(1, 1, t, out), T256)
DEF16(t256_2_h, tile16_256(2, 1, t, out), T256)
static const tile16_fn T512_TILES[2][4] = {{t512_1_bf, t512_2_bf, t512_3_bf, t512_4_bf},
                                           {t512_1_h, t512_2_h, t512_3_h, t512_4_h}};
static const tile16_fn TDP_TILES[4] = {tdp_1, tdp_2, tdp_3, tdp_4};
static const tile16_fn T256_TILES[2][2] = {{t256_1_bf, t256_2_bf}, {t256_1_h, t256_2_h}};
#endif

static int choose_path16(int f16) {
  int isa = hr_cpu_isa(), f = hr_cpu_features();
  if (isa == HR_ISA_AVX512 && (f & HR_CPUX_AVX512BW))
    return !f16 && (f & HR_CPUX_AVX512BF16) ? P16_AVX512BF16 : P16_AVX512;
  if (isa >= HR_ISA_AVX2 && (f & HR_CPUX_F16C)) return P16_AVX2;
  return P16_SCALAR;
}

const char *hr_cpu_16bit_path_name(int64_t wtype) {
  static const char *const names[] = {"scalar", "avx2", "avx512", "avx512-bf16"};
  return names[choose_path16(wtype == HR_DTYPE_F16)];
}

/* bf16 x rows for vdpbf16ps, kept per calling thread between calls */
static _Thread_local uint16_t *xb_buf;
static _Thread_local size_t xb_cap;

typedef struct {
  float *y;
  const float *x, *bias;
  const int32_t *rows;
  const uint16_t *w, *xb;
  int64_t m, n, k, ldxb;
  int64_t n_chunk, m_chunk, n_tasks_n;
  int path, f16, rmx;
} mm16_ctx;

static void mm16_task(void *vctx, int64_t task, int thread, void *scratch) {
  (void)thread;
  (void)scratch;
  const mm16_ctx *c = vctx;
  const int64_t tn = task % c->n_tasks_n, tm = task / c->n_tasks_n;
  const int64_t nb = tn * c->n_chunk, ne = nb + c->n_chunk < c->n ? nb + c->n_chunk : c->n;
  const int64_t mb = tm * c->m_chunk, me = mb + c->m_chunk < c->m ? mb + c->m_chunk : c->m;
  if (nb >= ne || mb >= me) return;
  t16 t = {.k = c->k};
  float out[4 * RN16];
  for (int64_t mc0 = mb; mc0 < me; mc0 += MC16) {
    const int64_t mc1 = mc0 + MC16 < me ? mc0 + MC16 : me;
    for (int64_t n0 = nb; n0 < ne; n0 += RN16) {
      const int rn = (int)(ne - n0 < RN16 ? ne - n0 : RN16);
      for (int j = 0; j < RN16; j++) t.w[j] = c->w + (n0 + (j < rn ? j : rn - 1)) * c->k;
      for (int64_t m0 = mc0; m0 < mc1; m0 += c->rmx) {
        const int rm = (int)(mc1 - m0 < c->rmx ? mc1 - m0 : c->rmx);
        for (int i = 0; i < rm; i++) {
          int64_t r = c->rows ? c->rows[m0 + i] : m0 + i;
          t.x[i] = c->x + r * c->k;
          t.xb[i] = c->xb ? c->xb + (m0 + i) * c->ldxb : NULL;
        }
        switch (c->path) {
#ifdef HR_X86
          case P16_AVX512BF16: TDP_TILES[rm - 1](&t, out); break;
          case P16_AVX512: T512_TILES[c->f16][rm - 1](&t, out); break;
          case P16_AVX2: T256_TILES[c->f16][rm - 1](&t, out); break;
#endif
          default: tile16_c(rm, c->f16, &t, out); break;
        }
        for (int i = 0; i < rm; i++) {
          float *yr = c->y + (m0 + i) * c->n;
          for (int j = 0; j < rn; j++) yr[n0 + j] = out[i * RN16 + j] + (c->bias ? c->bias[n0 + j] : 0.0f);
        }
      }
    }
  }
}

int hr_cpu_matmul_16(float *y, const float *x, const void *w, int64_t wtype, const float *bias, const int32_t *rows,
                     int64_t m, int64_t n, int64_t k) {
  if (wtype != HR_DTYPE_BF16 && wtype != HR_DTYPE_F16)
    return hr_fail(HR_E_UNSUPPORTED, "matmul: weight type %lld is not a 16-bit type", (long long)wtype);
  mm16_ctx c = {.y = y, .x = x, .bias = bias, .rows = rows, .w = w, .m = m, .n = n, .k = k};
  c.f16 = wtype == HR_DTYPE_F16;
  c.path = choose_path16(c.f16);
  c.rmx = c.path == P16_AVX2 ? 2 : c.path == P16_SCALAR ? 1 : 4;
  if (c.path == P16_AVX512BF16) { /* round x to bf16 once (rows gathered), zero padded to 32 */
    c.ldxb = (k + 31) & ~(int64_t)31;
    size_t need = (size_t)(m * c.ldxb);
    if (need > xb_cap) {
      free(xb_buf);
      xb_cap = 0;
      void *p = NULL;
      if (posix_memalign(&p, 64, need * sizeof(uint16_t)) != 0)
        return hr_fail(HR_E_OOM, "matmul: cannot allocate %zu bytes for bf16 activations", need * sizeof(uint16_t));
      xb_buf = p;
      xb_cap = need;
    }
    for (int64_t r = 0; r < m; r++) {
      const float *xr = x + (rows ? rows[r] : r) * k;
      uint16_t *o = xb_buf + r * c.ldxb;
      for (int64_t i = 0; i < k; i++) o[i] = f32_to_bf16(xr[i]);
      for (int64_t i = k; i < c.ldxb; i++) o[i] = 0;
    }
    c.xb = xb_buf;
  }
  int64_t threads = hrt_num_threads();
  const int64_t panels = (n + RN16 - 1) / RN16;
  if (2.0 * (double)m * (double)n * (double)k < 2e5) threads = 1;
  int64_t want_n = threads == 1 ? 1 : threads * 4;
  if (want_n > panels) want_n = panels;
  c.n_chunk = (panels + want_n - 1) / want_n * RN16;
  c.n_tasks_n = (n + c.n_chunk - 1) / c.n_chunk;
  int64_t tasks_m = 1;
  if (c.n_tasks_n < threads * 2 && m >= 2 * MC16) {
    tasks_m = (threads * 2 + c.n_tasks_n - 1) / c.n_tasks_n;
    if (tasks_m > (m + MC16 - 1) / MC16) tasks_m = (m + MC16 - 1) / MC16;
  }
  c.m_chunk = (m + tasks_m - 1) / tasks_m;
  return hrt_parallel(c.n_tasks_n * tasks_m, 0, mm16_task, &c);
}
