/*
 * Graph sets on the CPU backend (csrc/core/graph.c): record / replay, shared private pool,
 * largest-first order, refusals while capturing, errors at replay, cleanup. Run under
 * ASan/UBSan (and LeakSanitizer) by `make test-c`. One line per test; exit 1 on failure.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headroom.h"

#include "check.h"

/* A tiny "model step" over static buffers: x = table[ids]; h = rmsnorm(x); y = h . w^T. */
enum { ROWS = 50, DIM = 32, OUTN = 24, MAXB = 8 };
typedef struct {
  uint64_t dev, table, ids, x, h, norm_w, w, y;
} step_bufs;

static uint64_t dalloc(uint64_t dev, uint64_t bytes) {
  uint64_t p = 0;
  CHECK_OK(hr_alloc(dev, bytes, &p));
  return p;
}

static uint32_t rng = 12345;
static float frand(void) {
  rng = rng * 1664525u + 1013904223u;
  return ((float)(rng >> 8) / (float)(1 << 24)) * 2.0f - 1.0f;
}

static void upload_random(uint64_t dev, uint64_t dst, int64_t n) {
  float *h = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) h[i] = frand();
  CHECK_OK(hr_memcpy_h2d(dev, dst, h, sizeof(float) * (uint64_t)n));
  free(h);
}

static step_bufs make_bufs(uint64_t dev) {
  step_bufs b = {.dev = dev};
  b.table = dalloc(dev, sizeof(float) * ROWS * DIM);
  b.ids = dalloc(dev, sizeof(int32_t) * MAXB);
  b.x = dalloc(dev, sizeof(float) * MAXB * DIM);
  b.h = dalloc(dev, sizeof(float) * MAXB * DIM);
  b.norm_w = dalloc(dev, sizeof(float) * DIM);
  b.w = dalloc(dev, sizeof(float) * OUTN * DIM);
  b.y = dalloc(dev, sizeof(float) * MAXB * OUTN);
  upload_random(dev, b.table, ROWS * DIM);
  upload_random(dev, b.norm_w, DIM);
  upload_random(dev, b.w, OUTN * DIM);
  return b;
}

static void free_bufs(step_bufs *b) {
  uint64_t all[] = {b->table, b->ids, b->x, b->h, b->norm_w, b->w, b->y};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) CHECK_OK(hr_free(b->dev, all[i]));
}

/* The step for batch B; `y` may differ from b->y (per-graph outputs). */
static int step(const step_bufs *b, int64_t B, uint64_t y) {
  int st = hr_op_embedding(b->dev, HR_DTYPE_F32, b->x, b->table, b->ids, B, ROWS, DIM);
  if (st == HR_OK) st = hr_op_rms_norm(b->dev, HR_DTYPE_F32, b->h, b->x, 0, b->norm_w, B, DIM, 1e-5);
  if (st == HR_OK) st = hr_op_matmul(b->dev, HR_DTYPE_F32, y, b->h, b->w, 0, B, OUTN, DIM);
  return st;
}

static void stage_ids(const step_bufs *b, const int32_t *ids, int64_t n) {
  CHECK_OK(hr_memcpy_h2d(b->dev, b->ids, ids, sizeof(int32_t) * (uint64_t)n));
}

static void poison(uint64_t dev, uint64_t p, uint64_t bytes) { CHECK_OK(hr_memset(dev, p, 0xff, bytes)); }

static void read_y(const step_bufs *b, uint64_t y, float *out, int64_t B) {
  CHECK_OK(hr_memcpy_d2h(b->dev, out, y, sizeof(float) * (uint64_t)(B * OUTN)));
}

static uint64_t open_dev(void) {
  uint64_t dev = 0;
  CHECK_OK(hr_device_open(7, 256ull << 20, &dev));
  return dev;
}

