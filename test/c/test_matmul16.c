/*
 * 16-bit weights on the CPU backend: hr_op_matmul_q / hr_op_logits_q / hr_op_embedding_q with
 * dtype f32 and wtype bf16 or f16 (weights stay 16-bit, activations and outputs fp32), on every
 * kernel path this CPU has (scalar, AVX2+F16C, AVX-512, AVX512-BF16), odd shapes, bias,
 * row_ids, 1 and 2 threads, against float64 references:
 *   widening paths: float64 of the widened weights and the fp32 x (fp32 rounding only);
 *   vdpbf16ps: float64 of the weights and x rounded to bf16 (restated here), and against the
 *     fp32 x within the rounding bound 2^-8 * sum |w x|.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/cpu/ops_cpu.h"
#include "check.h"
#include "device_bufs.h"

#define BEGIN(name) (cur_test = (name))

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}
static float uniform(void) { return (float)(next_u32() >> 8) / 16777216.0f * 2.0f - 1.0f; }

static float bf16_value(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
/* round-to-nearest-even to bf16 via double arithmetic (independent of the library's bit trick) */
static double round_bf16(float x) {
  if (x == 0.0f) return 0.0;
  int e;
  frexp((double)x, &e);           /* |x| in [2^(e-1), 2^e) */
  double ulp = ldexp(1.0, e - 8); /* 8 significant bits */
  return nearbyint((double)x / ulp) * ulp;
}

static const struct {
  int isa, features;
  const char *name;
} PATHS[] = {
    {HR_ISA_AVX512, HR_CPUX_ALL, "avx512-bf16"},
    {HR_ISA_AVX512, HR_CPUX_ALL & ~HR_CPUX_AVX512BF16, "avx512"},
    {HR_ISA_AVX2, HR_CPUX_ALL, "avx2"},
    {HR_ISA_SCALAR, 0, "scalar"},
};
#define NPATHS (int)(sizeof PATHS / sizeof PATHS[0])

/* Weights of either type: random bf16 bits of finite values, or f16 of random floats. */
static void fill_w(int64_t wt, uint16_t *w, float *wf, int64_t count) {
  for (int64_t i = 0; i < count; i++) {
    if (wt == HR_DTYPE_BF16) {
      float f = uniform() * 0.5f;
      uint32_t u;
      memcpy(&u, &f, 4);
      w[i] = (uint16_t)(u >> 16);
      wf[i] = bf16_value(w[i]);
    } else {
      uint16_t h = (uint16_t)((next_u32() & 0x8000) | ((10 + next_u32() % 6) << 10) | (next_u32() & 0x3ff));
      w[i] = h;
    }
  }
  if (wt == HR_DTYPE_F16) /* f16 values through the widening rule of IEEE half (exact in fp32) */
    for (int64_t i = 0; i < count; i++) {
      uint16_t h = w[i];
      int e = (h >> 10) & 0x1f, man = h & 0x3ff;
      double v = ldexp(1.0 + man / 1024.0, e - 15);
      wf[i] = (float)((h & 0x8000) ? -v : v);
    }
}

static void check_shape(int64_t wt, int bfdot, int64_t m, int64_t n, int64_t k, int with_bias, int logits) {
  uint16_t *w = dalloc((size_t)(n * k) * 2);
  float *wf = malloc((size_t)(n * k) * sizeof(float));
  fill_w(wt, w, wf, n * k);
  int64_t xrows = logits ? m + 3 : m;
  float *x = dalloc((size_t)(xrows * k) * 4), *y = dalloc((size_t)(m * n) * 4),
        *bias = with_bias ? dalloc((size_t)n * 4) : NULL;
  int32_t *rows = logits ? dalloc((size_t)m * 4) : NULL;
  for (int64_t i = 0; i < xrows * k; i++) x[i] = uniform() * (i % 13 == 0 ? 30.0f : 1.0f);
  if (rows)
    for (int64_t r = 0; r < m; r++) rows[r] = (int32_t)((r * 5 + 2) % xrows);
  if (bias)
    for (int64_t i = 0; i < n; i++) bias[i] = uniform();
  for (int64_t i = 0; i < m * n; i++) y[i] = NAN;
  if (logits)
    CHECK_OK(hr_op_logits_q(dev, HR_DTYPE_F32, wt, P(y), P(x), P(rows), m, xrows, P(w), n, k));
  else
    CHECK_OK(hr_op_matmul_q(dev, HR_DTYPE_F32, wt, P(y), P(x), P(w), P(bias), m, n, k));
  for (int64_t r = 0; r < m; r++) {
    const float *xr = x + (rows ? rows[r] : r) * k;
    for (int64_t c = 0; c < n; c++) {
      double want = bias ? bias[c] : 0, want_b = want, mag = 0;
      for (int64_t i = 0; i < k; i++) {
        want += (double)wf[c * k + i] * xr[i];
        want_b += (double)wf[c * k + i] * round_bf16(xr[i]);
        mag += fabs((double)wf[c * k + i] * xr[i]);
      }
      double got = y[r * n + c];
      if (bfdot) {
        CHECK(fabs(got - want_b) <= 1e-5 * mag + 1e-6, "%s wt %lld m=%lld n=%lld k=%lld y[%lld,%lld]=%.9g want %.9g",
              hr_cpu_16bit_path_name(wt), (long long)wt, (long long)m, (long long)n, (long long)k, (long long)r,
              (long long)c, got, want_b);
        CHECK(fabs(got - want) <= 0x1p-8 * mag * 1.001 + 1e-5 * mag + 1e-6, "bf16-rounding bound y[%lld,%lld]",
              (long long)r, (long long)c);
      } else {
        CHECK(fabs(got - want) <= 1e-5 * mag + 1e-6, "%s wt %lld m=%lld n=%lld k=%lld y[%lld,%lld]=%.9g want %.9g",
              hr_cpu_16bit_path_name(wt), (long long)wt, (long long)m, (long long)n, (long long)k, (long long)r,
              (long long)c, got, want);
      }
    }
  }
  free(wf);
  free_all();
}

