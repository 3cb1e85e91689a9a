/*
 * Template (included by gemv_q8.c for the two AVX-512 variants, after gemv_q8_kern.h with the same
 * QG_SFX): 512-bit versions of the small-M kernels for the types decode spends its time in (Q4_K,
 * Q5_K, Q6_K, Q8_0). Same arithmetic as the 256-bit kernels, twice the weights per instruction,
 * which is what the 16-sequence (M = 16) case needs: there the dots, not the weight bytes, bound
 * the time. Needs AVX512-BW (vpermw, byte masks); QG_VNNI 1 uses vpdpbusd for Q8_0.
 */
#define QG_CAT2(a, b) a##b
#define QG_CAT(a, b) QG_CAT2(a, b)
#define QG_NAME(base) QG_CAT(base, QG_SFX)
#define QG_AI static inline __attribute__((always_inline))

QG_ATTR QG_AI __m256i QG_NAME(fold512_)(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

/* int16 lane L of the result = 16-bit element idx(L) of v: idx(L) = a for L < 16, else b */
#define QG_IDX2(a, b) \
  _mm512_set_epi16(b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, b, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a)

QG_ATTR QG_AI void QG_NAME(q45k512_)(const int FIVE, const int R, const uint8_t *w, int64_t nb, const hr_gemv_rows *x,
                                     float *out) {
  const int bb = FIVE ? 176 : 144;
  const uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
  const __m512i m4 = _mm512_set1_epi8(0xF), m1 = _mm512_set1_epi8(1);
  /* half hh of the block: low nibbles of its 64 bytes are sub-blocks 4hh and 4hh+2, high 4hh+1, 4hh+3;
   * regrouped (below) into the weights in element order, so each row's activations load as they lie */
  const __m512i il[2] = {QG_IDX2(0, 1), QG_IDX2(4, 5)}, ih[2] = {QG_IDX2(2, 3), QG_IDX2(6, 7)};
  const __m512i shl[2] = {QG_IDX2(0, 2), QG_IDX2(4, 6)}, shh[2] = {QG_IDX2(1, 3), QG_IDX2(5, 7)};
  __m512 acc[4];
  __m256 accm[4];
#pragma GCC unroll 4
  for (int r = 0; r < 4; r++) {
    acc[r] = _mm512_setzero_ps();
    accm[r] = _mm256_setzero_ps();
  }
  for (int64_t i = 0; i < nb; i++, w += bb) {
    const float d = QG_NAME(half_)(w), dmin = QG_NAME(half_)(w + 2);
    uint32_t u[4];
    memcpy(u, w + 4, 12);
    u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
    const uint32_t uaux = u[1] & kmask1;
    u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
    u[2] = uaux;
    u[0] &= kmask1;
    const __m256i ms = _mm256_cvtepu8_epi16(_mm_set_epi32((int)u[3], (int)u[2], (int)u[1], (int)u[0]));
    const __m512i sc = _mm512_castsi256_si512(ms); /* int16 elements 0..7: scales, 8..15: mins */
    /* each sub-block's min twice: one madd with the 16 per-16 activation sums gives min_s * sum32_s */
    const __m128i mins = _mm256_extracti128_si256(ms, 1);
    const __m256i mins2 = _mm256_set_m128i(_mm_unpackhi_epi16(mins, mins), _mm_unpacklo_epi16(mins, mins));
    const uint8_t *q4 = w + (FIVE ? 48 : 16);
    const __m512i hb = FIVE ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(w + 16))) : m4;
    __m512i sumi[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) sumi[r] = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int hh = 0; hh < 2; hh++) {
      const __m512i bits = _mm512_loadu_si512((const void *)(q4 + 64 * hh));
      __m512i ql = _mm512_and_si512(bits, m4), qh = _mm512_and_si512(_mm512_srli_epi16(bits, 4), m4);
      if (FIVE) { /* high bit of sub-block s is bit s of qh's byte */
        ql = _mm512_or_si512(ql, _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(hb, shl[hh]), m1), 4));
        qh = _mm512_or_si512(qh, _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(hb, shh[hh]), m1), 4));
      }
      /* elements 128hh + 0..63 (low, high nibbles of the first 32 bytes) and 128hh + 64..127: one
       * 512-bit load of each row's activations per product instead of two 256-bit halves */
      const __m512i w0 = _mm512_shuffle_i64x2(ql, qh, 0x44), w1 = _mm512_shuffle_i64x2(ql, qh, 0xEE);
      const __m512i sl = _mm512_permutexvar_epi16(il[hh], sc), sh = _mm512_permutexvar_epi16(ih[hh], sc);
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) {
        const int8_t *y = x->q[r] + 256 * i + 128 * hh;
        const __m512i pl = _mm512_madd_epi16(sl, _mm512_maddubs_epi16(w0, _mm512_loadu_si512((const void *)y)));
        const __m512i ph = _mm512_madd_epi16(sh, _mm512_maddubs_epi16(w1, _mm512_loadu_si512((const void *)(y + 64))));
        sumi[r] = _mm512_add_epi32(sumi[r], _mm512_add_epi32(pl, ph));
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const float dy = x->d[r][16 * i];
      acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(d * dy), _mm512_cvtepi32_ps(sumi[r]), acc[r]);
      const __m256i bs = _mm256_loadu_si256((const __m256i *)(x->b[r] + 16 * i));
      accm[r] = _mm256_fmadd_ps(_mm256_set1_ps(-dmin * dy), _mm256_cvtepi32_ps(_mm256_madd_epi16(mins2, bs)), accm[r]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) out[r] = _mm512_reduce_add_ps(acc[r]) + QG_NAME(hsum8_)(accm[r]);
}

