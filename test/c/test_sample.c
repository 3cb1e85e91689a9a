/*
 * hr_op_sample / hr_op_argmax on the CPU backend (csrc/cpu/ops_sample.c) under ASan/UBSan.
 *
 * Two references, both written here independently of the executor (sorting, no radix select):
 *  - the exact rule of headroom.h ("sampling"): the same integer weights q_i (from
 *    csrc/core/sample_rule.h), full sort by (logit desc, id asc), prefix sums. The executor must
 *    return exactly its token on every row.
 *  - float64: p_i = exp((l_i - max) / T) in double, the same order/top-k/top-p/draw. Its token
 *    must equal the executor's unless a decision is within 1e-6 (relative to the mass) of a
 *    boundary (top-p cut or the draw position), where fp rounding may legitimately flip it;
 *    such rows are counted and must stay rare.
 * Cases: vocab 1, 2, 37, 1000, 32000; random logits at scales 1/5/20, heavy ties (few distinct
 * values), masked (-inf/NaN) entries; temperature 0 / 0.7 / 1.5 (and 1e-6, NaN: greedy);
 * top-k off, 1, 50, vocab; top-p 0 / 0.1 / 0.9 / 1; u = 0, 0.999999 and random values. Also:
 * the sampled histogram over a uniform grid of u equals the renormalized distribution,
 * 1 vs 3 threads give the same ids, an op-list graph replays sampling with new inputs, errors.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/core/sample_rule.h"
#include "headroom.h"

#include "check.h"
#include "device_bufs.h"

#define PASS() printf("ok %s\n", cur_test)

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}
static float frnd(void) { return ((float)(rnd() & 0xffffff) + 0.5f) / 8388608.0f - 1.0f; } /* (-1, 1) */
static float urnd(void) { return (float)(rnd() & 0xffffff) / 16777216.0f; }                /* [0, 1) */

/* ---- references ------------------------------------------------------------------------- */

static const float *sort_l; /* logits of the row being sorted */
static int cmp_order(const void *pa, const void *pb) {
  const int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
  float la = sort_l[a], lb = sort_l[b];
  if (isnan(la)) la = -INFINITY;
  if (isnan(lb)) lb = -INFINITY;
  if (la > lb) return -1;
  if (la < lb) return 1;
  return a < b ? -1 : (a > b);
}

typedef struct {
  float temp, top_p, u;
  int32_t top_k;
} params_t;

/* Rank order and greedy decision shared by both references. Returns the argmax; *greedy set. */
static int32_t order_row(const float *l, int64_t v, float temp, int32_t *ord, int *greedy) {
  for (int64_t i = 0; i < v; i++) ord[i] = (int32_t)i;
  sort_l = l;
  qsort(ord, (size_t)v, sizeof *ord, cmp_order);
  const float m = isnan(l[ord[0]]) ? -INFINITY : l[ord[0]];
  *greedy = !(temp >= 1e-5f) || isinf(m);
  return ord[0];
}

/* The exact rule (headroom.h) with integer weights. */
static int32_t ref_exact(const float *l, int64_t v, params_t pr, int32_t *ord, uint64_t *q, uint8_t *keep) {
  int greedy;
  const int32_t amax = order_row(l, v, pr.temp, ord, &greedy);
  if (greedy) return amax;
  const float m = l[amax], inv_t = 1.0f / pr.temp;
  for (int64_t i = 0; i < v; i++) q[i] = hr_sr_weight(l[i], m, inv_t);
  int64_t k = (pr.top_k <= 0 || pr.top_k >= v) ? v : pr.top_k;
  uint64_t qk = 0;
  for (int64_t j = 0; j < k; j++) qk += q[ord[j]];
  int64_t n = k;
  if (pr.top_p < 1.0f) {
    uint64_t target = 1;
    if (pr.top_p > 0.0f) {
      double t = ceil((double)pr.top_p * (double)qk);
      if (t > 1.0) target = (uint64_t)t;
    }
    if (target > qk) target = qk;
    uint64_t acc = 0;
    for (n = 0; n < k;) {
      acc += q[ord[n++]];
      if (acc >= target) break;
    }
  }
  memset(keep, 0, (size_t)v);
  uint64_t total = 0;
  for (int64_t j = 0; j < n; j++) {
    keep[ord[j]] = 1;
    total += q[ord[j]];
  }
  uint64_t r = 0;
  if (pr.u > 0.0f) {
    double rd = floor((double)pr.u * (double)total);
    r = rd >= (double)total ? total - 1 : (uint64_t)rd;
    if (r >= total) r = total - 1;
  }
  uint64_t acc = 0;
  for (int64_t i = 0; i < v; i++)
    if (keep[i]) {
      acc += q[i];
      if (acc > r) return (int32_t)i;
    }
  CHECK(0, "ref_exact: no token drawn (total %llu)", (unsigned long long)total);
  return -1;
}

