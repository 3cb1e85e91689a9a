/*
 * Replay-time fusion on the CPU backend (csrc/cpu/fuse.c): a recorded matmul ([gate | up]) and
 * the silu_mul reading it replay as one parallel region. The replayed outputs (gate|up and the
 * activation) must equal the eager ops' bit for bit, on every ISA, 1 and 2 threads, every task
 * size of the small-M matmul grid (matmul_f32.c), with and without bias; pairs that do not
 * match (half not a multiple of 16, M above the in-place limit, an activation aliasing the
 * matmul output, fusion off) run unfused and give the same results. The eager path itself is
 * checked against float64 references in test_ops.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/cpu/ops_cpu.h"
#include "headroom.h"

#include "check.h"

static uint32_t rng = 777;
static float frand(void) {
  rng = rng * 1664525u + 1013904223u;
  return ((float)(rng >> 8) / (float)(1 << 24)) * 2.0f - 1.0f;
}

static uint64_t dalloc(uint64_t dev, uint64_t bytes) {
  uint64_t p = 0;
  CHECK_OK(hr_alloc(dev, bytes, &p));
  return p;
}

static void upload_random(uint64_t dev, uint64_t dst, int64_t n, float scale) {
  float *h = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) h[i] = scale * frand();
  CHECK_OK(hr_memcpy_h2d(dev, dst, h, sizeof(float) * (uint64_t)n));
  free(h);
}

static float *download(uint64_t dev, uint64_t src, int64_t n) {
  float *h = malloc(sizeof(float) * (size_t)n);
  CHECK_OK(hr_memcpy_d2h(dev, h, src, sizeof(float) * (uint64_t)n));
  return h;
}

static void same_bits(const float *a, const float *b, int64_t n, const char *what) {
  if (memcmp(a, b, sizeof(float) * (size_t)n) == 0) return;
  for (int64_t i = 0; i < n; i++)
    CHECK(memcmp(&a[i], &b[i], 4) == 0, "%s[%lld]: replay %.9g, eager %.9g", what, (long long)i, (double)a[i],
          (double)b[i]);
}

typedef struct {
  int64_t m, half, k;
  int bias;
  int alias; /* activation written over the gate half of y (must not fuse) */
} shape_t;

static long long runs, fused_runs;

/* Eager matmul + silu_mul, then the same two ops recorded and replayed into other buffers. */
static void check_pair(uint64_t dev, shape_t s, int expect_fused) {
  int64_t m = s.m, half = s.half, n = 2 * half, k = s.k;
  uint64_t x = dalloc(dev, 4u * (uint64_t)(m * k)), w = dalloc(dev, 4u * (uint64_t)(n * k));
  uint64_t bias = s.bias ? dalloc(dev, 4u * (uint64_t)n) : 0;
  uint64_t ye = dalloc(dev, 4u * (uint64_t)(m * n)), yg = dalloc(dev, 4u * (uint64_t)(m * n));
  uint64_t ae = dalloc(dev, 4u * (uint64_t)(m * half)), ag = dalloc(dev, 4u * (uint64_t)(m * half));
  upload_random(dev, x, m * k, 1.0f);
  upload_random(dev, w, n * k, 0.2f);
  if (bias) upload_random(dev, bias, n, 0.5f);
  uint64_t out_e = s.alias ? ye : ae, out_g = s.alias ? yg : ag;

  CHECK_OK(hr_op_matmul(dev, HR_DTYPE_F32, ye, x, w, bias, m, n, k));
  CHECK_OK(hr_op_silu_mul(dev, HR_DTYPE_F32, out_e, ye, ye + 4u * (uint64_t)half, m, half, n));

  uint64_t set = 0;
  int64_t size = 1;
  CHECK_OK(hr_graph_set_create(dev, &size, 1, &set));
  CHECK_OK(hr_graph_capture_begin(dev, set, 1));
  CHECK_OK(hr_op_matmul(dev, HR_DTYPE_F32, yg, x, w, bias, m, n, k));
  CHECK_OK(hr_op_silu_mul(dev, HR_DTYPE_F32, out_g, yg, yg + 4u * (uint64_t)half, m, half, n));
  CHECK_OK(hr_graph_capture_end(dev, set));
  int64_t before = hr_cpu_fused_pairs;
  CHECK_OK(hr_graph_replay(dev, set, 1));
  CHECK_EQ(hr_cpu_fused_pairs - before, expect_fused);

  float *y1 = download(dev, ye, m * n), *y2 = download(dev, yg, m * n);
  same_bits(y2, y1, m * n, "gate|up");
  if (!s.alias) {
    float *a1 = download(dev, ae, m * half), *a2 = download(dev, ag, m * half);
    same_bits(a2, a1, m * half, "act");
    free(a1);
    free(a2);
  }
  free(y1);
  free(y2);
  CHECK_OK(hr_graph_set_destroy(dev, set));
  uint64_t all[] = {x, w, bias, ye, yg, ae, ag};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    if (all[i]) CHECK_OK(hr_free(dev, all[i]));
  runs++;
  fused_runs += expect_fused;
}

