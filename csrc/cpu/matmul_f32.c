/*
 * fp32 matmul y[M, N] = x[M, K] . W[N, K]^T (+ bias), W row-major [out, in] (HF/GGUF).
 *
 * Both operands are contiguous along K, so the kernel works on register tiles of RM rows
 * of x by RN rows of W with one SIMD accumulator per (x row, W row) running along K (the
 * "dot-product" formulation, as in llamafile's tinyBLAS): no packing, and W is streamed
 * exactly once when M fits in one M-block — the decode (GEMV-like) regime is then a
 * pure streaming read of W. Accumulators are reduced four at a time with a transposing
 * add tree. Cache blocking: K is cut in blocks of <= KC so an RN-row panel of W stays in
 * L1 while the x tiles of an M-block (<= MC rows, in L2) stream past it.
 *
 * Small M (<= hr_cpu_f32_nopack_max_m, default 32) reads W in place; larger M packs panels.
 * Threads split N (and M when N is small) into tasks on the persistent pool.
 * AVX-512F tile 3x8, AVX2+FMA tile 2x4, portable C fallback; chosen at run time.
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
#define T512 __attribute__((target("avx512f,avx2,fma")))
#define T256 __attribute__((target("avx2,fma")))
#endif

#ifndef KC_MAX
#define KC_MAX 1024 /* K blocks: a single block up to this, else ~KC_SPLIT */
#endif
#ifndef KC_SPLIT
#define KC_SPLIT 1024
#endif
#define MC 96 /* rows of x per M-block (multiple of 2 and 3) */

int hr_cpu_f32_nopack_max_m = 32; /* see mm_task; the benchmark sets 0 to measure the packing path */

typedef struct {
  float *y;
  const float *x, *w, *bias;
  const int32_t *rows;
  const uint8_t *wq; /* quantized weights (GGUF blocks) instead of w, or NULL */
  int64_t wtype, wq_row_bytes;
  int64_t m, n, k;
  int64_t n_chunk, m_chunk, n_tasks_n; /* task grid */
  int isa;
  /* Paired SwiGLU (matmul_swiglu.c): y = [gate | up] with half = n / 2; task t computes gate
   * columns [t * n_chunk, +n_chunk) and the same up columns, then act = silu(gate) * up there. */
  int64_t half;
  float *act;
} mm_ctx;

/* One (RM x RN) tile over k in [k0, k0 + kc): y rows yr[i], columns n0 .. n0+RN-1.
 * first: y = acc + bias (or acc); else y += acc. */
typedef void (*tile_fn)(const float *const *xr, const float *w, int64_t ldw, int64_t k0, int64_t kc, float *const *yr,
                        int64_t n0, const float *bias, int first);

static inline void store_row(float *yrow, int64_t n0, const float *s, int rn, const float *bias, int first) {
  for (int j = 0; j < rn; j++) {
    float v = s[j];
    if (first) {
      if (bias) v += bias[n0 + j];
      yrow[n0 + j] = v;
    } else {
      yrow[n0 + j] += v;
    }
  }
}

/* ---- portable ---- */
static void tile_c(int rm, int rn, const float *const *xr, const float *w, int64_t ldw, int64_t k0, int64_t kc,
                   float *const *yr, int64_t n0, const float *bias, int first) {
  for (int i = 0; i < rm; i++) {
    float s[8];
    for (int j = 0; j < rn; j++) {
      const float *a = xr[i] + k0, *b = w + j * ldw + k0;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int64_t kk = 0;
      for (; kk + 4 <= kc; kk += 4) {
        s0 += a[kk] * b[kk];
        s1 += a[kk + 1] * b[kk + 1];
        s2 += a[kk + 2] * b[kk + 2];
        s3 += a[kk + 3] * b[kk + 3];
      }
      for (; kk < kc; kk++) s0 += a[kk] * b[kk];
      s[j] = (s0 + s1) + (s2 + s3);
    }
    store_row(yr[i], n0, s, rn, bias, first);
  }
}