/* float64 softmax reference; *fragile = 1 if a decision is within tol of a boundary. */
static int32_t ref_f64(const float *l, int64_t v, params_t pr, int32_t *ord, double *w, uint8_t *keep, int *fragile) {
  const double tol = 1e-6;
  int greedy;
  *fragile = 0;
  const int32_t amax = order_row(l, v, pr.temp, ord, &greedy);
  if (greedy) return amax;
  const double m = l[amax];
  for (int64_t i = 0; i < v; i++) w[i] = (l[i] > -INFINITY) ? exp(((double)l[i] - m) / (double)pr.temp) : 0.0;
  int64_t k = (pr.top_k <= 0 || pr.top_k >= v) ? v : pr.top_k;
  double qk = 0;
  for (int64_t j = 0; j < k; j++) qk += w[ord[j]];
  int64_t n = k;
  if (pr.top_p < 1.0f) {
    const double target = pr.top_p > 0.0f ? (double)pr.top_p * qk : 0.0;
    double acc = 0;
    for (n = 0; n < k;) {
      const double before = acc;
      acc += w[ord[n++]];
      if (acc >= target) {
        if (acc - target < tol * qk || (n > 1 && target - before < tol * qk)) *fragile = 1;
        break;
      }
    }
  }
  memset(keep, 0, (size_t)v);
  double total = 0;
  for (int64_t j = 0; j < n; j++) {
    keep[ord[j]] = 1;
    total += w[ord[j]];
  }
  const double r = (pr.u > 0.0f ? (double)pr.u : 0.0) * total;
  double acc = 0;
  int32_t last = -1;
  for (int64_t i = 0; i < v; i++)
    if (keep[i] && w[i] > 0) {
      const double before = acc;
      acc += w[i];
      last = (int32_t)i;
      if (acc > r) {
        if (acc - r < tol * total || (before > 0 && r - before < tol * total)) *fragile = 1;
        return (int32_t)i;
      }
    }
  *fragile = 1; /* u * total at the very end */
  return last;
}

/* ---- harness ----------------------------------------------------------------------------- */

enum { GEN_UNIFORM, GEN_TIES, GEN_MASKED, GEN_COUNT };
static const char *gen_name[GEN_COUNT] = {"uniform", "ties", "masked"};

static void fill_logits(float *l, int64_t v, int gen, float scale) {
  for (int64_t i = 0; i < v; i++) {
    float x = frnd() * scale;
    if (gen == GEN_TIES) x = roundf(frnd() * 3.0f) * 0.5f * scale; /* 7 distinct values */
    if (gen == GEN_MASKED) {
      uint32_t c = rnd() % 10;
      if (c < 3)
        x = -INFINITY;
      else if (c == 3)
        x = NAN;
    }
    l[i] = x;
  }
  if (gen == GEN_MASKED && v > 2) l[rnd() % (uint32_t)v] = 0.25f * scale; /* at least one finite */
}

typedef struct {
  int64_t rows, exact, sampled, fragile_mismatch, fragile;
} stats_t;
static stats_t stats;

