/*
 * hr_op_apply_token_bitmask on the CPU backend (csrc/cpu/ops_bitmask.c) under ASan/UBSan,
 * against a reference written here: every allowed logit is bit-identical to its input, every
 * disallowed one is -inf, rows without a mask row are untouched, padding indices skip.
 * Vocab sizes around word boundaries (1, 31, 32, 33, 1000, 32001), random masks of densities
 * 0 / 0.03 / 0.5 / 1, row_indices NULL or a permutation with padding; an op-list graph replays
 * with a restaged mask; argument errors.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headroom.h"

#include "check.h"
#include "device_bufs.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}
static float frnd(void) { return ((float)(rnd() & 0xffffff) + 0.5f) / 8388608.0f - 1.0f; }

/* mask bit density: 0, ~3 %, ~50 %, all */
static void fill_mask(uint32_t *m, int64_t words, int density) {
  for (int64_t w = 0; w < words; w++) {
    uint32_t b = 0;
    for (int j = 0; j < 32; j++) {
      const uint32_t x = rnd() % 100;
      const int on = density == 0 ? 0 : density == 1 ? x < 3 : density == 2 ? x < 50 : 1;
      b |= (uint32_t)on << j;
    }
    m[w] = b;
  }
}

/* checks logits (after) against the input copy and the masks */
static void check_rows(const float *in, const float *out, int64_t lrows, int64_t v, const uint32_t *mask,
                       const int32_t *idx, int64_t rows) {
  const int64_t words = (v + 31) / 32;
  for (int64_t i = 0; i < lrows; i++) {
    int64_t r = -1; /* the mask row aimed at logits row i, if any */
    for (int64_t k = 0; k < rows; k++)
      if ((idx ? idx[k] : k) == i) r = k;
    for (int64_t t = 0; t < v; t++) {
      const float a = in[i * v + t], b = out[i * v + t];
      const int allowed = r < 0 || ((mask[r * words + t / 32] >> (t % 32)) & 1u);
      if (allowed)
        CHECK(memcmp(&a, &b, sizeof a) == 0, "row %lld token %lld (vocab %lld): allowed logit changed %g -> %g",
              (long long)i, (long long)t, (long long)v, a, b);
      else
        CHECK(isinf(b) && b < 0, "row %lld token %lld (vocab %lld): disallowed logit is %g, want -inf", (long long)i,
              (long long)t, (long long)v, b);
    }
  }
}

static void test_random(void) {
  cur_test = "random";
  const int64_t vocabs[] = {1, 31, 32, 33, 1000, 32001};
  for (size_t vi = 0; vi < sizeof vocabs / sizeof vocabs[0]; vi++) {
    for (int density = 0; density < 4; density++) {
      for (int use_idx = 0; use_idx < 2; use_idx++) {
        const int64_t v = vocabs[vi], words = (v + 31) / 32, lrows = 5, rows = use_idx ? 4 : 3;
        float *logits = dalloc((size_t)(lrows * v) * 4);
        float *ref = malloc((size_t)(lrows * v) * 4);
        uint32_t *mask = dalloc((size_t)(rows * words) * 4);
        int32_t *idx = use_idx ? dalloc((size_t)rows * 4) : NULL;
        for (int64_t i = 0; i < lrows * v; i++) logits[i] = frnd() * 10.0f;
        memcpy(ref, logits, (size_t)(lrows * v) * 4);
        fill_mask(mask, rows * words, density);
        if (idx) { /* rows 4, 0, padding (-1), 2; row 1 and 3 free */
          idx[0] = 4;
          idx[1] = 0;
          idx[2] = -1;
          idx[3] = 2;
        }
        CHECK_OK(hr_op_apply_token_bitmask(dev, P(logits), lrows, P(mask), P(idx), rows, v));
        check_rows(ref, logits, lrows, v, mask, idx, rows);
        free(ref);
        free_all();
      }
    }
  }
  printf("ok random\n");
}

