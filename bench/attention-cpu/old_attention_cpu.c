/*
 * The CPU decode attention as it was before the span kernels (csrc/cpu/ops_attention.c at
 * commit 717b667, fp32 cache only), kept verbatim in its inner loops as the benchmark's
 * baseline: per key and head one hr_vdot call for the score, per key and head one hr_vaxpy
 * into an accumulator in memory, a separate K pass and V pass per partition; prefill likewise
 * per key (one hr_vdot, one hr_vaxpy per key, row and head).
 */
#include <math.h>
#include <string.h>

#include "../../csrc/cpu/ops_cpu.h"
#include "../../csrc/cpu/threadpool.h"
#include "old_attention_cpu.h"

typedef struct {
  float *out, *ws;
  const float *q, *kc, *vc;
  const int32_t *bt, *seq_lens;
  int64_t b, hq, hk, d, bs, maxb, part, nparts, qs, window;
  float scale, softcap;
} dec_ctx;

static inline int64_t window_start(int64_t pos, int64_t window) {
  return window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
}
static inline float softcap_score(float s, float cap) { return cap > 0.0f ? cap * tanhf(s / cap) : s; }

static void dec_task(void *v, int64_t task, int thread, void *scratch) {
  (void)thread;
  const dec_ctx *c = v;
  int64_t p = task % c->nparts, hk = (task / c->nparts) % c->hk, s = task / (c->nparts * c->hk);
  int64_t L = c->seq_lens[s];
  int64_t t0 = p * c->part, lo = window_start(L - 1, c->window);
  int64_t g = c->hq / c->hk, d = c->d, kvrow = c->hk * d;
  float *ws_max = c->ws, *ws_sum = NULL, *ws_out = NULL;
  if (c->ws) {
    int64_t n = c->b * c->hq * c->nparts;
    ws_sum = c->ws + n;
    ws_out = c->ws + 2 * n;
  }
  if (t0 >= L || t0 + c->part <= lo) {
    if (c->ws)
      for (int64_t h = 0; h < g; h++) {
        int64_t idx = (s * c->hq + hk * g + h) * c->nparts + p;
        ws_max[idx] = -INFINITY;
        ws_sum[idx] = 0.0f;
      }
    return;
  }
  int64_t t1 = t0 + c->part < L ? t0 + c->part : L;
  if (t0 < lo) t0 = lo;
  int64_t n = t1 - t0;
  float *scores = scratch;
  float *acc = scores + g * c->part;
  const float *qh = c->q + s * c->qs + hk * g * d;
  for (int64_t t = t0; t < t1; t++) {
    int64_t blk = c->bt[s * c->maxb + t / c->bs];
    const float *k = c->kc + (blk * c->bs + t % c->bs) * kvrow + hk * d;
    for (int64_t h = 0; h < g; h++)
      scores[h * c->part + (t - t0)] = softcap_score(hr_vdot(qh + h * d, k, d) * c->scale, c->softcap);
  }
  float mx[256], sm[256];
  for (int64_t h = 0; h < g; h++) {
    float *sc = scores + h * c->part, m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = sc[i] > m ? sc[i] : m;
    mx[h] = m;
    sm[h] = hr_vexp_sub_sum(sc, m, n);
    memset(acc + h * d, 0, (size_t)d * sizeof(float));
  }
  for (int64_t t = t0; t < t1; t++) {
    int64_t blk = c->bt[s * c->maxb + t / c->bs];
    const float *vv = c->vc + (blk * c->bs + t % c->bs) * kvrow + hk * d;
    for (int64_t h = 0; h < g; h++) hr_vaxpy(acc + h * d, scores[h * c->part + (t - t0)], vv, d);
  }
  int single = L <= c->part;
  for (int64_t h = 0; h < g; h++) {
    int64_t qh_idx = hk * g + h;
    if (single || !c->ws) {
      float *o = c->out + (s * c->hq + qh_idx) * d, inv = 1.0f / sm[h];
      for (int64_t i = 0; i < d; i++) o[i] = acc[h * d + i] * inv;
    } else {
      int64_t idx = (s * c->hq + qh_idx) * c->nparts + p;
      ws_max[idx] = mx[h];
      ws_sum[idx] = sm[h];
      memcpy(ws_out + idx * d, acc + h * d, (size_t)d * sizeof(float));
    }
  }
}