/* Runs one batch of rows with the given parameters; checks every row against both references. */
static void run_batch(int64_t rows, int64_t v, int gen, float scale, const params_t *pr) {
  float *logits = dalloc((size_t)(rows * v) * 4);
  float *temp = dalloc((size_t)rows * 4), *top_p = dalloc((size_t)rows * 4), *u = dalloc((size_t)rows * 4);
  int32_t *top_k = dalloc((size_t)rows * 4), *out = dalloc((size_t)rows * 4), *out_am = dalloc((size_t)rows * 4);
  for (int64_t r = 0; r < rows; r++) {
    fill_logits(logits + r * v, v, gen, scale);
    temp[r] = pr[r].temp;
    top_k[r] = pr[r].top_k;
    top_p[r] = pr[r].top_p;
    u[r] = pr[r].u;
    out[r] = out_am[r] = -7;
  }
  CHECK_OK(hr_op_sample(dev, P(out), P(logits), P(temp), P(top_k), P(top_p), P(u), rows, v));
  CHECK_OK(hr_op_argmax(dev, P(out_am), P(logits), rows, v));
  int32_t *ord = malloc((size_t)v * sizeof *ord);
  uint64_t *q = malloc((size_t)v * sizeof *q);
  double *w = malloc((size_t)v * sizeof *w);
  uint8_t *keep = malloc((size_t)v);
  CHECK(ord && q && w && keep, "malloc");
  for (int64_t r = 0; r < rows; r++) {
    const float *l = logits + r * v;
    int greedy;
    const int32_t am = order_row(l, v, 0.0f, ord, &greedy);
    CHECK(out_am[r] == am, "argmax row %lld (%s, vocab %lld): got %d, want %d", (long long)r, gen_name[gen],
          (long long)v, out_am[r], am);
    const int32_t ex = ref_exact(l, v, pr[r], ord, q, keep);
    CHECK(out[r] == ex, "row %lld (%s x%g, vocab %lld, T %g, top_k %d, top_p %g, u %.9g): got %d, exact rule says %d",
          (long long)r, gen_name[gen], scale, (long long)v, pr[r].temp, pr[r].top_k, pr[r].top_p, pr[r].u, out[r], ex);
    int fragile = 0;
    const int32_t f = ref_f64(l, v, pr[r], ord, w, keep, &fragile);
    stats.rows++;
    stats.exact++;
    if (pr[r].temp >= 1e-5f) stats.sampled++;
    stats.fragile += fragile;
    if (out[r] != f) {
      CHECK(fragile,
            "row %lld (%s x%g, vocab %lld, T %g, top_k %d, top_p %g, u %.9g): got %d, float64 reference says %d",
            (long long)r, gen_name[gen], scale, (long long)v, pr[r].temp, pr[r].top_k, pr[r].top_p, pr[r].u, out[r], f);
      stats.fragile_mismatch++;
      if (getenv("HR_TEST_VERBOSE"))
        printf("  near-boundary: %s x%g vocab %lld T %g k %d p %g u %.9g: %d vs float64 %d\n", gen_name[gen], scale,
               (long long)v, pr[r].temp, pr[r].top_k, pr[r].top_p, pr[r].u, out[r], f);
    }
  }
  free(ord);
  free(q);
  free(w);
  free(keep);
  free_all();
}

static const float U_FIXED[] = {0.0f, 0.999999f, 0.5f, 0.25f, 1e-7f, 0.75f};

static void test_grid(void) {
  cur_test = "sample vs exact rule and float64 (grid)";
  const int64_t vocabs[] = {1, 2, 37, 1000, 32000};
  const float temps[] = {0.0f, 0.7f, 1.5f};
  const float top_ps[] = {0.0f, 0.1f, 0.9f, 1.0f};
  const float scales[] = {1.0f, 5.0f, 20.0f};
  for (size_t vi = 0; vi < sizeof vocabs / sizeof *vocabs; vi++) {
    const int64_t v = vocabs[vi];
    const int big = v >= 32000;
    const int32_t top_ks[] = {0, 1, 50, (int32_t)v};
    const int64_t rows = big ? 2 : 12;
    params_t pr[12];
    for (int gen = 0; gen < GEN_COUNT; gen++)
      for (size_t si = 0; si < 3; si++) {
        if (big && si != (size_t)gen % 3) continue; /* one scale per generator at 32000 */
        for (size_t ti = 0; ti < 3; ti++)
          for (size_t ki = 0; ki < 4; ki++)
            for (size_t pi = 0; pi < 4; pi++) {
              if (big && (pi == 0 || (ti == 0 && (ki > 0 || pi > 1)))) continue;
              for (int64_t r = 0; r < rows; r++) {
                pr[r].temp = temps[ti];
                pr[r].top_k = top_ks[ki];
                pr[r].top_p = top_ps[pi];
                pr[r].u = r < 6 ? U_FIXED[(r + (int64_t)ki) % 6] : urnd();
              }
              if (big) pr[1].u = 0.999999f, pr[0].u = (pi + ki) % 2 ? 0.0f : urnd();
              run_batch(rows, v, gen, scales[si], pr);
            }
      }
  }
  printf(
      "  %lld rows (%lld sampled), all equal to the exact rule; float64 reference: %lld near-boundary rows, "
      "%lld of them differ\n",
      (long long)stats.rows, (long long)stats.sampled, (long long)stats.fragile, (long long)stats.fragile_mismatch);
  CHECK(stats.fragile_mismatch * 200 <= stats.sampled, "too many float64 mismatches");
  PASS();
}