#ifdef HR_X86
/* ---- AVX-512: up to 3 x 8 tiles ---- */
T512 static inline __m128 hsum4_512(__m512 a, __m512 b, __m512 c, __m512 d) {
  __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  __m512 abcd = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
  __m256 h =
      _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(abcd), 1)));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

T512 static inline __attribute__((always_inline)) void tile512(const int RM, const int RN, const float *const *xr,
                                                               const float *w, int64_t ldw, int64_t k0, int64_t kc,
                                                               float *const *yr, int64_t n0, const float *bias,
                                                               int first) {
  __m512 acc[3][8];
#pragma GCC unroll 3
  for (int i = 0; i < 3; i++)
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) acc[i][j] = _mm512_setzero_ps();
  const float *xp[3];
  const float *wp[8];
#pragma GCC unroll 3
  for (int i = 0; i < 3; i++) xp[i] = xr[i < RM ? i : 0] + k0;
#pragma GCC unroll 8
  for (int j = 0; j < 8; j++) wp[j] = w + (j < RN ? j : 0) * ldw + k0;
  int64_t kk = 0;
  for (; kk + 16 <= kc; kk += 16) {
    __m512 a[3];
#pragma GCC unroll 3
    for (int i = 0; i < 3; i++)
      if (i < RM) a[i] = _mm512_loadu_ps(xp[i] + kk);
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
      if (j < RN) {
        __m512 b = _mm512_loadu_ps(wp[j] + kk);
        if (RM > 1) __asm__("" : "+v"(b)); /* one load into a register, not RM folded loads */
#pragma GCC unroll 3
        for (int i = 0; i < 3; i++)
          if (i < RM) acc[i][j] = _mm512_fmadd_ps(a[i], b, acc[i][j]);
      }
    }
  }
  if (kk < kc) {
    __mmask16 msk = (__mmask16)((1u << (kc - kk)) - 1);
    __m512 a[3];
#pragma GCC unroll 3
    for (int i = 0; i < 3; i++)
      if (i < RM) a[i] = _mm512_maskz_loadu_ps(msk, xp[i] + kk);
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
      if (j < RN) {
        __m512 b = _mm512_maskz_loadu_ps(msk, wp[j] + kk);
#pragma GCC unroll 3
        for (int i = 0; i < 3; i++)
          if (i < RM) acc[i][j] = _mm512_fmadd_ps(a[i], b, acc[i][j]);
      }
    }
  }
#pragma GCC unroll 3
  for (int i = 0; i < 3; i++) {
    if (i >= RM) continue;
    float s[8];
    _mm_storeu_ps(s, hsum4_512(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
    if (RN > 4) _mm_storeu_ps(s + 4, hsum4_512(acc[i][4], acc[i][5], acc[i][6], acc[i][7]));
    if (RN == 8) {
      __m256 v = _mm256_loadu_ps(s);
      float *yp = yr[i] + n0;
      if (first) {
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + n0));
      } else {
        v = _mm256_add_ps(v, _mm256_loadu_ps(yp));
      }
      _mm256_storeu_ps(yp, v);
    } else {
      store_row(yr[i], n0, s, RN, bias, first);
    }
  }
}

#define DEF512(RM, RN)                                                                                              \
  T512 static void tile512_##RM##_##RN(const float *const *xr, const float *w, int64_t ldw, int64_t k0, int64_t kc, \
                                       float *const *yr, int64_t n0, const float *bias, int first) {                \
    tile512(RM, RN, xr, w, ldw, k0, kc, yr, n0, bias, first);                                                       \
  }
#define DEF512_ROW(RM) \
  DEF512(RM, 1) DEF512(RM, 2) DEF512(RM, 3) DEF512(RM, 4) DEF512(RM, 5) DEF512(RM, 6) DEF512(RM, 7) DEF512(RM, 8)
