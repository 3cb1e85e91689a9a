/*
 * hr_op_add_logit_bias on the CPU backend (csrc/cpu/ops_logit_bias.c) under ASan/UBSan:
 * every entry's logit becomes (float)((double)l + bias) (checked against the sum computed here
 * in long double and rounded twice, as the header states), every other logit is bit-identical,
 * padding / out-of-range entries skip (no stray write: ASan), -inf entries ban, a bias whose
 * float rounding differs from the double one proves the double is used; an op-list graph
 * replays with restaged entries; argument errors.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headroom.h"

#include "check.h"
#include "device_bufs.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}
static float frnd(void) { return ((float)(rnd() & 0xffffff) + 0.5f) / 8388608.0f - 1.0f; }

/* (float)((double)l + b) computed independently: long double sum, rounded to double, then float */
static float ref_add(float l, double b) {
  volatile double d = (double)((long double)l + (long double)b);
  volatile float f = (float)d;
  return f;
}

static void check_entries(const float *in, const float *out, int64_t lrows, int64_t v, const hr_logit_bias_entry *e,
                          int64_t n) {
  for (int64_t i = 0; i < lrows * v; i++) {
    int64_t hit = -1;
    for (int64_t k = 0; k < n; k++)
      if (e[k].row >= 0 && e[k].row < lrows && e[k].token >= 0 && e[k].token < v && e[k].row * v + e[k].token == i)
        hit = k;
    const float want = hit < 0 ? in[i] : ref_add(in[i], e[hit].bias);
    CHECK(memcmp(&want, &out[i], sizeof want) == 0 || (isnan(want) && isnan(out[i])),
          "logit %lld (row %lld token %lld): got %a, want %a", (long long)i, (long long)(i / v), (long long)(i % v),
          (double)out[i], (double)want);
  }
}

static void test_random(void) {
  cur_test = "random";
  const int64_t vocabs[] = {1, 7, 1000, 32001};
  for (size_t vi = 0; vi < sizeof vocabs / sizeof vocabs[0]; vi++) {
    const int64_t v = vocabs[vi], lrows = 5, n = 40;
    float *logits = dalloc((size_t)(lrows * v) * 4);
    float *ref = malloc((size_t)(lrows * v) * 4);
    hr_logit_bias_entry *e = dalloc((size_t)n * sizeof *e);
    for (int64_t i = 0; i < lrows * v; i++) logits[i] = frnd() * 10.0f;
    memcpy(ref, logits, (size_t)(lrows * v) * 4);
    /* distinct (row, token) pairs: entry k aims at row k % lrows, token (k / lrows) * 7 % v,
     * unless that pair was already taken (then padding) */
    for (int64_t k = 0; k < n; k++) {
      e[k].row = (int32_t)(k % lrows);
      e[k].token = (int32_t)(((k / lrows) * 7) % v);
      for (int64_t j = 0; j < k; j++)
        if (e[j].row == e[k].row && e[j].token == e[k].token) e[k].row = -1;
      const uint32_t kind = rnd() % 8;
      e[k].bias = kind == 0 ? -INFINITY : kind == 1 ? 100.0 : kind == 2 ? -100.0 : (double)frnd() * 7.3;
    }
    e[3].row = -1;                  /* padding */
    e[4].row = (int32_t)lrows;      /* out of range row */
    e[5].token = (int32_t)v;        /* out of range token */
    e[6].token = -2;                /* negative token */
    e[7].row = (int32_t)0x7fffffff; /* far out of range */
    CHECK_OK(hr_op_add_logit_bias(dev, P(logits), lrows, P(e), n, v));
    check_entries(ref, logits, lrows, v, e, n);
    free(ref);
    free_all();
  }
  printf("ok random\n");
}