/* Edge parameters: greedy temperatures, negative/huge k, p <= 0, u out of [0, 1), +inf logits. */
static void test_edges(void) {
  cur_test = "sample edge parameters";
  const int64_t v = 37, rows = 10;
  params_t pr[10] = {
      {1e-6f, 0.5f, 0.3f, 0}, {NAN, 1.0f, 0.3f, 0},      {1.0f, 1.0f, 0.3f, -5}, {1.0f, 1.0f, 0.3f, 1 << 30},
      {1.0f, -1.0f, 0.9f, 0}, {1.0f, NAN, 0.3f, 3},      {1.0f, 2.0f, -0.5f, 0}, {1.0f, 1.0f, NAN, 0},
      {1.0f, 1.0f, 1.0f, 0},  {INFINITY, 1.0f, 0.5f, 0},
  };
  run_batch(rows, v, GEN_UNIFORM, 3.0f, pr);
  /* u = 1 -> the last survivor with positive weight; u = 0 -> the first; T = inf: uniform */
  float *logits = dalloc((size_t)v * 4);
  float *t = dalloc(4), *p = dalloc(4), *u = dalloc(4);
  int32_t *k = dalloc(4), *out = dalloc(4);
  for (int64_t i = 0; i < v; i++) logits[i] = (float)(i % 5);
  *t = 1.0f, *p = 1.0f, *k = 0;
  *u = 1.0f;
  CHECK_OK(hr_op_sample(dev, P(out), P(logits), P(t), P(k), P(p), P(u), 1, v));
  CHECK(*out == v - 1, "u = 1 gave %d", *out);
  *u = 0.0f;
  CHECK_OK(hr_op_sample(dev, P(out), P(logits), P(t), P(k), P(p), P(u), 1, v));
  CHECK(*out == 0, "u = 0 gave %d", *out);
  *k = 3; /* the three 4s: ids 4, 9, 14 */
  CHECK_OK(hr_op_sample(dev, P(out), P(logits), P(t), P(k), P(p), P(u), 1, v));
  CHECK(*out == 4, "top_k 3, u = 0 gave %d", *out);
  *u = 0.99f;
  CHECK_OK(hr_op_sample(dev, P(out), P(logits), P(t), P(k), P(p), P(u), 1, v));
  CHECK(*out == 14, "top_k 3, u = 0.99 gave %d", *out);
  *k = 9, *p = 0.0f; /* top_p 0: the first token of the order only */
  CHECK_OK(hr_op_sample(dev, P(out), P(logits), P(t), P(k), P(p), P(u), 1, v));
  CHECK(*out == 4, "top_p 0 gave %d", *out);
  /* +inf logit: greedy on the lowest +inf id */
  logits[20] = INFINITY, logits[30] = INFINITY;
  *p = 1.0f, *k = 0, *u = 0.7f;
  CHECK_OK(hr_op_sample(dev, P(out), P(logits), P(t), P(k), P(p), P(u), 1, v));
  CHECK(*out == 20, "+inf row gave %d", *out);
  /* every logit NaN / -inf: token 0 */
  for (int64_t i = 0; i < v; i++) logits[i] = i % 2 ? NAN : -INFINITY;
  CHECK_OK(hr_op_sample(dev, P(out), P(logits), P(t), P(k), P(p), P(u), 1, v));
  CHECK(*out == 0, "all masked gave %d", *out);
  CHECK_OK(hr_op_argmax(dev, P(out), P(logits), 1, v));
  CHECK(*out == 0, "argmax all masked gave %d", *out);
  /* -0 and +0 tie: lowest id */
  for (int64_t i = 0; i < v; i++) logits[i] = -1.0f;
  logits[7] = 0.0f, logits[3] = -0.0f;
  CHECK_OK(hr_op_argmax(dev, P(out), P(logits), 1, v));
  CHECK(*out == 3, "-0/+0 argmax gave %d", *out);
  free_all();
  PASS();
}