static void test_matmul16(void) {
  BEGIN("matmul_q with bf16/f16 weights: every path x shapes x threads vs float64");
  static const int64_t shapes[][3] = {{1, 37, 64}, {2, 9, 17},   {3, 64, 33}, {4, 17, 100}, {5, 8, 31},
                                      {7, 40, 48}, {16, 21, 96}, {33, 13, 7}, {70, 33, 40}, {141, 6, 130}};
  static const int64_t wtypes[] = {HR_DTYPE_BF16, HR_DTYPE_F16};
  int runs = 0;
  for (int p = 0; p < NPATHS; p++)
    for (int t = 0; t < 2; t++) {
      hr_cpu_force_isa(PATHS[p].isa);
      hr_cpu_force_features(PATHS[p].features);
      const char *got = hr_cpu_16bit_path_name(wtypes[t]);
      int bfdot = !strcmp(got, "avx512-bf16");
      /* f16 never uses vdpbf16ps: on the first path it runs the widening AVX-512 kernel */
      const char *want = wtypes[t] == HR_DTYPE_F16 && p == 0 ? "avx512" : PATHS[p].name;
      if (strcmp(got, want)) {
        printf("     (16-bit path %s for wtype %lld: not on this CPU, skipped)\n", want, (long long)wtypes[t]);
        continue;
      }
      for (int threads = 1; threads <= 2; threads++) {
        CHECK_OK(hr_set_num_threads(dev, threads));
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++, runs++)
          check_shape(wtypes[t], bfdot, shapes[s][0], shapes[s][1], shapes[s][2], (int)(s & 1) && s % 3 != 2,
                      (int)(s % 3 == 2));
      }
    }
  hr_cpu_force_isa(HR_ISA_AVX512);
  hr_cpu_force_features(-1);
  CHECK_OK(hr_set_num_threads(dev, 0));
  printf("ok   %s (%d runs)\n", cur_test, runs);
}

static void test_embedding16(void) {
  BEGIN("embedding_q with a bf16/f16 table: rows widened exactly");
  static const int64_t wtypes[] = {HR_DTYPE_BF16, HR_DTYPE_F16};
  for (int t = 0; t < 2; t++) {
    int64_t vocab = 11, dim = 37;
    uint16_t *table = dalloc((size_t)(vocab * dim) * 2);
    float *tf = malloc((size_t)(vocab * dim) * sizeof(float));
    fill_w(wtypes[t], table, tf, vocab * dim);
    int32_t *ids = dalloc(3 * 4);
    ids[0] = 10, ids[1] = 0, ids[2] = 10;
    float *out = dalloc((size_t)(3 * dim) * 4);
    CHECK_OK(hr_op_embedding_q(dev, HR_DTYPE_F32, wtypes[t], P(out), P(table), P(ids), 3, vocab, dim));
    for (int r = 0; r < 3; r++)
      for (int64_t i = 0; i < dim; i++)
        CHECK(out[r * dim + i] == tf[ids[r] * dim + i], "wt %lld row %d [%lld]", (long long)wtypes[t], r, (long long)i);
    free(tf);
    free_all();
  }
  /* 16-bit weights need fp32 activations */
  float *x = dalloc(64), *y = dalloc(64), *w = dalloc(64);
  CHECK_ERR(hr_op_matmul_q(dev, HR_DTYPE_BF16, HR_DTYPE_F16, P(y), P(x), P(w), 0, 1, 1, 4), HR_E_INVALID,
            "neither the dtype");
  free_all();
  printf("ok   %s\n", cur_test);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  CHECK_OK(hr_device_open(0, 1ull << 30, &dev));
  test_matmul16();
  test_embedding16();
  CHECK_OK(hr_device_close(dev));
  printf("all 16-bit matmul tests passed\n");
  return 0;
}