DEF512_ROW(1)
DEF512_ROW(2)
DEF512_ROW(3)
#define ROW512(RM)                                                                                              \
  {                                                                                                             \
    tile512_##RM##_1, tile512_##RM##_2, tile512_##RM##_3, tile512_##RM##_4, tile512_##RM##_5, tile512_##RM##_6, \
        tile512_##RM##_7, tile512_##RM##_8                                                                      \
  }
static const tile_fn tiles512[3][8] = {ROW512(1), ROW512(2), ROW512(3)};

/* Decode regime (M <= 3): one W row at a time, so each thread reads W as a single
 * sequential stream (the tile kernel interleaves 8 rows = 8 streams, which DRAM and the
 * prefetchers serve worse). 4 accumulators per x row hide the FMA latency. */
T512 static inline __attribute__((always_inline)) void gemv512(const int RM, const float *const *xr, const float *w,
                                                               int64_t K, int64_t n0, int64_t n1, float *const *yr,
                                                               const float *bias) {
  const int64_t K64 = K & ~(int64_t)63;
  for (int64_t n = n0; n < n1; n++) {
    const float *wr = w + n * K;
    __m512 acc[3][4];
#pragma GCC unroll 3
    for (int i = 0; i < 3; i++)
#pragma GCC unroll 4
      for (int u = 0; u < 4; u++) acc[i][u] = _mm512_setzero_ps();
    int64_t kk = 0;
    for (; kk < K64; kk += 64) {
#pragma GCC unroll 4
      for (int u = 0; u < 4; u++) {
        __m512 b = _mm512_loadu_ps(wr + kk + 16 * u);
        if (RM > 1) __asm__("" : "+v"(b));
#pragma GCC unroll 3
        for (int i = 0; i < 3; i++)
          if (i < RM) acc[i][u] = _mm512_fmadd_ps(_mm512_loadu_ps(xr[i] + kk + 16 * u), b, acc[i][u]);
      }
    }
    for (; kk < K; kk += 16) {
      __mmask16 msk = K - kk >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (K - kk)) - 1);
      __m512 b = _mm512_maskz_loadu_ps(msk, wr + kk);
#pragma GCC unroll 3
      for (int i = 0; i < 3; i++)
        if (i < RM) acc[i][0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(msk, xr[i] + kk), b, acc[i][0]);
    }
#pragma GCC unroll 3
    for (int i = 0; i < 3; i++) {
      if (i >= RM) continue;
      float v =
          _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[i][0], acc[i][1]), _mm512_add_ps(acc[i][2], acc[i][3])));
      yr[i][n] = bias ? v + bias[n] : v;
    }
  }
}
typedef void (*gemv_fn)(const float *const *xr, const float *w, int64_t K, int64_t n0, int64_t n1, float *const *yr,
                        const float *bias);
T512 static void gemv512_1(const float *const *xr, const float *w, int64_t K, int64_t n0, int64_t n1, float *const *yr,
                           const float *bias) {
  gemv512(1, xr, w, K, n0, n1, yr, bias);
}
T512 static void gemv512_2(const float *const *xr, const float *w, int64_t K, int64_t n0, int64_t n1, float *const *yr,
                           const float *bias) {
  gemv512(2, xr, w, K, n0, n1, yr, bias);
}
T512 static void gemv512_3(const float *const *xr, const float *w, int64_t K, int64_t n0, int64_t n1, float *const *yr,
                           const float *bias) {
  gemv512(3, xr, w, K, n0, n1, yr, bias);
}
static const gemv_fn gemvs512[3] = {gemv512_1, gemv512_2, gemv512_3};