static void test_fused_equals_eager(uint64_t dev) {
  cur_test = "matmul + silu_mul replayed fused == eager, bit for bit";
  static const shape_t shapes[] = {
      {1, 16, 64, 0, 0},  {1, 176, 64, 1, 0},  {2, 48, 100, 0, 0}, {3, 176, 96, 1, 0},   {4, 64, 1100, 0, 0},
      {7, 256, 72, 1, 0}, {16, 176, 64, 0, 0}, {32, 32, 40, 1, 0}, {1, 2048, 768, 0, 0}, {16, 1024, 256, 0, 0},
  };
  static const int64_t task_kb[] = {0, 4, 1024};
  int native = hr_cpu_isa();
  for (int isa = HR_ISA_SCALAR; isa <= native; isa++) {
    CHECK_EQ(hr_cpu_force_isa(isa), isa);
    for (int th = 1; th <= 2; th++) {
      if (isa != native && th == 1) continue; /* the full grid on the native ISA (ASan time) */
      CHECK_OK(hr_set_num_threads(dev, th));
      for (size_t t = 0; t < sizeof task_kb / sizeof *task_kb; t++) {
        if (isa != native && t == 2) continue;
        hr_cpu_mm_task_bytes = task_kb[t] * 1024;
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
          /* the big shapes on the native ISA only (ASan time) */
          if (shapes[i].half >= 1024 && isa != native) continue;
          check_pair(dev, shapes[i], 1);
        }
      }
    }
  }
  hr_cpu_force_isa(native);
  hr_cpu_mm_task_bytes = -1;
  CHECK_OK(hr_set_num_threads(dev, 2));
  printf("ok   %s (%lld pairs, %lld fused)\n", cur_test, runs, fused_runs);
}

static void test_unfused_pairs(uint64_t dev) {
  cur_test = "pairs that must not fuse replay unfused with the eager results";
  long long r0 = runs;
  check_pair(dev, (shape_t){2, 24, 64, 0, 0}, 0);                           /* half % 16 != 0 */
  check_pair(dev, (shape_t){hr_cpu_f32_nopack_max_m + 1, 32, 64, 1, 0}, 0); /* M beyond in-place GEMV */
  check_pair(dev, (shape_t){3, 32, 64, 0, 1}, 0);                           /* act aliases y */
  printf("ok   %s (%lld pairs)\n", cur_test, runs - r0);
}

/* Small-M fp32 matmuls: the task grid (hr_cpu_mm_task_bytes) does not change a bit. */
static void test_task_grid(uint64_t dev) {
  cur_test = "small-M matmul: every task size gives the same bits";
  static const int64_t shapes[][3] = {{1, 2304, 768}, {3, 1000, 130}, {16, 520, 1100}, {32, 96, 64}};
  int native = hr_cpu_isa();
  long long n_checked = 0;
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
    int64_t m = shapes[i][0], n = shapes[i][1], k = shapes[i][2];
    uint64_t x = dalloc(dev, 4u * (uint64_t)(m * k)), w = dalloc(dev, 4u * (uint64_t)(n * k));
    uint64_t y = dalloc(dev, 4u * (uint64_t)(m * n));
    upload_random(dev, x, m * k, 1.0f);
    upload_random(dev, w, n * k, 0.2f);
    for (int isa = HR_ISA_SCALAR; isa <= native; isa++) {
      hr_cpu_force_isa(isa);
      float *ref = NULL;
      static const int64_t kb[] = {0, 1, 8, 256, 1024};
      for (size_t t = 0; t < sizeof kb / sizeof *kb; t++) {
        hr_cpu_mm_task_bytes = kb[t] * 1024;
        CHECK_OK(hr_op_matmul(dev, HR_DTYPE_F32, y, x, w, 0, m, n, k));
        float *got = download(dev, y, m * n);
        if (!ref)
          ref = got;
        else {
          same_bits(got, ref, m * n, "y");
          free(got);
        }
        n_checked++;
      }
      free(ref);
    }
    hr_cpu_force_isa(native);
    CHECK_OK(hr_free(dev, x));
    CHECK_OK(hr_free(dev, w));
    CHECK_OK(hr_free(dev, y));
  }
  hr_cpu_mm_task_bytes = -1;
  printf("ok   %s (%lld matmuls)\n", cur_test, n_checked);
}

int main(void) {
  uint64_t dev = 0;
  CHECK_OK(hr_device_open(0, 512ull << 20, &dev));
  CHECK_OK(hr_set_num_threads(dev, 2));
  test_task_grid(dev);
  test_fused_equals_eager(dev);
  test_unfused_pairs(dev);
  CHECK_OK(hr_device_close(dev));
  return 0;
}
