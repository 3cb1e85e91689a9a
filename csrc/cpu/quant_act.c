/*
 * Activation quantization matching ggml's CPU backend bit for bit (see quant_act.h for the rules).
 * Plain C the compiler vectorizes per ISA clone; the rounding is done with integer arithmetic on
 * the float's bits (round half to even, as _mm256_round_ps / ggml's nearest_int), so the result
 * does not depend on the FP environment. Built with -std=c11, so x * id is rounded to fp32
 * before the rounding step (no FMA contraction), as in ggml.
 */
#include "quant_act.h"

#include <math.h>
#include <string.h>

#include "../core/float_formats.h"
#include "../core/quant.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define CLONES
#endif

int hr_act_kind(int64_t qtype) {
  switch (qtype) {
    case HR_QTYPE_Q4_0:
    case HR_QTYPE_Q5_0:
    case HR_QTYPE_Q8_0: return HR_ACT_Q8_0;
    case HR_QTYPE_Q4_1:
    case HR_QTYPE_Q5_1: return HR_ACT_Q8_1;
    case HR_QTYPE_Q4_K:
    case HR_QTYPE_Q5_K:
    case HR_QTYPE_Q6_K: return HR_ACT_Q8_K;
    default: return -1;
  }
}

int64_t hr_act_block(int kind) { return kind == HR_ACT_Q8_K ? 256 : 32; }

/* Round half to even of |v| < 2^22 (1.5 * 2^23 leaves the integer in the low mantissa bits). */
static inline int32_t rne(float v) {
  float t = v + 12582912.0f;
  int32_t r;
  memcpy(&r, &t, 4);
  return (r & 0x007fffff) - 0x00400000;
}

/* One q8_0 / q8_1 block of 32: q, the fp16 scale bits, and (q8_1) the fp16 bits of d * sum(q). */
static inline void block_q8_0(const float *x, int8_t *q, uint16_t *dh, uint16_t *sh) {
  float amax = 0.0f;
  for (int i = 0; i < 32; i++) {
    float a = fabsf(x[i]);
    amax = a > amax ? a : amax;
  }
  const float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
  int32_t sum = 0;
  for (int i = 0; i < 32; i++) {
    float v = x[i] * id;
    int32_t r = rne(v);
    r = r > 127 ? 127 : r < -128 ? -128 : r; /* ggml's packs saturate the same way */
    q[i] = (int8_t)r;
    sum += r;
  }
  *dh = hr_f32_to_f16(d);
  *sh = hr_f32_to_f16(d * (float)sum);
}

/* One q8_K block of 256: q and the fp32 scale (bsums are summed by the caller). */
static inline float block_q8_k(const float *x, int8_t *q) {
  float amax = 0.0f;
  for (int j = 0; j < 256; j++) {
    float a = fabsf(x[j]);
    amax = a > amax ? a : amax;
  }
  if (!(amax > 0.0f)) { /* ggml: !amax -> all zero (NaN never beats 0 in its strict compare either) */
    memset(q, 0, 256);
    return 0.0f;
  }
  float max = 0.0f; /* the first element of largest magnitude, with its sign */
  for (int j = 0; j < 256; j++)
    if (fabsf(x[j]) == amax) {
      max = x[j];
      break;
    }
  const float iscale = -127.f / max;
  for (int j = 0; j < 256; j++) {
    float v = iscale * x[j];
    int32_t r = rne(v);
    q[j] = (int8_t)(r < 127 ? r : 127);
  }
  return 1 / iscale;
}

CLONES void hr_act_quantize_row(int kind, const float *x, int64_t k, int8_t *q, float *d16, float *s16, int16_t *b16) {
  const int64_t ab = hr_act_block(kind);
  for (int64_t b = 0; b < k; b += ab) {
    float d;
    uint16_t dh = 0, sh = 0;
    if (kind == HR_ACT_Q8_K) {
      d = block_q8_k(x + b, q + b);
    } else {
      block_q8_0(x + b, q + b, &dh, &sh);
      d = hr_f16_to_f32(dh);
    }
    for (int64_t g = b / 16; g < (b + ab) / 16; g++) {
      int32_t s = 0;
      for (int l = 0; l < 16; l++) s += q[16 * g + l];
      d16[g] = d;
      b16[g] = (int16_t)s;
      s16[g] = d * (float)s;
    }
    if (kind == HR_ACT_Q8_1) { /* ggml: m * s per 32 with s rounded to fp16 */
      s16[b / 16] = hr_f16_to_f32(sh);
      s16[b / 16 + 1] = 0.0f;
    }
  }
}

int64_t hr_act_quantize_ggml(int kind, const float *x, int64_t k, void *out) {
  uint8_t *o = out;
  const int64_t ab = hr_act_block(kind);
  for (int64_t b = 0; b < k; b += ab) {
    if (kind == HR_ACT_Q8_K) {
      float d = block_q8_k(x + b, (int8_t *)(o + 4));
      memcpy(o, &d, 4);
      for (int g = 0; g < 16; g++) {
        int16_t s = 0;
        for (int l = 0; l < 16; l++) s = (int16_t)(s + (int8_t)o[4 + 16 * g + l]);
        memcpy(o + 260 + 2 * g, &s, 2);
      }
      o += 292;
    } else {
      uint16_t dh, sh;
      const int off = kind == HR_ACT_Q8_1 ? 4 : 2;
      block_q8_0(x + b, (int8_t *)(o + off), &dh, &sh);
      memcpy(o, &dh, 2);
      if (kind == HR_ACT_Q8_1) memcpy(o + 2, &sh, 2);
      o += off + 32;
    }
  }
  return (int64_t)(o - (uint8_t *)out);
}