/* ---- AVX2: up to 2 x 4 tiles ---- */
T256 static inline __m128 hsum4_256(__m256 a, __m256 b, __m256 c, __m256 d) {
  __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

T256 static inline __m256i tailmask8(int64_t r) {
  static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256((const __m256i *)(m + 8 - r));
}

T256 static inline __attribute__((always_inline)) void tile256(const int RM, const int RN, const float *const *xr,
                                                               const float *w, int64_t ldw, int64_t k0, int64_t kc,
                                                               float *const *yr, int64_t n0, const float *bias,
                                                               int first) {
  __m256 acc[2][4];
#pragma GCC unroll 2
  for (int i = 0; i < 2; i++)
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) acc[i][j] = _mm256_setzero_ps();
  const float *xp[2];
  const float *wp[4];
#pragma GCC unroll 2
  for (int i = 0; i < 2; i++) xp[i] = xr[i < RM ? i : 0] + k0;
#pragma GCC unroll 4
  for (int j = 0; j < 4; j++) wp[j] = w + (j < RN ? j : 0) * ldw + k0;
  int64_t kk = 0;
  for (; kk + 8 <= kc; kk += 8) {
    __m256 a[2];
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
      if (i < RM) a[i] = _mm256_loadu_ps(xp[i] + kk);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
      if (j < RN) {
        __m256 b = _mm256_loadu_ps(wp[j] + kk);
        if (RM > 1) __asm__("" : "+x"(b));
#pragma GCC unroll 2
        for (int i = 0; i < 2; i++)
          if (i < RM) acc[i][j] = _mm256_fmadd_ps(a[i], b, acc[i][j]);
      }
    }
  }
  if (kk < kc) {
    __m256i msk = tailmask8(kc - kk);
    __m256 a[2];
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
      if (i < RM) a[i] = _mm256_maskload_ps(xp[i] + kk, msk);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
      if (j < RN) {
        __m256 b = _mm256_maskload_ps(wp[j] + kk, msk);
#pragma GCC unroll 2
        for (int i = 0; i < 2; i++)
          if (i < RM) acc[i][j] = _mm256_fmadd_ps(a[i], b, acc[i][j]);
      }
    }
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; i++) {
    if (i >= RM) continue;
    float s[4];
    _mm_storeu_ps(s, hsum4_256(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
    store_row(yr[i], n0, s, RN, bias, first);
  }
}

#define DEF256(RM, RN)                                                                                              \
  T256 static void tile256_##RM##_##RN(const float *const *xr, const float *w, int64_t ldw, int64_t k0, int64_t kc, \
                                       float *const *yr, int64_t n0, const float *bias, int first) {                \
    tile256(RM, RN, xr, w, ldw, k0, kc, yr, n0, bias, first);                                                       \
  }
/* clang-format off: the macro expands to whole function definitions (no trailing semicolon) */
DEF256(1, 1)
DEF256(1, 2)
DEF256(1, 3)
DEF256(1, 4)
DEF256(2, 1)
DEF256(2, 2)
DEF256(2, 3)
DEF256(2, 4)
/* clang-format on */
static const tile_fn tiles256[2][4] = {{tile256_1_1, tile256_1_2, tile256_1_3, tile256_1_4},
                                       {tile256_2_1, tile256_2_2, tile256_2_3, tile256_2_4}};
#endif

/* ---- driver ---- */

/* y[mb..me, nb..ne) (nb a multiple of the panel width, so every panel is the one the plain
 * grid computes: results do not depend on how N is split). */
