/*
 * GGUF blocks -> one byte per weight + per-16 scale/offset (see quant_unpack.h). The block
 * layouts are those of csrc/core/quant.c (the scalar dequantization reference); each
 * unpacker is plain C that the compiler vectorizes in one clone per ISA.
 */
#include "quant_unpack.h"

#include <string.h>

#include "../core/quant.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define CLONES
#endif

/* fp16 -> fp32: normal numbers by bit arithmetic, the rest (zero, subnormal, inf/nan) by the reference. */
static inline float half_at(const uint8_t *p) {
  uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
  uint32_t e = (h >> 10) & 0x1f;
  if (e == 0 || e == 31) return hr_half_to_float(h);
  uint32_t bits = ((uint32_t)(h & 0x8000) << 16) | ((e + 112) << 23) | ((uint32_t)(h & 0x3ff) << 13);
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static inline void put2(float *sw, float *mw, float s, float m) {
  sw[0] = sw[1] = s;
  mw[0] = mw[1] = m;
}

CLONES static void unpack_q4_0(const uint8_t *b, int64_t nb, uint8_t *q, float *sw, float *mw) {
  for (int64_t i = 0; i < nb; i++, b += 18, q += 32, sw += 2, mw += 2) {
    float d = half_at(b);
    for (int j = 0; j < 16; j++) {
      q[j] = b[2 + j] & 0xF;
      q[j + 16] = b[2 + j] >> 4;
    }
    put2(sw, mw, d, -8.0f * d);
  }
}

CLONES static void unpack_q4_1(const uint8_t *b, int64_t nb, uint8_t *q, float *sw, float *mw) {
  for (int64_t i = 0; i < nb; i++, b += 20, q += 32, sw += 2, mw += 2) {
    for (int j = 0; j < 16; j++) {
      q[j] = b[4 + j] & 0xF;
      q[j + 16] = b[4 + j] >> 4;
    }
    put2(sw, mw, half_at(b), half_at(b + 2));
  }
}

static inline void unpack_q5(const uint8_t *p, uint8_t *q) {
  uint32_t qh;
  memcpy(&qh, p, 4);
  const uint8_t *qs = p + 4;
  for (int j = 0; j < 16; j++) {
    q[j] = (uint8_t)((qs[j] & 0xF) | (((qh >> j) << 4) & 0x10));
    q[j + 16] = (uint8_t)((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10));
  }
}

CLONES static void unpack_q5_0(const uint8_t *b, int64_t nb, uint8_t *q, float *sw, float *mw) {
  for (int64_t i = 0; i < nb; i++, b += 22, q += 32, sw += 2, mw += 2) {
    float d = half_at(b);
    unpack_q5(b + 2, q);
    put2(sw, mw, d, -16.0f * d);
  }
}

CLONES static void unpack_q5_1(const uint8_t *b, int64_t nb, uint8_t *q, float *sw, float *mw) {
  for (int64_t i = 0; i < nb; i++, b += 24, q += 32, sw += 2, mw += 2) {
    unpack_q5(b + 4, q);
    put2(sw, mw, half_at(b), half_at(b + 2));
  }
}

CLONES static void unpack_q8_0(const uint8_t *b, int64_t nb, uint8_t *q, float *sw, float *mw) {
  for (int64_t i = 0; i < nb; i++, b += 34, q += 32, sw += 2, mw += 2) {
    memcpy(q, b + 2, 32); /* signed int8, kept as is */
    put2(sw, mw, half_at(b), 0.0f);
  }
}

/* 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block (as quant.c). */
static inline void scale_min_k4(int j, const uint8_t *s, int *d, int *m) {
  if (j < 4) {
    *d = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *d = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

static inline void unpack_q45_k(const uint8_t *b, int64_t nb, uint8_t *q, float *sw, float *mw, int five) {
  const int64_t bb = five ? 176 : 144;
  for (int64_t i = 0; i < nb; i++, b += bb, q += 256, sw += 16, mw += 16) {
    float d = half_at(b), dmin = half_at(b + 2);
    const uint8_t *sc = b + 4, *qh = b + 16, *ql = b + (five ? 48 : 16);
    for (int c = 0; c < 4; c++, ql += 32) { /* 64 weights: sub-blocks 2c (low nibbles), 2c+1 (high) */
      uint8_t *o = q + 64 * c;
      for (int l = 0; l < 32; l++) {
        o[l] = ql[l] & 0xF;
        o[l + 32] = ql[l] >> 4;
      }
      if (five)
        for (int l = 0; l < 32; l++) {
          o[l] |= (uint8_t)(((qh[l] >> (2 * c)) & 1) << 4);
          o[l + 32] |= (uint8_t)(((qh[l] >> (2 * c + 1)) & 1) << 4);
        }
      for (int h = 0; h < 2; h++) {
        int s, m;
        scale_min_k4(2 * c + h, sc, &s, &m);
        put2(sw + 4 * c + 2 * h, mw + 4 * c + 2 * h, d * (float)s, -(dmin * (float)m));
      }
    }
  }
}

CLONES static void unpack_q4_k(const uint8_t *b, int64_t nb, uint8_t *q, float *sw, float *mw) {
  unpack_q45_k(b, nb, q, sw, mw, 0);
}

CLONES static void unpack_q5_k(const uint8_t *b, int64_t nb, uint8_t *q, float *sw, float *mw) {
  unpack_q45_k(b, nb, q, sw, mw, 1);
}

/* Q6_K {ql[128]; qh[64]; int8 scales[16]; d}: two halves of 128; in a half, element 32t + l
 * (t = 0..3, l = 0..31) takes 4 bits of ql and 2 of qh, and scale 2t + l / 16. */
CLONES static void unpack_q6_k(const uint8_t *b, int64_t nb, uint8_t *q, float *sw, float *mw) {
  for (int64_t i = 0; i < nb; i++, b += 210, q += 256, sw += 16, mw += 16) {
    float d = half_at(b + 208);
    const int8_t *sc = (const int8_t *)(b + 192);
    for (int h = 0; h < 2; h++) {
      const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
      uint8_t *o = q + 128 * h;
      for (int l = 0; l < 32; l++) {
        o[l] = (uint8_t)((ql[l] & 0xF) | ((qh[l] & 3) << 4));
        o[l + 32] = (uint8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
        o[l + 64] = (uint8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
        o[l + 96] = (uint8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
      }
    }
    for (int g = 0; g < 16; g++) {
      float s = d * (float)sc[g];
      sw[g] = s;
      mw[g] = -32.0f * s;
    }
  }
}

static const struct {
  int64_t qtype;
  hr_qunpack_info info;
} UNPACK[] = {
    {HR_QTYPE_Q4_0, {unpack_q4_0, 0, 1}}, {HR_QTYPE_Q4_1, {unpack_q4_1, 0, 1}}, {HR_QTYPE_Q5_0, {unpack_q5_0, 0, 1}},
    {HR_QTYPE_Q5_1, {unpack_q5_1, 0, 1}}, {HR_QTYPE_Q8_0, {unpack_q8_0, 1, 0}}, {HR_QTYPE_Q4_K, {unpack_q4_k, 0, 1}},
    {HR_QTYPE_Q5_K, {unpack_q5_k, 0, 1}}, {HR_QTYPE_Q6_K, {unpack_q6_k, 0, 1}},
};

const hr_qunpack_info *hr_qunpack_lookup(int64_t qtype) {
  for (size_t i = 0; i < sizeof UNPACK / sizeof UNPACK[0]; i++)
    if (UNPACK[i].qtype == qtype) return &UNPACK[i].info;
  return 0;
}
