/*
 * bench/allocator: the caching allocator's hot path and its fragmentation.
 *
 *  1. Median ns for a cached alloc+free pair of mixed sizes (512 B .. 8 MiB, cycling), after
 *     a warm-up so every segment is cached, against malloc/free of the same sizes in the same
 *     run. Measured directly on the allocator (allocator.h), through the public ABI
 *     (hr_alloc/hr_free on a CPU device), and with 2,000 other live blocks in the trees.
 *  2. Fragmentation = peak reserved / peak allocated on a decode-like trace: per-layer
 *     activations allocated and freed every step, per-sequence KV-like buffers that grow
 *     (alloc bigger + free old) as tokens are generated, sequences joining and leaving, and an
 *     occasional large temporary.
 *
 * Usage: bench_allocator [json-path [libheadroom_cpu.so]]
 *        (defaults bench/out/allocator.json, build/libheadroom_cpu.so)
 * Prints a table; writes JSON.
 */

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../../csrc/core/allocator.h"
#include "../../csrc/include/headroom.h"

/* ---- a backend that hands out address space only (nothing is touched) ---- */
typedef struct {
  uint64_t next, used, cap;
} fake_dev;
static int fake_alloc(void *ctx, uint64_t size, uint64_t *ptr_out) {
  fake_dev *d = ctx;
  if (d->cap && d->used + size > d->cap) return HR_E_OOM;
  *ptr_out = d->next;
  d->next += size + (2u << 20);
  d->used += size;
  return HR_OK;
}
static int fake_free(void *ctx, uint64_t ptr, uint64_t size) {
  (void)ptr;
  ((fake_dev *)ctx)->used -= size;
  return HR_OK;
}
static int fake_info(void *ctx, uint64_t *f, uint64_t *t) {
  fake_dev *d = ctx;
  *t = d->cap;
  *f = d->cap - d->used;
  return HR_OK;
}
static hr_allocator *fake_allocator(fake_dev *d) {
  memset(d, 0, sizeof *d);
  d->next = 1ull << 40;
  d->cap = 1ull << 40;
  hr_raw_ops ops = {.ctx = d, .alloc = fake_alloc, .free = fake_free, .mem_info = fake_info};
  return hr_allocator_create(ops);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}
static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static const uint64_t SIZES[] = {512,      1000,     4096,     16384, 65536,      200000, 1u << 20, 1536 * 1024,
                                 3u << 20, 4u << 20, 8u << 20, 2048,  128 * 1024, 700000, 6u << 20, 24576};
#define NSIZES ((int)(sizeof SIZES / sizeof SIZES[0]))
#define BATCH 4096
#define BATCHES 201

static volatile uint64_t sink;

typedef int (*alloc_fn)(void *ctx, uint64_t size, uint64_t *p);
typedef int (*free_fn)(void *ctx, uint64_t p);

static int a_alloc(void *ctx, uint64_t size, uint64_t *p) { return hr_allocator_malloc(ctx, size, p); }
static int a_free(void *ctx, uint64_t p) { return hr_allocator_free(ctx, p); }
static int m_alloc(void *ctx, uint64_t size, uint64_t *p) {
  (void)ctx;
  void *q = malloc(size);
  *p = (uint64_t)(uintptr_t)q;
  return q ? 0 : -1;
}
static int m_free(void *ctx, uint64_t p) {
  (void)ctx;
  free((void *)(uintptr_t)p);
  return 0;
}

/* Median ns per alloc+free pair over BATCHES batches of BATCH pairs. */
static double pair_median(alloc_fn af, free_fn ff, void *ctx) {
  uint64_t p;
  for (int w = 0; w < 4; w++)
    for (int i = 0; i < BATCH; i++) {
      if (af(ctx, SIZES[i % NSIZES], &p) != 0) {
        fprintf(stderr, "alloc failed: %s\n", hr_last_error());
        exit(1);
      }
      sink += p;
      ff(ctx, p);
    }
  static double per[BATCHES];
  for (int b = 0; b < BATCHES; b++) {
    double t0 = now_ns();
    for (int i = 0; i < BATCH; i++) {
      af(ctx, SIZES[(i + b) % NSIZES], &p);
      sink += p;
      ff(ctx, p);
    }
    per[b] = (now_ns() - t0) / BATCH;
  }
  return median(per, BATCHES);
}

