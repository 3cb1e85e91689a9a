/*
 * Quantized weights (GGUF blocks): hr_op_matmul_q / hr_op_logits_q / hr_op_embedding_q on
 * the CPU backend against a float64 product of the dequantized reference weights, for every
 * type, ISA and a range of shapes (decode GEMV m <= 3, small m, prefill m), plus validation.
 * The dequantization rule itself is checked against ggml's own output in
 * test/model/quant-ggml.test.ts.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/cpu/ops_cpu.h"
#include "../../csrc/cpu/quant_act.h"
#include "check.h"
#include "device_bufs.h"

#define BEGIN(name) (cur_test = (name))

static uint64_t rng = 88172645463325252ull;
static uint32_t next_u32(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}
static float uniform(void) { return (float)(next_u32() >> 8) / 16777216.0f * 2.0f - 1.0f; }

/* A finite fp16 of magnitude ~2^-8 .. 2^-5 with a random sign (scales like real files). */
static uint16_t rand_half_scale(void) {
  uint16_t exp = (uint16_t)(7 + next_u32() % 4), man = (uint16_t)(next_u32() & 0x3ff);
  return (uint16_t)((next_u32() & 1 ? 0x8000 : 0) | (exp << 10) | man);
}

static const int64_t QTYPES[] = {HR_QTYPE_Q4_0, HR_QTYPE_Q4_1, HR_QTYPE_Q5_0, HR_QTYPE_Q5_1,
                                 HR_QTYPE_Q8_0, HR_QTYPE_Q4_K, HR_QTYPE_Q5_K, HR_QTYPE_Q6_K};

/* Random blocks whose fp16 fields (scales, mins) are finite; the rest is random bits. */
static void fill_blocks(int64_t qt, uint8_t *p, int64_t nblocks) {
  int64_t be, bb;
  CHECK_OK(hr_quant_block_info(qt, &be, &bb));
  for (int64_t b = 0; b < nblocks; b++, p += bb) {
    for (int64_t i = 0; i < bb; i++) p[i] = (uint8_t)next_u32();
    uint16_t h[2] = {rand_half_scale(), rand_half_scale()};
    switch (qt) {
      case HR_QTYPE_Q4_1:
      case HR_QTYPE_Q5_1:
      case HR_QTYPE_Q4_K:
      case HR_QTYPE_Q5_K: memcpy(p, h, 4); break;
      case HR_QTYPE_Q6_K: memcpy(p + 208, h, 2); break;
      default: memcpy(p, h, 2); break;
    }
  }
}

/* ---- the int8 path's activation rounding: ggml's CPU backend rules (ggml-cpu/arch/x86/quants.c
 * quantize_row_q8_0/q8_1, ggml-quants.c quantize_row_q8_K_ref), restated independently here with
 * nearbyintf and the compiler's _Float16 instead of the library's bit tricks:
 *   q8_0 / q8_1 (32-blocks): d = fp16(amax / 127), q = round-half-even(x * (127 / amax)); q8_1 also
 *     s = fp16(fp32 d * sum q), which replaces d * sum q in the weight-offset term m * s;
 *   q8_K (256-blocks): max = first element of largest |x|, iscale = -127 / max,
 *     q = min(127, round-half-even(iscale * x)), d = 1 / iscale (fp32). */
static int act_kind(int64_t qt) {
  return qt >= HR_QTYPE_Q4_K ? 2 : (qt == HR_QTYPE_Q4_1 || qt == HR_QTYPE_Q5_1) ? 1 : 0;
}
static float to_half(float v) { return (float)(_Float16)v; }
static double half_bits(const uint8_t *p) {
  _Float16 h;
  memcpy(&h, p, 2);
  return (double)h;
}
/* Writes q (may be NULL), xhat = q * d, a bound on |x - xhat| and, for q8_1, per 32-block
 * s_corr = s - d * sum q (what ggml's m * s adds beyond the dequantized product). Returns the
 * per-block scales' count. */
