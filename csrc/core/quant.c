/*
 * GGUF block formats: sizes and the scalar dequantization reference (see quant.h).
 * Block layouts (little-endian, fp16 scales):
 *   Q4_0 {d; qs[16]}            x = (nibble - 8) * d            elements j and j+16 share qs[j]
 *   Q4_1 {d, m; qs[16]}         x = nibble * d + m
 *   Q5_0 {d; qh[4]; qs[16]}     x = ((nibble | bit << 4) - 16) * d
 *   Q5_1 {d, m; qh[4]; qs[16]}  x = (nibble | bit << 4) * d + m
 *   Q8_0 {d; int8 qs[32]}       x = q * d
 *   Q4_K {d, dmin; scales[12]; qs[128]}          256 elements, 8 sub-blocks with 6-bit scale/min
 *   Q5_K {d, dmin; scales[12]; qh[32]; qs[128]}  as Q4_K plus a fifth bit
 *   Q6_K {ql[128]; qh[64]; int8 scales[16]; d}   16 sub-blocks of 16, x = d * scale * (q - 32)
 */
#include "quant.h"

#include <string.h>

#include "status.h"

static const hr_quant_info QUANT_TYPES[] = {
    {HR_QTYPE_Q4_0, "Q4_0", 32, 18},   {HR_QTYPE_Q4_1, "Q4_1", 32, 20},   {HR_QTYPE_Q5_0, "Q5_0", 32, 22},
    {HR_QTYPE_Q5_1, "Q5_1", 32, 24},   {HR_QTYPE_Q8_0, "Q8_0", 32, 34},   {HR_QTYPE_Q4_K, "Q4_K", 256, 144},
    {HR_QTYPE_Q5_K, "Q5_K", 256, 176}, {HR_QTYPE_Q6_K, "Q6_K", 256, 210},
};

const hr_quant_info *hr_quant_lookup(int64_t qtype) {
  for (size_t i = 0; i < sizeof QUANT_TYPES / sizeof QUANT_TYPES[0]; i++)
    if (QUANT_TYPES[i].qtype == qtype) return &QUANT_TYPES[i];
  return 0;
}