QG_ATTR QG_AI void QG_NAME(q6k512_)(const int R, const uint8_t *w, int64_t nb, const hr_gemv_rows *x, float *out) {
  const __m512i m4 = _mm512_set1_epi8(0xF), m3 = _mm512_set1_epi8(3);
  /* qh byte l holds the 2 high bits of elements l, l+32, l+64, l+96 of the half at bits 0, 2, 4, 6 */
  const __m512i sh01 = QG_IDX2(0, 2), sh23 = QG_IDX2(4, 6);
  /* int16 lane L of a 64-weight product covers elements 2L, 2L+1: scale (first element) / 16 */
  const __m512i i01[2] = {
      _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
      _mm512_set_epi16(11, 11, 11, 11, 11, 11, 11, 11, 10, 10, 10, 10, 10, 10, 10, 10, 9, 9, 9, 9, 9, 9, 9, 9, 8, 8, 8,
                       8, 8, 8, 8, 8)};
  const __m512i four = _mm512_set1_epi16(4);
  __m512 acc[4];
#pragma GCC unroll 4
  for (int r = 0; r < 4; r++) acc[r] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; i++, w += 210) {
    const float d = QG_NAME(half_)(w + 208);
    const __m128i sc = _mm_loadu_si128((const __m128i *)(w + 192));
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc);
    const __m512i sc512 = _mm512_castsi256_si512(sc16);
    __m512i sumi[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) sumi[r] = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
      const __m512i b = _mm512_loadu_si512((const void *)(w + 64 * h));
      const __m512i bh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(w + 128 + 32 * h)));
      const __m512i q01 = _mm512_or_si512(_mm512_and_si512(b, m4),
                                          _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(bh, sh01), m3), 4));
      const __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(b, 4), m4),
                                          _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(bh, sh23), m3), 4));
      const __m512i s01 = _mm512_permutexvar_epi16(i01[h], sc512);
      const __m512i s23 = _mm512_permutexvar_epi16(_mm512_add_epi16(i01[h], four), sc512);
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) {
        const int8_t *y = x->q[r] + 256 * i + 128 * h;
        const __m512i p01 = _mm512_madd_epi16(s01, _mm512_maddubs_epi16(q01, _mm512_loadu_si512((const void *)y)));
        const __m512i p23 =
            _mm512_madd_epi16(s23, _mm512_maddubs_epi16(q23, _mm512_loadu_si512((const void *)(y + 64))));
        sumi[r] = _mm512_add_epi32(sumi[r], _mm512_add_epi32(p01, p23));
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) { /* the -32 zero point through the bsums, as the 256-bit kernel */
      const __m256i off = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)(x->b[r] + 16 * i)));
      const __m256i s = _mm256_sub_epi32(QG_NAME(fold512_)(sumi[r]), _mm256_slli_epi32(off, 5));
      acc[r] =
          _mm512_fmadd_ps(_mm512_set1_ps(d * x->d[r][16 * i]), _mm512_castps256_ps512(_mm256_cvtepi32_ps(s)), acc[r]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) out[r] = _mm512_reduce_add_ps(acc[r]);
}