static void q8_reference(int64_t qt, const float *x, int64_t k, int8_t *qout, float *dout, double *xhat,
                         double *half_step, double *s_corr) {
  const int kind = act_kind(qt);
  const int64_t ab = kind == 2 ? 256 : 32;
  for (int64_t b = 0; b < k; b += ab) {
    float amax = 0, max = 0;
    for (int64_t i = 0; i < ab; i++)
      if (fabsf(x[b + i]) > amax) {
        amax = fabsf(x[b + i]);
        max = x[b + i];
      }
    float d, id, exact_d;
    if (kind == 2) {
      id = amax > 0 ? -127.f / max : 0.0f;
      d = amax > 0 ? 1 / id : 0.0f;
      exact_d = d;
    } else {
      exact_d = amax / 127.f;
      d = to_half(exact_d);
      id = amax != 0 ? 127.f / amax : 0.0f;
    }
    int32_t sum = 0;
    for (int64_t i = 0; i < ab; i++) {
      float v = x[b + i] * id;
      float q = nearbyintf(v);
      q = q > 127 ? 127 : q < -128 ? -128 : q;
      sum += (int32_t)q;
      if (qout) qout[b + i] = (int8_t)q;
      xhat[b + i] = (double)q * (double)d;
      /* half a step of the unrounded scale, plus 127 times the scale's own fp16 rounding */
      half_step[b + i] = (0.5 * fabs((double)exact_d) + 127.0 * fabs((double)d - (double)exact_d)) * (1 + 1e-6);
    }
    if (dout) dout[b / ab] = d;
    if (s_corr && kind == 1) s_corr[b / 32] = (double)to_half(exact_d * (float)sum) - (double)d * (double)sum;
  }
}
/* The weight offset m of 32-block b of a Q4_1 / Q5_1 row (fp16 at bytes 2..3 of the block); 0 otherwise. */
static double block_min(int64_t qt, const uint8_t *row, int64_t b) {
  if (qt == HR_QTYPE_Q4_1) return half_bits(row + 20 * b + 2);
  if (qt == HR_QTYPE_Q5_1) return half_bits(row + 24 * b + 2);
  return 0.0;
}

/* The int8 kernel families, from the most capable down; each one this CPU has is tested. */
static const struct {
  int isa, features;
  const char *name;
} PATHS[] = {
    {HR_ISA_AVX512, HR_CPUX_ALL, "avx512-vnni"},
    {HR_ISA_AVX512, HR_CPUX_ALL & ~(HR_CPUX_AVX512VNNI | HR_CPUX_AVXVNNI), "avx512bw"},
    {HR_ISA_AVX2, HR_CPUX_ALL, "avx-vnni"},
    {HR_ISA_AVX2, HR_CPUX_ALL & ~HR_CPUX_AVXVNNI, "avx2"},
    {HR_ISA_SCALAR, 0, "scalar"},
};
#define NPATHS (int)(sizeof PATHS / sizeof PATHS[0])
/* Selects path p; 0 when this CPU lacks it. */
static int use_path(int p) {
  hr_cpu_force_isa(PATHS[p].isa);
  hr_cpu_force_features(PATHS[p].features);
  return strcmp(hr_cpu_q8_path_name(), PATHS[p].name) == 0;
}
static void restore_native(void) {
  hr_cpu_force_isa(HR_ISA_AVX512);
  hr_cpu_force_features(-1);
}

/* y = x . W^T (+ bias) through hr_op_matmul_q against float64:
 *   (1) of the dequantized weights and the int8-rounded activations: fp32 rounding only;
 *   (2) of the dequantized weights and the fp32 activations: within the activation rounding,
 *       sum_i |w_i| * d_i / 2, plus fp32 rounding. The old fp32-dequantizing path is held to (2) without
 *       the rounding term. */