/* out-of-range indices skip (no write outside the logits); ASan would catch a stray write */
static void test_out_of_range(void) {
  cur_test = "out_of_range";
  const int64_t v = 70, words = 3;
  float *logits = dalloc(2 * v * 4);
  float *ref = malloc(2 * v * 4);
  uint32_t *mask = dalloc(2 * words * 4);
  int32_t *idx = dalloc(2 * 4);
  for (int64_t i = 0; i < 2 * v; i++) logits[i] = frnd();
  memcpy(ref, logits, 2 * v * 4);
  memset(mask, 0, 2 * words * 4);
  idx[0] = 2; /* == logits_rows: skipped */
  idx[1] = 1000000;
  CHECK_OK(hr_op_apply_token_bitmask(dev, P(logits), 2, P(mask), P(idx), 2, v));
  CHECK(memcmp(ref, logits, 2 * v * 4) == 0, "out-of-range rows must not change the logits");
  free(ref);
  free_all();
  printf("ok out_of_range\n");
}

/* recorded once in an op-list graph, replayed with a new mask staged in the same buffer */
static void test_graph(void) {
  cur_test = "graph";
  const int64_t v = 100, words = 4, rows = 2;
  float *logits = dalloc(rows * v * 4);
  float *ref = malloc(rows * v * 4);
  uint32_t *mask = dalloc(rows * words * 4);
  uint64_t set = 0;
  const int64_t sizes[] = {rows};
  CHECK_OK(hr_graph_set_create(dev, sizes, 1, &set));
  CHECK_OK(hr_graph_capture_begin(dev, set, rows));
  CHECK_OK(hr_op_apply_token_bitmask(dev, P(logits), rows, P(mask), 0, rows, v));
  CHECK_OK(hr_graph_capture_end(dev, set));
  for (int rep = 0; rep < 3; rep++) {
    for (int64_t i = 0; i < rows * v; i++) logits[i] = frnd();
    memcpy(ref, logits, rows * v * 4);
    fill_mask(mask, rows * words, 1 + rep % 3);
    CHECK_OK(hr_graph_replay(dev, set, rows));
    check_rows(ref, logits, rows, v, mask, NULL, rows);
  }
  CHECK_OK(hr_graph_set_destroy(dev, set));
  free(ref);
  free_all();
  printf("ok graph\n");
}

static void test_errors(void) {
  cur_test = "errors";
  float *logits = dalloc(4 * 40 * 4);
  uint32_t *mask = dalloc(4 * 2 * 4);
  CHECK_ERR(hr_op_apply_token_bitmask(dev, 0, 4, P(mask), 0, 4, 40), HR_E_INVALID, "logits");
  CHECK_ERR(hr_op_apply_token_bitmask(dev, P(logits), 4, 0, 0, 4, 40), HR_E_INVALID, "bitmask");
  CHECK_ERR(hr_op_apply_token_bitmask(dev, P(logits), 4, P(mask), 0, 0, 40), HR_E_INVALID, "rows");
  CHECK_ERR(hr_op_apply_token_bitmask(dev, P(logits), 4, P(mask), 0, 4, 0), HR_E_INVALID, "vocab");
  CHECK_ERR(hr_op_apply_token_bitmask(dev, P(logits), 2, P(mask), 0, 4, 40), HR_E_INVALID, "without row_indices");
  CHECK_ERR(hr_op_apply_token_bitmask(dev, P(logits), 4, P(logits) + 8, 0, 4, 40), HR_E_INVALID, "overlaps");
  CHECK_ERR(hr_op_apply_token_bitmask(0xdead0001ull, P(logits), 4, P(mask), 0, 4, 40), HR_E_INVALID,
            "hr_op_apply_token_bitmask");
  free_all();
  printf("ok errors\n");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  CHECK_OK(hr_device_open(0, 1ull << 30, &dev));
  test_errors();
  test_random();
  test_out_of_range();
  test_graph();
  CHECK_OK(hr_device_close(dev));
  printf("all token bitmask tests passed\n");
  return 0;
}
