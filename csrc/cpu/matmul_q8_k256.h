/*
 * Template (included by matmul_q8.c, twice): the AVX2 int8 tile kernel of the quantized
 * matmul, the 256-bit sibling of matmul_q8_k512.h. Define QK_ATTR, QK_SFX and QK_VNNI
 * (1: AVX-VNNI vpdpbusd; 0: vpmaddubsw + vpmaddwd) before inclusion. K is a multiple of 32,
 * so there is no tail. Tile: RM (<= 2) activation rows x Q8_RN256 weight rows.
 */
#define QK_CAT2(a, b) a##b
#define QK_CAT(a, b) QK_CAT2(a, b)
#define QK_NAME(base) QK_CAT(base, QK_SFX)

QK_ATTR static inline __attribute__((always_inline)) __m256i QK_NAME(idot256_)(__m256i wu, __m256i a) {
#if QK_VNNI
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), wu, a);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(wu, a), _mm256_set1_epi16(1));
#endif
}

QK_ATTR static inline __attribute__((always_inline)) __m256 QK_NAME(expand2_)(const float *p, __m256i group_of_lane) {
  return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)p))),
                                  group_of_lane);
}

QK_ATTR static inline __attribute__((always_inline)) void QK_NAME(qtile256_)(const int RM, const int WS,
                                                                             const q8_tile *t, float *out) {
  enum { RN = Q8_RN256 };
  __m256 acc[2][RN];
#pragma GCC unroll 2
  for (int i = 0; i < 2; i++)
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) acc[i][j] = _mm256_setzero_ps();
  const __m256i group_of_lane = _mm256_set_epi32(1, 1, 1, 1, 0, 0, 0, 0);
  const int64_t K = t->k, ldq = t->ldq, ldg = t->ldg;
  for (int64_t kk = 0; kk < K; kk += 32) {
    const int64_t g = kk >> 4;
    __m256i a[2];
    __m256 da[2];
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) {
      if (i >= RM) continue;
      a[i] = _mm256_loadu_si256((const __m256i *)(t->xq[i] + kk));
      da[i] = QK_NAME(expand2_)(t->xd[i] + g, group_of_lane);
    }
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) {
      const __m256i w = _mm256_loadu_si256((const __m256i *)(t->wq + j * ldq + kk));
      const __m256 s = QK_NAME(expand2_)(t->sw + j * ldg + g, group_of_lane);
      const __m256i wu = WS ? _mm256_abs_epi8(w) : w;
#pragma GCC unroll 2
      for (int i = 0; i < 2; i++) {
        if (i >= RM) continue;
        const __m256i ai = WS ? _mm256_sign_epi8(a[i], w) : a[i];
        acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(QK_NAME(idot256_)(wu, ai)), _mm256_mul_ps(s, da[i]), acc[i][j]);
      }
    }
  }
  if (t->mw)
    for (int64_t g = 0; g < ldg; g += 8)
#pragma GCC unroll 4
      for (int j = 0; j < RN; j++) {
        const __m256 m = _mm256_loadu_ps(t->mw + j * ldg + g);
#pragma GCC unroll 2
        for (int i = 0; i < 2; i++)
          if (i < RM) acc[i][j] = _mm256_fmadd_ps(m, _mm256_loadu_ps(t->xs[i] + g), acc[i][j]);
      }
#pragma GCC unroll 2
  for (int i = 0; i < 2; i++) {
    if (i >= RM) continue;
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) {
      __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[i][j]), _mm256_extractf128_ps(acc[i][j], 1));
      h = _mm_add_ps(h, _mm_movehl_ps(h, h));
      h = _mm_add_ss(h, _mm_movehdup_ps(h));
      out[i * RN + j] = _mm_cvtss_f32(h);
    }
  }
}

#define QK_DEF256(RM, WS)                                                                      \
  QK_ATTR static void QK_CAT(QK_NAME(qtile256_), _##RM##_##WS)(const q8_tile *t, float *out) { \
    QK_NAME(qtile256_)(RM, WS, t, out);                                                        \
  }
/* clang-format off */
QK_DEF256(1, 0) QK_DEF256(2, 0)
QK_DEF256(1, 1) QK_DEF256(2, 1)
    /* clang-format on */
    static const q8_tile_fn QK_NAME(tiles256_)[2][2] = {
        {QK_CAT(QK_NAME(qtile256_), _1_0), QK_CAT(QK_NAME(qtile256_), _2_0)},
        {QK_CAT(QK_NAME(qtile256_), _1_1), QK_CAT(QK_NAME(qtile256_), _2_1)},
};
#undef QK_DEF256
#undef QK_NAME
#undef QK_CAT
#undef QK_CAT2