static void mm_range(const mm_ctx *c, int64_t nb, int64_t ne, int64_t mb, int64_t me, void *scratch) {
  int RMX, RNX;
  switch (c->isa) {
    case HR_ISA_AVX512:
      RMX = 3;
      RNX = 8;
      break;
    case HR_ISA_AVX2:
      RMX = 2;
      RNX = 4;
      break;
    default:
      RMX = 2;
      RNX = 4;
      break;
  }
  const int64_t K = c->k;
  int64_t nkb = K <= KC_MAX || c->wq ? 1 : (K + KC_SPLIT - 1) / KC_SPLIT;
  int64_t kcs = (K + nkb - 1) / nkb;
  kcs = (kcs + 15) & ~(int64_t)15;
#ifdef HR_X86
  if (c->isa == HR_ISA_AVX512 && c->m <= 3) {
    const float *xr[3];
    float *yr[3];
    for (int64_t i = 0; i < c->m; i++) {
      xr[i] = c->x + (c->rows ? c->rows[i] : i) * c->k;
      yr[i] = c->y + i * c->n;
    }
    if (!c->wq) {
      gemvs512[c->m - 1](xr, c->w, c->k, nb, ne, yr, c->bias);
      return;
    }
    /* Quantized: dequantize 8 weight rows into scratch (L1/L2), then the same GEMV on them. */
    float *panel = scratch;
    for (int64_t n0 = nb; n0 < ne; n0 += 8) {
      int64_t rn = ne - n0 < 8 ? ne - n0 : 8;
      for (int64_t j = 0; j < rn; j++)
        hr_quant_dequantize_row(c->wtype, c->wq + (n0 + j) * c->wq_row_bytes, panel + j * K, K);
      float *yo[3];
      for (int64_t i = 0; i < c->m; i++) yo[i] = yr[i] + n0;
      gemvs512[c->m - 1](xr, panel, K, 0, rn, yo, c->bias ? c->bias + n0 : NULL);
    }
    return;
  }
#endif
  /* Pack W panels when many x tiles reuse them (prefill). For M <= hr_cpu_f32_nopack_max_m the
   * tiles read W in place: a multi-row GEMV (RMX x rows x RNX W rows per pass, accumulators in
   * registers); the copy would cost as much as the few tiles that reuse the panel.
   * Quantized rows are always unpacked. */
  int pack = (c->wq || ((me - mb) > RMX && c->m > hr_cpu_f32_nopack_max_m)) && scratch != NULL;
  float *pk = scratch;
  int64_t ldp = kcs + 16; /* row pitch: kcs is a multiple of 16 floats; +64 B staggers the L1 sets */
  for (int64_t mc0 = mb; mc0 < me; mc0 += MC) {
    int64_t mc1 = mc0 + MC < me ? mc0 + MC : me;
    for (int64_t k0 = 0; k0 < K; k0 += kcs) {
      int64_t kc = K - k0 < kcs ? K - k0 : kcs;
      int first = k0 == 0;
      for (int64_t n0 = nb; n0 < ne; n0 += RNX) {
        int rn = (int)(ne - n0 < RNX ? ne - n0 : RNX);
        const float *wpan = c->wq ? NULL : c->w + n0 * K + k0;
        int64_t ldw = K;
        if (pack) {
          /* Several x tiles reuse this panel: copy it to a contiguous buffer whose row pitch
           * is not a multiple of 4 KiB (W rows K*4 bytes apart can all map to one L1 set). */
          if (c->wq) /* one K block (kc == K) for quantized weights: dequantize whole rows */
            for (int j = 0; j < rn; j++)
              hr_quant_dequantize_row(c->wtype, c->wq + (n0 + j) * c->wq_row_bytes, pk + j * ldp, K);
          else
            for (int j = 0; j < rn; j++) memcpy(pk + j * ldp, wpan + j * K, (size_t)kc * sizeof(float));
          wpan = pk;
          ldw = ldp;
        }
        for (int64_t m0 = mc0; m0 < mc1; m0 += RMX) {
          int rm = (int)(mc1 - m0 < RMX ? mc1 - m0 : RMX);
          const float *xr[3];
          float *yr[3];
          for (int i = 0; i < rm; i++) {
            int64_t r = c->rows ? c->rows[m0 + i] : m0 + i;
            xr[i] = c->x + r * K + k0;
            yr[i] = c->y + (m0 + i) * c->n;
          }
          switch (c->isa) {
#ifdef HR_X86
            case HR_ISA_AVX512: tiles512[rm - 1][rn - 1](xr, wpan, ldw, 0, kc, yr, n0, c->bias, first); break;
            case HR_ISA_AVX2: tiles256[rm - 1][rn - 1](xr, wpan, ldw, 0, kc, yr, n0, c->bias, first); break;
#endif
            default: tile_c(rm, rn, xr, wpan, ldw, 0, kc, yr, n0, c->bias, first); break;
          }
        }
      }
    }
  }
}

