/*
 * The KV cache in every kv_dtype on the CPU backend (under ASan/UBSan): kv_write stores
 * x / scale by the reference rule (csrc/core/float_formats.c, itself tested exhaustively in
 * test_float_formats.c), and decode/prefill attention over that cache match the float64
 * reference (test/c/ref_ops.h ref_attend_kv, which decodes the stored bytes from the formats'
 * definitions and multiplies by the scales).
 * Sweep: kv_dtype f32/f16/bf16/fp8_e4m3/fp8_e5m2 x ISA scalar/avx2/avx512 (those present) x
 * GQA group 1/4/8 x head_dim 64/128/80 (+ 40, the scalar fallback on every ISA) x window 0/37
 * x softcap 0/1.5 x partitions none/16/512 x threads 1/2, contexts 1..700.
 * Error bound: |out - ref| <= 3e-5 * max(1, |v|max): the kernels see exactly the decoded
 * values, so the error is fp32 accumulation over <= 700 keys plus the ~1 ulp exp, the same
 * as the f32 bound (2e-5) of test_ops.c with room for the scaled values (|v| <= ~1.1).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/core/float_formats.h"
#include "../../csrc/cpu/ops_cpu.h"
#include "headroom.h"
#include "ref_ops.h"

#include "check.h"
#include "device_bufs.h"

static uint64_t rng = 0x13198a2e03707344ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}
static float frnd(void) { return ((float)(rnd() & 0xffffff) + 0.5f) / 8388608.0f - 1.0f; }
static float *frand_buf(int64_t n) {
  float *p = dalloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) p[i] = frnd();
  return p;
}
static int32_t *ibuf(int64_t n) { return dalloc((size_t)n * 4); }

static const char *const DT[5] = {"f32", "f16", "bf16", "fp8_e4m3", "fp8_e5m2"};
/* scales as a checkpoint would give them (fp8: the values / scale fill the format's range) */
static double kscale_of(int64_t dt) { return dt >= 3 ? (dt == 3 ? 1.0 / 300 : 1.0 / 20000) : dt == 0 ? 1.0 : 0.5; }
static double vscale_of(int64_t dt) { return dt >= 3 ? (dt == 3 ? 1.0 / 400 : 1.0 / 30000) : dt == 0 ? 1.0 : 2.0; }

typedef struct {
  int64_t dt, nb, bs, hk, d;
  void *kc, *vc;
  double ks, vs;
  double *kd, *vd; /* the reference's dequantized copies */
} kvc;

/* A cache of nb blocks filled through hr_op_kv_write from random K/V (every slot written);
 * the stored bytes are checked against the reference rule. */
static kvc make_kv(int64_t dt, int64_t nb, int64_t bs, int64_t hk, int64_t d) {
  kvc c = {dt, nb, bs, hk, d, NULL, NULL, kscale_of(dt), vscale_of(dt), NULL, NULL};
  int64_t eb = hr_kv_elem_bytes(dt), row = hk * d, T = nb * bs;
  c.kc = dalloc((size_t)(T * row * eb));
  c.vc = dalloc((size_t)(T * row * eb));
  float *k = frand_buf(T * row), *v = frand_buf(T * row);
  int32_t *slots = ibuf(T);
  for (int64_t t = 0; t < T; t++) slots[t] = (int32_t)((t * 7 + 3) % T); /* a permutation (T odd or 7 coprime) */
  CHECK_OK(
      hr_op_kv_write(dev, HR_DTYPE_F32, P(c.kc), P(c.vc), P(k), P(v), P(slots), T, hk, d, nb, bs, 0, dt, c.ks, c.vs));
  uint8_t *want = malloc((size_t)(row * eb));
  for (int64_t t = 0; t < T; t++) {
    hr_kv_store_row(dt, want, k + t * row, row, (float)c.ks);
    CHECK(!memcmp(want, (uint8_t *)c.kc + slots[t] * row * eb, (size_t)(row * eb)), "%s: k row %lld", DT[dt],
          (long long)t);
    hr_kv_store_row(dt, want, v + t * row, row, (float)c.vs);
    CHECK(!memcmp(want, (uint8_t *)c.vc + slots[t] * row * eb, (size_t)(row * eb)), "%s: v row %lld", DT[dt],
          (long long)t);
  }
  free(want);
  c.kd = ref_dequant(dt, c.kc, T * row, c.ks);
  c.vd = ref_dequant(dt, c.vc, T * row, c.vs);
  return c;
}

