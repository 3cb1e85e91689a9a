/*
 * CPU ops (csrc/core/ops_dispatch.c + csrc/cpu/ops_*.c) through the public ABI, under
 * ASan/UBSan (`make test-c`). Every op is checked against a float64 reference
 * (test/c/ref_ops.h) on fresh random inputs (uniform in [-1, 1), never zeros); outputs are
 * poisoned with NaN first and every element is checked. Error bounds:
 *   matmul/logits: |y - ref| <= 1e-5 * sum_k |x w| + 1e-6 (fp32 accumulation over K)
 *   rms_norm, rope, silu_mul: |y - ref| <= 2e-6 * (1 + |ref|) (+ 1e-5 relative for norms)
 *   embedding, kv_write: exact copies; untouched cache slots / rows stay NaN
 *   attention: |out - ref| <= 2e-5 (outputs are convex mixes of values in [-1, 1));
 *              split-K results equal the unsplit ones within 2e-6.
 * Matmul runs on every ISA the CPU has (scalar, AVX2, AVX-512) and with 1 and 3 threads.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/cpu/ops_cpu.h"
#include "headroom.h"
#include "ref_ops.h"

#include "check.h"
#include "device_bufs.h"

/* ---- helpers ---- */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}
static float frnd(void) { /* uniform in [-1, 1), never exactly 0 */
  float v = ((float)(rnd() & 0xffffff) + 0.5f) / 8388608.0f - 1.0f;
  return v;
}
static int64_t irnd(int64_t n) { return (int64_t)(rnd() % (uint32_t)n); }

static float *frand_buf(int64_t n) {
  float *p = dalloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) p[i] = frnd();
  return p;
}
static float *nan_buf(int64_t n) {
  float *p = dalloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) p[i] = NAN;
  return p;
}
static int32_t *ibuf(int64_t n) { return dalloc((size_t)n * 4); }

#define BEGIN(name)  \
  cur_test = (name); \
  do {               \
  } while (0)
#define PASS() printf("ok   %s\n", cur_test)

/* ---------------------------------------------------------------- matmul */
static void check_matmul_shape(int64_t m, int64_t n, int64_t k, int with_bias, int with_rows) {
  int64_t xrows = with_rows ? m + 3 : m;
  float *x = frand_buf(xrows * k), *w = frand_buf(n * k), *b = with_bias ? frand_buf(n) : NULL;
  float *y = nan_buf(m * n);
  int32_t *rows = NULL;
  if (with_rows) {
    rows = ibuf(m);
    for (int64_t i = 0; i < m; i++) rows[i] = (int32_t)irnd(xrows);
    CHECK_OK(hr_op_logits(dev, HR_DTYPE_F32, P(y), P(x), P(rows), m, xrows, P(w), n, k));
  } else {
    CHECK_OK(hr_op_matmul(dev, HR_DTYPE_F32, P(y), P(x), P(w), P(b), m, n, k));
  }
  double *ref = malloc(sizeof(double) * (size_t)(m * n)), *mag = malloc(sizeof(double) * (size_t)(m * n));
  ref_matmul(ref, mag, x, rows, w, b, m, n, k);
  for (int64_t i = 0; i < m * n; i++) {
    double err = fabs((double)y[i] - ref[i]);
    if (!(err <= 1e-5 * mag[i] + 1e-6))
      failf(__FILE__, __LINE__,
            "m=%lld n=%lld k=%lld bias=%d rows=%d isa=%s: y[%lld][%lld] = %.9g, ref %.9g (err %.3g)", (long long)m,
            (long long)n, (long long)k, with_bias, with_rows, hr_cpu_isa_name(hr_cpu_isa()), (long long)(i / n),
            (long long)(i % n), (double)y[i], ref[i], err);
  }
  free(ref);
  free(mag);
  free_all();
}

static void test_matmul(void) {
  BEGIN("matmul: shapes x ISAs x threads vs float64");
  static const int64_t shapes[][3] = {{1, 1, 1},
                                      {1, 129, 37},
                                      {3, 129, 37},
                                      {2, 7, 16},
                                      {5, 64, 768},
                                      {16, 33, 100},
                                      {17, 40, 15},
                                      {130, 129, 37},
                                      {97, 70, 1100},
                                      {1, 9, 2048},
                                      {4, 1, 300},
                                      {200, 24, 64},
                                      /* M <= 32 reads W in place, also across K blocks; 33 packs */
                                      {20, 19, 2100},
                                      {32, 17, 64},
                                      {33, 17, 64}};
  int native = hr_cpu_isa();
  int checked = 0;
  for (int isa = HR_ISA_SCALAR; isa <= native; isa++) {
    hr_cpu_force_isa(isa);
    for (int th = 1; th <= 3; th += 2) {
      CHECK_OK(hr_set_num_threads(dev, th));
      for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        check_matmul_shape(shapes[s][0], shapes[s][1], shapes[s][2], (int)(s & 1), 0);
        checked++;
      }
    }
  }
  hr_cpu_force_isa(native);
  CHECK_OK(hr_set_num_threads(dev, 0));
  /* a prefill-sized one in the native ISA on the default threads (exercises the M split) */
  check_matmul_shape(300, 20, 96, 1, 0);
  printf("ok   %s (%d shape runs, ISAs scalar..%s)\n", cur_test, checked, hr_cpu_isa_name(native));
}