/* The public ABI, from build/libheadroom_cpu.so (dlopen, so the bench builds without it). */
static uint64_t g_dev;
static int (*lib_alloc)(uint64_t, uint64_t, uint64_t *);
static int (*lib_free)(uint64_t, uint64_t);
static int d_alloc(void *ctx, uint64_t size, uint64_t *p) {
  (void)ctx;
  return lib_alloc(g_dev, size, p);
}
static int d_free(void *ctx, uint64_t p) {
  (void)ctx;
  return lib_free(g_dev, p);
}

static double abi_pair_median(const char *lib) {
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "note: %s not loadable (%s); skipping the public-ABI row\n", lib, dlerror());
    return -1;
  }
  int (*open_fn)(int64_t, uint64_t, uint64_t *) = (int (*)(int64_t, uint64_t, uint64_t *))dlsym(h, "hr_device_open");
  int (*close_fn)(uint64_t) = (int (*)(uint64_t))dlsym(h, "hr_device_close");
  lib_alloc = (int (*)(uint64_t, uint64_t, uint64_t *))dlsym(h, "hr_alloc");
  lib_free = (int (*)(uint64_t, uint64_t))dlsym(h, "hr_free");
  double r = -1;
  if (open_fn && close_fn && lib_alloc && lib_free && open_fn(0, 1ull << 30, &g_dev) == HR_OK) {
    r = pair_median(d_alloc, d_free, NULL);
    close_fn(g_dev);
  } else {
    fprintf(stderr, "note: could not open a CPU device through %s; skipping the public-ABI row\n", lib);
  }
  dlclose(h);
  return r;
}

/* ---- decode-like trace ---- */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

#define MAX_CHUNKS 128
typedef struct {
  int live, len, target, nchunks;
  uint64_t kv, kv_bytes;
  uint64_t chunks[MAX_CHUNKS];
} seq_t;

static void must(int st, const char *what) {
  if (st != HR_OK) {
    fprintf(stderr, "%s failed: %s\n", what, hr_last_error());
    exit(1);
  }
}

typedef struct {
  double peak_alloc, peak_reserved, end_reserved, ratio, steps, segments_peak;
  int paged;
} trace_result;

/*
 * Model: hidden 4096, intermediate 11008, 32 layers, fp16, vocab 32000, up to 64 sequences.
 * KV grows by 16 tokens (2 MiB) at a time: paged = one more 2 MiB chunk per sequence (freed
 * when the sequence ends), !paged = realloc-style (allocate the bigger buffer, free the old).
 */