static double vmax_of(const kvc *c) {
  double m = 1.0;
  for (int64_t i = 0; i < c->nb * c->bs * c->hk * c->d; i++) {
    double x = fabs(c->vd[i]);
    if (x > m) m = x;
  }
  return m;
}

static long long checks;

/* Per-check buffers (host memory is device memory on the CPU backend); freed by tmp_free. */
static void *tmp[16];
static int ntmp;
static void *tmp_alloc(size_t bytes) {
  CHECK(ntmp < 16, "too many temporaries");
  return tmp[ntmp++] = malloc(bytes ? bytes : 4);
}
static float *tmp_rand(int64_t n) {
  float *p = tmp_alloc((size_t)n * 4);
  for (int64_t i = 0; i < n; i++) p[i] = frnd();
  return p;
}
static void tmp_free(void) {
  while (ntmp) free(tmp[--ntmp]);
}
static int32_t *tmp_tables(int64_t b, int64_t maxb, int64_t nb) {
  int32_t *bt = tmp_alloc((size_t)(b * maxb) * 4);
  for (int64_t i = 0; i < b * maxb; i++) bt[i] = (int32_t)((i * 5 + 1) % nb);
  return bt;
}

static void check_decode(const kvc *c, int64_t hq, int64_t window, double cap, int64_t part, double tol) {
  int64_t B = 4, maxb = (700 + c->bs - 1) / c->bs, d = c->d;
  static const int32_t lens_set[] = {1, 17, 100, 700};
  int32_t *bt = tmp_tables(B, maxb, c->nb), *lens = tmp_alloc((size_t)B * 4);
  for (int64_t s = 0; s < B; s++) lens[s] = lens_set[s];
  float *q = tmp_rand(B * hq * d), *out = tmp_alloc((size_t)(B * hq * d * 4));
  for (int64_t i = 0; i < B * hq * d; i++) out[i] = NAN;
  uint64_t need = 0;
  CHECK_OK(hr_paged_attention_workspace_bytes(HR_DTYPE_F32, B, hq, d, maxb, c->bs, part, &need));
  float *ws = need ? tmp_alloc(need) : NULL;
  double scale = 1.0 / sqrt((double)d);
  CHECK_OK(hr_op_attention_decode(dev, HR_DTYPE_F32, P(out), P(q), P(c->kc), P(c->vc), P(bt), P(lens), P(ws), need, B,
                                  hq, c->hk, d, c->nb, c->bs, maxb, part, scale, 0, window, cap, c->dt, c->ks, c->vs));
  double ref[128];
  for (int64_t s = 0; s < B; s++)
    for (int64_t h = 0; h < hq; h++) {
      ref_attend_kv(ref, q + (s * hq + h) * d, c->kd, c->vd, bt + s * maxb, c->bs, c->hk, h / (hq / c->hk), d,
                    lens[s] - 1, window, scale, cap);
      for (int64_t e = 0; e < d; e++) {
        double got = out[(s * hq + h) * d + e];
        if (!(fabs(got - ref[e]) <= tol))
          failf(__FILE__, __LINE__,
                "decode %s isa %s hq %lld hk %lld d %lld window %lld cap %g part %lld: len %d head %lld dim %lld: "
                "%.8g vs %.8g",
                DT[c->dt], hr_cpu_isa_name(hr_cpu_isa()), (long long)hq, (long long)c->hk, (long long)d,
                (long long)window, cap, (long long)part, lens[s], (long long)h, (long long)e, got, ref[e]);
        checks++;
      }
    }
  tmp_free();
}