static void test_logits(void) {
  BEGIN("logits: selected rows vs float64, out-of-range row id");
  check_matmul_shape(3, 131, 48, 0, 1);
  check_matmul_shape(1, 1000, 64, 0, 1);
  float *x = frand_buf(4 * 8), *w = frand_buf(5 * 8), *y = nan_buf(2 * 5);
  int32_t *rows = ibuf(2);
  rows[0] = 3;
  rows[1] = 4;
  CHECK_ERR(hr_op_logits(dev, HR_DTYPE_F32, P(y), P(x), P(rows), 2, 4, P(w), 5, 8), HR_E_INVALID, "row_ids[1] = 4");
  free_all();
  PASS();
}

/* ---------------------------------------------------------------- embedding */
static void test_embedding(void) {
  BEGIN("embedding: gather rows exactly; out-of-range id");
  int64_t V = 101, D = 37, T = 23;
  float *table = frand_buf(V * D), *out = nan_buf(T * D);
  int32_t *ids = ibuf(T);
  for (int64_t t = 0; t < T; t++) ids[t] = (int32_t)irnd(V);
  ids[0] = 0;
  ids[1] = (int32_t)(V - 1);
  CHECK_OK(hr_op_embedding(dev, HR_DTYPE_F32, P(out), P(table), P(ids), T, V, D));
  for (int64_t t = 0; t < T; t++)
    CHECK(!memcmp(out + t * D, table + ids[t] * D, (size_t)D * 4), "row %lld differs", (long long)t);
  /* big enough to go parallel */
  int64_t T2 = 300, D2 = 256;
  float *table2 = frand_buf(V * D2), *out2 = nan_buf(T2 * D2);
  int32_t *ids2 = ibuf(T2);
  for (int64_t t = 0; t < T2; t++) ids2[t] = (int32_t)irnd(V);
  CHECK_OK(hr_op_embedding(dev, HR_DTYPE_F32, P(out2), P(table2), P(ids2), T2, V, D2));
  for (int64_t t = 0; t < T2; t++) CHECK(!memcmp(out2 + t * D2, table2 + ids2[t] * D2, (size_t)D2 * 4));
  ids[5] = (int32_t)V;
  CHECK_ERR(hr_op_embedding(dev, HR_DTYPE_F32, P(out), P(table), P(ids), T, V, D), HR_E_INVALID, "ids[5] = 101");
  ids[5] = -1;
  CHECK_ERR(hr_op_embedding(dev, HR_DTYPE_F32, P(out), P(table), P(ids), T, V, D), HR_E_INVALID, "ids[5] = -1");
  free_all();
  PASS();
}

/* grouped rows: per-head q/k norms inside a fused QKV row [T, q + 2 kv] (Qwen3, Gemma 3) */
static void test_rms_norm_strided(void) {
  BEGIN("rms_norm_strided: per-head norms inside fused QKV rows, in place and out of place; gaps untouched");
  const int64_t T = 5, HQ = 4, HK = 2, D = 40, S = (HQ + 2 * HK) * D;
  for (int in_place = 0; in_place < 2; in_place++)
    for (int which = 0; which < 2; which++) { /* 0: the q heads, 1: the k heads (offset q) */
      float *x = frand_buf(T * S), *w = frand_buf(D), *out = in_place ? x : nan_buf(T * S);
      float *x0 = malloc((size_t)(T * S) * 4), *out0 = malloc((size_t)(T * S) * 4);
      memcpy(x0, x, (size_t)(T * S) * 4);
      memcpy(out0, out, (size_t)(T * S) * 4);
      const int64_t H = which ? HK : HQ, off = which ? HQ * D : 0;
      CHECK_OK(hr_op_rms_norm_strided(dev, HR_DTYPE_F32, P(out + off), P(x + off), P(w), T, H, D, S, 1e-6));
      for (int64_t t = 0; t < T; t++)
        for (int64_t e = 0; e < S; e++) {
          const int64_t h = (e - off) / D;
          const int normed = e >= off && h < H;
          if (!normed) { /* everything outside the selected heads keeps its bits (NaN poison included) */
            CHECK(memcmp(&out[t * S + e], &out0[t * S + e], 4) == 0, "gap t=%lld e=%lld changed", (long long)t,
                  (long long)e);
            continue;
          }
          const float *row = x0 + t * S + off + h * D;
          double ss = 0;
          for (int64_t i = 0; i < D; i++) ss += (double)row[i] * row[i];
          const int64_t i = (e - off) % D;
          double ref = row[i] / sqrt(ss / D + 1e-6) * w[i];
          CHECK(fabs(out[t * S + e] - ref) <= 1e-5 * (1 + fabs(ref)), "in_place=%d which=%d t=%lld e=%lld: %g vs %g",
                in_place, which, (long long)t, (long long)e, (double)out[t * S + e], ref);
        }
      free(x0);
      free(out0);
      free_all();
    }
  float *x = frand_buf(64), *w = frand_buf(8);
  CHECK_ERR(hr_op_rms_norm_strided(dev, HR_DTYPE_F32, P(x), P(x), P(w), 2, 2, 8, 15, 1e-5), HR_E_INVALID,
            "group_stride must be in 16..");
  CHECK_ERR(hr_op_rms_norm_strided(dev, HR_DTYPE_F32, P(x), P(x), 0, 2, 2, 8, 16, 1e-5), HR_E_INVALID,
            "weight must not be 0");
  free_all();
  PASS();
}

