/*
 * Ops added for the Gemma / Qwen3 / Phi-3 / sliding-window families (CPU backend, under
 * ASan/UBSan), each against a float64 reference:
 *   attention decode + prefill with a sliding window and logit soft-capping: |err| <= 2e-5
 *     (outputs are convex mixes of values in [-1, 1), fp32 accumulation over <= 200 keys);
 *   gelu_tanh_mul, scale, softcap: relative error <= 1e-6 (a few fp32 roundings and tanhf).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "headroom.h"

#include "check.h"
#include "device_bufs.h"

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}
static float frnd(void) { return ((float)(rnd() & 0xffffff) + 0.5f) / 8388608.0f - 1.0f; }
static float *frand_buf(int64_t n, float amp) {
  float *p = dalloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) p[i] = amp * frnd();
  return p;
}
static float *nan_buf(int64_t n) {
  float *p = dalloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) p[i] = NAN;
  return p;
}
static int32_t *ibuf(int64_t n) { return dalloc((size_t)n * 4); }

#define BEGIN(name) cur_test = (name)
#define PASS() printf("ok   %s\n", cur_test)

/* float64 attention of query position pos over keys max(0, pos-window+1) .. pos. */
static void ref_attend_window(double *out, const float *q, const float *kc, const float *vc, const int32_t *bt,
                              int64_t bs, int64_t hk_count, int64_t hk, int64_t d, int64_t pos, int64_t window,
                              double scale, double cap) {
  int64_t lo = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0, n = pos + 1 - lo;
  double *sc = malloc(sizeof(double) * (size_t)n), mx = -INFINITY, sum = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t t = lo + i;
    const float *k = kc + (((int64_t)bt[t / bs] * bs + t % bs) * hk_count + hk) * d;
    double s = 0;
    for (int64_t e = 0; e < d; e++) s += (double)q[e] * k[e];
    s *= scale;
    if (cap > 0) s = cap * tanh(s / cap);
    sc[i] = s;
    if (s > mx) mx = s;
  }
  for (int64_t i = 0; i < n; i++) sum += (sc[i] = exp(sc[i] - mx));
  for (int64_t e = 0; e < d; e++) out[e] = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t t = lo + i;
    const float *v = vc + (((int64_t)bt[t / bs] * bs + t % bs) * hk_count + hk) * d;
    for (int64_t e = 0; e < d; e++) out[e] += sc[i] / sum * v[e];
  }
  free(sc);
}