static void check_prefill(const kvc *c, int64_t hq, int64_t window, double cap, double tol) {
  static const int32_t cached[] = {0, 17, 40};
  static const int32_t newt[] = {20, 33, 1};
  int64_t B = 3, maxb = (80 + c->bs - 1) / c->bs, d = c->d;
  int32_t *bt = tmp_tables(B, maxb, c->nb), *lens = tmp_alloc((size_t)B * 4), *qsl = tmp_alloc((size_t)(B + 1) * 4);
  qsl[0] = 0;
  for (int64_t s = 0; s < B; s++) {
    lens[s] = cached[s] + newt[s];
    qsl[s + 1] = qsl[s] + newt[s];
  }
  int64_t T = qsl[B];
  float *q = tmp_rand(T * hq * d), *out = tmp_alloc((size_t)(T * hq * d * 4));
  double scale = 1.0 / sqrt((double)d);
  CHECK_OK(hr_op_attention_prefill(dev, HR_DTYPE_F32, P(out), P(q), P(c->kc), P(c->vc), P(bt), P(lens), P(qsl), B, T,
                                   hq, c->hk, d, c->nb, c->bs, maxb, scale, 0, window, cap, c->dt, c->ks, c->vs));
  double ref[128];
  for (int64_t s = 0; s < B; s++)
    for (int64_t i = 0; i < newt[s]; i++) {
      int64_t row = qsl[s] + i, pos = cached[s] + i;
      for (int64_t h = 0; h < hq; h++) {
        ref_attend_kv(ref, q + (row * hq + h) * d, c->kd, c->vd, bt + s * maxb, c->bs, c->hk, h / (hq / c->hk), d, pos,
                      window, scale, cap);
        for (int64_t e = 0; e < d; e++) {
          double got = out[(row * hq + h) * d + e];
          if (!(fabs(got - ref[e]) <= tol))
            failf(__FILE__, __LINE__,
                  "prefill %s isa %s hq %lld hk %lld d %lld window %lld cap %g: seq %lld pos %lld head %lld dim "
                  "%lld: %.8g vs %.8g",
                  DT[c->dt], hr_cpu_isa_name(hr_cpu_isa()), (long long)hq, (long long)c->hk, (long long)d,
                  (long long)window, cap, (long long)s, (long long)pos, (long long)h, (long long)e, got, ref[e]);
          checks++;
        }
      }
    }
  tmp_free();
}

static void test_sweep(void) {
  cur_test = "attention over every kv_dtype vs float64 (dequantized cache)";
  struct {
    int64_t g, hk, d;
  } cfg[] = {{1, 2, 64}, {4, 2, 128}, {8, 1, 80}, {4, 1, 64}, {2, 2, 40}};
  int native = hr_cpu_isa();
  long long runs = 0;
  for (int64_t dt = 0; dt < 5; dt++)
    for (size_t ci = 0; ci < sizeof cfg / sizeof *cfg; ci++) {
      int64_t hk = cfg[ci].hk, d = cfg[ci].d, hq = cfg[ci].g * hk, bs = ci == 3 ? 5 : 16;
      int64_t nb = 4 * ((700 + bs - 1) / bs) + 1;
      kvc c = make_kv(dt, nb, bs, hk, d);
      double tol = 3e-5 * vmax_of(&c);
      for (int isa = HR_ISA_SCALAR; isa <= native; isa++) {
        hr_cpu_force_isa(isa);
        for (int th = 1; th <= 2; th++) {
          CHECK_OK(hr_set_num_threads(dev, th));
          /* the full grid on the native ISA with 2 threads, a slice elsewhere (ASan time) */
          int full = isa == native && th == 2;
          for (int wi = 0; wi < 2; wi++)
            for (int ki = 0; ki < 2; ki++) {
              if (!full && (wi != ki)) continue;
              int64_t window = wi ? 37 : 0;
              double cap = ki ? 1.5 : 0.0;
              static const int64_t parts[] = {0, 16, 512};
              for (int pi = 0; pi < 3; pi++) {
                if (!full && pi == 1) continue;
                check_decode(&c, hq, window, cap, parts[pi] % bs ? (parts[pi] / bs + 1) * bs : parts[pi], tol);
                runs++;
              }
              check_prefill(&c, hq, window, cap, tol);
              runs++;
            }
        }
      }
      hr_cpu_force_isa(native);
      free(c.kd);
      free(c.vd);
      free_all();
    }
  CHECK_OK(hr_set_num_threads(dev, 0));
  printf("ok   %s (%lld op runs, %lld outputs checked)\n", cur_test, runs, checks);
}

