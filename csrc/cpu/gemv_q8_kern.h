/*
 * Template (included by gemv_q8.c once per ISA): the direct small-M quantized dot kernels, 256-bit
 * integer SIMD. Define QG_ATTR (target attribute), QG_SFX (name suffix) and QG_VNNI (0: vpmaddubsw
 * + vpmaddwd; 1: AVX512-VL vpdpbusd; 2: AVX-VNNI vpdpbusd) before inclusion.
 *
 * Each kernel walks one weight row's GGUF blocks once and dots every block with R activation
 * rows: the weights are decoded in registers once per block and reused R times. Per block the
 * integer products are summed with the sub-block scales applied as 16-bit integers (vpmaddwd),
 * then one convert and one FMA with d_w * d_x; weight minimums use the activation bsums (as
 * ggml's ggml_vec_dot_q4_K_q8_K / q6_K / q4_0 ... on x86).
 */
#define QG_CAT2(a, b) a##b
#define QG_CAT(a, b) QG_CAT2(a, b)
#define QG_NAME(base) QG_CAT(base, QG_SFX)
#define QG_AI static inline __attribute__((always_inline))

/* acc + sum of 4 adjacent u8 x s8 products per int32 lane (no saturation: |sum of 2| < 2^15 here) */
QG_ATTR QG_AI __m256i QG_NAME(dot_us_)(__m256i acc, __m256i u, __m256i s) {
#if QG_VNNI == 1
  return _mm256_dpbusd_epi32(acc, u, s);
#elif QG_VNNI == 2
  return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

QG_ATTR QG_AI float QG_NAME(hsum8_)(__m256 v) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

QG_ATTR QG_AI float QG_NAME(hsum4_)(__m128 h) {
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

QG_ATTR QG_AI float QG_NAME(half_)(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

/* 32 bits -> 32 bytes, 0xFF where the bit is set (bit e for byte e) */
QG_ATTR QG_AI __m256i QG_NAME(bits32_)(const uint8_t *p) {
  uint32_t x32;
  memcpy(&x32, p, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x32), shuf);
  bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

/* ---- 32-weight blocks: T = 0 Q4_0, 1 Q4_1, 2 Q5_0, 3 Q5_1, 4 Q8_0 ---- */
QG_ATTR QG_AI void QG_NAME(g32_)(const int T, const int R, const uint8_t *w, int64_t nb, const hr_gemv_rows *x,
                                 float *out) {
  const int bb = T == 0 ? 18 : T == 1 ? 20 : T == 2 ? 22 : T == 3 ? 24 : 34;
  const int qoff = T == 0 ? 2 : T == 1 ? 4 : T == 2 ? 6 : T == 3 ? 8 : 2;
  const int sgn = T == 0 || T == 2 || T == 4, offs = T == 1 || T == 3;
  const __m256i m4 = _mm256_set1_epi8(0xF);
  __m256 acc[4];
  float accm[4];
#pragma GCC unroll 4
  for (int r = 0; r < 4; r++) {
    acc[r] = _mm256_setzero_ps();
    accm[r] = 0.0f;
  }
  for (int64_t i = 0; i < nb; i++, w += bb) {
    const float dw = QG_NAME(half_)(w);
    __m256i qw;
    if (T == 4) {
      qw = _mm256_loadu_si256((const __m256i *)(w + 2));
    } else {
      const __m128i t = _mm_loadu_si128((const __m128i *)(w + qoff));
      qw = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), m4);
      if (T == 0) qw = _mm256_sub_epi8(qw, _mm256_set1_epi8(8));
      if (T == 2) qw = _mm256_or_si256(qw, _mm256_andnot_si256(QG_NAME(bits32_)(w + 2), _mm256_set1_epi8((char)0xF0)));
      if (T == 3) qw = _mm256_or_si256(qw, _mm256_and_si256(QG_NAME(bits32_)(w + 4), _mm256_set1_epi8(0x10)));
    }
    /* signed weights: |w| . (x with w's sign), as the dot takes unsigned first operands */
    const __m256i wu = sgn ? _mm256_abs_epi8(qw) : qw;
    const float mw = offs ? QG_NAME(half_)(w + 2) : 0.0f;
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const __m256i y = _mm256_loadu_si256((const __m256i *)(x->q[r] + 32 * i));
      const __m256i dot = QG_NAME(dot_us_)(_mm256_setzero_si256(), wu, sgn ? _mm256_sign_epi8(y, qw) : y);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dw * x->d[r][2 * i]), _mm256_cvtepi32_ps(dot), acc[r]);
      if (offs) accm[r] += mw * x->s[r][2 * i];
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) out[r] = QG_NAME(hsum8_)(acc[r]) + accm[r];
}