static void check_shape(int64_t qt, int64_t m, int64_t n, int64_t k, int with_bias, int also_dequant) {
  int64_t be, bb;
  CHECK_OK(hr_quant_block_info(qt, &be, &bb));
  int64_t row_bytes = k / be * bb;
  uint8_t *w = dalloc((size_t)(n * row_bytes));
  fill_blocks(qt, w, n * k / be);
  float *wf = malloc((size_t)(n * k) * sizeof(float));
  double *xhat = malloc((size_t)k * sizeof(double)), *half = malloc((size_t)k * sizeof(double)),
         *corr = calloc((size_t)(k / 32), sizeof(double));
  CHECK_OK(hr_dequantize(qt, w, wf, n * k));
  float *x = dalloc((size_t)(m * k) * 4), *y = dalloc((size_t)(m * n) * 4), *y2 = dalloc((size_t)(m * n) * 4),
        *bias = with_bias ? dalloc((size_t)n * 4) : NULL;
  for (int64_t i = 0; i < m * k; i++) x[i] = uniform();
  if (m > 2) /* an outlier channel, and an all-zero row */
    for (int64_t r = 0; r < m; r++) x[r * k + (r * 7) % k] *= 40.0f;
  if (m > 3)
    for (int64_t i = 0; i < k; i++) x[3 * k + i] = 0.0f;
  if (bias)
    for (int64_t i = 0; i < n; i++) bias[i] = uniform();
  for (int64_t i = 0; i < m * n; i++) y[i] = y2[i] = NAN; /* every element must be written */
  CHECK_OK(hr_op_matmul_q(dev, HR_DTYPE_F32, qt, P(y), P(x), P(w), P(bias), m, n, k));
  if (also_dequant) CHECK_OK(hr_cpu_matmul_dequant(y2, x, w, qt, bias, NULL, m, n, k));
  for (int64_t r = 0; r < m; r++) {
    q8_reference(qt, x + r * k, k, NULL, NULL, xhat, half, corr);
    for (int64_t c = 0; c < n; c++) {
      double want_q = bias ? bias[c] : 0.0, want = want_q, mag = 0, round = 0;
      for (int64_t b = 0; b < k / 32; b++) want_q += block_min(qt, w + c * row_bytes, b) * corr[b];
      for (int64_t i = 0; i < k; i++) {
        double wi = (double)wf[c * k + i];
        want_q += wi * xhat[i];
        want += wi * (double)x[r * k + i];
        mag += fabs(wi) * (fabs(xhat[i]) + fabs((double)x[r * k + i]));
        round += fabs(wi) * half[i];
      }
      double got = (double)y[r * n + c];
      CHECK(fabs(got - want_q) <= 1e-5 * mag + 1e-6,
            "%s qtype %lld m=%lld n=%lld k=%lld y[%lld,%lld]=%.9g want %.9g (int8 activations)", hr_cpu_q8_path_name(),
            (long long)qt, (long long)m, (long long)n, (long long)k, (long long)r, (long long)c, got, want_q);
      CHECK(fabs(got - want) <= round + 1e-5 * mag + 1e-6,
            "%s qtype %lld y[%lld,%lld]=%.9g want %.9g (fp32 x, bound %g)", hr_cpu_q8_path_name(), (long long)qt,
            (long long)r, (long long)c, got, want, round);
      if (also_dequant)
        CHECK(fabs((double)y2[r * n + c] - want) <= 1e-5 * mag + 1e-6,
              "dequant path qtype %lld y[%lld,%lld]=%g want %g", (long long)qt, (long long)r, (long long)c,
              y2[r * n + c], want);
    }
  }
  free(wf);
  free(xhat);
  free(half);
  free(corr);
  free_all();
}

static void test_matmul_q(void) {
  BEGIN("matmul_q: every type x int8 path x shapes x threads vs float64");
  /* m: decode (1..3), small-M tiles and remainders, prefill with M blocks and an M split; n: panel remainders;
   * k: 1..3 blocks (k = 96 leaves a 32-wide tail in the 64-wide AVX-512 loop) */
  static const int64_t shapes[][2] = {{1, 37}, {2, 9},   {3, 64},  {4, 17},   {5, 8},
                                      {7, 40}, {16, 21}, {33, 13}, {100, 33}, {141, 6}};
  int runs = 0;
  for (int p = 0; p < NPATHS; p++) {
    if (!use_path(p)) {
      printf("     (int8 path %s: not on this CPU, skipped)\n", PATHS[p].name);
      continue;
    }
    for (int threads = 1; threads <= 2; threads++) {
      CHECK_OK(hr_set_num_threads(dev, threads));
      for (size_t q = 0; q < sizeof QTYPES / sizeof QTYPES[0]; q++) {
        int64_t be, bb;
        CHECK_OK(hr_quant_block_info(QTYPES[q], &be, &bb));
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++, runs++) {
          if (threads == 2 && s % 2) continue; /* threads 2: half the shapes (the large ones split work) */
          int64_t k = be * (int64_t)(s % 3 + 1);
          if (be == 256 && shapes[s][0] * shapes[s][1] > 1000) k = 256; /* K-quants: keep ASan time bounded */
          check_shape(QTYPES[q], shapes[s][0], shapes[s][1], k, (int)(s & 1), p == 0 && threads == 1);
        }
      }
    }
  }
  restore_native();
  CHECK_OK(hr_set_num_threads(dev, 0));
  printf("ok   %s (%d runs)\n", cur_test, runs);
}