/* a bias that float cannot hold: l + (float)b and (float)(l + b) differ; the op gives the latter */
static void test_double_bias(void) {
  cur_test = "double_bias";
  float *logits = dalloc(2 * 4);
  hr_logit_bias_entry *e = dalloc(sizeof *e);
  logits[0] = 1.0f;
  logits[1] = 3.0f;
  /* b = 2^-24 + 2^-50: as a float it rounds to 2^-24 and 1 + 2^-24 rounds to 1 (tie to even);
   * in double 1 + b is exact, just above the tie, and rounds up to 1 + 2^-23 as a float */
  const double b = ldexp(1.0, -24) + ldexp(1.0, -50);
  e[0] = (hr_logit_bias_entry){.row = 0, .token = 0, .bias = b};
  CHECK(1.0f + (float)b == 1.0f, "premise: the float sum rounds down");
  CHECK_OK(hr_op_add_logit_bias(dev, P(logits), 1, P(e), 1, 2));
  CHECK(logits[0] == 1.0f + ldexpf(1.0f, -23), "got %a, want 1 + 2^-23", (double)logits[0]);
  CHECK(logits[1] == 3.0f, "token 1 untouched");
  free_all();
  printf("ok double_bias\n");
}

/* recorded once in an op-list graph, replayed with new entries staged in the same buffer */
static void test_graph(void) {
  cur_test = "graph";
  const int64_t v = 50, lrows = 3, n = 8;
  float *logits = dalloc(lrows * v * 4);
  float *ref = malloc(lrows * v * 4);
  hr_logit_bias_entry *e = dalloc(n * sizeof *e);
  uint64_t set = 0;
  const int64_t sizes[] = {lrows};
  CHECK_OK(hr_graph_set_create(dev, sizes, 1, &set));
  CHECK_OK(hr_graph_capture_begin(dev, set, lrows));
  CHECK_OK(hr_op_add_logit_bias(dev, P(logits), lrows, P(e), n, v));
  CHECK_OK(hr_graph_capture_end(dev, set));
  for (int rep = 0; rep < 3; rep++) {
    for (int64_t i = 0; i < lrows * v; i++) logits[i] = frnd();
    memcpy(ref, logits, lrows * v * 4);
    for (int64_t k = 0; k < n; k++) {
      e[k].row = k < 2 + rep ? (int32_t)(k % lrows) : -1;
      e[k].token = (int32_t)(k * 5 + rep);
      e[k].bias = (double)frnd() * 3.0;
    }
    CHECK_OK(hr_graph_replay(dev, set, lrows));
    check_entries(ref, logits, lrows, v, e, n);
  }
  CHECK_OK(hr_graph_set_destroy(dev, set));
  free(ref);
  free_all();
  printf("ok graph\n");
}

static void test_errors(void) {
  cur_test = "errors";
  float *logits = dalloc(4 * 40 * 4);
  hr_logit_bias_entry *e = dalloc(4 * sizeof *e);
  CHECK_ERR(hr_op_add_logit_bias(dev, 0, 4, P(e), 4, 40), HR_E_INVALID, "logits");
  CHECK_ERR(hr_op_add_logit_bias(dev, P(logits), 4, 0, 4, 40), HR_E_INVALID, "entries");
  CHECK_ERR(hr_op_add_logit_bias(dev, P(logits), 0, P(e), 4, 40), HR_E_INVALID, "logits_rows");
  CHECK_ERR(hr_op_add_logit_bias(dev, P(logits), 4, P(e), 0, 40), HR_E_INVALID, "n");
  CHECK_ERR(hr_op_add_logit_bias(dev, P(logits), 4, P(e), 4, 0), HR_E_INVALID, "vocab");
  CHECK_ERR(hr_op_add_logit_bias(dev, P(logits), 4, P(e) + 4, 1, 40), HR_E_INVALID, "aligned");
  CHECK_ERR(hr_op_add_logit_bias(dev, P(logits), 4, P(logits) + 64, 2, 40), HR_E_INVALID, "overlap");
  CHECK_ERR(hr_op_add_logit_bias(0xdead0001ull, P(logits), 4, P(e), 4, 40), HR_E_INVALID, "hr_op_add_logit_bias");
  free_all();
  printf("ok errors\n");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  CHECK_OK(hr_device_open(0, 1ull << 30, &dev));
  test_errors();
  test_random();
  test_double_bias();
  test_graph();
  CHECK_OK(hr_device_close(dev));
  printf("all logit bias tests passed\n");
  return 0;
}