static trace_result decode_trace(int steps, int paged) {
  rng_state = 0x9E3779B97F4A7C15ull;
  fake_dev d;
  hr_allocator *a = fake_allocator(&d);
  enum { MAXS = 64, LAYERS = 32 };
  const uint64_t H = 4096, I = 11008, V = 32000, KV_PER_TOKEN = 2ull * LAYERS * 1024 * 2 / 32; /* one layer's share */
  seq_t seqs[MAXS] = {0};
  for (int step = 0; step < steps; step++) {
    /* sequences join and leave */
    for (int s = 0; s < MAXS; s++) {
      if (!seqs[s].live && rnd() % 8 == 0) {
        seqs[s].live = 1;
        seqs[s].len = (int)(16 + rnd() % 512); /* prompt */
        seqs[s].target = seqs[s].len + (int)(32 + rnd() % 992);
        seqs[s].kv_bytes = ((uint64_t)(seqs[s].len + 15) / 16) * 16 * KV_PER_TOKEN * LAYERS;
        if (paged) {
          seqs[s].nchunks = (seqs[s].len + 15) / 16;
          for (int c = 0; c < seqs[s].nchunks; c++)
            must(hr_allocator_malloc(a, 16 * KV_PER_TOKEN * LAYERS, &seqs[s].chunks[c]), "kv chunk");
        } else {
          must(hr_allocator_malloc(a, seqs[s].kv_bytes, &seqs[s].kv), "kv");
        }
      }
    }
    int batch = 0;
    for (int s = 0; s < MAXS; s++) batch += seqs[s].live;
    if (!batch) continue;
    /* per-layer activations */
    uint64_t hid, tmp[4];
    must(hr_allocator_malloc(a, batch * H * 2, &hid), "hidden");
    for (int l = 0; l < LAYERS; l++) {
      must(hr_allocator_malloc(a, batch * H * 2, &tmp[0]), "norm");
      must(hr_allocator_malloc(a, batch * 3 * H * 2, &tmp[1]), "qkv");
      must(hr_allocator_malloc(a, batch * H * 2, &tmp[2]), "attn");
      hr_allocator_free(a, tmp[1]);
      hr_allocator_free(a, tmp[0]);
      must(hr_allocator_malloc(a, batch * 2 * I * 2, &tmp[0]), "gate_up");
      must(hr_allocator_malloc(a, batch * I * 2, &tmp[1]), "act");
      hr_allocator_free(a, tmp[0]);
      must(hr_allocator_malloc(a, batch * H * 2, &tmp[3]), "down");
      hr_allocator_free(a, tmp[1]);
      hr_allocator_free(a, tmp[2]);
      hr_allocator_free(a, hid);
      hid = tmp[3];
    }
    uint64_t logits;
    must(hr_allocator_malloc(a, batch * V * 4, &logits), "logits");
    if (step % 97 == 0) { /* occasional large temporary (e.g. a prefill workspace) */
      uint64_t big;
      must(hr_allocator_malloc(a, (64ull << 20) + (rnd() % 64) * (1ull << 20), &big), "temp");
      hr_allocator_free(a, big);
    }
    hr_allocator_free(a, logits);
    hr_allocator_free(a, hid);
    /* KV grows every 16 tokens (alloc bigger, free old), sequences finish */
    for (int s = 0; s < MAXS; s++) {
      if (!seqs[s].live) continue;
      seqs[s].len++;
      if (seqs[s].len % 16 == 1 && paged) {
        must(hr_allocator_malloc(a, 16 * KV_PER_TOKEN * LAYERS, &seqs[s].chunks[seqs[s].nchunks++]), "kv chunk");
      } else if (seqs[s].len % 16 == 1) {
        uint64_t nb = ((uint64_t)(seqs[s].len + 15) / 16) * 16 * KV_PER_TOKEN * LAYERS, np;
        must(hr_allocator_malloc(a, nb, &np), "kv grow");
        hr_allocator_free(a, seqs[s].kv);
        seqs[s].kv = np;
        seqs[s].kv_bytes = nb;
      }
      if (seqs[s].len >= seqs[s].target) {
        if (paged)
          for (int c = 0; c < seqs[s].nchunks; c++) hr_allocator_free(a, seqs[s].chunks[c]);
        else
          hr_allocator_free(a, seqs[s].kv);
        seqs[s].live = 0;
      }
    }
  }
  int64_t st[HR_STATS_COUNT];
  hr_allocator_get_stats(a, st, HR_STATS_COUNT);
  trace_result r;
  r.peak_alloc = (double)st[HR_STATS_ALLOCATED_BYTES + HR_STAT_PEAK];
  r.peak_reserved = (double)st[HR_STATS_RESERVED_BYTES + HR_STAT_PEAK];
  r.end_reserved = (double)st[HR_STATS_RESERVED_BYTES + HR_STAT_CURRENT];
  r.segments_peak = (double)st[HR_STATS_SEGMENT + HR_STAT_PEAK];
  r.ratio = r.peak_reserved / r.peak_alloc;
  r.steps = steps;
  r.paged = paged;
  hr_allocator_destroy(a);
  return r;
}