static void test_logits_and_embedding_q(void) {
  BEGIN("logits_q and embedding_q vs the dequantized reference");
  for (size_t q = 0; q < sizeof QTYPES / sizeof QTYPES[0]; q++) {
    int64_t qt = QTYPES[q], be, bb;
    CHECK_OK(hr_quant_block_info(qt, &be, &bb));
    int64_t vocab = 19, dim = 2 * be, hrows = 5, nrows = 3;
    uint8_t *table = dalloc((size_t)(vocab * dim / be * bb));
    fill_blocks(qt, table, vocab * dim / be);
    float *tf = malloc((size_t)(vocab * dim) * sizeof(float));
    CHECK_OK(hr_dequantize(qt, table, tf, vocab * dim));
    /* embedding: dequantized rows, exactly */
    int32_t *ids = dalloc(4 * 4);
    ids[0] = 3, ids[1] = 0, ids[2] = 18, ids[3] = 3;
    float *out = dalloc((size_t)(4 * dim) * 4);
    CHECK_OK(hr_op_embedding_q(dev, HR_DTYPE_F32, qt, P(out), P(table), P(ids), 4, vocab, dim));
    for (int t = 0; t < 4; t++)
      for (int64_t i = 0; i < dim; i++) CHECK(out[t * dim + i] == tf[ids[t] * dim + i], "embedding row %d", t);
    ids[1] = (int32_t)vocab;
    CHECK_ERR(hr_op_embedding_q(dev, HR_DTYPE_F32, qt, P(out), P(table), P(ids), 4, vocab, dim), HR_E_INVALID,
              "out of range");
    /* logits of selected hidden rows, on every int8 path: float64 of the dequantized table and the
     * int8-rounded hidden rows (fp32 rounding only) */
    float *hidden = dalloc((size_t)(hrows * dim) * 4), *logits = dalloc((size_t)(nrows * vocab) * 4);
    for (int64_t i = 0; i < hrows * dim; i++) hidden[i] = uniform();
    int32_t *rows = dalloc(nrows * 4);
    rows[0] = 4, rows[1] = 1, rows[2] = 4;
    double *xhat = malloc((size_t)dim * sizeof(double)), *half = malloc((size_t)dim * sizeof(double)),
           *corr = calloc((size_t)(dim / 32), sizeof(double));
    const int64_t trow = dim / be * bb;
    for (int p = 0; p < NPATHS; p++) {
      if (!use_path(p)) continue;
      for (int64_t i = 0; i < nrows * vocab; i++) logits[i] = NAN;
      CHECK_OK(
          hr_op_logits_q(dev, HR_DTYPE_F32, qt, P(logits), P(hidden), P(rows), nrows, hrows, P(table), vocab, dim));
      for (int r = 0; r < nrows; r++) {
        q8_reference(qt, hidden + rows[r] * dim, dim, NULL, NULL, xhat, half, corr);
        for (int64_t v = 0; v < vocab; v++) {
          double want = 0, mag = 0;
          for (int64_t b = 0; b < dim / 32; b++) want += block_min(qt, table + v * trow, b) * corr[b];
          for (int64_t i = 0; i < dim; i++) {
            want += xhat[i] * tf[v * dim + i];
            mag += fabs(xhat[i] * tf[v * dim + i]);
          }
          CHECK(fabs(logits[r * vocab + v] - want) <= 1e-5 * mag + 1e-6, "%s logits[%d,%lld]", hr_cpu_q8_path_name(), r,
                (long long)v);
        }
      }
    }
    restore_native();
    free(xhat);
    free(half);
    free(corr);
    free(tf);
    free_all();
  }
  printf("ok   %s\n", cur_test);
}

/* The activation quantizer's bytes (ggml block layout) and its matmul layout against the restated
 * ggml rules above, bit for bit, on inputs that probe each rule: exact .5 ties after the scaling,
 * equal |max| of both signs (q8_K takes the first), negative and positive maxima, all-zero
 * blocks, a lone outlier, and tiny / huge magnitudes (fp16 scale rounding, subnormal fp16 d). */