/* ---------------------------------------------------------------- rms norm */
static void test_rms_norm(void) {
  BEGIN("rms_norm: plain and fused residual add (x written back), dims 37/64/768");
  static const int64_t dims[] = {37, 64, 768};
  for (int di = 0; di < 3; di++)
    for (int fused = 0; fused < 2; fused++) {
      int64_t R = di == 2 ? 70 : 9, D = dims[di];
      float *x = frand_buf(R * D), *res = fused ? frand_buf(R * D) : NULL, *w = frand_buf(D), *out = nan_buf(R * D);
      float *x0 = malloc((size_t)(R * D) * 4);
      memcpy(x0, x, (size_t)(R * D) * 4);
      double eps = 1e-5;
      CHECK_OK(hr_op_rms_norm(dev, HR_DTYPE_F32, P(out), P(x), P(res), P(w), R, D, eps));
      for (int64_t r = 0; r < R; r++) {
        double ss = 0, xs[768];
        for (int64_t i = 0; i < D; i++) {
          xs[i] = (double)x0[r * D + i] + (fused ? (double)res[r * D + i] : 0.0);
          ss += xs[i] * xs[i];
          double xe = fabs((double)x[r * D + i] - xs[i]);
          CHECK(xe <= 1e-6 * (1 + fabs(xs[i])), "x[%lld][%lld] = %g, ref %g", (long long)r, (long long)i,
                (double)x[r * D + i], xs[i]);
        }
        double inv = 1.0 / sqrt(ss / (double)D + eps);
        for (int64_t i = 0; i < D; i++) {
          double ref = xs[i] * inv * (double)w[i], got = out[r * D + i];
          CHECK(fabs(got - ref) <= 1e-5 * (1 + fabs(ref)), "D=%lld fused=%d out[%lld][%lld] = %.8g, ref %.8g",
                (long long)D, fused, (long long)r, (long long)i, got, ref);
        }
      }
      free(x0);
      free_all();
    }
  /* in place: out == x */
  int64_t R = 4, D = 64;
  float *x = frand_buf(R * D), *w = frand_buf(D);
  float keep[256];
  memcpy(keep, x, sizeof keep);
  CHECK_OK(hr_op_rms_norm(dev, HR_DTYPE_F32, P(x), P(x), 0, P(w), R, D, 1e-6));
  for (int64_t r = 0; r < R; r++) {
    double ss = 0;
    for (int64_t i = 0; i < D; i++) ss += (double)keep[r * D + i] * keep[r * D + i];
    double inv = 1.0 / sqrt(ss / D + 1e-6);
    for (int64_t i = 0; i < D; i++) {
      double ref = keep[r * D + i] * inv * w[i];
      CHECK(fabs(x[r * D + i] - ref) <= 1e-5 * (1 + fabs(ref)), "in-place out[%lld][%lld]", (long long)r, (long long)i);
    }
  }
  free_all();
  PASS();
}

/* ---------------------------------------------------------------- rope */
static void test_rope(void) {
  BEGIN("rope: NeoX and GPT-J layouts, partial rotary, fused-QKV strides, GQA");
  struct {
    int64_t hq, hk, d, rot;
    int layout;
    int fused;
  } cfg[] = {{4, 2, 64, 0, HR_ROPE_NEOX, 0},   {4, 2, 64, 0, HR_ROPE_GPTJ, 0}, {3, 1, 128, 32, HR_ROPE_NEOX, 1},
             {3, 1, 128, 32, HR_ROPE_GPTJ, 1}, {2, 2, 6, 4, HR_ROPE_NEOX, 0},  {8, 8, 64, 0, HR_ROPE_NEOX, 1}};
  for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
    int64_t T = 19, hq = cfg[c].hq, hk = cfg[c].hk, d = cfg[c].d, rot = cfg[c].rot ? cfg[c].rot : d;
    int64_t qs = cfg[c].fused ? (hq + 2 * hk) * d : hq * d, ks = cfg[c].fused ? qs : hk * d;
    float *qkv = frand_buf(T * qs), *kbuf = cfg[c].fused ? NULL : frand_buf(T * ks);
    float *q = qkv, *k = cfg[c].fused ? qkv + hq * d : kbuf;
    float *before_q = malloc((size_t)(T * qs) * 4), *before_k = malloc((size_t)(T * ks) * 4);
    memcpy(before_q, q - 0, (size_t)(T * qs) * 4);
    memcpy(before_k, k, (size_t)((T - 1) * ks + hk * d) * 4);
    int32_t *pos = ibuf(T);
    for (int64_t t = 0; t < T; t++) pos[t] = (int32_t)irnd(5000);
    pos[0] = 0;
    float *invf = dalloc((size_t)(rot / 2) * 4);
    for (int64_t i = 0; i < rot / 2; i++) invf[i] = (float)pow(10000.0, -2.0 * (double)i / (double)rot);
    CHECK_OK(hr_op_rope(dev, HR_DTYPE_F32, P(q), P(k), P(pos), P(invf), T, hq, hk, d, cfg[c].rot, cfg[c].layout,
                        cfg[c].fused ? qs : 0, cfg[c].fused ? ks : 0));
    for (int64_t t = 0; t < T; t++) {
      for (int64_t h = 0; h < hq + hk; h++) {
        int isq = h < hq;
        const float *src = isq ? before_q + t * qs + h * d : before_k + t * ks + (h - hq) * d;
        const float *got = isq ? q + t * qs + h * d : k + t * ks + (h - hq) * d;
        double ref[128];
        for (int64_t i = 0; i < d; i++) ref[i] = src[i];
        ref_rope_head(ref, pos[t], invf, rot, cfg[c].layout == HR_ROPE_GPTJ);
        for (int64_t i = 0; i < d; i++)
          CHECK(fabs(got[i] - ref[i]) <= 2e-6 * (1 + fabs(ref[i])), "cfg %zu t=%lld head %lld dim %lld: %.8g vs %.8g",
                c, (long long)t, (long long)h, (long long)i, (double)got[i], ref[i]);
      }
      if (cfg[c].fused) /* the V slice of the fused row is untouched */
        CHECK(!memcmp(qkv + t * qs + (hq + hk) * d, before_q + t * qs + (hq + hk) * d, (size_t)(hk * d) * 4));
    }
    free(before_q);
    free(before_k);
    free_all();
  }
  PASS();
}

