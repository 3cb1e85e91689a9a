/*
 * bench/attention-cpu: paged attention of the CPU backend at real shapes, the new span kernels
 * (through the public ABI, every kv_dtype) against the previous implementation
 * (old_attention_cpu.c, fp32 cache) in the same run, samples interleaved.
 *   decode: B = 1 and 16 sequences, context 128 / 512 / 1024 / 2048, block 16, partition 512,
 *     head_dim 64 (12 q / 12 kv heads, like the s110m/Llama-2-style models) and 128 (32 q / 8 kv
 *     heads, Llama-3-8B's GQA), blocks of each sequence scattered over the pool;
 *   prefill: 128 new tokens after 384 cached, B = 1, the same two head shapes.
 * Each sample times enough back-to-back calls to take >= 5 ms; 7 samples per variant,
 * min/median/max ms per call and the KV bytes read per second at the median. The caches are
 * as large as the shape says (up to 268 MB at B = 16, ctx 2048, d 128, f32), so the large
 * shapes stream from memory and the small ones run from the LLC, as one layer of a model
 * would. Checks that the new f32 output matches the old one before timing.
 * Prints a table and writes bench/out/attention-cpu.json. Run: bench/attention-cpu/run.sh [threads]
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

#include "../../csrc/core/float_formats.h"
#include "../../csrc/cpu/attn_span.h"
#include "../../csrc/cpu/ops_cpu.h"
#include "../../csrc/include/headroom.h"
#include "old_attention_cpu.h"

#define SAMPLES 7
static uint64_t dev;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static void *xalloc(size_t n) {
  void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
  if (!p) {
    fprintf(stderr, "out of memory (%zu bytes)\n", n);
    exit(1);
  }
  return p;
}
static unsigned seed = 12345;
static float frnd(void) {
  seed = seed * 1664525u + 1013904223u;
  return (float)(seed >> 8) / 8388608.0f - 1.0f;
}
static void ok(int st, const char *what) {
  if (st != HR_OK) {
    fprintf(stderr, "%s: %s\n", what, hr_last_error());
    exit(1);
  }
}
static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static const char *const DT[5] = {"f32", "f16", "bf16", "fp8_e4m3", "fp8_e5m2"};

typedef struct {
  int prefill; /* 0 decode, 1 prefill */
  int64_t b, ctx, d, hq, hk;
} shape_t;

/* one variant's buffers: caches of kv dtype dt (or the old kernel on f32) */
typedef struct {
  int old;
  int64_t dt;
  void *kc, *vc;
  double t[SAMPLES];
} variant_t;

typedef struct {
  const shape_t *sh;
  int64_t nb, bs, maxb, part, T;
  int32_t *bt, *lens, *qsl;
  float *q, *out, *ws;
  uint64_t ws_bytes;
  double scale;
} run_t;

static void call(const run_t *r, const variant_t *v) {
  const shape_t *s = r->sh;
  if (!s->prefill) {
    if (v->old)
      ok(old_attention_decode(r->out, r->q, v->kc, v->vc, r->bt, r->lens, r->ws, s->b, s->hq, s->hk, s->d, r->bs,
                              r->maxb, r->part, (float)r->scale),
         "old decode");
    else
      ok(hr_op_attention_decode(dev, HR_DTYPE_F32, (uint64_t)(uintptr_t)r->out, (uint64_t)(uintptr_t)r->q,
                                (uint64_t)(uintptr_t)v->kc, (uint64_t)(uintptr_t)v->vc, (uint64_t)(uintptr_t)r->bt,
                                (uint64_t)(uintptr_t)r->lens, (uint64_t)(uintptr_t)r->ws, r->ws_bytes, s->b, s->hq,
                                s->hk, s->d, r->nb, r->bs, r->maxb, r->part, r->scale, 0, 0, 0.0, v->dt, 1.0, 1.0),
         "decode");
  } else {
    if (v->old)
      ok(old_attention_prefill(r->out, r->q, v->kc, v->vc, r->bt, r->lens, r->qsl, s->b, s->hq, s->hk, s->d, r->bs,
                               r->maxb, (float)r->scale),
         "old prefill");
    else
      ok(hr_op_attention_prefill(dev, HR_DTYPE_F32, (uint64_t)(uintptr_t)r->out, (uint64_t)(uintptr_t)r->q,
                                 (uint64_t)(uintptr_t)v->kc, (uint64_t)(uintptr_t)v->vc, (uint64_t)(uintptr_t)r->bt,
                                 (uint64_t)(uintptr_t)r->lens, (uint64_t)(uintptr_t)r->qsl, s->b, r->T, s->hq, s->hk,
                                 s->d, r->nb, r->bs, r->maxb, r->scale, 0, 0, 0.0, v->dt, 1.0, 1.0),
         "prefill");
  }
}