static void test_create_errors(void) {
  uint64_t dev = open_dev(), set = 0;
  int64_t dup[] = {4, 1, 4}, zero[] = {0}, ok[] = {8, 1, 2, 4};
  CHECK_ST(hr_graph_set_create(dev, dup, 3, &set), HR_E_INVALID);
  CHECK_MSG("distinct");
  CHECK_ST(hr_graph_set_create(dev, zero, 1, &set), HR_E_INVALID);
  CHECK_ST(hr_graph_set_create(dev, ok, 0, &set), HR_E_INVALID);
  CHECK_ST(hr_graph_set_create(dev, NULL, 1, &set), HR_E_INVALID);
  CHECK_ST(hr_graph_set_create(dev, ok, 4, NULL), HR_E_INVALID);
  CHECK_ST(hr_graph_set_create(0xdead0001ull, ok, 4, &set), HR_E_INVALID);
  CHECK_OK(hr_graph_set_create(dev, ok, 4, &set));
  CHECK(set != 0);
  int64_t info[HR_GSET_INFO_COUNT];
  CHECK_OK(hr_graph_set_info(dev, set, info, HR_GSET_INFO_COUNT));
  CHECK_EQ(info[HR_GSET_NUM_SIZES], 4);
  CHECK_EQ(info[HR_GSET_NUM_CAPTURED], 0);
  CHECK_EQ(info[HR_GSET_RECORDS_OPS], 1);
  CHECK_EQ(info[HR_GSET_POOL_RESERVED], 0);
  CHECK_ST(hr_graph_replay(dev, set, 4), HR_E_INVALID);
  CHECK_MSG("not a captured size");
  CHECK_ST(hr_graph_capture_begin(dev, set, 3), HR_E_INVALID);
  CHECK_ST(hr_graph_capture_begin(dev, set, 4), HR_E_STATE); /* 8 first */
  CHECK_MSG("largest first");
  CHECK_ST(hr_graph_capture_end(dev, set), HR_E_STATE);
  int64_t sel = -1;
  CHECK_OK(hr_graph_select(dev, set, 1, &sel));
  CHECK_EQ(sel, 0); /* nothing captured */
  /* another instance cannot use the set */
  uint64_t dev2 = open_dev();
  CHECK_ST(hr_graph_replay(dev2, set, 8), HR_E_INVALID);
  CHECK_MSG("another device instance");
  CHECK_OK(hr_device_close(dev2));
  CHECK_OK(hr_graph_set_destroy(dev, set));
  CHECK_ST(hr_graph_set_destroy(dev, set), HR_E_INVALID);
  CHECK_OK(hr_device_close(dev));
}

static void test_record_replay(void) {
  uint64_t dev = open_dev();
  step_bufs b = make_bufs(dev);
  int64_t sizes[] = {1, 2, 4, 8};
  uint64_t set = 0;
  CHECK_OK(hr_graph_set_create(dev, sizes, 4, &set));
  int64_t stats0[HR_STATS_COUNT];
  CHECK_OK(hr_allocator_stats(dev, stats0, HR_STATS_COUNT));
  for (int i = 3; i >= 0; i--) {
    int64_t B = sizes[i];
    poison(dev, b.y, sizeof(float) * MAXB * OUTN);
    CHECK_OK(hr_graph_capture_begin(dev, set, B));
    CHECK_ST(hr_graph_capture_begin(dev, set, B), HR_E_STATE);
    /* synchronous calls cannot be part of a graph */
    int32_t z = 0;
    CHECK_ST(hr_memcpy_h2d(dev, b.ids, &z, 4), HR_E_STATE);
    CHECK_ST(hr_memcpy_h2d_async(dev, b.ids, &z, 4), HR_E_STATE);
    CHECK_MSG("capturing graph size");
    CHECK_ST(hr_memset(dev, b.y, 0, 4), HR_E_STATE);
    CHECK_ST(hr_synchronize(dev), HR_E_STATE);
    CHECK_ST(hr_graph_replay(dev, set, 8 > B ? 8 : B), HR_E_STATE);
    /* an op failing validation is not recorded; the capture stays open */
    CHECK_ST(hr_op_matmul(dev, HR_DTYPE_F32, b.y, b.y, b.w, 0, B, OUTN, DIM), HR_E_INVALID);
    CHECK_OK(step(&b, B, b.y));
    CHECK_OK(hr_graph_capture_end(dev, set));
    /* nothing ran during capture: the output is still poisoned */
    float y[MAXB * OUTN];
    read_y(&b, b.y, y, MAXB);
    for (int k = 0; k < MAXB * OUTN; k++) CHECK(isnan(y[k]), "capture executed an op (y[%d] = %g)", k, y[k]);
    int64_t gi[HR_GRAPH_INFO_COUNT];
    CHECK_OK(hr_graph_info(dev, set, B, gi, HR_GRAPH_INFO_COUNT));
    CHECK_EQ(gi[HR_GRAPH_CAPTURED], 1);
    CHECK_EQ(gi[HR_GRAPH_NUM_OPS], 3);
    CHECK_EQ(gi[HR_GRAPH_POOL_BYTES], 0);
    CHECK(gi[HR_GRAPH_HOST_BYTES] > 0);
  }
  /* the set allocated nothing on the device */
  int64_t stats1[HR_STATS_COUNT];
  CHECK_OK(hr_allocator_stats(dev, stats1, HR_STATS_COUNT));
  CHECK_EQ(stats1[HR_STATS_RESERVED_BYTES], stats0[HR_STATS_RESERVED_BYTES]);
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 4; i++) {
      int64_t B = sizes[i];
      int32_t ids[MAXB];
      for (int k = 0; k < MAXB; k++) ids[k] = (int32_t)((k * 7 + round * 13 + (int)B) % ROWS);
      stage_ids(&b, ids, MAXB);
      float eager[MAXB * OUTN], replay[MAXB * OUTN];
      poison(dev, b.y, sizeof eager);
      CHECK_OK(step(&b, B, b.y));
      read_y(&b, b.y, eager, B);
      poison(dev, b.y, sizeof eager);
      CHECK_OK(hr_graph_replay(dev, set, B));
      read_y(&b, b.y, replay, B);
      CHECK(memcmp(eager, replay, sizeof(float) * (size_t)(B * OUTN)) == 0, "replay of size %lld differs from eager",
            (long long)B);
      for (int k = 0; k < B * OUTN; k++) CHECK(!isnan(replay[k]));
    }
  }
  int64_t sel = 0;
  CHECK_OK(hr_graph_select(dev, set, 3, &sel));
  CHECK_EQ(sel, 4);
  CHECK_OK(hr_graph_select(dev, set, 8, &sel));
  CHECK_EQ(sel, 8);
  CHECK_OK(hr_graph_select(dev, set, 9, &sel));
  CHECK_EQ(sel, 0);
  CHECK_ST(hr_graph_select(dev, set, 0, &sel), HR_E_INVALID);
  int64_t gi[HR_GRAPH_INFO_COUNT];
  CHECK_OK(hr_graph_info(dev, set, 4, gi, HR_GRAPH_INFO_COUNT));
  CHECK_EQ(gi[HR_GRAPH_REPLAYS], 3);
  /* index values are checked at replay, as in eager mode; the failing op is named */
  int32_t bad[MAXB] = {0, 1, ROWS + 5, 0, 0, 0, 0, 0};
  stage_ids(&b, bad, MAXB);
  CHECK_ST(hr_graph_replay(dev, set, 4), HR_E_INVALID);
  CHECK_MSG("op 0 of 3 (embedding)");
  CHECK_OK(hr_graph_set_destroy(dev, set));
  free_bufs(&b);
  CHECK_OK(hr_device_close(dev));
}