static void test_activation_bytes(void) {
  BEGIN("activation quantization: ggml's q8_0 / q8_1 / q8_K bytes, bit for bit");
  const int64_t k = 1024;
  float *x = malloc((size_t)k * sizeof(float));
  uint8_t *got = malloc((size_t)(k / 256) * 292 + 64);
  int8_t *q = malloc((size_t)k), *lq = malloc((size_t)k);
  float *d = malloc((size_t)(k / 32) * sizeof(float));
  float *ld = malloc((size_t)(k / 16) * sizeof(float)), *ls = malloc((size_t)(k / 16) * sizeof(float));
  int16_t *lb = malloc((size_t)(k / 16) * sizeof(int16_t));
  double *xhat = malloc((size_t)k * sizeof(double)), *half = malloc((size_t)k * sizeof(double)),
         *corr = calloc((size_t)(k / 32), sizeof(double));
  int cases = 0;
  for (int trial = 0; trial < 60; trial++) {
    const float mag = trial % 5 == 0 ? 1e-6f : trial % 5 == 1 ? 3e4f : 1.0f;
    for (int64_t i = 0; i < k; i++) x[i] = uniform() * mag;
    if (trial % 3 == 0) /* ties: amax = 127 exactly, so x * (127 / amax) = x; half-integers round to even */
      for (int64_t i = 0; i < k; i++) x[i] = i % 32 == 5 ? 127.0f : (float)((int)(uniform() * 120)) + 0.5f;
    if (trial % 4 == 1)
      for (int64_t b = 0; b < k; b += 256) { /* equal |max| of both signs: the first one wins in q8_K */
        x[b + 7] = (trial & 8) ? 9.0f * mag : -9.0f * mag;
        x[b + 200] = -x[b + 7];
      }
    if (trial % 6 == 2)
      for (int64_t i = 256; i < 512; i++) x[i] = 0.0f; /* an all-zero q8_K block (and 8 q8_0 blocks) */
    if (trial % 7 == 3) x[trial] *= 1000.0f;           /* an outlier */
    if (trial % 2 == 1) /* 32-blocks whose 127 / amax differs from 1 / (amax / 127) in the last bit, with */
      for (int64_t b = 0; b < k; b += 32) { /* values placed where the two round apart */
        float amax, id1, id2;
        do {
          amax = (0.5f + (uniform() + 1.0f)) * mag;
          id1 = 127.f / amax;
          id2 = 1.0f / (amax / 127.f);
        } while (id1 == id2);
        for (int i = 0; i < 32; i++) {
          float v = (i == 3 ? amax : (float)((int)(uniform() * 126) + 0.5f) / id1);
          for (int step = 0; step < 8 && i != 3; step++) {
            if (nearbyintf(v * id1) != nearbyintf(v * id2)) break;
            v = nextafterf(v, step % 2 ? INFINITY : -INFINITY);
          }
          x[b + i] = v;
        }
      }
    for (int kind = 0; kind < 3; kind++, cases++) {
      const int64_t qt = kind == 0 ? HR_QTYPE_Q8_0 : kind == 1 ? HR_QTYPE_Q4_1 : HR_QTYPE_Q6_K;
      CHECK(hr_act_kind(qt) == kind, "activation kind of %lld", (long long)qt);
      q8_reference(qt, x, k, q, d, xhat, half, corr);
      const int64_t bytes = hr_act_quantize_ggml(kind, x, k, got);
      const int64_t ab = kind == 2 ? 256 : 32, bb = kind == 2 ? 292 : kind == 1 ? 36 : 34;
      CHECK(bytes == k / ab * bb, "kind %d wrote %lld bytes", kind, (long long)bytes);
      hr_act_quantize_row(kind, x, k, lq, ld, ls, lb);
      for (int64_t b = 0; b < k / ab; b++) {
        const uint8_t *blk = got + b * bb;
        const int8_t *bq = (const int8_t *)(blk + (kind == 2 ? 4 : kind == 1 ? 4 : 2));
        float bd;
        if (kind == 2) {
          memcpy(&bd, blk, 4);
        } else {
          _Float16 h;
          memcpy(&h, blk, 2);
          bd = (float)h;
        }
        CHECK(memcmp(&bd, &d[b], 4) == 0, "trial %d kind %d block %lld: d %.9g want %.9g", trial, kind, (long long)b,
              bd, d[b]);
        CHECK(memcmp(bq, q + b * ab, (size_t)ab) == 0, "trial %d kind %d block %lld: qs differ", trial, kind,
              (long long)b);
        CHECK(memcmp(lq + b * ab, q + b * ab, (size_t)ab) == 0, "trial %d kind %d block %lld: matmul-layout qs differ",
              trial, kind, (long long)b);
        for (int64_t g = b * ab / 16; g < (b + 1) * ab / 16; g++) {
          int32_t s16 = 0;
          for (int l = 0; l < 16; l++) s16 += q[16 * g + l];
          CHECK(memcmp(&ld[g], &d[b], 4) == 0 && lb[g] == s16, "kind %d group %lld: d16 / bsum", kind, (long long)g);
          if (kind == 2) {
            int16_t bs;
            memcpy(&bs, blk + 260 + 2 * (g - b * 16), 2);
            CHECK(bs == s16, "trial %d q8_K block %lld bsums[%lld] %d want %d", trial, (long long)b,
                  (long long)(g - b * 16), bs, s16);
          }
        }
        if (kind == 1) { /* s = fp16(fp32 d * sum q): the stored bits and the matmul's operand */
          _Float16 h;
          memcpy(&h, blk + 2, 2);
          int32_t sum = 0;
          for (int l = 0; l < 32; l++) sum += q[32 * b + l];
          const double want_s = (double)d[b] * sum + corr[b];
          CHECK((double)h == want_s && (double)ls[2 * b] == want_s && ls[2 * b + 1] == 0.0f,
                "trial %d q8_1 block %lld: s %g / %g want %g", trial, (long long)b, (double)h, (double)ls[2 * b],
                want_s);
        }
      }
    }
  }
  free(x);
  free(got);
  free(q);
  free(lq);
  free(d);
  free(ld);
  free(ls);
  free(lb);
  free(xhat);
  free(half);
  free(corr);
  printf("ok   %s (%d cases)\n", cur_test, cases);
}

