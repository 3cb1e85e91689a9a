/*
 * The matmul part of an s110m decode step (12 layers of q|k|v 2304x768, o 768x768, gate|up
 * 4096x768 + SwiGLU, down 768x2048, then the 32000x768 LM head; every layer its own weights,
 * 438 MB, so they stream from DRAM as in decode) at M = 1 and 16, in one process, settings
 * alternated step by step so load drifts over all of them alike:
 *   before  ~4 matmul tasks per thread, silu_mul its own step (a region at M = 16)
 *   tasks   matmul tasks of <= 1 MiB of weights (HEADROOM_CPU_MM_TASK_KB)
 *   after   tasks + gate|up and SwiGLU in one region (hr_cpu_matmul_f32_swiglu)
 * Prints min / median / max ms per step and before / setting ratios (> 1: faster). Attention,
 * norms and RoPE are not included (unchanged). Usage: bench/regions/bench_regions.sh [threads] [steps]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../csrc/cpu/ops_cpu.h"
#include "../../csrc/cpu/threadpool.h"

enum { L = 12, D = 768, QKV = 2304, I = 2048, V = 32000, MMAX = 16 };

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static float *rand_buf(size_t n) {
  float *p = aligned_alloc(64, ((n * 4 + 63) / 64) * 64);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  uint32_t r = (uint32_t)n * 2654435761u;
  for (size_t i = 0; i < n; i++) {
    r = r * 1664525u + 1013904223u;
    p[i] = ((float)(r >> 8) / (float)(1 << 24) - 0.5f) * 0.05f;
  }
  return p;
}

typedef struct {
  float *act;
  const float *gu;
  int64_t m, chunk;
} silu_ctx;
static void silu_task(void *v, int64_t t, int thread, void *scratch) {
  (void)thread, (void)scratch;
  silu_ctx *c = v;
  int64_t r1 = (t + 1) * c->chunk < c->m ? (t + 1) * c->chunk : c->m;
  for (int64_t r = t * c->chunk; r < r1; r++) hr_vsilu_mul(c->act + r * I, c->gu + r * 2 * I, c->gu + r * 2 * I + I, I);
}

static int threads_;
static int64_t task_kb = 1024; /* the tasks/after settings' task size: HEADROOM_CPU_MM_TASK_KB, else the default */
static float *wqkv[L], *wo[L], *wgu[L], *wd[L], *head;
static float *x, *qkv, *o, *gu, *act, *logits;

/* One step's matmuls; setting 0 = before, 1 = tasks, 2 = after. */
static void step(int setting, int64_t m) {
  hr_cpu_mm_task_bytes = setting == 0 ? 0 : task_kb * 1024;
  for (int l = 0; l < L; l++) {
    hr_cpu_matmul_f32(qkv, x, wqkv[l], NULL, NULL, m, QKV, D);
    hr_cpu_matmul_f32(o, qkv, wo[l], NULL, NULL, m, D, D); /* stands in for attention's output */
    if (setting == 2) {
      hr_cpu_matmul_f32_swiglu(gu, act, o, wgu[l], NULL, NULL, m, 2 * I, D);
    } else {
      hr_cpu_matmul_f32(gu, o, wgu[l], NULL, NULL, m, 2 * I, D);
      /* silu_mul as the executor runs it: rows in ~4 chunks per thread, a region when
       * m * I >= 32768 elements (ops_basic.c run_rows), else inline */
      silu_ctx c = {.act = act, .gu = gu, .m = m, .chunk = m};
      if (m * I >= 32768) {
        int64_t nt = threads_ * 4 < m ? threads_ * 4 : m;
        c.chunk = (m + nt - 1) / nt;
        hrt_parallel((m + c.chunk - 1) / c.chunk, 0, silu_task, &c);
      } else {
        silu_task(&c, 0, 0, NULL);
      }
    }
    hr_cpu_matmul_f32(x, act, wd[l], NULL, NULL, m, D, I);
  }
  hr_cpu_matmul_f32(logits, x, head, NULL, NULL, m, V, D);
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2, steps = argc > 2 ? atoi(argv[2]) : 30;
  hrt_set_num_threads(threads);
  threads_ = threads;
  const char *tk = getenv("HEADROOM_CPU_MM_TASK_KB");
  if (tk && atoi(tk) > 0) task_kb = atoi(tk);
  for (int l = 0; l < L; l++) {
    wqkv[l] = rand_buf((size_t)QKV * D);
    wo[l] = rand_buf((size_t)D * D);
    wgu[l] = rand_buf((size_t)2 * I * D);
    wd[l] = rand_buf((size_t)D * I);
  }
  head = rand_buf((size_t)V * D);
  x = rand_buf(MMAX * D);
  qkv = rand_buf(MMAX * QKV);
  o = rand_buf(MMAX * D);
  gu = rand_buf(MMAX * 2 * I);
  act = rand_buf(MMAX * I);
  logits = rand_buf((size_t)MMAX * V);
  static const char *names[3] = {"before", "tasks", "after"};
  static const int64_t ms[2] = {1, 16};
  printf("s110m decode matmuls (+ SwiGLU), %d threads, %d steps per setting, tasks of %lld KiB, ISA %s\n", threads,
         steps, (long long)task_kb, hr_cpu_isa_name(hr_cpu_isa()));
  for (int mi = 0; mi < 2; mi++) {
    double *t[3];
    for (int s = 0; s < 3; s++) t[s] = calloc((size_t)steps, sizeof(double));
    for (int s = 0; s < 3; s++) step(s, ms[mi]); /* warm-up */
    for (int i = 0; i < steps; i++)
      for (int s = 0; s < 3; s++) {
        double t0 = now_ms();
        step(s, ms[mi]);
        t[s][i] = now_ms() - t0;
      }
    for (int s = 0; s < 3; s++) qsort(t[s], (size_t)steps, sizeof(double), cmp_d);
    printf("M = %lld: ms per step min / median / max, before / setting (min, median)\n", (long long)ms[mi]);
    for (int s = 0; s < 3; s++)
      printf("  %-6s %7.2f / %7.2f / %7.2f   %.3f, %.3f\n", names[s], t[s][0], t[s][steps / 2], t[s][steps - 1],
             t[0][0] / t[s][0], t[0][steps / 2] / t[s][steps / 2]);
    for (int s = 0; s < 3; s++) free(t[s]);
  }
  return 0;
}