/* Memory: scratch freed during a capture is reused by the next (MAX); outputs kept per graph
 * grow the pool (SUM). */
static void test_pool_sharing(void) {
  uint64_t dev = open_dev();
  step_bufs b = make_bufs(dev);
  int64_t sizes[] = {1, 2, 4, 8};
  const uint64_t scratch_per_row = 3ull << 19; /* 1.5 MiB per row: every size uses the large pool */
  /* shared: each capture allocates scratch in the pool and frees it before the end */
  uint64_t set = 0;
  CHECK_OK(hr_graph_set_create(dev, sizes, 4, &set));
  int64_t sinfo[HR_GSET_INFO_COUNT];
  for (int i = 3; i >= 0; i--) {
    CHECK_OK(hr_graph_capture_begin(dev, set, sizes[i]));
    uint64_t scratch = dalloc(dev, scratch_per_row * (uint64_t)sizes[i]);
    CHECK_OK(hr_op_embedding(dev, HR_DTYPE_F32, scratch, b.table, b.ids, sizes[i], ROWS, DIM));
    CHECK_OK(hr_free(dev, scratch));
    CHECK_OK(hr_graph_capture_end(dev, set));
    int64_t gi[HR_GRAPH_INFO_COUNT];
    CHECK_OK(hr_graph_info(dev, set, sizes[i], gi, HR_GRAPH_INFO_COUNT));
    if (i == 3)
      CHECK(gi[HR_GRAPH_POOL_BYTES] >= (int64_t)(scratch_per_row * 8), "largest grows the pool");
    else
      CHECK_EQ(gi[HR_GRAPH_POOL_BYTES], 0);
    CHECK_EQ(gi[HR_GRAPH_BYTES], gi[HR_GRAPH_POOL_BYTES] + gi[HR_GRAPH_EXEC_BYTES]);
  }
  CHECK_OK(hr_graph_set_info(dev, set, sinfo, HR_GSET_INFO_COUNT));
  int64_t shared_total = sinfo[HR_GSET_TOTAL_BYTES];
  CHECK_EQ(sinfo[HR_GSET_NUM_CAPTURED], 4);
  CHECK_EQ(sinfo[HR_GSET_POOL_ALLOCATED], 0);
  uint64_t pool_reserved = 0;
  CHECK_OK(hr_pool_reserved(dev, (uint64_t)sinfo[HR_GSET_POOL], &pool_reserved));
  CHECK_EQ(pool_reserved, sinfo[HR_GSET_POOL_RESERVED]);
  /* the pool's memory survives empty_cache (a graph may still use it) */
  CHECK_OK(hr_allocator_empty_cache(dev));
  CHECK_OK(hr_graph_set_info(dev, set, sinfo, HR_GSET_INFO_COUNT));
  CHECK_EQ(sinfo[HR_GSET_POOL_RESERVED], (int64_t)pool_reserved);
  CHECK_OK(hr_graph_set_destroy(dev, set));

  /* per-graph outputs: kept live, so the pool holds the sum */
  CHECK_OK(hr_graph_set_create(dev, sizes, 4, &set));
  uint64_t outs[4] = {0};
  int64_t sum_rows = 0;
  for (int i = 3; i >= 0; i--) {
    CHECK_OK(hr_graph_capture_begin(dev, set, sizes[i]));
    outs[i] = dalloc(dev, scratch_per_row * (uint64_t)sizes[i]);
    CHECK_OK(hr_op_embedding(dev, HR_DTYPE_F32, outs[i], b.table, b.ids, sizes[i], ROWS, DIM));
    CHECK_OK(hr_graph_capture_end(dev, set));
    sum_rows += sizes[i];
  }
  CHECK_OK(hr_graph_set_info(dev, set, sinfo, HR_GSET_INFO_COUNT));
  CHECK(sinfo[HR_GSET_POOL_ALLOCATED] >= (int64_t)(scratch_per_row * (uint64_t)sum_rows));
  CHECK(sinfo[HR_GSET_TOTAL_BYTES] > shared_total, "per-graph %lld vs shared %lld",
        (long long)sinfo[HR_GSET_TOTAL_BYTES], (long long)shared_total);
  /* live blocks in the pool keep the set alive */
  CHECK_ST(hr_graph_set_destroy(dev, set), HR_E_STATE);
  CHECK_MSG("free the blocks allocated during capture");
  CHECK_OK(hr_graph_replay(dev, set, 2)); /* still usable */
  for (int i = 0; i < 4; i++) CHECK_OK(hr_free(dev, outs[i]));
  CHECK_OK(hr_graph_set_destroy(dev, set));
  free_bufs(&b);
  CHECK_OK(hr_device_close(dev));
}