/* ---------------------------------------------------------------- silu */
static void test_silu_mul(void) {
  BEGIN("silu_mul: separate and merged gate_up, odd sizes");
  static const int64_t sizes[][2] = {{1, 1}, {3, 37}, {5, 129}, {64, 2048}};
  for (int merged = 0; merged < 2; merged++)
    for (int s = 0; s < 4; s++) {
      int64_t T = sizes[s][0], I = sizes[s][1];
      float *g, *u;
      int64_t stride = 0;
      if (merged) {
        g = dalloc((size_t)(T * 2 * I) * 4);
        for (int64_t i = 0; i < T * 2 * I; i++) g[i] = frnd() * 12.0f; /* covers the exp range well */
        u = g + I;
        stride = 2 * I;
      } else {
        g = frand_buf(T * I);
        for (int64_t i = 0; i < T * I; i++) g[i] *= 12.0f;
        u = frand_buf(T * I);
      }
      float *out = nan_buf(T * I);
      CHECK_OK(hr_op_silu_mul(dev, HR_DTYPE_F32, P(out), P(g), P(u), T, I, stride));
      int64_t rs = merged ? 2 * I : I;
      for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < I; i++) {
          double gv = g[t * rs + i], uv = u[t * rs + i], ref = gv / (1.0 + exp(-gv)) * uv;
          double got = out[t * I + i];
          CHECK(fabs(got - ref) <= 2e-6 * (1 + fabs(ref)), "T=%lld I=%lld merged=%d [%lld][%lld]: %.8g vs %.8g",
                (long long)T, (long long)I, merged, (long long)t, (long long)i, got, ref);
        }
      free_all();
    }
  PASS();
}

/* ---------------------------------------------------------------- paged KV */
typedef struct {
  int64_t nb, bs, hk, d;
  float *kc, *vc;
} cache_t;

static cache_t make_cache(int64_t nb, int64_t bs, int64_t hk, int64_t d, int fill_random) {
  cache_t c = {nb, bs, hk, d, NULL, NULL};
  c.kc = fill_random ? frand_buf(nb * bs * hk * d) : nan_buf(nb * bs * hk * d);
  c.vc = fill_random ? frand_buf(nb * bs * hk * d) : nan_buf(nb * bs * hk * d);
  return c;
}

