/* float64 references for test_ops.c (straightforward loops, no blocking, no tricks). */
#ifndef HR_TEST_REF_OPS_H
#define HR_TEST_REF_OPS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* y = x . w^T + bias; also returns per-element sum |x||w| in mag (for error bounds). */
static inline void ref_matmul(double *y, double *mag, const float *x, const int32_t *rows, const float *w,
                              const float *bias, int64_t m, int64_t n, int64_t k) {
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
static inline void ref_rope_head(double *h, int64_t pos, const float *invf, int64_t rot, int gptj) {
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
static inline void ref_attend(double *out, const float *q, const float *kc, const float *vc, const int32_t *bt,
                              int64_t bs, int64_t hk_count, int64_t hk, int64_t d, int64_t n, double scale) {
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

/* One element of a KV cache stored as kv_dtype (HR_DTYPE_* codes 0..4), decoded from the
 * formats' definitions: (-1)^s 2^(E - bias) (1 + M / 2^m), E = 0: 2^(1 - bias) M / 2^m; f16,
 * bf16 and E5M2 have IEEE inf/NaN, E4M3 only NaN (S.1111.111). */
static inline double ref_kv_elem(int64_t dt, const void *cache, int64_t i) {
  if (dt == 0) return ((const float *)cache)[i];
  int bits = dt <= 2 ? 16 : 8, eb, mb, bias, ieee = dt != 3;
  uint32_t c = bits == 16 ? ((const uint16_t *)cache)[i] : ((const uint8_t *)cache)[i];
  if (dt == 1)
    eb = 5, mb = 10, bias = 15;
  else if (dt == 2)
    eb = 8, mb = 7, bias = 127;
  else if (dt == 3)
    eb = 4, mb = 3, bias = 7;
  else
    eb = 5, mb = 2, bias = 15;
  uint32_t sgn = c >> (bits - 1), E = (c >> mb) & ((1u << eb) - 1), M = c & ((1u << mb) - 1), emax = (1u << eb) - 1;
  double sign = sgn ? -1.0 : 1.0;
  if (ieee && E == emax) return M ? NAN : sign * INFINITY;
  if (!ieee && E == emax && M == (1u << mb) - 1) return NAN;
  if (E == 0) return sign * pow(2.0, 1 - bias) * ((double)M / pow(2.0, mb));
  return sign * pow(2.0, (double)E - bias) * (1.0 + (double)M / pow(2.0, mb));
}

/* The dequantized cache: n elements of kv_dtype dt times scale, as doubles (malloc'd). */
static inline double *ref_dequant(int64_t dt, const void *cache, int64_t n, double scale) {
  double *x = (double *)malloc(sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++) x[i] = ref_kv_elem(dt, cache, i) * scale;
  return x;
}

/* Attention of query position pos over keys max(0, pos - window + 1) .. pos (window 0 = all)
 * of a dequantized [nb, bs, hk_count, d] cache (ref_dequant); scores soft-capped when cap > 0. */
static inline void ref_attend_kv(double *out, const float *q, const double *kc, const double *vc, const int32_t *bt,
                                 int64_t bs, int64_t hk_count, int64_t hk, int64_t d, int64_t pos, int64_t window,
                                 double scale, double cap) {
  int64_t lo = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0, n = pos + 1 - lo;
  double *sc = (double *)malloc(sizeof(double) * (size_t)n), mx = -INFINITY, sum = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t t = lo + i, base = (((int64_t)bt[t / bs] * bs + t % bs) * hk_count + hk) * d;
    double s = 0;
    for (int64_t e = 0; e < d; e++) s += (double)q[e] * kc[base + e];
    s *= scale;
    if (cap > 0) s = cap * tanh(s / cap);
    sc[i] = s;
    if (s > mx) mx = s;
  }
  for (int64_t i = 0; i < n; i++) sum += (sc[i] = exp(sc[i] - mx));
  for (int64_t e = 0; e < d; e++) out[e] = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t t = lo + i, base = (((int64_t)bt[t / bs] * bs + t % bs) * hk_count + hk) * d;
    for (int64_t e = 0; e < d; e++) out[e] += sc[i] / sum * vc[base + e];
  }
  free(sc);
}

#endif
