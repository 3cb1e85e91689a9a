/*
 * Template (included by matmul_q8.c, twice): the AVX-512 int8 tile kernel of the quantized
 * matmul. Before inclusion define QK_ATTR (the target attribute), QK_SFX (a name suffix) and
 * QK_VNNI (1: vpdpbusd; 0: vpmaddubsw + vpmaddwd, AVX512-BW only).
 *
 * One call computes an RM x 4 tile of y over all of K: RM activation rows (int8, a scale per
 * 16) against 4 unpacked weight rows (uint8 or int8 (WS), scale and offset per 16). Per 64
 * weights and (x row, w row) pair: one integer dot (16 lanes of 4 products), one convert,
 * one multiply of the two scale vectors, one FMA into the pair's fp32 accumulator.
 */
#define QK_CAT2(a, b) a##b
#define QK_CAT(a, b) QK_CAT2(a, b)
#define QK_NAME(base) QK_CAT(base, QK_SFX)

QK_ATTR static inline __attribute__((always_inline)) __m512i QK_NAME(idot512_)(__m512i wu, __m512i a) {
#if QK_VNNI
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), wu, a);
#else
  return _mm512_madd_epi16(_mm512_maddubs_epi16(wu, a), _mm512_set1_epi16(1));
#endif
}

QK_ATTR static inline __attribute__((always_inline)) void QK_NAME(qtile512_)(const int RM, const int WS,
                                                                             const q8_tile *t, float *out) {
  enum { RN = 4 };
  __m512 acc[4][RN];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) acc[i][j] = _mm512_setzero_ps();
  /* lane l of a dot holds products 4l .. 4l+3, so it belongs to 16-group l / 4 */
  const __m512i group_of_lane = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  const int64_t K = t->k, ldq = t->ldq, ldg = t->ldg;
  for (int64_t kk = 0; kk < K; kk += 64) {
    const __mmask64 km = K - kk >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (K - kk)) - 1);
    const int64_t g = kk >> 4;
    __m512i a[4];
    __m512 da[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
      if (i >= RM) continue;
      a[i] = _mm512_maskz_loadu_epi8(km, t->xq[i] + kk);
      da[i] = _mm512_permutexvar_ps(group_of_lane, _mm512_castps128_ps512(_mm_loadu_ps(t->xd[i] + g)));
    }
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) {
      const __m512i w = _mm512_maskz_loadu_epi8(km, t->wq + j * ldq + kk);
      const __m512 s = _mm512_permutexvar_ps(group_of_lane, _mm512_castps128_ps512(_mm_loadu_ps(t->sw + j * ldg + g)));
      /* signed weights (Q8_0): |w| times x with w's sign, as vpdpbusd/vpmaddubsw take unsigned w */
      const __m512i wu = WS ? _mm512_abs_epi8(w) : w;
      const __mmask64 neg = WS ? _mm512_movepi8_mask(w) : 0;
#pragma GCC unroll 4
      for (int i = 0; i < 4; i++) {
        if (i >= RM) continue;
        const __m512i ai = WS ? _mm512_mask_sub_epi8(a[i], neg, _mm512_setzero_si512(), a[i]) : a[i];
        acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(QK_NAME(idot512_)(wu, ai)), _mm512_mul_ps(s, da[i]), acc[i][j]);
      }
    }
  }
  if (t->mw) /* offsets: sum_g mw[g] * (dx[g] * sum16(xq)), vectors padded with zeros to ldg */
    for (int64_t g = 0; g < ldg; g += 16)
#pragma GCC unroll 4
      for (int j = 0; j < RN; j++) {
        const __m512 m = _mm512_loadu_ps(t->mw + j * ldg + g);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
          if (i < RM) acc[i][j] = _mm512_fmadd_ps(m, _mm512_loadu_ps(t->xs[i] + g), acc[i][j]);
      }
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++)
      if (i < RM) out[i * RN + j] = _mm512_reduce_add_ps(acc[i][j]);
}

#define QK_DEF512(RM, WS)                                                                      \
  QK_ATTR static void QK_CAT(QK_NAME(qtile512_), _##RM##_##WS)(const q8_tile *t, float *out) { \
    QK_NAME(qtile512_)(RM, WS, t, out);                                                        \
  }
/* clang-format off */
QK_DEF512(1, 0) QK_DEF512(2, 0) QK_DEF512(3, 0) QK_DEF512(4, 0)
QK_DEF512(1, 1) QK_DEF512(2, 1) QK_DEF512(3, 1) QK_DEF512(4, 1)
    /* clang-format on */
    static const q8_tile_fn QK_NAME(tiles512_)[2][4] = {
        {QK_CAT(QK_NAME(qtile512_), _1_0), QK_CAT(QK_NAME(qtile512_), _2_0), QK_CAT(QK_NAME(qtile512_), _3_0),
         QK_CAT(QK_NAME(qtile512_), _4_0)},
        {QK_CAT(QK_NAME(qtile512_), _1_1), QK_CAT(QK_NAME(qtile512_), _2_1), QK_CAT(QK_NAME(qtile512_), _3_1),
         QK_CAT(QK_NAME(qtile512_), _4_1)},
};
#undef QK_DEF512
#undef QK_NAME
#undef QK_CAT
#undef QK_CAT2