static void test_window_softcap(void) {
  BEGIN("attention decode/prefill: sliding window 1/5/16/37/1000, softcap 0/1.5, partitions none/16, GQA 2");
  const int64_t nb = 40, bs = 16, hk = 2, hq = 4, d = 16, maxb = 12, B = 3;
  const int64_t windows[] = {1, 5, 16, 37, 1000};
  const double caps[] = {0.0, 1.5};
  float *kc = frand_buf(nb * bs * hk * d, 1.0f), *vc = frand_buf(nb * bs * hk * d, 1.0f);
  int32_t *bt = ibuf(B * maxb);
  for (int64_t i = 0; i < B * maxb; i++) bt[i] = (int32_t)((i * 7 + 3) % nb); /* scattered, distinct */
  /* scale 1 with |q|,|k| < 2: scores up to ~20, so soft-capping changes them a lot */
  double scale = 1.0;
  int32_t *lens = ibuf(B), *qsl = ibuf(B + 1);
  const int64_t Tmax = 30 + 7 + 45;
  float *q = nan_buf(B * hq * d), *out = nan_buf(B * hq * d), *pq = nan_buf(Tmax * hq * d),
        *pout = nan_buf(Tmax * hq * d);
  uint64_t need16 = 0;
  CHECK_OK(hr_paged_attention_workspace_bytes(HR_DTYPE_F32, B, hq, d, maxb, bs, 16, &need16));
  float *ws16 = nan_buf((int64_t)need16 / 4);
  for (size_t wi = 0; wi < sizeof windows / sizeof *windows; wi++)
    for (size_t ci = 0; ci < 2; ci++) {
      int64_t W = windows[wi];
      double cap = caps[ci];
      /* decode: contexts 1, 40, 150 */
      lens[0] = 1;
      lens[1] = 40;
      lens[2] = 150;
      for (int64_t i = 0; i < B * hq * d; i++) q[i] = 2.0f * frnd(), out[i] = NAN;
      for (int64_t part = 0; part <= 16; part += 16) {
        uint64_t need = 0;
        CHECK_OK(hr_paged_attention_workspace_bytes(HR_DTYPE_F32, B, hq, d, maxb, bs, part, &need));
        CHECK(need <= need16, "workspace");
        float *ws = need ? ws16 : NULL;
        CHECK_OK(hr_op_attention_decode(dev, HR_DTYPE_F32, P(out), P(q), P(kc), P(vc), P(bt), P(lens), P(ws), need, B,
                                        hq, hk, d, nb, bs, maxb, part, scale, 0, W, cap, HR_DTYPE_F32, 1.0, 1.0));
        for (int64_t s = 0; s < B; s++)
          for (int64_t h = 0; h < hq; h++) {
            double ref[16];
            ref_attend_window(ref, q + (s * hq + h) * d, kc, vc, bt + s * maxb, bs, hk, h / (hq / hk), d, lens[s] - 1,
                              W, scale, cap);
            for (int64_t e = 0; e < d; e++) {
              float got = out[(s * hq + h) * d + e];
              CHECK(fabs(got - ref[e]) <= 2e-5, "decode W %lld cap %g part %lld seq %lld head %lld: %.8g vs %.8g",
                    (long long)W, cap, (long long)part, (long long)s, (long long)h, (double)got, ref[e]);
            }
          }
      }
      /* prefill: cached prefix 0 / 23 / 100 plus 30 / 7 / 45 new tokens */
      const int64_t cached[3] = {0, 23, 100}, newt[3] = {30, 7, 45};
      qsl[0] = 0;
      for (int64_t s = 0; s < B; s++) {
        lens[s] = (int32_t)(cached[s] + newt[s]);
        qsl[s + 1] = qsl[s] + (int32_t)newt[s];
      }
      int64_t T = qsl[B];
      for (int64_t i = 0; i < T * hq * d; i++) pq[i] = 2.0f * frnd(), pout[i] = NAN;
      CHECK_OK(hr_op_attention_prefill(dev, HR_DTYPE_F32, P(pout), P(pq), P(kc), P(vc), P(bt), P(lens), P(qsl), B, T,
                                       hq, hk, d, nb, bs, maxb, scale, 0, W, cap, HR_DTYPE_F32, 1.0, 1.0));
      for (int64_t s = 0; s < B; s++)
        for (int64_t i = 0; i < newt[s]; i++) {
          int64_t row = qsl[s] + i, pos = cached[s] + i;
          for (int64_t h = 0; h < hq; h++) {
            double ref[16];
            ref_attend_window(ref, pq + (row * hq + h) * d, kc, vc, bt + s * maxb, bs, hk, h / (hq / hk), d, pos, W,
                              scale, cap);
            for (int64_t e = 0; e < d; e++) {
              float got = pout[(row * hq + h) * d + e];
              CHECK(fabs(got - ref[e]) <= 2e-5, "prefill W %lld cap %g seq %lld pos %lld head %lld: %.8g vs %.8g",
                    (long long)W, cap, (long long)s, (long long)pos, (long long)h, (double)got, ref[e]);
            }
          }
        }
    }
  free_all();
  PASS();
}