/* ---- Q4_K / Q5_K: 256 weights, 8 sub-blocks of 32 with 6-bit scale and min ---- */
QG_ATTR QG_AI void QG_NAME(q45k_)(const int FIVE, const int R, const uint8_t *w, int64_t nb, const hr_gemv_rows *x,
                                  float *out) {
  const int bb = FIVE ? 176 : 144;
  const uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
  const __m256i m4 = _mm256_set1_epi8(0xF), m1 = _mm256_set1_epi8(1);
  __m256 acc[4];
  __m128 accm[4];
#pragma GCC unroll 4
  for (int r = 0; r < 4; r++) {
    acc[r] = _mm256_setzero_ps();
    accm[r] = _mm_setzero_ps();
  }
  for (int64_t i = 0; i < nb; i++, w += bb) {
    const float d = QG_NAME(half_)(w), dmin = QG_NAME(half_)(w + 2);
    uint32_t u[4]; /* 12 bytes of packed 6-bit scales/mins -> 8 scales, 8 mins (ggml's kmask shuffle) */
    memcpy(u, w + 4, 12);
    u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
    const uint32_t uaux = u[1] & kmask1;
    u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
    u[2] = uaux;
    u[0] &= kmask1;
    const __m256i ms = _mm256_cvtepu8_epi16(_mm_set_epi32((int)u[3], (int)u[2], (int)u[1], (int)u[0]));
    const __m128i sc128 = _mm256_castsi256_si128(ms), mins = _mm256_extracti128_si256(ms, 1);
    const __m256i scales = _mm256_set_m128i(sc128, sc128);
    const uint8_t *q4 = w + (FIVE ? 48 : 16);
    const __m256i hb = FIVE ? _mm256_loadu_si256((const __m256i *)(w + 16)) : _mm256_setzero_si256();
    __m256i sumi[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) sumi[r] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
      /* 16-bit scale of sub-block 2j (low nibbles) and 2j+1 (high nibbles) in every lane */
      const __m256i sl = _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short)(((4 * j + 1) << 8) | (4 * j))));
      const __m256i sh = _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short)(((4 * j + 3) << 8) | (4 * j + 2))));
      const __m256i bits = _mm256_loadu_si256((const __m256i *)(q4 + 32 * j));
      __m256i ql = _mm256_and_si256(bits, m4), qh = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
      if (FIVE) {
        ql = _mm256_or_si256(ql, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j), m1), 4));
        qh = _mm256_or_si256(qh, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j + 1), m1), 4));
      }
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) {
        const int8_t *y = x->q[r] + 256 * i + 64 * j;
        const __m256i pl = _mm256_madd_epi16(sl, _mm256_maddubs_epi16(ql, _mm256_loadu_si256((const __m256i *)y)));
        const __m256i ph =
            _mm256_madd_epi16(sh, _mm256_maddubs_epi16(qh, _mm256_loadu_si256((const __m256i *)(y + 32))));
        sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(pl, ph));
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const float dy = x->d[r][16 * i];
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * dy), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
      const __m256i bs = _mm256_loadu_si256((const __m256i *)(x->b[r] + 16 * i));
      const __m128i s32 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
      accm[r] = _mm_fmadd_ps(_mm_set1_ps(-dmin * dy), _mm_cvtepi32_ps(_mm_madd_epi16(mins, s32)), accm[r]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) out[r] = QG_NAME(hsum8_)(acc[r]) + QG_NAME(hsum4_)(accm[r]);
}

/* ---- Q6_K: 256 weights = ql (4 bits) + qh (2 bits) - 32, int8 scale per 16 ---- */
QG_ATTR QG_AI void QG_NAME(q6k_)(const int R, const uint8_t *w, int64_t nb, const hr_gemv_rows *x, float *out) {
  const __m256i m4 = _mm256_set1_epi8(0xF), m3 = _mm256_set1_epi8(3), m30 = _mm256_set1_epi8(0x30);
  __m256 acc[4];
#pragma GCC unroll 4
  for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; i++, w += 210) {
    const float d = QG_NAME(half_)(w + 208);
    const __m128i sc = _mm_loadu_si128((const __m128i *)(w + 192));
    __m256i sumi[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) sumi[r] = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
      const __m256i b1 = _mm256_loadu_si256((const __m256i *)(w + 64 * h));
      const __m256i b2 = _mm256_loadu_si256((const __m256i *)(w + 64 * h + 32));
      const __m256i bh = _mm256_loadu_si256((const __m256i *)(w + 128 + 32 * h));
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(b1, m4), _mm256_slli_epi16(_mm256_and_si256(bh, m3), 4));
      q[1] =
          _mm256_or_si256(_mm256_and_si256(b2, m4), _mm256_slli_epi16(_mm256_and_si256(bh, _mm256_set1_epi8(0x0C)), 2));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m4), _mm256_and_si256(bh, m30));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m4),
                             _mm256_and_si256(_mm256_srli_epi16(bh, 2), m30));