static void dec_reduce_task(void *v, int64_t task, int thread, void *scratch) {
  (void)thread;
  (void)scratch;
  const dec_ctx *c = v;
  int64_t s = task / c->hq, h = task % c->hq, d = c->d;
  int64_t L = c->seq_lens[s];
  if (L <= c->part) return;
  int64_t n = c->b * c->hq * c->nparts, base = (s * c->hq + h) * c->nparts;
  const float *ws_max = c->ws, *ws_sum = c->ws + n, *ws_out = c->ws + 2 * n;
  int64_t used = (L + c->part - 1) / c->part;
  float m = -INFINITY;
  for (int64_t p = 0; p < used; p++) m = ws_max[base + p] > m ? ws_max[base + p] : m;
  float total = 0;
  float *o = c->out + (s * c->hq + h) * d;
  memset(o, 0, (size_t)d * sizeof(float));
  for (int64_t p = 0; p < used; p++) {
    if (ws_sum[base + p] == 0.0f) continue;
    float f = expf(ws_max[base + p] - m);
    total += f * ws_sum[base + p];
    hr_vaxpy(o, f, ws_out + (base + p) * d, d);
  }
  float inv = 1.0f / total;
  for (int64_t i = 0; i < d; i++) o[i] *= inv;
}

int old_attention_decode(float *out, const float *q, const float *kc, const float *vc, const int32_t *bt,
                         const int32_t *seq_lens, float *ws, int64_t b, int64_t hq, int64_t hk, int64_t d, int64_t bs,
                         int64_t maxb, int64_t part, float scale) {
  dec_ctx c = {out, NULL, q, kc, vc, bt, seq_lens, b, hq, hk, d, bs, maxb, part, 0, hq * d, 0, scale, 0.0f};
  c.nparts = (maxb * bs + part - 1) / part;
  c.ws = c.nparts > 1 ? ws : NULL;
  size_t scratch = (size_t)((hq / hk) * (part + d)) * sizeof(float);
  int st = hrt_parallel(b * hk * c.nparts, scratch, dec_task, &c);
  if (st == 0 && c.ws) st = hrt_parallel(b * hq, 0, dec_reduce_task, &c);
  return st;
}

/* ---- prefill, verbatim likewise */
#define QT 16 /* new tokens per task */

typedef struct {
  float *out;
  const float *q, *kc, *vc;
  const int32_t *bt, *seq_lens, *qsl;
  int64_t b, hq, hk, d, bs, maxb, qs, window;
  float scale, softcap;
  const int64_t *tile_start; /* [b + 1] prefix sums of tiles per sequence */
} pre_ctx;