static void test_validation(void) {
  BEGIN("quantized ops: validation messages");
  float *x = dalloc(256 * 4), *y = dalloc(256 * 4);
  uint8_t *w = dalloc(4096);
  CHECK_ERR(hr_op_matmul_q(dev, HR_DTYPE_F32, HR_QTYPE_Q4_K, P(y), P(x), P(w), 0, 1, 1, 100), HR_E_INVALID,
            "multiple of 256");
  CHECK_ERR(hr_op_matmul_q(dev, HR_DTYPE_F32, 105, P(y), P(x), P(w), 0, 1, 1, 32), HR_E_INVALID, "HR_QTYPE");
  CHECK_ERR(hr_op_embedding_q(dev, HR_DTYPE_F32, HR_QTYPE_Q8_0, P(y), P(w), P(x), 1, 1, 31), HR_E_INVALID,
            "multiple of 32");
  int64_t be, bb;
  CHECK_ERR(hr_quant_block_info(HR_DTYPE_F32, &be, &bb), HR_E_UNSUPPORTED, "not a supported quantized type");
  CHECK_ERR(hr_dequantize(HR_QTYPE_Q8_0, w, x, 33), HR_E_INVALID, "block size 32");
  /* the dequantization workspace (hr_op_*_q_ws): both set or both 0, at least one weight row, no aliasing */
  float *ws = dalloc(256 * 4);
  CHECK_ERR(hr_op_matmul_q_ws(dev, HR_DTYPE_F32, HR_QTYPE_Q8_0, P(y), P(x), P(w), 0, 1, 1, 32, P(ws), 0), HR_E_INVALID,
            "both be 0 or both be set");
  CHECK_ERR(hr_op_matmul_q_ws(dev, HR_DTYPE_F32, HR_QTYPE_Q8_0, P(y), P(x), P(w), 0, 1, 1, 64, P(ws), 255),
            HR_E_INVALID, "cannot hold one weight row");
  CHECK_ERR(hr_op_matmul_q_ws(dev, HR_DTYPE_F32, HR_QTYPE_Q8_0, P(y), P(x), P(w), 0, 1, 1, 32, P(x), 128), HR_E_INVALID,
            "must not alias");
  CHECK_ERR(hr_op_logits_q_ws(dev, HR_DTYPE_F32, HR_QTYPE_Q8_0, P(y), P(x), 0, 1, 1, P(w), 1, 32, P(ws), 128),
            HR_E_INVALID, "row_ids must not be 0");
  /* plain weights through the _q entry points: wtype == dtype is an ordinary matmul */
  x[0] = 2.0f;
  ((float *)w)[0] = 3.0f;
  CHECK_OK(hr_op_matmul_q(dev, HR_DTYPE_F32, HR_DTYPE_F32, P(y), P(x), P(w), 0, 1, 1, 1));
  CHECK(y[0] == 6.0f, "y = %g", y[0]);
  free_all();
  printf("ok   %s\n", cur_test);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  CHECK_OK(hr_device_open(0, 1ull << 30, &dev));
  test_matmul_q();
  test_logits_and_embedding_q();
  test_activation_bytes();
  test_validation();
  CHECK_OK(hr_device_close(dev));
  printf("all quant tests passed\n");
  return 0;
}