/* Over a uniform grid of u, each token is drawn in proportion to its renormalized probability. */
static void test_distribution(void) {
  cur_test = "sample distribution over a u grid";
  const int64_t v = 37, n = 20000;
  float *logits = dalloc((size_t)(n * v) * 4);
  float *t = dalloc((size_t)n * 4), *p = dalloc((size_t)n * 4), *u = dalloc((size_t)n * 4);
  int32_t *k = dalloc((size_t)n * 4), *out = dalloc((size_t)n * 4);
  float row[37];
  for (int64_t i = 0; i < v; i++) row[i] = frnd() * 3.0f;
  const struct {
    float temp, top_p;
    int32_t top_k;
  } cfg[] = {{1.0f, 1.0f, 0}, {0.7f, 0.9f, 0}, {1.5f, 1.0f, 5}, {1.0f, 0.5f, 10}};
  for (size_t c = 0; c < sizeof cfg / sizeof *cfg; c++) {
    for (int64_t r = 0; r < n; r++) {
      memcpy(logits + r * v, row, sizeof row);
      t[r] = cfg[c].temp, p[r] = cfg[c].top_p, k[r] = cfg[c].top_k;
      u[r] = (float)(((double)r + 0.5) / (double)n);
    }
    CHECK_OK(hr_op_sample(dev, P(out), P(logits), P(t), P(k), P(p), P(u), n, v));
    /* expected: float64 softmax, top-k, top-p (sorted), renormalized */
    double w[37], total = 0;
    int32_t ord[37];
    int greedy;
    order_row(row, v, cfg[c].temp, ord, &greedy);
    uint8_t keep[37] = {0};
    int64_t kk = cfg[c].top_k > 0 ? cfg[c].top_k : v;
    for (int64_t i = 0; i < v; i++) w[i] = exp(((double)row[i] - (double)row[ord[0]]) / cfg[c].temp);
    double qk = 0;
    for (int64_t j = 0; j < kk; j++) qk += w[ord[j]];
    double acc = 0;
    for (int64_t j = 0; j < kk; j++) {
      keep[ord[j]] = 1;
      acc += w[ord[j]];
      if (cfg[c].top_p < 1.0f && acc >= cfg[c].top_p * qk) break;
    }
    for (int64_t i = 0; i < v; i++) total += keep[i] ? w[i] : 0.0;
    int64_t count[37] = {0};
    for (int64_t r = 0; r < n; r++) {
      CHECK(out[r] >= 0 && out[r] < v && keep[out[r]], "cfg %zu: row %lld drew %d, not a survivor", c, (long long)r,
            out[r]);
      count[out[r]]++;
    }
    for (int64_t i = 0; i < v; i++) {
      const double want = keep[i] ? w[i] / total * (double)n : 0.0;
      CHECK(fabs((double)count[i] - want) <= 1.5, "cfg %zu: token %lld drawn %lld times, expected %.2f", c,
            (long long)i, (long long)count[i], want);
    }
  }
  free_all();
  PASS();
}

/* 1 and 3 threads give the same ids (rows are independent). */
static void test_threads(void) {
  cur_test = "sample with 1 vs 3 threads";
  const int64_t rows = 24, v = 1000;
  float *logits = dalloc((size_t)(rows * v) * 4);
  float *t = dalloc((size_t)rows * 4), *p = dalloc((size_t)rows * 4), *u = dalloc((size_t)rows * 4);
  int32_t *k = dalloc((size_t)rows * 4), *o1 = dalloc((size_t)rows * 4), *o3 = dalloc((size_t)rows * 4);
  for (int64_t i = 0; i < rows * v; i++) logits[i] = frnd() * 4.0f;
  for (int64_t r = 0; r < rows; r++)
    t[r] = r % 4 ? 0.8f : 0.0f, p[r] = 0.9f, k[r] = (int32_t)(r % 3) * 20, u[r] = urnd();
  CHECK_OK(hr_set_num_threads(dev, 1));
  CHECK_OK(hr_op_sample(dev, P(o1), P(logits), P(t), P(k), P(p), P(u), rows, v));
  CHECK_OK(hr_set_num_threads(dev, 3));
  CHECK_OK(hr_op_sample(dev, P(o3), P(logits), P(t), P(k), P(p), P(u), rows, v));
  CHECK_OK(hr_set_num_threads(dev, 0));
  CHECK(memcmp(o1, o3, (size_t)rows * 4) == 0, "1 and 3 threads differ");
  free_all();
  PASS();
}

