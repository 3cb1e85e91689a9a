/*
 * bench/matmul (quantized and 16-bit weights, small-M fp32): the new CPU kernels against the
 * old path on the same weights, in the same run, interleaved (old, new, old, new, ...).
 *   quantized (8 GGUF types): hr_cpu_matmul_q8 (int8 activations, integer dots) vs
 *     hr_cpu_matmul_dequant (rows dequantized to fp32, fp32 kernel; the path before this work).
 *   16-bit (bf16, f16): hr_cpu_matmul_16 vs fp32 weights of the same values (hr_cpu_matmul_f32).
 *   fp32 small M: W read in place (hr_cpu_f32_nopack_max_m = 32) vs panels packed (= 0).
 * Shapes: s110m's (k = 768: n = 768, 2048, 32000; n = 768, k = 2048) and 4096 x 4096, at M = 1,
 * 16, 128. M <= 16 rotates through weight copies larger than the LLC (decode streams every
 * layer's weights once per step); M = 128 reuses one copy. Each cell: R repetitions of a timed
 * loop; min / median / max microseconds per call. The load average is recorded before and after.
 * Prints a table, writes bench/out/matmul-q.json. Run: bench/matmul/run.sh [threads] q [filter]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../../csrc/cpu/ops_cpu.h"
#include "../../csrc/cpu/threadpool.h"
#include "../../csrc/include/headroom.h"

#define REPS 7

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static void *xalloc(size_t n) {
  void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return p;
}
static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t r32(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}
static float runif(void) { return (float)(r32() >> 8) / 16777216.0f - 0.5f; }
static double loadavg(void) {
  double l = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &l) != 1) l = -1;
    fclose(f);
  }
  return l;
}

/* Random blocks with finite fp16 scales (as test_quant.c). */
static void fill_q(int64_t qt, uint8_t *p, int64_t nblocks, int64_t bb) {
  for (int64_t b = 0; b < nblocks; b++, p += bb) {
    for (int64_t i = 0; i < bb; i += 4) {
      uint32_t v = r32();
      memcpy(p + i, &v, (size_t)(bb - i < 4 ? bb - i : 4));
    }
    uint16_t h[2] = {(uint16_t)((7 + r32() % 4) << 10 | (r32() & 0x3ff)), (uint16_t)((7 + r32() % 4) << 10)};
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

typedef int (*mm_fn)(float *y, const float *x, const void *w, int64_t wtype, const float *bias, const int32_t *rows,
                     int64_t m, int64_t n, int64_t k);
static int f32_fn(float *y, const float *x, const void *w, int64_t wt, const float *b, const int32_t *r, int64_t m,
                  int64_t n, int64_t k) {
  (void)wt;
  return hr_cpu_matmul_f32(y, x, w, b, r, m, n, k);
}
static int pack_fn(float *y, const float *x, const void *w, int64_t wt, const float *b, const int32_t *r, int64_t m,
                   int64_t n, int64_t k) {
  int save = hr_cpu_f32_nopack_max_m;
  hr_cpu_f32_nopack_max_m = 0;
  int st = f32_fn(y, x, w, wt, b, r, m, n, k);
  hr_cpu_f32_nopack_max_m = save;
  return st;
}

typedef struct {
  double mn, med, mx;
} stat3;
static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static stat3 stats(double *v, int n) {
  qsort(v, (size_t)n, sizeof v[0], cmpd);
  return (stat3){v[0], v[n / 2], v[n - 1]};
}

static char json[1 << 20];
static size_t jl;
static int jfirst = 1;

/* Times old and new interleaved on `copies` weight buffers (old_w / new_w may differ: fp32 vs 16-bit). */
static void cell(const char *kind, const char *type, int64_t m, int64_t n, int64_t k, mm_fn old_fn, int64_t old_wt,
                 void **old_w, mm_fn new_fn, int64_t new_wt, void **new_w, int copies, const float *x, float *y) {
  /* calls per timing: ~20 ms at the new path's speed */
  double t = now();
  int calls = 0;
  while (now() - t < 0.02 || calls < 2) new_fn(y, x, new_w[calls++ % copies], new_wt, NULL, NULL, m, n, k);
  double per = (now() - t) / calls;
  int reps_in = (int)(0.02 / per) + 1;
  if (reps_in < copies) reps_in = copies;
  double to[REPS], tn[REPS];
  for (int r = 0; r < REPS; r++) {
    for (int v = 0; v < 2; v++) {
      mm_fn f = v ? new_fn : old_fn;
      void **w = v ? new_w : old_w;
      int64_t wt = v ? new_wt : old_wt;
      int st = f(y, x, w[0], wt, NULL, NULL, m, n, k);
      if (st != HR_OK) {
        fprintf(stderr, "%s %s: %s\n", kind, type, hr_last_error());
        exit(1);
      }
      double t0 = now();
      for (int i = 0; i < reps_in; i++) f(y, x, w[i % copies], wt, NULL, NULL, m, n, k);
      (v ? tn : to)[r] = (now() - t0) / reps_in * 1e6;
    }
  }
  stat3 so = stats(to, REPS), sn = stats(tn, REPS);
  double gflop = 2.0 * (double)m * (double)n * (double)k / 1e3; /* per us -> GFLOP/s */
  printf("%-7s %-6s %5lld %5lld x %-5lld %9.1f %9.1f %9.1f   %9.1f %9.1f %9.1f  %6.2fx %8.1f\n", kind, type,
         (long long)m, (long long)n, (long long)k, so.mn, so.med, so.mx, sn.mn, sn.med, sn.mx, so.med / sn.med,
         gflop / sn.med);
  jl += (size_t)snprintf(json + jl, sizeof json - jl,
                         "%s    {\"kind\": \"%s\", \"type\": \"%s\", \"m\": %lld, \"n\": %lld, \"k\": %lld, "
                         "\"old_us\": [%.2f, %.2f, %.2f], \"new_us\": [%.2f, %.2f, %.2f], \"speedup_median\": %.3f, "
                         "\"new_gflops\": %.2f}",
                         jfirst ? "" : ",\n", kind, type, (long long)m, (long long)n, (long long)k, so.mn, so.med,
                         so.mx, sn.mn, sn.med, sn.mx, so.med / sn.med, gflop / sn.med);
  jfirst = 0;
  fflush(stdout);
}

static int copies_for(size_t bytes, int64_t m) {
  if (m > 16) return 1;
  int c = (int)((160u << 20) / bytes) + 1; /* several times the LLC */
  return c < 2 ? 2 : c > 64 ? 64 : c;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  const char *filter = argc > 2 ? argv[2] : "";
  hrt_set_num_threads(threads);
  threads = hrt_num_threads();
  char date[64];
  time_t tt = time(NULL);
  strftime(date, sizeof date, "%Y-%m-%d %H:%M", localtime(&tt));
  double load0 = loadavg();
  printf("threads %d, ISA %s, int8 path %s, bf16 path %s, %s, load average %.2f\n", threads,
         hr_cpu_isa_name(hr_cpu_isa()), hr_cpu_q8_path_name(), hr_cpu_16bit_path_name(HR_DTYPE_BF16), date, load0);
  printf("us per call, min / median / max of %d timings, old and new interleaved\n", REPS);
  printf("%-7s %-6s %5s %13s %9s %9s %9s   %9s %9s %9s  %7s %8s\n", "kind", "type", "M", "N x K", "old min", "med",
         "max", "new min", "med", "max", "old/new", "GFLOP/s");
  jl += (size_t)snprintf(json + jl, sizeof json - jl,
                         "{\n  \"threads\": %d, \"isa\": \"%s\", \"q8_path\": \"%s\", \"bf16_path\": \"%s\", "
                         "\"date\": \"%s\", \"loadavg_before\": %.2f,\n  \"cells\": [\n",
                         threads, hr_cpu_isa_name(hr_cpu_isa()), hr_cpu_q8_path_name(),
                         hr_cpu_16bit_path_name(HR_DTYPE_BF16), date, load0);
  static const int64_t shapes[][2] = {{768, 768}, {2048, 768}, {768, 2048}, {32000, 768}, {4096, 4096}};
  static const int64_t ms[] = {1, 16, 128};
  static const struct {
    int64_t t;
    const char *name;
  } qtypes[] = {{HR_QTYPE_Q4_0, "Q4_0"}, {HR_QTYPE_Q4_1, "Q4_1"}, {HR_QTYPE_Q5_0, "Q5_0"}, {HR_QTYPE_Q5_1, "Q5_1"},
                {HR_QTYPE_Q8_0, "Q8_0"}, {HR_QTYPE_Q4_K, "Q4_K"}, {HR_QTYPE_Q5_K, "Q5_K"}, {HR_QTYPE_Q6_K, "Q6_K"}};
  float *x = xalloc((size_t)(128 * 4096) * 4), *y = xalloc((size_t)(128 * 32000) * 4);
  for (int64_t i = 0; i < 128 * 4096; i++) x[i] = runif();
  void *wa[64], *wb[64];

  /* quantized */
  for (size_t q = 0; q < sizeof qtypes / sizeof qtypes[0]; q++) {
    if (*filter && !strstr(filter, qtypes[q].name) && strcmp(filter, "q")) continue;
    int64_t be, bb;
    hr_quant_block_info(qtypes[q].t, &be, &bb);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      int64_t n = shapes[s][0], k = shapes[s][1];
      size_t bytes = (size_t)(n * (k / be) * bb);
      int cmax = copies_for(bytes, 1);
      for (int c = 0; c < cmax; c++) {
        wa[c] = xalloc(bytes);
        fill_q(qtypes[q].t, wa[c], n * (k / be), bb);
      }
      for (size_t mi = 0; mi < 3; mi++)
        cell("quant", qtypes[q].name, ms[mi], n, k, hr_cpu_matmul_dequant, qtypes[q].t, wa, hr_cpu_matmul_q8,
             qtypes[q].t, wa, copies_for(bytes, ms[mi]), x, y);
      for (int c = 0; c < cmax; c++) free(wa[c]);
    }
  }
  /* 16-bit vs fp32 of the same values */
  for (int t16 = 0; t16 < 2; t16++) {
    const char *name = t16 ? "f16" : "bf16";
    if (*filter && !strstr(filter, name) && !strstr(filter, "16")) continue;
    int64_t wt = t16 ? HR_DTYPE_F16 : HR_DTYPE_BF16;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      int64_t n = shapes[s][0], k = shapes[s][1];
      int cmax = copies_for((size_t)(n * k) * 4, 1);
      for (int c = 0; c < cmax; c++) {
        float *f = xalloc((size_t)(n * k) * 4);
        uint16_t *h = xalloc((size_t)(n * k) * 2);
        for (int64_t i = 0; i < n * k; i++) {
          float v = runif() * 0.1f;
          uint32_t u;
          memcpy(&u, &v, 4);
          if (t16) { /* a normal f16 (or zero): subnormal halves would time conversion assists */
            uint32_t e = (u >> 23) & 0xff;
            h[i] = e < 113 ? 0 : (uint16_t)(((u >> 16) & 0x8000) | ((e - 112) << 10) | ((u >> 13) & 0x3ff));
            f[i] = h[i] ? v : 0.0f; /* the fp32 twin: (nearly) the same values */
          } else {
            h[i] = (uint16_t)(u >> 16);
            u = (uint32_t)h[i] << 16;
            memcpy(f + i, &u, 4);
          }
        }
        wa[c] = f;
        wb[c] = h;
      }
      for (size_t mi = 0; mi < 3; mi++)
        cell("16bit", name, ms[mi], n, k, f32_fn, HR_DTYPE_F32, wa, hr_cpu_matmul, wt, wb,
             copies_for((size_t)(n * k) * 4, ms[mi]), x, y);
      for (int c = 0; c < cmax; c++) free(wa[c]), free(wb[c]);
    }
  }
  /* fp32 small M: packed panels (old) vs in place (new) */
  if (!*filter || strstr(filter, "f32")) {
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      int64_t n = shapes[s][0], k = shapes[s][1];
      int cmax = copies_for((size_t)(n * k) * 4, 1);
      for (int c = 0; c < cmax; c++) {
        float *f = xalloc((size_t)(n * k) * 4);
        for (int64_t i = 0; i < n * k; i++) f[i] = runif();
        wa[c] = f;
      }
      static const int64_t sm[] = {4, 16, 32};
      for (size_t mi = 0; mi < 3; mi++)
        cell("f32", "nopack", sm[mi], n, k, pack_fn, HR_DTYPE_F32, wa, f32_fn, HR_DTYPE_F32, wa,
             copies_for((size_t)(n * k) * 4, sm[mi]), x, y);
      for (int c = 0; c < cmax; c++) free(wa[c]);
    }
  }
  double load1 = loadavg();
  printf("load average after: %.2f\n", load1);
  jl += (size_t)snprintf(json + jl, sizeof json - jl, "\n  ],\n  \"loadavg_after\": %.2f\n}\n", load1);
  mkdir("bench/out", 0755);
  FILE *f = fopen("bench/out/matmul-q.json", "w");
  if (f) {
    fputs(json, f);
    fclose(f);
    printf("wrote bench/out/matmul-q.json\n");
  }
  free(x);
  free(y);
  return 0;
}