/* NaN and out-of-range values through kv_write: NaN stays NaN, fp8 saturates; attention over a
 * NaN value returns NaN for the queries that see it and stays finite for the others. */
static void test_specials(void) {
  cur_test = "kv_write specials: NaN kept, fp8 saturation, NaN reaches only the queries that see it";
  for (int64_t dt = 1; dt < 5; dt++) {
    int64_t nb = 3, bs = 16, hk = 1, d = 64, T = nb * bs;
    int64_t eb = hr_kv_elem_bytes(dt);
    void *kc = dalloc((size_t)(T * d * eb)), *vc = dalloc((size_t)(T * d * eb));
    float *k = frand_buf(T * d), *v = frand_buf(T * d);
    int32_t *slots = ibuf(T);
    for (int64_t t = 0; t < T; t++) slots[t] = (int32_t)t;
    v[20 * d + 5] = NAN; /* token 20 */
    k[3 * d] = 1e30f;    /* saturates in fp8, inf in f16 */
    k[3 * d + 1] = -1e30f;
    CHECK_OK(hr_op_kv_write(dev, HR_DTYPE_F32, P(kc), P(vc), P(k), P(v), P(slots), T, hk, d, nb, bs, 0, dt, 1.0, 1.0));
    CHECK(isnan(ref_kv_elem(dt, vc, 20 * d + 5)), "%s: NaN not kept", DT[dt]);
    double big = ref_kv_elem(dt, kc, 3 * d), nbig = ref_kv_elem(dt, kc, 3 * d + 1);
    double want = dt == 3 ? 448.0 : dt == 4 ? 57344.0 : dt == 1 ? INFINITY : 0x1.fe2p99; /* bf16(1e30) */
    if (dt == 2) want = (double)hr_bf16_to_f32(hr_f32_to_bf16(1e30f));
    CHECK(big == want && nbig == -want, "%s: 1e30 stored as %g / %g", DT[dt], big, nbig);
    k[3 * d] = k[3 * d + 1] = 0.5f; /* finite K again (so scores stay finite) */
    CHECK_OK(hr_op_kv_write(dev, HR_DTYPE_F32, P(kc), P(vc), P(k), P(v), P(slots), T, hk, d, nb, bs, 0, dt, 1.0, 1.0));
    int32_t *bt = ibuf(3), *lens = ibuf(2);
    bt[0] = 0, bt[1] = 1, bt[2] = 2;
    lens[0] = 20; /* keys 0..19: no NaN */
    lens[1] = 21; /* sees token 20 */
    float *q = frand_buf(2 * d), *out = dalloc((size_t)(2 * d * 4));
    int32_t *bt2 = ibuf(6);
    for (int i = 0; i < 6; i++) bt2[i] = i % 3;
    CHECK_OK(hr_op_attention_decode(dev, HR_DTYPE_F32, P(out), P(q), P(kc), P(vc), P(bt2), P(lens), 0, 0, 2, 1, 1, d,
                                    nb, bs, 3, 0, 0.125, 0, 0, 0.0, dt, 1.0, 1.0));
    for (int64_t e = 0; e < d; e++) CHECK(isfinite(out[e]), "%s: query before the NaN got %g", DT[dt], out[e]);
    CHECK(isnan(out[d + 5]), "%s: query seeing the NaN got %g", DT[dt], out[d + 5]);
    free_all();
  }
  printf("ok   %s\n", cur_test);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  CHECK_OK(hr_device_open(0, 1ull << 30, &dev));
  printf("CPU ISA: %s\n", hr_cpu_isa_name(hr_cpu_isa()));
  test_specials();
  test_sweep();
  CHECK_OK(hr_device_close(dev));
  printf("all kv dtype attention tests passed\n");
  return 0;
}