static void mm_task(void *vctx, int64_t task, int thread, void *scratch) {
  (void)thread;
  const mm_ctx *c = vctx;
  int64_t tn = task % c->n_tasks_n, tm = task / c->n_tasks_n;
  int64_t nb = tn * c->n_chunk, ne = nb + c->n_chunk;
  int64_t mb = tm * c->m_chunk, me = mb + c->m_chunk;
  if (c->half) { /* paired SwiGLU: gate and up columns of one chunk, then the activation */
    if (ne > c->half) ne = c->half;
    if (nb >= ne) return;
    mm_range(c, nb, ne, 0, c->m, scratch);
    mm_range(c, c->half + nb, c->half + ne, 0, c->m, scratch);
    for (int64_t r = 0; r < c->m; r++)
      hr_vsilu_mul(c->act + r * c->half + nb, c->y + r * c->n + nb, c->y + r * c->n + c->half + nb, ne - nb);
    return;
  }
  if (ne > c->n) ne = c->n;
  if (me > c->m) me = c->m;
  if (nb >= ne || mb >= me) return;
  mm_range(c, nb, ne, mb, me, scratch);
}

/* Weight bytes per task of a small-M (bandwidth-bound) matmul: the join after a region waits
 * for the last task still running, so big weights (gate|up, the LM head: 12-98 MB in s110m)
 * get more than ~4 tasks per thread. 1 MiB measured best on a 2-core EPYC (bench/regions:
 * 256 KiB lost 3-6 % at batch 1 to per-task start-up, 4 MiB gained less). 0: ~4 tasks per
 * thread whatever the size (the grid before; for comparisons). -1 = not read yet:
 * HEADROOM_CPU_MM_TASK_KB, else 1 MiB. */
int64_t hr_cpu_mm_task_bytes = -1;
static int64_t task_bytes(void) {
  if (hr_cpu_mm_task_bytes < 0) {
    const char *e = getenv("HEADROOM_CPU_MM_TASK_KB");
    hr_cpu_mm_task_bytes = e && *e ? (int64_t)strtol(e, NULL, 10) * 1024 : 1024 * 1024;
  }
  return hr_cpu_mm_task_bytes;
}

/* N tasks for a small-M matmul over `bytes` of weights: ~4 per thread, more when big. */
static int64_t small_m_tasks(int64_t threads, double bytes) {
  int64_t want = threads * 4, tb = task_bytes();
  if (tb > 0 && bytes / (double)tb > (double)want) want = (int64_t)(bytes / (double)tb) + 1;
  return want;
}

