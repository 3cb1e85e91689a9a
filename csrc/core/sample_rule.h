/*
 * Internal: the arithmetic of hr_op_sample / hr_op_argmax (headroom.h "sampling"), shared by
 * the CPU executor (csrc/cpu/ops_sample.c) and the CUDA kernels (csrc/cuda/ops_sample.cu) so
 * both compute bit-identical keys and weights and therefore pick identical tokens:
 *
 *  - key(l): the float32 logit as an order-preserving uint32 (NaN -> key(-inf), -0 -> +0), so
 *    key order == float order and "ties" are equal logits;
 *  - weight q(l) = floor(e((l - max) * (1 / T)) * 2^40) as an integer: e() is a fixed
 *    polynomial exp built from single IEEE float adds/multiplies (no FMA contraction: the C
 *    files are compiled with -std=c11, i.e. -ffp-contract=off; device code uses __fadd_rn /
 *    __fmul_rn), so CPU and GPU agree bit for bit, and all masses are exact uint64 sums,
 *    independent of summation order. A weight below 2^-40 of the top token's is 0.
 */
#ifndef HR_SAMPLE_RULE_H
#define HR_SAMPLE_RULE_H

#include <stdint.h>

#if defined(__CUDACC__)
#define HR_SR_FN static __host__ __device__ __forceinline__
#else
#define HR_SR_FN static inline
#endif

#if defined(__CUDA_ARCH__)
#define HR_SR_ADD(a, b) __fadd_rn((a), (b))
#define HR_SR_MUL(a, b) __fmul_rn((a), (b))
#define HR_SR_DIV(a, b) __fdiv_rn((a), (b))
#else
#define HR_SR_ADD(a, b) ((a) + (b))
#define HR_SR_MUL(a, b) ((a) * (b))
#define HR_SR_DIV(a, b) ((a) / (b))
#endif

#define HR_SAMPLE_GREEDY_T 1e-5f        /* temperature below this (or NaN): argmax */
#define HR_SAMPLE_Q_ONE (1ULL << 40)    /* fixed-point weight of the top token */
#define HR_SAMPLE_MAX_VOCAB (1LL << 23) /* so that V * 2^40 fits a uint64 */
#define HR_SAMPLE_Z_MIN (-32.0f)        /* e(z) = 0 below (2^-46 < 2^-40: weight 0 anyway) */

HR_SR_FN uint32_t hr_sr_f2u(float f) {
#if defined(__CUDA_ARCH__)
  return (uint32_t)__float_as_uint(f);
#else
  union {
    float f;
    uint32_t u;
  } c;
  c.f = f;
  return c.u;
#endif
}
HR_SR_FN float hr_sr_u2f(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  union {
    float f;
    uint32_t u;
  } c;
  c.u = u;
  return c.f;
#endif
}

#define HR_SR_KEY_NEG_INF 0x007fffffu /* hr_sr_key(-inf) == hr_sr_key(NaN) */
#define HR_SR_KEY_POS_INF 0xff800000u

