/*
 * The SIMD span kernel's body (attn_span.h), included by attn_span.c once per ISA x KV dtype x
 * head_dim variant. No include guard on purpose. The includer defines:
 *   SPAN_NAME, SPAN_TGT (target attribute), SPAN_NP (vectors per head: a constant or d / W),
 *   VEC, W, VZERO(), VLOADF(p), VSTOREF(p, v), VFMA(a, b, c) = a * b + c, VMUL(a, b), VADD(a, b), VSET1(x),
 *   RED4(a, b, c, d, out) (out[0..3] = the lane sums), SMX16(w, n, qk, cap, m, l) (softmax update of
 *   one head over a chunk of n <= 16 scores: w becomes the weights; returns the old state's
 *   correction factor), LOADKV(row, i) (elements i .. i+W-1 of a stored K/V row as floats).
 */
SPAN_TGT static void SPAN_NAME(const hr_attn_span *s, int64_t t0, int64_t t1) {
  const int64_t np = SPAN_NP, d = s->d, bs = s->bs;
  const float qk = s->qk_scale, cap = s->softcap;
  float sc[2][CH] __attribute__((aligned(64)));
  const uint8_t *kr[CH], *vr[CH], *kn[CH], *vn[CH];
  int64_t blk = t0 / bs, off = t0 % bs;
  /* rows of the keys tc .. tc+n-1 (n <= CH) into k/v: the block table walked incrementally */
#define SPAN_ROWS(k, v, n)                                                        \
  for (int j_ = 0; j_ < (n); j_++) {                                              \
    int64_t o_ = ((int64_t)s->bt[blk] * bs + off) * s->row_bytes + s->head_bytes; \
    (k)[j_] = s->kc + o_;                                                         \
    (v)[j_] = s->vc + o_;                                                         \
    if (++off == bs) {                                                            \
      off = 0;                                                                    \
      blk++;                                                                      \
    }                                                                             \
  }
  /* software prefetch: the chunk's V rows during its K pass, the next chunk's K rows during
   * its softmax and V pass (blocks are scattered, so the hardware prefetchers lose the stride
   * at every block boundary) */
  const int64_t head_lines = (s->head_row_bytes + 63) / 64;
  int n0 = (int)(t1 - t0 < CH ? t1 - t0 : CH);
  SPAN_ROWS(kr, vr, n0)
  for (int64_t tc = t0; tc < t1; tc += CH) {
    int n = (int)(t1 - tc < CH ? t1 - tc : CH);
    int nn = (int)(t1 - tc - n < CH ? t1 - tc - n : CH);
    for (int j = 0; j < n; j++)
      for (int64_t ln = 0; ln < head_lines; ln++) __builtin_prefetch(vr[j] + 64 * ln);
    if (nn > 0) {
      SPAN_ROWS(kn, vn, nn)
      for (int j = 0; j < nn; j++)
        for (int64_t ln = 0; ln < head_lines; ln++) __builtin_prefetch(kn[j] + 64 * ln);
    }
    for (int j = n; j < CH; j++) kr[j] = kr[n - 1]; /* padding rows: scores computed, then masked */
    for (int64_t h = 0; h < s->nh;) {
      const float *q0 = s->q + h * d;
      float *acc0 = s->acc + h * d;
      if (s->nh - h >= 2) {
        /* K pass: two heads x four keys of independent FMA chains */
        const float *q1 = q0 + d;
        for (int j = 0; j < n; j += 4) {
          VEC a0 = VZERO(), a1 = VZERO(), a2 = VZERO(), a3 = VZERO();
          VEC b0 = VZERO(), b1 = VZERO(), b2 = VZERO(), b3 = VZERO();
          for (int64_t p = 0; p < np; p++) {
            VEC k0 = LOADKV(kr[j], p * W), k1 = LOADKV(kr[j + 1], p * W);
            VEC k2 = LOADKV(kr[j + 2], p * W), k3 = LOADKV(kr[j + 3], p * W);
            VEC x = VLOADF(q0 + p * W), y = VLOADF(q1 + p * W);
            a0 = VFMA(x, k0, a0);
            a1 = VFMA(x, k1, a1);
            a2 = VFMA(x, k2, a2);
            a3 = VFMA(x, k3, a3);
            b0 = VFMA(y, k0, b0);
            b1 = VFMA(y, k1, b1);
            b2 = VFMA(y, k2, b2);
            b3 = VFMA(y, k3, b3);
          }
          RED4(a0, a1, a2, a3, sc[0] + j);
          RED4(b0, b1, b2, b3, sc[1] + j);
        }
        float c0 = SMX16(sc[0], n, qk, cap, s->m + h, s->l + h);
        float c1 = SMX16(sc[1], n, qk, cap, s->m + h + 1, s->l + h + 1);
        /* V pass: both heads' accumulators in registers over the chunk */
        float *acc1 = acc0 + d;
        VEC vc0 = VSET1(c0), vc1 = VSET1(c1);
        for (int64_t p = 0; p < np; p++) {
          VEC x = VMUL(VLOADF(acc0 + p * W), vc0), y = VMUL(VLOADF(acc1 + p * W), vc1);
          for (int j = 0; j < n; j++) {
            VEC v = LOADKV(vr[j], p * W);
            x = VFMA(VSET1(sc[0][j]), v, x);
            y = VFMA(VSET1(sc[1][j]), v, y);
          }
          VSTOREF(acc0 + p * W, x);
          VSTOREF(acc1 + p * W, y);
        }
        h += 2;
      } else {
        for (int j = 0; j < n; j += 4) {
          VEC a0 = VZERO(), a1 = VZERO(), a2 = VZERO(), a3 = VZERO();
          for (int64_t p = 0; p < np; p++) {
            VEC x = VLOADF(q0 + p * W);
            a0 = VFMA(x, LOADKV(kr[j], p * W), a0);
            a1 = VFMA(x, LOADKV(kr[j + 1], p * W), a1);
            a2 = VFMA(x, LOADKV(kr[j + 2], p * W), a2);
            a3 = VFMA(x, LOADKV(kr[j + 3], p * W), a3);
          }
          RED4(a0, a1, a2, a3, sc[0] + j);
        }
        float c0 = SMX16(sc[0], n, qk, cap, s->m + h, s->l + h);
        VEC vc0 = VSET1(c0);
        for (int64_t p = 0; p < np; p++) {
          VEC x = VMUL(VLOADF(acc0 + p * W), vc0), y = VZERO(); /* even / odd keys: two chains */
          int j = 0;
          for (; j + 2 <= n; j += 2) {
            x = VFMA(VSET1(sc[0][j]), LOADKV(vr[j], p * W), x);
            y = VFMA(VSET1(sc[0][j + 1]), LOADKV(vr[j + 1], p * W), y);
          }
          if (j < n) x = VFMA(VSET1(sc[0][j]), LOADKV(vr[j], p * W), x);
          VSTOREF(acc0 + p * W, VADD(x, y));
        }
        h += 1;
      }
    }
    for (int j = 0; j < nn; j++) {
      kr[j] = kn[j];
      vr[j] = vn[j];
    }
  }
#undef SPAN_ROWS
}