/* random block tables: every sequence's blocks are distinct blocks of the pool */
static int32_t *make_tables(int64_t b, int64_t maxb, int64_t nb) {
  int32_t *bt = ibuf(b * maxb);
  int32_t *perm = malloc(sizeof(int32_t) * (size_t)nb);
  for (int64_t i = 0; i < nb; i++) perm[i] = (int32_t)i;
  for (int64_t i = nb - 1; i > 0; i--) {
    int64_t j = irnd(i + 1);
    int32_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  CHECK(b * maxb <= nb, "pool too small");
  for (int64_t i = 0; i < b * maxb; i++) bt[i] = perm[i];
  free(perm);
  return bt;
}

static void test_kv_write(void) {
  BEGIN("kv_write: slots incl. -1 padding, strided key/value, untouched slots stay NaN, bad slot");
  static const int64_t cfg[][4] = {{7, 16, 2, 64}, {5, 16, 1, 128}, {3, 5, 3, 37}}; /* nb, bs, hk, d */
  for (int c = 0; c < 3; c++) {
    int64_t nb = cfg[c][0], bs = cfg[c][1], hk = cfg[c][2], d = cfg[c][3], T = 13;
    cache_t kv = make_cache(nb, bs, hk, d, 0);
    int strided = c == 1;
    int64_t stride = strided ? (4 + 2 * hk) * d : hk * d; /* k, v as slices of a fused qkv row */
    float *rowbuf = frand_buf(T * stride);
    float *key = rowbuf + (strided ? 4 * d : 0), *val = strided ? rowbuf + (4 + hk) * d : frand_buf(T * hk * d);
    int32_t *slots = ibuf(T);
    /* distinct random slots, every third token padding */
    int64_t nslots = nb * bs;
    int32_t *perm = malloc(sizeof(int32_t) * (size_t)nslots);
    for (int64_t i = 0; i < nslots; i++) perm[i] = (int32_t)i;
    for (int64_t i = nslots - 1; i > 0; i--) {
      int64_t j = irnd(i + 1);
      int32_t t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    for (int64_t t = 0; t < T; t++) slots[t] = t % 3 == 2 ? -1 : perm[t];
    free(perm);
    CHECK_OK(hr_op_kv_write(dev, HR_DTYPE_F32, P(kv.kc), P(kv.vc), P(key), P(val), P(slots), T, hk, d, nb, bs,
                            strided ? stride : 0, HR_DTYPE_F32, 1.0, 1.0));
    int64_t row = hk * d, vstride = strided ? stride : hk * d;
    char *written = calloc((size_t)nslots, 1);
    for (int64_t t = 0; t < T; t++) {
      if (slots[t] < 0) continue;
      written[slots[t]] = 1;
      CHECK(!memcmp(kv.kc + slots[t] * row, key + t * stride, (size_t)row * 4), "k slot of token %lld", (long long)t);
      CHECK(!memcmp(kv.vc + slots[t] * row, val + t * vstride, (size_t)row * 4), "v slot of token %lld", (long long)t);
    }
    for (int64_t s = 0; s < nslots; s++)
      if (!written[s])
        for (int64_t i = 0; i < row; i++)
          CHECK(isnan(kv.kc[s * row + i]) && isnan(kv.vc[s * row + i]), "slot %lld was written", (long long)s);
    free(written);
    slots[4] = (int32_t)nslots;
    CHECK_ERR(hr_op_kv_write(dev, HR_DTYPE_F32, P(kv.kc), P(kv.vc), P(key), P(val), P(slots), T, hk, d, nb, bs,
                             strided ? stride : 0, HR_DTYPE_F32, 1.0, 1.0),
              HR_E_INVALID, "slot_mapping[4]");
    slots[4] = -2;
    CHECK_ERR(hr_op_kv_write(dev, HR_DTYPE_F32, P(kv.kc), P(kv.vc), P(key), P(val), P(slots), T, hk, d, nb, bs,
                             strided ? stride : 0, HR_DTYPE_F32, 1.0, 1.0),
              HR_E_INVALID, "slot_mapping[4] = -2");
    free_all();
  }
  PASS();
}

/* ---------------------------------------------------------------- decode attention */
static void run_decode(const cache_t *kv, const float *q, int64_t qs, const int32_t *bt, const int32_t *lens, int64_t B,
                       int64_t hq, int64_t maxb, int64_t part, double scale, float *out) {
  uint64_t need = 0;
  CHECK_OK(hr_paged_attention_workspace_bytes(HR_DTYPE_F32, B, hq, kv->d, maxb, kv->bs, part, &need));
  float *ws = need ? nan_buf((int64_t)(need / 4)) : NULL;
  for (int64_t i = 0; i < B * hq * kv->d; i++) out[i] = NAN;
  CHECK_OK(hr_op_attention_decode(dev, HR_DTYPE_F32, P(out), P(q), P(kv->kc), P(kv->vc), P(bt), P(lens), P(ws), need, B,
                                  hq, kv->hk, kv->d, kv->nb, kv->bs, maxb, part, scale, qs, 0, 0.0, HR_DTYPE_F32, 1.0,
                                  1.0));
}

static void test_attention_decode(void) {
  BEGIN("attention_decode: GQA 1/2/4 + MQA, D 64/128, block 16 and 5, partitions none/16/64/512, ctx 1..3000");
  struct {
    int64_t hq, hk, d, bs;
  } cfg[] = {{4, 4, 64, 16}, {4, 2, 128, 16}, {8, 2, 64, 16}, {4, 1, 64, 5}, {6, 1, 37, 16}};
  static const int32_t lens_set[] = {1, 7, 16, 64, 512, 513, 1024, 3000};
  int64_t runs = 0;
  for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
    int64_t hq = cfg[c].hq, hk = cfg[c].hk, d = cfg[c].d, bs = cfg[c].bs;
    int64_t B = 4;
    int64_t maxctx = c < 2 ? 3000 : 1100;
    int64_t maxb = (maxctx + bs - 1) / bs;
    int64_t nb = B * maxb + 3; /* odd pool, not all blocks used */
    if (nb % 2 == 0) nb++;
    cache_t kv = make_cache(nb, bs, hk, d, 1);
    int32_t *bt = make_tables(B, maxb, nb);
    int32_t *lens = ibuf(B);
    int64_t qs = c == 1 ? hq * d + 40 : 0; /* a strided q once */
    float *q = frand_buf(B * (qs ? qs : hq * d));
    double scale = 1.0 / sqrt((double)d);
    float *out_ref_split = nan_buf(B * hq * d), *out = nan_buf(B * hq * d);
    int nl = 0;
    for (size_t li = 0; li < sizeof lens_set / sizeof lens_set[0]; li++)
      if (lens_set[li] <= maxctx) nl++;
    for (int rep = 0; rep < (nl + B - 1) / B; rep++) {
      for (int64_t s = 0; s < B; s++) {
        int32_t L = lens_set[(rep * B + s) % nl];
        lens[s] = L;
      }
      /* unsplit */
      run_decode(&kv, q, qs, bt, lens, B, hq, maxb, 0, scale, out_ref_split);
      static const int64_t parts[] = {16, 64, 512};
      for (int pi = -1; pi < 3; pi++) {
        int64_t part = pi < 0 ? 0 : parts[pi];
        if (part % bs) part = (part / bs + 1) * bs;
        float *o = pi < 0 ? out_ref_split : out;
        if (pi >= 0) run_decode(&kv, q, qs, bt, lens, B, hq, maxb, part, scale, out);
        runs++;
        for (int64_t s = 0; s < B; s++)
          for (int64_t h = 0; h < hq; h++) {
            double ref[128];
            const float *qv = q + s * (qs ? qs : hq * d) + h * d;
            ref_attend(ref, qv, kv.kc, kv.vc, bt + s * maxb, bs, hk, h / (hq / hk), d, lens[s], scale);
            for (int64_t i = 0; i < d; i++) {
              float got = o[(s * hq + h) * d + i];
              CHECK(fabs(got - ref[i]) <= 2e-5, "cfg %zu part %lld len %d head %lld dim %lld: %.8g vs %.8g", c,
                    (long long)part, lens[s], (long long)h, (long long)i, (double)got, ref[i]);
              if (pi >= 0)
                CHECK(fabs(got - out_ref_split[(s * hq + h) * d + i]) <= 2e-6,
                      "split (part %lld) differs from unsplit: len %d head %lld dim %lld", (long long)part, lens[s],
                      (long long)h, (long long)i);
            }
          }
      }
    }
    free_all();
  }
  printf("ok   %s (%lld batched runs)\n", cur_test, (long long)runs);
}

/* ---------------------------------------------------------------- prefill attention */
static void test_attention_prefill(void) {
  BEGIN("attention_prefill: cached prefix 0/17/40 + new tokens, batch of sequences, GQA 1/2/4 + MQA, untouched rows");
  struct {
    int64_t hq, hk, d, bs;
  } cfg[] = {{4, 4, 64, 16}, {4, 2, 128, 16}, {8, 2, 64, 5}, {4, 1, 64, 16}};
  for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
    int64_t hq = cfg[c].hq, hk = cfg[c].hk, d = cfg[c].d, bs = cfg[c].bs;
    static const int32_t cached[] = {0, 17, 40, 3};
    static const int32_t newt[] = {20, 33, 16, 1};
    int64_t B = 4, maxctx = 80, maxb = (maxctx + bs - 1) / bs, nb = B * maxb + 1;
    cache_t kv = make_cache(nb, bs, hk, d, 1);
    int32_t *bt = make_tables(B, maxb, nb);
    int32_t *lens = ibuf(B), *qsl = ibuf(B + 1);
    qsl[0] = 0;
    for (int64_t s = 0; s < B; s++) {
      lens[s] = cached[s] + newt[s];
      qsl[s + 1] = qsl[s] + newt[s];
    }
    int64_t T = qsl[B] + 2; /* two padding rows past the last sequence stay untouched */
    int64_t qs = c == 1 ? hq * d + 8 : 0, qrow = qs ? qs : hq * d;
    float *q = frand_buf(T * qrow), *out = nan_buf(T * hq * d);
    double scale = 1.0 / sqrt((double)d);
    CHECK_OK(hr_op_attention_prefill(dev, HR_DTYPE_F32, P(out), P(q), P(kv.kc), P(kv.vc), P(bt), P(lens), P(qsl), B, T,
                                     hq, hk, d, nb, bs, maxb, scale, qs, 0, 0.0, HR_DTYPE_F32, 1.0, 1.0));
    for (int64_t s = 0; s < B; s++)
      for (int64_t i = 0; i < newt[s]; i++) {
        int64_t row = qsl[s] + i, pos = cached[s] + i;
        for (int64_t h = 0; h < hq; h++) {
          double ref[128];
          ref_attend(ref, q + row * qrow + h * d, kv.kc, kv.vc, bt + s * maxb, bs, hk, h / (hq / hk), d, pos + 1,
                     scale);
          for (int64_t e = 0; e < d; e++) {
            float got = out[(row * hq + h) * d + e];
            CHECK(fabs(got - ref[e]) <= 2e-5,
                  "cfg %zu seq %lld new token %lld (pos %lld) head %lld dim %lld: %.8g vs %.8g", c, (long long)s,
                  (long long)i, (long long)pos, (long long)h, (long long)e, (double)got, ref[e]);
          }
        }
      }
    for (int64_t row = qsl[B]; row < T; row++)
      for (int64_t e = 0; e < hq * d; e++)
        CHECK(isnan(out[row * hq * d + e]), "padding row %lld written", (long long)row);
    /* the one-new-token sequence equals decode attention */
    float *dec = nan_buf(hq * d);
    int32_t *bt1 = bt + 3 * maxb, *len1 = lens + 3;
    CHECK_OK(hr_op_attention_decode(dev, HR_DTYPE_F32, P(dec), P(q + qsl[3] * qrow), P(kv.kc), P(kv.vc), P(bt1),
                                    P(len1), 0, 0, 1, hq, hk, d, nb, bs, maxb, 0, scale, 0, 0, 0.0, HR_DTYPE_F32, 1.0,
                                    1.0));
    for (int64_t e = 0; e < hq * d; e++)
      CHECK(fabs(dec[e] - out[qsl[3] * hq * d + e]) <= 2e-6, "prefill(1 token) != decode at %lld", (long long)e);
    free_all();
  }
  PASS();
}