static void test_elementwise(void) {
  BEGIN("gelu_tanh_mul (dense and merged gate_up), scale, softcap vs float64");
  const int64_t rows = 37, inter = 300;
  for (int merged = 0; merged < 2; merged++) {
    int64_t stride = merged ? 2 * inter : inter;
    float *g = frand_buf(rows * stride, 4.0f), *u = merged ? g + inter : frand_buf(rows * stride, 2.0f);
    float *out = nan_buf(rows * inter);
    CHECK_OK(hr_op_gelu_tanh_mul(dev, HR_DTYPE_F32, P(out), P(g), P(u), rows, inter, merged ? stride : 0));
    for (int64_t r = 0; r < rows; r++)
      for (int64_t i = 0; i < inter; i++) {
        double x = g[r * stride + i], y = u[r * stride + i];
        double ref = 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) * y;
        CHECK(fabs(out[r * inter + i] - ref) <= 1e-6 * (1 + fabs(ref)), "gelu row %lld col %lld: %.9g vs %.9g",
              (long long)r, (long long)i, (double)out[r * inter + i], ref);
      }
  }
  const int64_t n = 70001; /* more than one chunk, odd tail */
  float *x = frand_buf(n, 50.0f), *orig = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) orig[i] = x[i];
  CHECK_OK(hr_op_scale(dev, HR_DTYPE_F32, P(x), n, 45.254833995939045));
  for (int64_t i = 0; i < n; i++) {
    double ref = (double)orig[i] * 45.254833995939045;
    CHECK(fabs(x[i] - ref) <= 1e-6 * fabs(ref), "scale %lld", (long long)i);
  }
  for (int64_t i = 0; i < n; i++) x[i] = orig[i];
  CHECK_OK(hr_op_softcap(dev, HR_DTYPE_F32, P(x), n, 30.0));
  for (int64_t i = 0; i < n; i++) {
    double ref = 30.0 * tanh(orig[i] / 30.0);
    CHECK(fabs(x[i] - ref) <= 1e-6 * (1 + fabs(ref)), "softcap %lld: %.9g vs %.9g", (long long)i, (double)x[i], ref);
  }
  free(orig);
  /* refusals */
  CHECK_ERR(hr_op_softcap(dev, HR_DTYPE_F32, P(x), n, 0.0), HR_E_INVALID, "cap must be > 0");
  CHECK_ERR(hr_op_scale(dev, HR_DTYPE_F32, P(x), n, INFINITY), HR_E_INVALID, "scale must be finite");
  CHECK_ERR(hr_op_scale(dev, HR_DTYPE_F32, 0, n, 2.0), HR_E_INVALID, "x must not be 0");
  CHECK_ERR(hr_op_scale(dev, HR_DTYPE_BF16, P(x), n, 2.0), HR_E_UNSUPPORTED, "float32 only");
  CHECK_ERR(hr_op_gelu_tanh_mul(dev, HR_DTYPE_F32, P(x), P(x), P(x), 2, 8, 4), HR_E_INVALID, "in_stride");
  int32_t *bt = ibuf(2), *lens = ibuf(1);
  bt[0] = 0;
  bt[1] = 1;
  lens[0] = 3;
  float *kc = frand_buf(2 * 4 * 8, 1.0f), *vc = frand_buf(2 * 4 * 8, 1.0f), *q = frand_buf(8, 1.0f), *o = nan_buf(8);
  CHECK_ERR(hr_op_attention_decode(dev, HR_DTYPE_F32, P(o), P(q), P(kc), P(vc), P(bt), P(lens), 0, 0, 1, 1, 1, 8, 2, 4,
                                   2, 0, 0.3, 0, -1, 0.0, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "window must be >= 0");
  CHECK_ERR(hr_op_attention_decode(dev, HR_DTYPE_F32, P(o), P(q), P(kc), P(vc), P(bt), P(lens), 0, 0, 1, 1, 1, 8, 2, 4,
                                   2, 0, 0.3, 0, 0, NAN, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "softcap must be >= 0");
  free_all();
  PASS();
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  CHECK_OK(hr_device_open(0, 1ull << 28, &dev));
  test_window_softcap();
  test_elementwise();
  CHECK_OK(hr_device_close(dev));
  printf("all arch ops tests passed\n");
  return 0;
}
