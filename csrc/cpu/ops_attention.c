/*
 * CPU paged attention (fp32): decode with split-K partitions + reduction, and prefill with a
 * causal mask over a cached prefix (chunked prefill). Caches are
 * [num_blocks, block_size, num_kv_heads, head_dim]; GQA/MQA share one K/V read among the
 * query heads of a group.
 *
 * Decode: one task per (sequence, kv head, partition). Within a partition the scores of all
 * group heads are computed into scratch (one K pass), softmaxed against the partition max,
 * and V is accumulated (one V pass). A single-partition sequence writes `out` directly;
 * otherwise the partition's max, exp-sum and unnormalized output go to the workspace and a
 * second parallel pass over (sequence, q head) combines them (log-sum-exp rescaling).
 *
 * Prefill: one task per (sequence, kv head, tile of up to 16 new tokens); online softmax over
 * pages (block_size keys at a time), so each page is read once per tile and stays in L1 while
 * all the tile's rows and group heads use it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/ops_dispatch.h"
#include "../core/status.h"
#include "ops_cpu.h"
#include "threadpool.h"

static int need_f32(const char *op, int64_t dtype) {
  if (dtype != HR_DTYPE_F32)
    return hr_fail(HR_E_UNSUPPORTED, "hr_op_%s: the CPU backend computes in float32 only (dtype %lld requested)", op,
                   (long long)dtype);
  return HR_OK;
}

/* Blocks of both caches that are really usable: a KV cache in a reserved range may have fewer
 * mapped blocks than the num_blocks a graph recorded (hr_vmm_block_limit). */
static int64_t usable_blocks(hr_instance *inst, const int64_t *a, int kc, int vc, int64_t num_blocks, int64_t bs,
                             int64_t hk, int64_t d) {
  uint64_t block_bytes = (uint64_t)bs * (uint64_t)hk * (uint64_t)d * sizeof(float);
  int64_t n = hr_vmm_block_limit(inst, (uint64_t)a[kc], num_blocks, block_bytes);
  return hr_vmm_block_limit(inst, (uint64_t)a[vc], n, block_bytes);
}

/* Checks seq_lens[b] in [lo, max_ctx] and the block ids it uses in [0, num_blocks) and
 * [0, usable) (usable < num_blocks: the rest is reserved but not mapped). */
static int check_tables(const char *call, const int32_t *seq_lens, const int32_t *bt, int64_t b, int64_t maxb,
                        int64_t bs, int64_t num_blocks, int64_t usable, int64_t lo) {
  for (int64_t s = 0; s < b; s++) {
    int64_t L = seq_lens[s];
    if (L < lo || L > maxb * bs)
      return hr_fail(HR_E_INVALID,
                     "%s: seq_lens[%lld] = %lld must be in [%lld, max_blocks_per_seq * block_size = %lld]", call,
                     (long long)s, (long long)L, (long long)lo, (long long)(maxb * bs));
    int64_t nb = (L + bs - 1) / bs;
    for (int64_t j = 0; j < nb; j++) {
      int32_t id = bt[s * maxb + j];
      if (id < 0 || id >= num_blocks)
        return hr_fail(HR_E_INVALID, "%s: block_tables[%lld][%lld] = %d is out of range [0, %lld)", call, (long long)s,
                       (long long)j, id, (long long)num_blocks);
      if (id >= usable)
        return hr_fail(HR_E_INVALID,
                       "%s: block_tables[%lld][%lld] = %d is beyond the %lld mapped blocks of the KV cache (num_blocks "
                       "%lld are reserved)",
                       call, (long long)s, (long long)j, id, (long long)usable, (long long)num_blocks);
    }
  }
  return HR_OK;
}

/* ---------------------------------------------------------------- decode */

typedef struct {
  float *out, *ws;
  const float *q, *kc, *vc;
  const int32_t *bt, *seq_lens;
  int64_t b, hq, hk, d, bs, maxb, part, nparts, qs, window;
  float scale, softcap;
} dec_ctx;

/* First key a query at position pos sees (sliding window; 0 = from the start). */
static inline int64_t window_start(int64_t pos, int64_t window) {
  return window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
}