int main(int argc, char **argv) {
  const char *json = argc > 1 ? argv[1] : "bench/out/allocator.json";

  fake_dev d;
  hr_allocator *a = fake_allocator(&d);
  double direct = pair_median(a_alloc, a_free, a);

  /* same, with 2000 other live blocks of mixed sizes in the trees */
  static uint64_t held[2000];
  for (int i = 0; i < 2000; i++) must(hr_allocator_malloc(a, SIZES[(i * 7) % NSIZES] / 4 + 512, &held[i]), "held");
  for (int i = 0; i < 2000; i += 3) hr_allocator_free(a, held[i]), held[i] = 0; /* leave holes */
  double loaded = pair_median(a_alloc, a_free, a);
  for (int i = 0; i < 2000; i++) hr_allocator_free(a, held[i]);
  hr_allocator_destroy(a);

  double viaabi = abi_pair_median(argc > 2 ? argv[2] : "build/libheadroom_cpu.so");
  double mal = pair_median(m_alloc, m_free, NULL);

  trace_result trs[2] = {decode_trace(3000, 1), decode_trace(3000, 0)};

  printf("allocator benchmark (%d sizes 512 B .. 8 MiB cycling; median of %d batches x %d pairs)\n", NSIZES, BATCHES,
         BATCH);
  printf("%-44s %10s %10s\n", "case", "ns/pair", "vs malloc");
  printf("%-44s %10.1f %10.2f\n", "caching allocator (allocator.h)", direct, direct / mal);
  printf("%-44s %10.1f %10.2f\n", "caching allocator, 2000 other live blocks", loaded, loaded / mal);
  if (viaabi > 0) printf("%-44s %10.1f %10.2f\n", "hr_alloc/hr_free (public ABI, CPU device)", viaabi, viaabi / mal);
  printf("%-44s %10.1f %10.2f\n", "glibc malloc/free (baseline, same sizes)", mal, 1.0);
  printf(
      "\ndecode-like trace (%d steps; 32 layers of activations per step, <=64 seqs, KV growing 2 MiB per 16\n"
      "tokens, a 64-128 MiB temporary every 97 steps)\n",
      (int)trs[0].steps);
  printf("%-34s %12s %12s %9s %13s\n", "KV growth", "peak alloc", "peak resv", "segments", "resv/alloc");
  for (int t = 0; t < 2; t++)
    printf("%-34s %8.1f MiB %8.1f MiB %9.0f %13.3f\n",
           trs[t].paged ? "paged (append 2 MiB chunks)" : "realloc (bigger buffer, free old)",
           trs[t].peak_alloc / 1048576.0, trs[t].peak_reserved / 1048576.0, trs[t].segments_peak, trs[t].ratio);

  mkdir("bench", 0755);
  mkdir("bench/out", 0755);
  FILE *f = fopen(json, "w");
  if (!f) {
    fprintf(stderr, "cannot write %s: %s\n", json, strerror(errno));
    return 1;
  }
  fprintf(f,
          "{\n  \"bench\": \"allocator\",\n  \"pair_ns_median\": {\"allocator\": %.2f, \"allocator_2000_live\": %.2f, "
          "\"public_abi\": %.2f, \"malloc\": %.2f},\n  \"ratio_vs_malloc\": {\"allocator\": %.3f, "
          "\"allocator_2000_live\": %.3f, \"public_abi\": %.3f},\n  \"batches\": %d,\n  \"pairs_per_batch\": %d,\n"
          "  \"sizes\": [",
          direct, loaded, viaabi, mal, direct / mal, loaded / mal, viaabi > 0 ? viaabi / mal : -1.0, BATCHES, BATCH);
  for (int i = 0; i < NSIZES; i++) fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)SIZES[i]);
  fprintf(f, "],\n  \"decode_trace\": [");
  for (int t = 0; t < 2; t++)
    fprintf(f,
            "%s\n    {\"kv_growth\": \"%s\", \"steps\": %.0f, \"peak_allocated\": %.0f, \"peak_reserved\": %.0f, "
            "\"end_reserved\": %.0f, \"peak_segments\": %.0f, \"fragmentation\": %.4f}",
            t ? "," : "", trs[t].paged ? "paged" : "realloc", trs[t].steps, trs[t].peak_alloc, trs[t].peak_reserved,
            trs[t].end_reserved, trs[t].segments_peak, trs[t].ratio);
  fprintf(f, "\n  ]\n}\n");
  fclose(f);
  printf("\nwrote %s\n", json);
  return 0;
}