/* An op-list graph records hr_op_sample (pointers by value) and replays it on new inputs. */
static void test_graph(void) {
  cur_test = "sample inside an op-list graph";
  const int64_t rows = 4, v = 37;
  float *logits = dalloc((size_t)(rows * v) * 4);
  float *t = dalloc((size_t)rows * 4), *p = dalloc((size_t)rows * 4), *u = dalloc((size_t)rows * 4);
  int32_t *k = dalloc((size_t)rows * 4), *out = dalloc((size_t)rows * 4), *want = dalloc((size_t)rows * 4);
  const int64_t sizes[1] = {rows};
  uint64_t set = 0;
  CHECK_OK(hr_graph_set_create(dev, sizes, 1, &set));
  CHECK_OK(hr_graph_capture_begin(dev, set, rows));
  CHECK_OK(hr_op_sample(dev, P(out), P(logits), P(t), P(k), P(p), P(u), rows, v));
  CHECK_OK(hr_graph_capture_end(dev, set));
  for (int rep = 0; rep < 3; rep++) {
    for (int64_t i = 0; i < rows * v; i++) logits[i] = frnd() * 2.0f;
    for (int64_t r = 0; r < rows; r++) t[r] = r == 0 ? 0.0f : 1.0f, p[r] = 0.8f, k[r] = 10, u[r] = urnd();
    CHECK_OK(hr_op_sample(dev, P(want), P(logits), P(t), P(k), P(p), P(u), rows, v));
    for (int64_t r = 0; r < rows; r++) out[r] = -1;
    CHECK_OK(hr_graph_replay(dev, set, rows));
    CHECK(memcmp(out, want, (size_t)rows * 4) == 0, "replay %d differs from eager", rep);
  }
  CHECK_OK(hr_graph_set_destroy(dev, set));
  free_all();
  PASS();
}

static void test_errors(void) {
  cur_test = "sample argument errors";
  float *logits = dalloc(4 * 37 * 4);
  float *t = dalloc(16), *p = dalloc(16), *u = dalloc(16);
  int32_t *k = dalloc(16), *out = dalloc(16);
  CHECK_ERR(hr_op_sample(dev, 0, P(logits), P(t), P(k), P(p), P(u), 4, 37), HR_E_INVALID, "out_ids");
  CHECK_ERR(hr_op_sample(dev, P(out), 0, P(t), P(k), P(p), P(u), 4, 37), HR_E_INVALID, "logits");
  CHECK_ERR(hr_op_sample(dev, P(out), P(logits), 0, P(k), P(p), P(u), 4, 37), HR_E_INVALID, "temperature");
  CHECK_ERR(hr_op_sample(dev, P(out), P(logits), P(t), 0, P(p), P(u), 4, 37), HR_E_INVALID, "top_k");
  CHECK_ERR(hr_op_sample(dev, P(out), P(logits), P(t), P(k), 0, P(u), 4, 37), HR_E_INVALID, "top_p");
  CHECK_ERR(hr_op_sample(dev, P(out), P(logits), P(t), P(k), P(p), 0, 4, 37), HR_E_INVALID, "uniform");
  CHECK_ERR(hr_op_sample(dev, P(out), P(logits), P(t), P(k), P(p), P(u), 0, 37), HR_E_INVALID, "rows");
  CHECK_ERR(hr_op_sample(dev, P(out), P(logits), P(t), P(k), P(p), P(u), 4, 0), HR_E_INVALID, "vocab");
  CHECK_ERR(hr_op_argmax(dev, P(out), P(logits), 1, (1 << 23) + 1), HR_E_INVALID, "2^23");
  CHECK_ERR(hr_op_argmax(dev, P(logits) + 8, P(logits), 4, 37), HR_E_INVALID, "overlaps");
  CHECK_ERR(hr_op_argmax(0xdead0001ull, P(out), P(logits), 4, 37), HR_E_INVALID, "hr_op_argmax");
  free_all();
  PASS();
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  CHECK_OK(hr_device_open(0, 1ull << 30, &dev));
  test_errors();
  test_edges();
  test_threads();
  test_graph();
  test_distribution();
  test_grid();
  CHECK_OK(hr_device_close(dev));
  printf("all sampling tests passed\n");
  return 0;
}