static FILE *js;
static int first_row = 1;

static void bench_shape(const shape_t *s) {
  run_t r = {.sh = s, .bs = 16, .part = 512, .scale = 1.0 / sqrt((double)s->d)};
  r.maxb = (s->ctx + r.bs - 1) / r.bs;
  r.nb = s->b * r.maxb + 1;
  int64_t row = s->hk * s->d, slots = r.nb * r.bs;
  /* tables: every sequence's blocks scattered over the pool */
  r.bt = xalloc(sizeof(int32_t) * (size_t)(s->b * r.maxb));
  int32_t *perm = xalloc(sizeof(int32_t) * (size_t)r.nb);
  for (int64_t i = 0; i < r.nb; i++) perm[i] = (int32_t)i;
  for (int64_t i = r.nb - 1; i > 0; i--) {
    int64_t j = (int64_t)((frnd() + 1.0f) * 0.5f * (float)i);
    int32_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  for (int64_t i = 0; i < s->b * r.maxb; i++) r.bt[i] = perm[i];
  free(perm);
  r.lens = xalloc(sizeof(int32_t) * (size_t)s->b);
  r.qsl = xalloc(sizeof(int32_t) * (size_t)(s->b + 1));
  int64_t newt = s->prefill ? 128 : 1;
  r.qsl[0] = 0;
  for (int64_t i = 0; i < s->b; i++) {
    r.lens[i] = (int32_t)s->ctx;
    r.qsl[i + 1] = r.qsl[i] + (int32_t)newt;
  }
  r.T = s->b * newt;
  r.q = xalloc(sizeof(float) * (size_t)(r.T * s->hq * s->d));
  r.out = xalloc(sizeof(float) * (size_t)(r.T * s->hq * s->d));
  for (int64_t i = 0; i < r.T * s->hq * s->d; i++) r.q[i] = frnd();
  ok(hr_paged_attention_workspace_bytes(HR_DTYPE_F32, s->b, s->hq, s->d, r.maxb, r.bs, r.part, &r.ws_bytes), "ws");
  r.ws = xalloc(r.ws_bytes ? r.ws_bytes : 64);
  /* K/V values, written into each variant's cache through kv_write */
  float *k = xalloc(sizeof(float) * (size_t)(slots * row)), *v = xalloc(sizeof(float) * (size_t)(slots * row));
  for (int64_t i = 0; i < slots * row; i++) {
    k[i] = frnd();
    v[i] = frnd();
  }
  int32_t *sm = xalloc(sizeof(int32_t) * (size_t)slots);
  for (int64_t i = 0; i < slots; i++) sm[i] = (int32_t)i;
  variant_t vs[6];
  int nv = 0;
  vs[nv++] = (variant_t){.old = 1, .dt = HR_DTYPE_F32};
  for (int64_t dt = 0; dt < 5; dt++) vs[nv++] = (variant_t){.old = 0, .dt = dt};
  for (int i = 0; i < nv; i++) {
    if (i == 1) { /* the old variant's f32 cache serves the new f32 variant too */
      vs[i].kc = vs[0].kc;
      vs[i].vc = vs[0].vc;
      continue;
    }
    size_t bytes = (size_t)(slots * row * hr_kv_elem_bytes(vs[i].dt));
    vs[i].kc = xalloc(bytes);
    vs[i].vc = xalloc(bytes);
    ok(hr_op_kv_write(dev, HR_DTYPE_F32, (uint64_t)(uintptr_t)vs[i].kc, (uint64_t)(uintptr_t)vs[i].vc,
                      (uint64_t)(uintptr_t)k, (uint64_t)(uintptr_t)v, (uint64_t)(uintptr_t)sm, slots, s->hk, s->d, r.nb,
                      r.bs, 0, vs[i].dt, 1.0, 1.0),
       "kv_write");
  }
  free(k);
  free(v);
  free(sm);
  /* the new f32 path computes what the old one did */
  size_t on = (size_t)(r.T * s->hq * s->d);
  float *ref = xalloc(on * sizeof(float));
  call(&r, &vs[0]);
  memcpy(ref, r.out, on * sizeof(float));
  call(&r, &vs[1]);
  double maxdiff = 0;
  for (size_t i = 0; i < on; i++) maxdiff = fmax(maxdiff, fabs((double)ref[i] - r.out[i]));
  free(ref);
  if (!(maxdiff < 1e-4)) {
    fprintf(stderr, "new f32 attention differs from the old one by %g\n", maxdiff);
    exit(1);
  }
  /* calls per sample: >= 5 ms of the old kernel */
  double t0 = now();
  int reps = 0;
  while (now() - t0 < 0.005) {
    call(&r, &vs[0]);
    reps++;
  }
  for (int smp = 0; smp < SAMPLES; smp++)
    for (int i = 0; i < nv; i++) {
      double a = now();
      for (int j = 0; j < reps; j++) call(&r, &vs[i]);
      vs[i].t[smp] = (now() - a) / reps * 1e3;
    }
  /* KV bytes read per call: every sequence's context, K and V, all kv heads */
  double keys = (double)s->b * (double)s->ctx;
  double med_old = 0;
  for (int i = 0; i < nv; i++) {
    qsort(vs[i].t, SAMPLES, sizeof(double), cmpd);
    double med = vs[i].t[SAMPLES / 2];
    if (i == 0) med_old = med;
    double gbs = keys * 2.0 * (double)row * (double)hr_kv_elem_bytes(vs[i].dt) / (med * 1e-3) / 1e9;
    const char *name = vs[i].old ? "old f32" : DT[vs[i].dt];
    printf("%-8s B=%-3lld ctx=%-5lld d=%-4lld hq/hk=%lld/%-3lld %-9s %9.4f %9.4f %9.4f  %7.2f GB/s  %5.2fx\n",
           s->prefill ? "prefill" : "decode", (long long)s->b, (long long)s->ctx, (long long)s->d, (long long)s->hq,
           (long long)s->hk, name, vs[i].t[0], med, vs[i].t[SAMPLES - 1], gbs, med_old / med);
    fprintf(js,
            "%s\n  {\"op\": \"%s\", \"b\": %lld, \"ctx\": %lld, \"head_dim\": %lld, \"q_heads\": %lld, \"kv_heads\": "
            "%lld, \"variant\": \"%s\", \"kernel\": \"%s\", \"ms_min\": %.5f, \"ms_median\": %.5f, \"ms_max\": %.5f, "
            "\"kv_gb_per_s\": %.3f, \"speedup_vs_old\": %.4f}",
            first_row ? "" : ",", s->prefill ? "prefill" : "decode", (long long)s->b, (long long)s->ctx,
            (long long)s->d, (long long)s->hq, (long long)s->hk, name,
            vs[i].old ? "old" : hr_attn_pick(vs[i].dt, s->d).name, vs[i].t[0], med, vs[i].t[SAMPLES - 1], gbs,
            med_old / med);
    first_row = 0;
  }
  for (int i = 0; i < nv; i++)
    if (i != 1) {
      free(vs[i].kc);
      free(vs[i].vc);
    }
  free(r.bt);
  free(r.lens);
  free(r.qsl);
  free(r.q);
  free(r.out);
  free(r.ws);
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  ok(hr_device_open(0, 1ull << 30, &dev), "device");
  ok(hr_set_num_threads(dev, threads), "threads");
  double load[3] = {0, 0, 0};
  FILE *la = fopen("/proc/loadavg", "r");
  if (la) {
    if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
    fclose(la);
  }
  mkdir("bench/out", 0755);
  js = fopen("bench/out/attention-cpu.json", "w");
  if (!js) {
    perror("bench/out/attention-cpu.json");
    return 1;
  }
  printf("CPU attention: isa %s, %d threads, load average %.2f %.2f %.2f (noisy if well above the core count)\n",
         hr_cpu_isa_name(hr_cpu_isa()), threads, load[0], load[1], load[2]);
  printf("%-8s %-5s %-9s %-5s %-11s %-9s %9s %9s %9s  %12s  %s\n", "op", "B", "ctx", "d", "hq/hk", "kv", "min ms",
         "med ms", "max ms", "KV read", "old/new");
  fprintf(js, "{\"isa\": \"%s\", \"threads\": %d, \"loadavg\": [%.2f, %.2f, %.2f], \"samples\": %d, \"rows\": [",
          hr_cpu_isa_name(hr_cpu_isa()), threads, load[0], load[1], load[2], SAMPLES);
  static const int64_t ctxs[] = {128, 512, 1024, 2048};
  static const int64_t heads[2][3] = {{64, 12, 12}, {128, 32, 8}};
  for (int h = 0; h < 2; h++)
    for (int bi = 0; bi < 2; bi++)
      for (int ci = 0; ci < 4; ci++) {
        shape_t s = {0, bi ? 16 : 1, ctxs[ci], heads[h][0], heads[h][1], heads[h][2]};
        bench_shape(&s);
      }
  for (int h = 0; h < 2; h++) {
    shape_t s = {1, 1, 512, heads[h][0], heads[h][1], heads[h][2]};
    bench_shape(&s);
  }
  fprintf(js, "\n]}\n");
  fclose(js);
  ok(hr_device_close(dev), "close");
  printf("wrote bench/out/attention-cpu.json\n");
  return 0;
}