static void test_abort_and_close(void) {
  uint64_t dev = open_dev();
  step_bufs b = make_bufs(dev);
  int64_t sizes[] = {2, 4};
  uint64_t set = 0, set2 = 0;
  CHECK_OK(hr_graph_set_create(dev, sizes, 2, &set));
  CHECK_OK(hr_graph_set_create(dev, sizes, 2, &set2));
  CHECK_OK(hr_graph_capture_begin(dev, set, 4));
  CHECK_ST(hr_graph_capture_begin(dev, set2, 4), HR_E_STATE); /* one capture per instance */
  CHECK_MSG("already capturing");
  CHECK_OK(step(&b, 4, b.y));
  CHECK_ST(hr_graph_set_destroy(dev, set), HR_E_STATE);
  CHECK_OK(hr_graph_capture_abort(dev, set));
  CHECK_ST(hr_graph_capture_abort(dev, set), HR_E_STATE);
  int64_t gi[HR_GRAPH_INFO_COUNT];
  CHECK_OK(hr_graph_info(dev, set, 4, gi, HR_GRAPH_INFO_COUNT));
  CHECK_EQ(gi[HR_GRAPH_CAPTURED], 0);
  /* after abort, ops run eagerly again and the size can be captured */
  int32_t ids[MAXB] = {1, 2, 3, 4, 5, 6, 7, 8};
  stage_ids(&b, ids, MAXB);
  CHECK_OK(step(&b, 4, b.y));
  CHECK_OK(hr_graph_capture_begin(dev, set, 4));
  CHECK_OK(step(&b, 4, b.y));
  CHECK_OK(hr_graph_capture_end(dev, set));
  CHECK_OK(hr_graph_capture_begin(dev, set, 2));
  CHECK_OK(step(&b, 2, b.y));
  /* closing the instance mid-capture releases everything (LeakSanitizer checks) */
  free_bufs(&b);
  CHECK_OK(hr_device_close(dev));
  CHECK_ST(hr_graph_replay(dev, set, 4), HR_E_INVALID);
  dev = open_dev();
  CHECK_ST(hr_graph_replay(dev, set, 4), HR_E_INVALID); /* the handle died with its instance */
  CHECK_OK(hr_device_close(dev));
}

typedef struct {
  const char *name;
  void (*fn)(void);
} test_t;

int main(void) {
  test_t tests[] = {
      {"create_errors", test_create_errors},
      {"record_replay", test_record_replay},
      {"pool_sharing", test_pool_sharing},
      {"abort_and_close", test_abort_and_close},
  };
  int n = (int)(sizeof tests / sizeof tests[0]);
  for (int i = 0; i < n; i++) {
    cur_test = tests[i].name;
    tests[i].fn();
    printf("ok   graph/%s\n", tests[i].name);
    fflush(stdout);
  }
  printf("graph: %d passed, 0 failed\n", n);
  return 0;
}
