/*
 * Quantized weights (GGUF blocks): hr_op_matmul_q / hr_op_logits_q / hr_op_embedding_q on
 * the CPU backend against a float64 product of the dequantized reference weights, for every
 * type, ISA and a range of shapes (decode GEMV m <= 3, small m, prefill m), plus validation.
 * The dequantization rule itself is checked against ggml's own output in
 * test/model/quant-ggml.test.ts.
 */
#include <math.h>
#include <stdint.h>

#include "../../csrc/cpu/ops_cpu.h"
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

static void check_shape(int64_t qt, int64_t m, int64_t n, int64_t k, int with_bias) {
  int64_t be, bb;
  CHECK_OK(hr_quant_block_info(qt, &be, &bb));
  int64_t row_bytes = k / be * bb;
  uint8_t *w = dalloc((size_t)(n * row_bytes));
  fill_blocks(qt, w, n * k / be);
  float *wf = malloc((size_t)(n * k) * sizeof(float));
  CHECK_OK(hr_dequantize(qt, w, wf, n * k));
  float *x = dalloc((size_t)(m * k) * 4), *y = dalloc((size_t)(m * n) * 4),
        *bias = with_bias ? dalloc((size_t)n * 4) : NULL;
  for (int64_t i = 0; i < m * k; i++) x[i] = uniform();
  if (bias)
    for (int64_t i = 0; i < n; i++) bias[i] = uniform();
  for (int64_t i = 0; i < m * n; i++) y[i] = NAN; /* every element must be written */
  CHECK_OK(hr_op_matmul_q(dev, HR_DTYPE_F32, qt, P(y), P(x), P(w), P(bias), m, n, k));
  for (int64_t r = 0; r < m; r++)
    for (int64_t c = 0; c < n; c++) {
      double want = bias ? bias[c] : 0.0, mag = 0;
      for (int64_t i = 0; i < k; i++) {
        want += (double)x[r * k + i] * (double)wf[c * k + i];
        mag += fabs((double)x[r * k + i] * (double)wf[c * k + i]);
      }
      double err = fabs((double)y[r * n + c] - want);
      CHECK(err <= 1e-5 * mag + 1e-6, "qtype %lld m=%lld n=%lld k=%lld y[%lld,%lld]=%g want %g", (long long)qt,
            (long long)m, (long long)n, (long long)k, (long long)r, (long long)c, y[r * n + c], want);
    }
  free(wf);
  free_all();
}

static void test_matmul_q(void) {
  BEGIN("matmul_q: every type x ISA x shapes vs float64 of the dequantized weights");
  static const int64_t shapes[][2] = {{1, 37}, {2, 9}, {3, 64}, {4, 17}, {7, 40}, {100, 33}};
  int native = hr_cpu_isa(), runs = 0;
  for (int isa = HR_ISA_SCALAR; isa <= native; isa++) {
    hr_cpu_force_isa(isa);
    for (size_t q = 0; q < sizeof QTYPES / sizeof QTYPES[0]; q++) {
      int64_t be, bb;
      CHECK_OK(hr_quant_block_info(QTYPES[q], &be, &bb));
      for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++, runs++)
        check_shape(QTYPES[q], shapes[s][0], shapes[s][1], be * (s % 3 + 1), (int)(s & 1));
    }
  }
  hr_cpu_force_isa(native);
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
    /* logits of selected hidden rows */
    float *hidden = dalloc((size_t)(hrows * dim) * 4), *logits = dalloc((size_t)(nrows * vocab) * 4);
    for (int64_t i = 0; i < hrows * dim; i++) hidden[i] = uniform();
    int32_t *rows = dalloc(nrows * 4);
    rows[0] = 4, rows[1] = 1, rows[2] = 4;
    CHECK_OK(hr_op_logits_q(dev, HR_DTYPE_F32, qt, P(logits), P(hidden), P(rows), nrows, hrows, P(table), vocab, dim));
    for (int r = 0; r < nrows; r++)
      for (int64_t v = 0; v < vocab; v++) {
        double want = 0, mag = 0;
        for (int64_t i = 0; i < dim; i++) {
          want += (double)hidden[rows[r] * dim + i] * tf[v * dim + i];
          mag += fabs((double)hidden[rows[r] * dim + i] * tf[v * dim + i]);
        }
        CHECK(fabs(logits[r * vocab + v] - want) <= 1e-5 * mag + 1e-6, "logits[%d,%lld]", r, (long long)v);
      }
    free(tf);
    free_all();
  }
  printf("ok   %s\n", cur_test);
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
  test_validation();
  CHECK_OK(hr_device_close(dev));
  printf("all quant tests passed\n");
  return 0;
}