/* Gemma 2 attention logit soft-capping (cap 0 = off). */
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
  /* a partition wholly before the window is empty like one past the end */
  if (t0 >= L || t0 + c->part <= lo) {
    if (c->ws) /* empty partition: neutral element for the reduction */
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
  float *scores = scratch;           /* [g][part] */
  float *acc = scores + g * c->part; /* [g][d] */
  const float *qh = c->q + s * c->qs + hk * g * d;
  /* K pass: all group heads against each key */
  for (int64_t t = t0; t < t1; t++) {
    int64_t blk = c->bt[s * c->maxb + t / c->bs];
    const float *k = c->kc + (blk * c->bs + t % c->bs) * kvrow + hk * d;
    for (int64_t h = 0; h < g; h++)
      scores[h * c->part + (t - t0)] = softcap_score(hr_vdot(qh + h * d, k, d) * c->scale, c->softcap);
  }
  float mx[256], sm[256]; /* g <= 256 checked by the executor */
  for (int64_t h = 0; h < g; h++) {
    float *sc = scores + h * c->part, m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = sc[i] > m ? sc[i] : m;
    mx[h] = m;
    sm[h] = hr_vexp_sub_sum(sc, m, n);
    memset(acc + h * d, 0, (size_t)d * sizeof(float));
  }
  /* V pass */
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
  if (L <= c->part) return; /* written directly */
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

int hr_cpu_exec_attn_decode(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_attention_decode";
  int st = need_f32("attention_decode", a[HR_A_DEC_DTYPE]);
  if (st == HR_OK) st = hr_need_kv_dtype_eq(CALL, a[HR_A_DEC_DTYPE], a[HR_A_DEC_KVDTYPE]);
  if (st != HR_OK) return st;
  dec_ctx c = {
      .out = HR_PTR(a, HR_A_DEC_OUT, float),
      .q = HR_PTR(a, HR_A_DEC_Q, const float),
      .kc = HR_PTR(a, HR_A_DEC_KC, const float),
      .vc = HR_PTR(a, HR_A_DEC_VC, const float),
      .bt = HR_PTR(a, HR_A_DEC_BT, const int32_t),
      .seq_lens = HR_PTR(a, HR_A_DEC_SEQLENS, const int32_t),
      .b = a[HR_A_DEC_B],
      .hq = a[HR_A_DEC_HQ],
      .hk = a[HR_A_DEC_HK],
      .d = a[HR_A_DEC_D],
      .bs = a[HR_A_DEC_BS],
      .maxb = a[HR_A_DEC_MAXBLOCKS],
      .part = a[HR_A_DEC_PART],
      .qs = a[HR_A_DEC_QSTRIDE],
      .window = a[HR_A_DEC_WINDOW],
      .scale = (float)hr_bits_f64(a[HR_A_DEC_SCALE]),
      .softcap = (float)hr_bits_f64(a[HR_A_DEC_SOFTCAP]),
  };
  if (c.hq / c.hk > 256)
    return hr_fail(HR_E_UNSUPPORTED, "%s: the CPU backend supports at most 256 query heads per KV head (got %lld)",
                   CALL, (long long)(c.hq / c.hk));
  int64_t ctx = c.maxb * c.bs;
  c.nparts = (ctx + c.part - 1) / c.part;
  c.ws = c.nparts > 1 ? HR_PTR(a, HR_A_DEC_WS, float) : NULL;
  st = check_tables(CALL, c.seq_lens, c.bt, c.b, c.maxb, c.bs, a[HR_A_DEC_NBLOCKS],
                    usable_blocks(inst, a, HR_A_DEC_KC, HR_A_DEC_VC, a[HR_A_DEC_NBLOCKS], c.bs, c.hk, c.d), 1);
  if (st != HR_OK) return st;
  size_t scratch = (size_t)((c.hq / c.hk) * (c.part + c.d)) * sizeof(float);
  st = hrt_parallel(c.b * c.hk * c.nparts, scratch, dec_task, &c);
  if (st == HR_OK && c.ws) st = hrt_parallel(c.b * c.hq, 0, dec_reduce_task, &c);
  return st;
}

/* ---------------------------------------------------------------- prefill */

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

int hr_cpu_exec_attn_prefill(hr_instance *inst, const int64_t *a) {
  (void)inst;
  static const char *const CALL = "hr_op_attention_prefill";
  int st = need_f32("attention_prefill", a[HR_A_PRE_DTYPE]);
  if (st == HR_OK) st = hr_need_kv_dtype_eq(CALL, a[HR_A_PRE_DTYPE], a[HR_A_PRE_KVDTYPE]);
  if (st != HR_OK) return st;
  pre_ctx c = {
      .out = HR_PTR(a, HR_A_PRE_OUT, float),
      .q = HR_PTR(a, HR_A_PRE_Q, const float),
      .kc = HR_PTR(a, HR_A_PRE_KC, const float),
      .vc = HR_PTR(a, HR_A_PRE_VC, const float),
      .bt = HR_PTR(a, HR_A_PRE_BT, const int32_t),
      .seq_lens = HR_PTR(a, HR_A_PRE_SEQLENS, const int32_t),
      .qsl = HR_PTR(a, HR_A_PRE_QSL, const int32_t),
      .b = a[HR_A_PRE_B],
      .hq = a[HR_A_PRE_HQ],
      .hk = a[HR_A_PRE_HK],
      .d = a[HR_A_PRE_D],
      .bs = a[HR_A_PRE_BS],
      .maxb = a[HR_A_PRE_MAXBLOCKS],
      .qs = a[HR_A_PRE_QSTRIDE],
      .window = a[HR_A_PRE_WINDOW],
      .scale = (float)hr_bits_f64(a[HR_A_PRE_SCALE]),
      .softcap = (float)hr_bits_f64(a[HR_A_PRE_SOFTCAP]),
  };
  int64_t T = a[HR_A_PRE_T];
  if (c.qsl[0] != 0) return hr_fail(HR_E_INVALID, "%s: query_start_loc[0] must be 0 (got %d)", CALL, c.qsl[0]);
  for (int64_t s = 0; s < c.b; s++) {
    int64_t ql = (int64_t)c.qsl[s + 1] - c.qsl[s];
    if (ql < 0 || c.qsl[s + 1] > T)
      return hr_fail(HR_E_INVALID,
                     "%s: query_start_loc must be non-decreasing and <= num_tokens=%lld (qsl[%lld]=%d, qsl[%lld]=%d)",
                     CALL, (long long)T, (long long)s, c.qsl[s], (long long)(s + 1), c.qsl[s + 1]);
    if (ql > c.seq_lens[s])
      return hr_fail(HR_E_INVALID, "%s: sequence %lld has %lld new tokens but seq_lens[%lld] = %d", CALL, (long long)s,
                     (long long)ql, (long long)s, c.seq_lens[s]);
  }
  st = check_tables(CALL, c.seq_lens, c.bt, c.b, c.maxb, c.bs, a[HR_A_PRE_NBLOCKS],
                    usable_blocks(inst, a, HR_A_PRE_KC, HR_A_PRE_VC, a[HR_A_PRE_NBLOCKS], c.bs, c.hk, c.d), 0);
  if (st != HR_OK) return st;
  int64_t *tile_start = malloc(sizeof(int64_t) * (size_t)(c.b + 1));
  if (!tile_start) return hr_fail(HR_E_OOM, "%s: host allocation failed", CALL);
  tile_start[0] = 0;
  for (int64_t s = 0; s < c.b; s++) tile_start[s + 1] = tile_start[s] + ((c.qsl[s + 1] - c.qsl[s]) + QT - 1) / QT;
  c.tile_start = tile_start;
  int64_t g = c.hq / c.hk, nq = QT * g;
  size_t scratch = (size_t)(nq * c.d + 2 * nq + c.bs) * sizeof(float);
  st = hrt_parallel(tile_start[c.b] * c.hk, scratch, pre_task, &c);
  free(tile_start);
  return st;
}