/* Q8_0, two blocks per vector (the last odd block through the 256-bit kernel) */
QG_ATTR QG_AI void QG_NAME(q80512_)(const int R, const uint8_t *w, int64_t nb, const hr_gemv_rows *x, float *out) {
  const __m512i pick = _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
  __m512 acc[4];
#pragma GCC unroll 4
  for (int r = 0; r < 4; r++) acc[r] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2, w += 68) {
    const __m512i qw = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(w + 2))),
                                          _mm256_loadu_si256((const __m256i *)(w + 36)), 1);
    const __m512i wu = _mm512_abs_epi8(qw);
    const __mmask64 neg = _mm512_movepi8_mask(qw);
    /* lanes 0..7: block i's d_w, 8..15: block i+1's */
    const __m512 dw = _mm512_permutexvar_ps(
        pick, _mm512_castps128_ps512(_mm_set_ps(0.0f, QG_NAME(half_)(w + 34), 0.0f, QG_NAME(half_)(w))));
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const __m512i y = _mm512_loadu_si512((const void *)(x->q[r] + 32 * i));
      const __m512i ys = _mm512_mask_sub_epi8(y, neg, _mm512_setzero_si512(), y);
#if QG_VNNI
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wu, ys);
#else
      const __m512i dot = _mm512_madd_epi16(_mm512_maddubs_epi16(wu, ys), _mm512_set1_epi16(1));
#endif
      /* x->d per 16: [d_i, d_i, d_i+1, d_i+1] -> lanes as dw */
      const __m512 dy = _mm512_permutexvar_ps(pick, _mm512_castps128_ps512(_mm_loadu_ps(x->d[r] + 2 * i)));
      acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(dw, dy), _mm512_cvtepi32_ps(dot), acc[r]);
    }
  }
  float tail[4] = {0, 0, 0, 0};
  if (i < nb) {
    hr_gemv_rows xt = *x;
    for (int r = 0; r < R; r++) {
      xt.q[r] += 32 * i;
      xt.d[r] += 2 * i;
    }
    QG_NAME(g32_)(4, R, w, 1, &xt, tail);
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) out[r] = _mm512_reduce_add_ps(acc[r]) + tail[r];
}

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
#define QG_Q80(R) QG_NAME(q80512_)(R, w, nb, x, o)
#define QG_Q4K(R) QG_NAME(q45k512_)(0, R, w, nb, x, o)
#define QG_Q5K(R) QG_NAME(q45k512_)(1, R, w, nb, x, o)
#define QG_Q6K(R) QG_NAME(q6k512_)(R, w, nb, x, o)
QG_DEF(kz80_, QG_Q80)
QG_DEF(kz4k_, QG_Q4K)
QG_DEF(kz5k_, QG_Q5K)
QG_DEF(kz6k_, QG_Q6K)
#define QG_ROW(NAME) \
  { QG_CAT(QG_NAME(NAME), _1), QG_CAT(QG_NAME(NAME), _2), QG_CAT(QG_NAME(NAME), _3), QG_CAT(QG_NAME(NAME), _4) }
/* the 256-bit table with the 512-bit kernels in place of Q8_0 (4), Q4_K (5), Q5_K (6), Q6_K (7) */
static const hr_gemv_fn QG_NAME(table512_)[8][4] = {
    {QG_CAT(QG_NAME(kq40_), _1), QG_CAT(QG_NAME(kq40_), _2), QG_CAT(QG_NAME(kq40_), _3), QG_CAT(QG_NAME(kq40_), _4)},
    {QG_CAT(QG_NAME(kq41_), _1), QG_CAT(QG_NAME(kq41_), _2), QG_CAT(QG_NAME(kq41_), _3), QG_CAT(QG_NAME(kq41_), _4)},
    {QG_CAT(QG_NAME(kq50_), _1), QG_CAT(QG_NAME(kq50_), _2), QG_CAT(QG_NAME(kq50_), _3), QG_CAT(QG_NAME(kq50_), _4)},
    {QG_CAT(QG_NAME(kq51_), _1), QG_CAT(QG_NAME(kq51_), _2), QG_CAT(QG_NAME(kq51_), _3), QG_CAT(QG_NAME(kq51_), _4)},
    QG_ROW(kz80_),
    QG_ROW(kz4k_),
    QG_ROW(kz5k_),
    QG_ROW(kz6k_)};
#undef QG_ROW
#undef QG_DEF
#undef QG_Q80
#undef QG_Q4K
#undef QG_Q5K
#undef QG_Q6K
#undef QG_IDX2
#undef QG_AI
#undef QG_NAME
#undef QG_CAT
#undef QG_CAT2