#pragma GCC unroll 4
      for (int t = 0; t < 4; t++) {
        const int g = 2 * (4 * h + t); /* scales g (first 16 of the 32) and g + 1 */
        const __m256i s16 = _mm256_cvtepi8_epi16(
            _mm_shuffle_epi8(sc, _mm_set_epi64x((long long)(0x0101010101010101ull * (unsigned)(g + 1)),
                                                (long long)(0x0101010101010101ull * (unsigned)g))));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
          const __m256i y = _mm256_loadu_si256((const __m256i *)(x->q[r] + 256 * i + 128 * h + 32 * t));
          sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(s16, _mm256_maddubs_epi16(q[t], y)));
        }
      }
    }
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) { /* the -32 zero point: 32 * sum_g scale_g * bsum_g */
      const __m256i off = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)(x->b[r] + 16 * i)));
      const __m256i s = _mm256_sub_epi32(sumi[r], _mm256_slli_epi32(off, 5));
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * x->d[r][16 * i]), _mm256_cvtepi32_ps(s), acc[r]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) out[r] = QG_NAME(hsum8_)(acc[r]);
}

/* one function per (type, R) */
#define QG_DEF(NAME, CALL)                                                                                       \
  QG_ATTR static void QG_CAT(QG_NAME(NAME), _1)(const uint8_t *w, int64_t nb, const hr_gemv_rows *x, float *o) { \
    CALL(1);                                                                                                     \
  }                                                                                                              \
  QG_ATTR static void QG_CAT(QG_NAME(NAME), _2)(const uint8_t *w, int64_t nb, const hr_gemv_rows *x, float *o) { \
    CALL(2);                                                                                                     \
  }                                                                                                              \
  QG_ATTR static void QG_CAT(QG_NAME(NAME), _3)(const uint8_t *w, int64_t nb, const hr_gemv_rows *x, float *o) { \
    CALL(3);                                                                                                     \
  }                                                                                                              \
  QG_ATTR static void QG_CAT(QG_NAME(NAME), _4)(const uint8_t *w, int64_t nb, const hr_gemv_rows *x, float *o) { \
    CALL(4);                                                                                                     \
  }
#define QG_Q40(R) QG_NAME(g32_)(0, R, w, nb, x, o)
#define QG_Q41(R) QG_NAME(g32_)(1, R, w, nb, x, o)
#define QG_Q50(R) QG_NAME(g32_)(2, R, w, nb, x, o)
#define QG_Q51(R) QG_NAME(g32_)(3, R, w, nb, x, o)
#define QG_Q80(R) QG_NAME(g32_)(4, R, w, nb, x, o)
#define QG_Q4K(R) QG_NAME(q45k_)(0, R, w, nb, x, o)
#define QG_Q5K(R) QG_NAME(q45k_)(1, R, w, nb, x, o)
#define QG_Q6K(R) QG_NAME(q6k_)(R, w, nb, x, o)
QG_DEF(kq40_, QG_Q40)
QG_DEF(kq41_, QG_Q41)
QG_DEF(kq50_, QG_Q50)
QG_DEF(kq51_, QG_Q51)
QG_DEF(kq80_, QG_Q80)
QG_DEF(kq4k_, QG_Q4K)
QG_DEF(kq5k_, QG_Q5K)
QG_DEF(kq6k_, QG_Q6K)
#define QG_ROW(NAME) \
  { QG_CAT(QG_NAME(NAME), _1), QG_CAT(QG_NAME(NAME), _2), QG_CAT(QG_NAME(NAME), _3), QG_CAT(QG_NAME(NAME), _4) }
/* rows in the order of gemv_q8.c's TYPE_ORDER */
static const hr_gemv_fn QG_NAME(table_)[8][4] = {QG_ROW(kq40_), QG_ROW(kq41_), QG_ROW(kq50_), QG_ROW(kq51_),
                                                 QG_ROW(kq80_), QG_ROW(kq4k_), QG_ROW(kq5k_), QG_ROW(kq6k_)};
#undef QG_ROW
#undef QG_DEF
#undef QG_Q40
#undef QG_Q41
#undef QG_Q50
#undef QG_Q51
#undef QG_Q80
#undef QG_Q4K
#undef QG_Q5K
#undef QG_Q6K
#undef QG_AI
#undef QG_NAME
#undef QG_CAT
#undef QG_CAT2