float hr_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else { /* subnormal: normalize */
      exp = 127 - 15 + 1;
      while (!(man & 0x400)) {
        man <<= 1;
        exp--;
      }
      bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static inline float half_at(const uint8_t *p) { return hr_half_to_float((uint16_t)(p[0] | (p[1] << 8))); }

/* 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block, packed in 12 bytes. */
static inline void scale_min_k4(int j, const uint8_t *q, int *d, int *m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

static void deq_q4_0(const uint8_t *b, float *y) {
  float d = half_at(b);
  const uint8_t *qs = b + 2;
  for (int j = 0; j < 16; j++) {
    y[j] = (float)((qs[j] & 0xF) - 8) * d;
    y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
  }
}

static void deq_q4_1(const uint8_t *b, float *y) {
  float d = half_at(b), m = half_at(b + 2);
  const uint8_t *qs = b + 4;
  for (int j = 0; j < 16; j++) {
    y[j] = (float)(qs[j] & 0xF) * d + m;
    y[j + 16] = (float)(qs[j] >> 4) * d + m;
  }
}

static void deq_q5(const uint8_t *b, float *y, int has_min) {
  float d = half_at(b), m = has_min ? half_at(b + 2) : 0.0f;
  const uint8_t *p = b + (has_min ? 4 : 2);
  uint32_t qh;
  memcpy(&qh, p, 4);
  const uint8_t *qs = p + 4;
  int off = has_min ? 0 : 16;
  for (int j = 0; j < 16; j++) {
    int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
    y[j] = (float)(((qs[j] & 0xF) | h0) - off) * d + m;
    y[j + 16] = (float)(((qs[j] >> 4) | h1) - off) * d + m;
  }
}

static void deq_q8_0(const uint8_t *b, float *y) {
  float d = half_at(b);
  const int8_t *qs = (const int8_t *)(b + 2);
  for (int j = 0; j < 32; j++) y[j] = (float)qs[j] * d;
}

static void deq_q45_k(const uint8_t *b, float *y, int five) {
  float d = half_at(b), dmin = half_at(b + 2);
  const uint8_t *scales = b + 4, *qh = five ? b + 16 : 0, *ql = b + (five ? 48 : 16);
  int u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < 256; j += 64, is += 2) {
    int sc, mn;
    scale_min_k4(is, scales, &sc, &mn);
    float d1 = d * (float)sc, m1 = dmin * (float)mn;
    scale_min_k4(is + 1, scales, &sc, &mn);
    float d2 = d * (float)sc, m2 = dmin * (float)mn;
    for (int l = 0; l < 32; l++) {
      int h1 = five && (qh[l] & u1) ? 16 : 0, h2 = five && (qh[l] & u2) ? 16 : 0;
      y[j + l] = d1 * (float)((ql[l] & 0xF) + h1) - m1;
      y[j + 32 + l] = d2 * (float)((ql[l] >> 4) + h2) - m2;
    }
    ql += 32;
    u1 <<= 2;
    u2 <<= 2;
  }
}

static void deq_q6_k(const uint8_t *b, float *y) {
  const uint8_t *ql = b, *qh = b + 128;
  const int8_t *sc = (const int8_t *)(b + 192);
  float d = half_at(b + 208);
  for (int n = 0; n < 256; n += 128, ql += 64, qh += 32, sc += 8) {
    /* 16 elements share a scale: two runs of 16 with four scales each (vectorizes cleanly) */
    for (int h = 0; h < 2; h++) {
      const float s0 = d * (float)sc[h], s1 = d * (float)sc[h + 2], s2 = d * (float)sc[h + 4],
                  s3 = d * (float)sc[h + 6];
      for (int l = 16 * h; l < 16 * h + 16; l++) {
        int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[n + l] = s0 * (float)q1;
        y[n + l + 32] = s1 * (float)q2;
        y[n + l + 64] = s2 * (float)q3;
        y[n + l + 96] = s3 * (float)q4;
      }
    }
  }
}

/* The hot loop of the CPU's quantized matmul: cloned per ISA (the library is built without
 * -march), so the block loops are vectorized with AVX2/AVX-512 where the CPU has them. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void hr_quant_dequantize_row(int64_t qtype, const void *src, float *dst, int64_t k) {
  const hr_quant_info *qi = hr_quant_lookup(qtype);
  if (!qi) return;
  const uint8_t *b = src;
  for (int64_t i = 0; i < k / qi->block_elems; i++, b += qi->block_bytes, dst += qi->block_elems) {
    switch (qtype) {
      case HR_QTYPE_Q4_0: deq_q4_0(b, dst); break;
      case HR_QTYPE_Q4_1: deq_q4_1(b, dst); break;
      case HR_QTYPE_Q5_0: deq_q5(b, dst, 0); break;
      case HR_QTYPE_Q5_1: deq_q5(b, dst, 1); break;
      case HR_QTYPE_Q8_0: deq_q8_0(b, dst); break;
      case HR_QTYPE_Q4_K: deq_q45_k(b, dst, 0); break;
      case HR_QTYPE_Q5_K: deq_q45_k(b, dst, 1); break;
      case HR_QTYPE_Q6_K: deq_q6_k(b, dst); break;
      default: return;
    }
  }
}

/* ---- public ABI (host memory only; no instance needed) ---- */

int hr_quant_block_info(int64_t qtype, int64_t *block_elems_out, int64_t *block_bytes_out) {
  hr_clear_error();
  const hr_quant_info *qi = hr_quant_lookup(qtype);
  if (!qi)
    return hr_fail(HR_E_UNSUPPORTED, "hr_quant_block_info: %lld is not a supported quantized type", (long long)qtype);
  if (!block_elems_out || !block_bytes_out) return hr_fail(HR_E_INVALID, "hr_quant_block_info: NULL output pointer");
  *block_elems_out = qi->block_elems;
  *block_bytes_out = qi->block_bytes;
  return HR_OK;
}

int hr_dequantize(int64_t qtype, const void *src, float *dst, int64_t count) {
  hr_clear_error();
  const hr_quant_info *qi = hr_quant_lookup(qtype);
  if (!qi) return hr_fail(HR_E_UNSUPPORTED, "hr_dequantize: %lld is not a supported quantized type", (long long)qtype);
  if (!src || !dst) return hr_fail(HR_E_INVALID, "hr_dequantize: src and dst must not be NULL");
  if (count <= 0 || count % qi->block_elems != 0)
    return hr_fail(HR_E_INVALID, "hr_dequantize: count (%lld) must be a positive multiple of %s's block size %lld",
                   (long long)count, qi->name, (long long)qi->block_elems);
  hr_quant_dequantize_row(qtype, src, dst, count);
  return HR_OK;
}