/* w: fp32, or GGUF blocks (wtype an HR_QTYPE_*) dequantized a panel at a time. */
static int matmul_driver(float *y, const float *x, const void *w, int64_t wtype, const float *bias, const int32_t *rows,
                         int64_t m, int64_t n, int64_t k) {
  const hr_quant_info *qi = wtype == HR_DTYPE_F32 ? NULL : hr_quant_lookup(wtype);
  if (wtype != HR_DTYPE_F32 && !qi)
    return hr_fail(HR_E_UNSUPPORTED, "matmul: weight type %lld is not supported by the CPU backend", (long long)wtype);
  mm_ctx c = {
      .y = y, .x = x, .w = qi ? NULL : w, .bias = bias, .rows = rows, .m = m, .n = n, .k = k, .isa = hr_cpu_isa()};
  if (qi) {
    c.wq = w;
    c.wtype = wtype;
    c.wq_row_bytes = k / qi->block_elems * qi->block_bytes;
  }
  int64_t threads = hrt_num_threads();
  int64_t rn = c.isa == HR_ISA_AVX512 ? 8 : 4;
  int64_t panels = (n + rn - 1) / rn;
  /* Small problems run on one thread: a region costs a few microseconds. */
  double flops = 2.0 * (double)m * (double)n * (double)k;
  if (flops < 2e5) threads = 1;
  /* N tasks: ~4 per thread when W is big (dynamic balance), at least one panel each. */
  int64_t want_n = threads == 1 ? 1 : threads * 4;
  if (threads > 1 && !qi && m <= hr_cpu_f32_nopack_max_m) want_n = small_m_tasks(threads, 4.0 * (double)n * (double)k);
  if (want_n > panels) want_n = panels;
  int64_t pan_per = (panels + want_n - 1) / want_n;
  c.n_chunk = pan_per * rn;
  c.n_tasks_n = (n + c.n_chunk - 1) / c.n_chunk;
  /* Split M as well when N alone cannot feed the threads. */
  int64_t tasks_m = 1;
  if (c.n_tasks_n < threads * 2 && m >= 2 * MC) {
    tasks_m = (threads * 2 + c.n_tasks_n - 1) / c.n_tasks_n;
    if (tasks_m > (m + MC - 1) / MC) tasks_m = (m + MC - 1) / MC;
  }
  c.m_chunk = (m + tasks_m - 1) / tasks_m;
  int64_t ntasks = c.n_tasks_n * tasks_m;
  int64_t nkb = k <= KC_MAX || qi ? 1 : (k + KC_SPLIT - 1) / KC_SPLIT;
  int64_t kcs = (((k + nkb - 1) / nkb) + 15) & ~(int64_t)15;
  size_t scratch = m > 3 || qi ? (size_t)(8 * (kcs + 16)) * sizeof(float) : 0;
  return hrt_parallel(ntasks, scratch, mm_task, &c);
}

int hr_cpu_matmul_f32_swiglu(float *y, float *act, const float *x, const float *w, const float *bias,
                             const int32_t *rows, int64_t m, int64_t n, int64_t k) {
  int64_t half = n / 2, threads = hrt_num_threads();
  mm_ctx c = {.y = y,
              .x = x,
              .w = w,
              .bias = bias,
              .rows = rows,
              .m = m,
              .n = n,
              .k = k,
              .isa = hr_cpu_isa(),
              .half = half,
              .act = act,
              .m_chunk = m};
  /* chunks of 16 columns (a multiple of every panel width; silu_mul's vector width) */
  int64_t groups = half / 16, want = threads == 1 ? 1 : small_m_tasks(threads, 4.0 * (double)n * (double)k);
  if (want > groups) want = groups;
  if (want < 1) want = 1;
  c.n_chunk = (groups + want - 1) / want * 16;
  c.n_tasks_n = (half + c.n_chunk - 1) / c.n_chunk;
  /* no scratch: M <= hr_cpu_f32_nopack_max_m (the caller checks) reads W in place */
  return hrt_parallel(c.n_tasks_n, 0, mm_task, &c);
}

int hr_cpu_matmul_f32(float *y, const float *x, const float *w, const float *bias, const int32_t *rows, int64_t m,
                      int64_t n, int64_t k) {
  return matmul_driver(y, x, w, HR_DTYPE_F32, bias, rows, m, n, k);
}

int hr_cpu_matmul_dequant(float *y, const float *x, const void *w, int64_t wtype, const float *bias,
                          const int32_t *rows, int64_t m, int64_t n, int64_t k) {
  if (!hr_quant_lookup(wtype))
    return hr_fail(HR_E_UNSUPPORTED, "matmul: weight type %lld is not a quantized type", (long long)wtype);
  return matmul_driver(y, x, w, wtype, bias, rows, m, n, k);
}
