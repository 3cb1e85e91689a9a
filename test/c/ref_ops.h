/* float64 references for test_ops.c (straightforward loops, no blocking, no tricks). */
#ifndef HR_TEST_REF_OPS_H
#define HR_TEST_REF_OPS_H

#include <math.h>
#include <stdint.h>

/* y = x . w^T + bias; also returns per-element sum |x||w| in mag (for error bounds). */
static void ref_matmul(double *y, double *mag, const float *x, const int32_t *rows, const float *w, const float *bias,
                       int64_t m, int64_t n, int64_t k) {
  for (int64_t i = 0; i < m; i++) {
    const float *xr = x + (rows ? rows[i] : i) * k;
    for (int64_t j = 0; j < n; j++) {
      double s = bias ? bias[j] : 0.0, a = bias ? fabs(bias[j]) : 0.0;
      for (int64_t l = 0; l < k; l++) {
        s += (double)xr[l] * (double)w[j * k + l];
        a += fabs((double)xr[l] * (double)w[j * k + l]);
      }
      y[i * n + j] = s;
      mag[i * n + j] = a;
    }
  }
}

/* rotate pairs of one head in float64 */
static void ref_rope_head(double *h, int64_t pos, const float *invf, int64_t rot, int gptj) {
  for (int64_t i = 0; i < rot / 2; i++) {
    double ang = (double)pos * (double)invf[i], c = cos(ang), s = sin(ang);
    int64_t a = gptj ? 2 * i : i, b = gptj ? 2 * i + 1 : i + rot / 2;
    double x0 = h[a], x1 = h[b];
    h[a] = x0 * c - x1 * s;
    h[b] = x1 * c + x0 * s;
  }
}

/* Attention of one query vector over keys 0..n-1 of a sequence, read through the block
 * table from a [nb, bs, hk, d] cache; out[d]. */
static void ref_attend(double *out, const float *q, const float *kc, const float *vc, const int32_t *bt, int64_t bs,
                       int64_t hk_count, int64_t hk, int64_t d, int64_t n, double scale) {
  double mx = -INFINITY;
  double *sc = (double *)malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  for (int64_t t = 0; t < n; t++) {
    const float *k = kc + (((int64_t)bt[t / bs] * bs + t % bs) * hk_count + hk) * d;
    double s = 0;
    for (int64_t i = 0; i < d; i++) s += (double)q[i] * (double)k[i];
    sc[t] = s * scale;
    if (sc[t] > mx) mx = sc[t];
  }
  double sum = 0;
  for (int64_t t = 0; t < n; t++) {
    sc[t] = exp(sc[t] - mx);
    sum += sc[t];
  }
  for (int64_t i = 0; i < d; i++) out[i] = 0;
  for (int64_t t = 0; t < n; t++) {
    const float *v = vc + (((int64_t)bt[t / bs] * bs + t % bs) * hk_count + hk) * d;
    for (int64_t i = 0; i < d; i++) out[i] += sc[t] / sum * (double)v[i];
  }
  free(sc);
}

#endif