/* ---------------------------------------------------------------- errors */
static void test_errors(void) {
  BEGIN("errors: bad handle, NULLs, sizes, dtypes, GQA divisibility, workspace, tables, qsl");
  float *x = frand_buf(64), *w = frand_buf(64), *y = nan_buf(64);
  CHECK_ERR(hr_op_matmul(12345, HR_DTYPE_F32, P(y), P(x), P(w), 0, 1, 4, 4), HR_E_INVALID, "hr_op_matmul: invalid");
  CHECK_ERR(hr_op_matmul(dev, HR_DTYPE_F32, 0, P(x), P(w), 0, 1, 4, 4), HR_E_INVALID, "hr_op_matmul: y must not be 0");
  CHECK_ERR(hr_op_matmul(dev, HR_DTYPE_F32, P(y), P(x), P(w), 0, 0, 4, 4), HR_E_INVALID,
            "m must be in 1..2^40 (got 0)");
  CHECK_ERR(hr_op_matmul(dev, HR_DTYPE_F32, P(y), P(x), P(w), 0, 1, -3, 4), HR_E_INVALID, "n must be");
  CHECK_ERR(hr_op_matmul(dev, 7, P(y), P(x), P(w), 0, 1, 4, 4), HR_E_INVALID, "unknown dtype 7");
  CHECK_ERR(hr_op_matmul(dev, HR_DTYPE_F16, P(y), P(x), P(w), 0, 1, 4, 4), HR_E_UNSUPPORTED, "float32 only");
  CHECK_ERR(hr_op_matmul(dev, HR_DTYPE_F32, P(x), P(x), P(w), 0, 1, 4, 4), HR_E_INVALID, "must not alias");
  CHECK_ERR(hr_op_rms_norm(dev, HR_DTYPE_F32, P(y), P(x), 0, 0, 1, 8, 1e-5), HR_E_INVALID, "weight must not be 0");
  CHECK_ERR(hr_op_rms_norm(dev, HR_DTYPE_F32, P(y), P(x), 0, P(w), 1, 8, -1.0), HR_E_INVALID, "eps");
  CHECK_ERR(hr_op_rms_norm(dev, HR_DTYPE_BF16, P(y), P(x), 0, P(w), 1, 8, 1e-5), HR_E_UNSUPPORTED, "hr_op_rms_norm");
  int32_t *pos = ibuf(4);
  for (int i = 0; i < 4; i++) pos[i] = i;
  CHECK_ERR(hr_op_rope(dev, HR_DTYPE_F32, P(x), 0, P(pos), P(w), 1, 1, 0, 8, 7, HR_ROPE_NEOX, 0, 0), HR_E_INVALID,
            "rotary_dim must be even");
  CHECK_ERR(hr_op_rope(dev, HR_DTYPE_F32, P(x), 0, P(pos), P(w), 1, 1, 0, 8, 0, 5, 0, 0), HR_E_INVALID, "layout");
  CHECK_ERR(hr_op_rope(dev, HR_DTYPE_F32, P(x), 0, P(pos), P(w), 1, 2, 0, 8, 0, 0, 9, 0), HR_E_INVALID, "q_stride");
  pos[0] = -4;
  CHECK_ERR(hr_op_rope(dev, HR_DTYPE_F32, P(x), 0, P(pos), P(w), 1, 1, 0, 8, 0, 0, 0, 0), HR_E_INVALID,
            "positions[0] = -4");
  CHECK_ERR(hr_op_silu_mul(dev, HR_DTYPE_F32, P(y), P(x), P(w), 2, 8, 4), HR_E_INVALID, "in_stride");
  CHECK_ERR(hr_op_embedding(dev, HR_DTYPE_F32, P(y), P(x), 0, 1, 4, 4), HR_E_INVALID, "ids must not be 0");

  /* attention */
  int64_t nb = 5, bs = 16, hk = 2, d = 8, maxb = 2;
  cache_t kv = make_cache(nb, bs, hk, d, 1);
  int32_t *bt = ibuf(2 * maxb), *lens = ibuf(2), *qsl = ibuf(3);
  bt[0] = 0;
  bt[1] = 1;
  bt[2] = 2;
  bt[3] = 3;
  lens[0] = 20;
  lens[1] = 5;
  float *q = frand_buf(2 * 4 * d), *o = nan_buf(2 * 4 * d);
  CHECK_ERR(hr_op_attention_decode(dev, HR_DTYPE_F32, P(o), P(q), P(kv.kc), P(kv.vc), P(bt), P(lens), 0, 0, 2, 3, hk, d,
                                   nb, bs, maxb, 0, 0.3, 0, 0, 0.0, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "num_q_heads (3) must be a multiple of num_kv_heads (2)");
  CHECK_ERR(hr_op_attention_decode(dev, HR_DTYPE_F32, P(o), P(q), P(kv.kc), P(kv.vc), P(bt), P(lens), 0, 0, 2, 4, hk, d,
                                   nb, bs, maxb, 16, 0.3, 0, 0, 0.0, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "workspace of 0 bytes");
  CHECK_ERR(hr_op_attention_decode(dev, HR_DTYPE_F32, P(o), P(q), P(kv.kc), P(kv.vc), P(bt), P(lens), 0, 0, 2, 4, hk, d,
                                   nb, bs, maxb, 10, 0.3, 0, 0, 0.0, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "multiple of block_size=16");
  CHECK_ERR(hr_op_attention_decode(dev, HR_DTYPE_F32, P(o), P(q), P(kv.kc), P(kv.vc), P(bt), P(lens), 0, 0, 2, 4, hk, d,
                                   nb, bs, maxb, 0, 0.0, 0, 0, 0.0, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "scale");
  /* KV cache dtype: unknown types and bad scales are argument errors on every backend */
  CHECK_ERR(hr_op_attention_decode(dev, HR_DTYPE_F32, P(o), P(q), P(kv.kc), P(kv.vc), P(bt), P(lens), 0, 0, 2, 4, hk, d,
                                   nb, bs, maxb, 0, 0.3, 0, 0, 0.0, 5, 1.0, 1.0),
            HR_E_INVALID, "unknown kv_dtype 5");
  CHECK_ERR(hr_op_attention_decode(dev, HR_DTYPE_F32, P(o), P(q), P(kv.kc), P(kv.vc), P(bt), P(lens), 0, 0, 2, 4, hk, d,
                                   nb, bs, maxb, 0, 0.3, 0, 0, 0.0, HR_DTYPE_FP8_E4M3, 0.0, 1.0),
            HR_E_INVALID, "k_scale and v_scale must be finite and > 0");
  CHECK_ERR(hr_op_attention_prefill(dev, HR_DTYPE_F32, P(o), P(q), P(kv.kc), P(kv.vc), P(bt), P(lens), P(qsl), 2, 4, 4,
                                    hk, d, nb, bs, maxb, 0.3, 0, 0, 0.0, HR_DTYPE_F32, 1.0, NAN),
            HR_E_INVALID, "k_scale and v_scale must be finite and > 0");
  lens[1] = 0;
  CHECK_ERR(hr_op_attention_decode(dev, HR_DTYPE_F32, P(o), P(q), P(kv.kc), P(kv.vc), P(bt), P(lens), 0, 0, 2, 4, hk, d,
                                   nb, bs, maxb, 0, 0.3, 0, 0, 0.0, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "seq_lens[1] = 0");
  lens[1] = 33;
  CHECK_ERR(hr_op_attention_decode(dev, HR_DTYPE_F32, P(o), P(q), P(kv.kc), P(kv.vc), P(bt), P(lens), 0, 0, 2, 4, hk, d,
                                   nb, bs, maxb, 0, 0.3, 0, 0, 0.0, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "seq_lens[1] = 33");
  lens[1] = 5;
  bt[1] = 9;
  CHECK_ERR(hr_op_attention_decode(dev, HR_DTYPE_F32, P(o), P(q), P(kv.kc), P(kv.vc), P(bt), P(lens), 0, 0, 2, 4, hk, d,
                                   nb, bs, maxb, 0, 0.3, 0, 0, 0.0, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "block_tables[0][1] = 9");
  bt[1] = 1;
  qsl[0] = 1;
  qsl[1] = 3;
  qsl[2] = 4;
  CHECK_ERR(hr_op_attention_prefill(dev, HR_DTYPE_F32, P(o), P(q), P(kv.kc), P(kv.vc), P(bt), P(lens), P(qsl), 2, 4, 4,
                                    hk, d, nb, bs, maxb, 0.3, 0, 0, 0.0, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "query_start_loc[0] must be 0");
  qsl[0] = 0;
  qsl[1] = 3;
  qsl[2] = 9;
  CHECK_ERR(hr_op_attention_prefill(dev, HR_DTYPE_F32, P(o), P(q), P(kv.kc), P(kv.vc), P(bt), P(lens), P(qsl), 2, 4, 4,
                                    hk, d, nb, bs, maxb, 0.3, 0, 0, 0.0, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "non-decreasing");
  qsl[2] = 4;
  lens[1] = 0;
  CHECK_ERR(hr_op_attention_prefill(dev, HR_DTYPE_F32, P(o), P(q), P(kv.kc), P(kv.vc), P(bt), P(lens), P(qsl), 2, 4, 4,
                                    hk, d, nb, bs, maxb, 0.3, 0, 0, 0.0, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "sequence 1 has 1 new tokens but seq_lens[1] = 0");
  uint64_t need = 0;
  CHECK_ERR(hr_paged_attention_workspace_bytes(HR_DTYPE_F32, 2, 4, d, maxb, bs, 0, NULL), HR_E_INVALID, "bytes_out");
  CHECK_OK(hr_paged_attention_workspace_bytes(HR_DTYPE_F32, 2, 4, d, maxb, bs, 0, &need));
  CHECK(need == 0, "no split needs no workspace (got %llu)", (unsigned long long)need);
  CHECK_OK(hr_paged_attention_workspace_bytes(HR_DTYPE_F32, 2, 4, d, maxb, bs, 16, &need));
  CHECK(need == 2ull * 4 * 2 * (d + 2) * 4, "workspace bytes %llu", (unsigned long long)need);
  /* threads */
  int64_t n = 0;
  CHECK_OK(hr_set_num_threads(dev, 3));
  CHECK_OK(hr_get_num_threads(dev, &n));
  CHECK(n == 3, "threads %lld", (long long)n);
  CHECK_OK(hr_set_num_threads(dev, 0));
  CHECK_OK(hr_get_num_threads(dev, &n));
  CHECK(n >= 1, "default threads %lld", (long long)n);
  CHECK_ERR(hr_get_num_threads(dev, NULL), HR_E_INVALID, "n_out");
  free_all();
  PASS();
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  CHECK_OK(hr_device_open(0, 1ull << 30, &dev));
  printf("CPU ISA: %s\n", hr_cpu_isa_name(hr_cpu_isa()));
  test_matmul();
  test_logits();
  test_embedding();
  test_rms_norm();
  test_rms_norm_strided();
  test_rope();
  test_silu_mul();
  test_kv_write();
  test_attention_decode();
  test_attention_prefill();
  test_errors();
  CHECK_OK(hr_device_close(dev));
  printf("all ops tests passed\n");
  return 0;
}