/* Order-preserving key of a logit. NaN sorts as -inf; -0 as +0. */
HR_SR_FN uint32_t hr_sr_key(float l) {
  if (l != l) return HR_SR_KEY_NEG_INF;
  if (l == 0.0f) l = 0.0f;
  uint32_t b = hr_sr_f2u(l);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
/* The logit of a key (inverse of hr_sr_key on the keys it produces). */
HR_SR_FN float hr_sr_unkey(uint32_t k) { return hr_sr_u2f((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k); }

/* e^z for z in [HR_SAMPLE_Z_MIN, 0] (0 below, NaN -> 0); rel. error ~1e-7, deterministic. */
HR_SR_FN float hr_sr_exp(float z) {
  if (!(z >= HR_SAMPLE_Z_MIN)) return 0.0f;
  if (z > 0.0f) z = 0.0f;
  const float t = HR_SR_MUL(z, 1.44269504088896341f);
  const int n = (int)HR_SR_ADD(t, -0.5f); /* round(t) for t <= 0 (truncation toward zero) */
  const float fn = (float)n;
  /* Cody-Waite: ln2_hi has 16 significant bits, so fn * ln2_hi is exact for |n| < 2^8 */
  float r = HR_SR_ADD(z, -HR_SR_MUL(fn, 0.693145751953125f));
  r = HR_SR_ADD(r, -HR_SR_MUL(fn, 1.428606765330187e-06f));
  /* Taylor coefficients 1/7! .. 1/3! as decimal literals (no compile-time division to fold) */
  float p = 1.98412701e-4f;
  p = HR_SR_ADD(HR_SR_MUL(p, r), 1.38888892e-3f);
  p = HR_SR_ADD(HR_SR_MUL(p, r), 8.33333377e-3f);
  p = HR_SR_ADD(HR_SR_MUL(p, r), 4.16666679e-2f);
  p = HR_SR_ADD(HR_SR_MUL(p, r), 1.66666672e-1f);
  p = HR_SR_ADD(HR_SR_MUL(p, r), 0.5f);
  p = HR_SR_ADD(HR_SR_MUL(p, r), 1.0f);
  p = HR_SR_ADD(HR_SR_MUL(p, r), 1.0f);
  /* times 2^n (n in [-47, 0]: a normal power of two, exact) */
  return HR_SR_MUL(p, hr_sr_u2f((uint32_t)(127 + n) << 23));
}

/* 1 / T (the caller has checked T >= HR_SAMPLE_GREEDY_T; T = +inf gives 0). */
HR_SR_FN float hr_sr_inv_t(float t) { return HR_SR_DIV(1.0f, t); }

/* Fixed-point weight of logit l given the row max m (finite) and inv_t = 1/T. */
HR_SR_FN uint64_t hr_sr_weight(float l, float m, float inv_t) {
  if (!(l >= -3.40282347e+38f)) return 0; /* -inf and NaN */
  const float z = HR_SR_MUL(HR_SR_ADD(l, -m), inv_t);
  const float w = hr_sr_exp(z); /* in [0, 1], 1 for l == m */
  /* w * 2^40 is exact; truncate (both sides convert float -> integer toward zero) */
  return (uint64_t)HR_SR_MUL(w, 1099511627776.0f);
}

/* Weight of the token(s) whose key is k. */
HR_SR_FN uint64_t hr_sr_weight_key(uint32_t k, float m, float inv_t) { return hr_sr_weight(hr_sr_unkey(k), m, inv_t); }

/* r = min(floor(u * Q), Q - 1) (u NaN or < 0 -> 0): the draw's position in [0, Q). */
HR_SR_FN uint64_t hr_sr_draw(float u, uint64_t q_total) {
  if (q_total == 0) return 0;
  if (!(u > 0.0f)) return 0;
  double r;
#if defined(__CUDA_ARCH__)
  r = __dmul_rn((double)u, __ull2double_rn(q_total));
#else
  r = (double)u * (double)q_total;
#endif
  if (!(r < 18446744073709549568.0)) return q_total - 1; /* also u = +inf */
  uint64_t ri = (uint64_t)r;
  return ri < q_total ? ri : q_total - 1;
}

/* Top-p target mass: max(1, ceil(p * Q_k)) (the caller has checked p < 1; p <= 0 keeps the top token). */
HR_SR_FN uint64_t hr_sr_top_p_target(float p, uint64_t q_k) {
  if (!(p > 0.0f)) return 1;
  double t;
#if defined(__CUDA_ARCH__)
  t = __dmul_rn((double)p, __ull2double_rn(q_k));
#else
  t = (double)p * (double)q_k;
#endif
  /* ceil: t is in [0, 2^63); (double)ti is exact (a truncated double) */
  uint64_t ti = (uint64_t)t;
  if ((double)ti < t) ti++;
  if (ti < 1) ti = 1;
  if (ti > q_k) ti = q_k;
  return ti;
}

/* Effective top-k (0 = off): k <= 0 or k >= V is off. */
HR_SR_FN int64_t hr_sr_top_k(int32_t k, int64_t vocab) { return (k <= 0 || (int64_t)k >= vocab) ? 0 : (int64_t)k; }
/* 1 when top-p filters (p < 1; NaN and p >= 1 are off). */
HR_SR_FN int hr_sr_top_p_on(float p) { return p < 1.0f; }

#endif