static void pre_task(void *v, int64_t task, int thread, void *scratch) {
  (void)thread;
  const pre_ctx *c = v;
  int64_t hk = task % c->hk, tile = task / c->hk;
  /* sequence of this tile: binary search in tile_start */
  int64_t lo = 0, hi = c->b;
  while (hi - lo > 1) {
    int64_t mid = (lo + hi) / 2;
    if (c->tile_start[mid] <= tile)
      lo = mid;
    else
      hi = mid;
  }
  int64_t s = lo, i0 = (tile - c->tile_start[s]) * QT;
  int64_t qbeg = c->qsl[s], qlen = c->qsl[s + 1] - qbeg, L = c->seq_lens[s];
  int64_t nrows = qlen - i0 < QT ? qlen - i0 : QT;
  int64_t g = c->hq / c->hk, d = c->d, kvrow = c->hk * d, bs = c->bs;
  int64_t nq = nrows * g;  /* (row, head) pairs */
  float *acc = scratch;    /* [nq][d] */
  float *m = acc + nq * d; /* [nq] */
  float *l = m + nq;       /* [nq] */
  float *sc = l + nq;      /* [bs] */
  for (int64_t j = 0; j < nq; j++) {
    m[j] = -INFINITY;
    l[j] = 0.0f;
  }
  memset(acc, 0, (size_t)(nq * d) * sizeof(float));
  int64_t pos0 = L - qlen + i0;    /* position of the tile's first row */
  int64_t last = pos0 + nrows - 1; /* last key any row of the tile sees */
  for (int64_t kb = window_start(pos0, c->window) / bs; kb * bs <= last; kb++) {
    int64_t blk = c->bt[s * c->maxb + kb];
    const float *kpage = c->kc + blk * bs * kvrow + hk * d;
    const float *vpage = c->vc + blk * bs * kvrow + hk * d;
    int64_t kstart = kb * bs;
    for (int64_t r = 0; r < nrows; r++) {
      int64_t pos = pos0 + r;
      if (kstart > pos) continue; /* this row does not reach the page yet */
      int64_t lo = window_start(pos, c->window);
      if (kstart + bs <= lo) continue;            /* the page is wholly before this row's window */
      int64_t k0 = lo > kstart ? lo - kstart : 0; /* first key of the page the row sees */
      int64_t nk = (pos - kstart + 1 < bs ? pos - kstart + 1 : bs) - k0;
      const float *kp = kpage + k0 * kvrow, *vp = vpage + k0 * kvrow;
      const float *qrow = c->q + (qbeg + i0 + r) * c->qs + hk * g * d;
      for (int64_t h = 0; h < g; h++) {
        int64_t j = r * g + h;
        const float *qv = qrow + h * d;
        float pm = -INFINITY;
        for (int64_t t = 0; t < nk; t++) {
          sc[t] = softcap_score(hr_vdot(qv, kp + t * kvrow, d) * c->scale, c->softcap);
          pm = sc[t] > pm ? sc[t] : pm;
        }
        float mnew = pm > m[j] ? pm : m[j];
        float corr = expf(m[j] - mnew); /* 0 when m[j] = -inf */
        float ps = hr_vexp_sub_sum(sc, mnew, nk);
        float *aj = acc + j * d;
        if (corr != 1.0f) hr_vscale(aj, corr, d);
        for (int64_t t = 0; t < nk; t++) hr_vaxpy(aj, sc[t], vp + t * kvrow, d);
        l[j] = l[j] * corr + ps;
        m[j] = mnew;
      }
    }
  }
  for (int64_t r = 0; r < nrows; r++)
    for (int64_t h = 0; h < g; h++) {
      int64_t j = r * g + h;
      float *o = c->out + ((qbeg + i0 + r) * c->hq + hk * g + h) * d, inv = 1.0f / l[j];
      for (int64_t i = 0; i < d; i++) o[i] = acc[j * d + i] * inv;
    }
}

int old_attention_prefill(float *out, const float *q, const float *kc, const float *vc, const int32_t *bt,
                          const int32_t *seq_lens, const int32_t *qsl, int64_t b, int64_t hq, int64_t hk, int64_t d,
                          int64_t bs, int64_t maxb, float scale) {
  int64_t tile_start[65];
  if (b > 64) return -1;
  pre_ctx c = {out, q, kc, vc, bt, seq_lens, qsl, b, hq, hk, d, bs, maxb, hq * d, 0, scale, 0.0f, tile_start};
  tile_start[0] = 0;
  for (int64_t s = 0; s < b; s++) tile_start[s + 1] = tile_start[s] + ((qsl[s + 1] - qsl[s]) + QT - 1) / QT;
  int64_t g = hq / hk, nq = QT * g;
  size_t scratch = (size_t)(nq * d + 2 * nq + bs) * sizeof(float);
  return hrt_parallel(tile_start[b] * hk, scratch, pre_task, &c);
}
