/*
 * CPU paged attention (fp32 activations, a KV cache of any kv_dtype): decode with split-K
 * partitions + reduction, and prefill with a causal mask over a cached prefix (chunked
 * prefill). Caches are [num_blocks, block_size, num_kv_heads, head_dim] of kv_dtype; the inner
 * loop is attn_span.c's kernel (the query heads of a KV group share each K/V read, online
 * softmax over chunks of 16 keys, K/V read in their stored dtype, SIMD chosen at run time).
 * k_scale folds into the score scale, v_scale into the final normalization.
 *
 * Decode: one task per (sequence, kv head, partition). A single-partition sequence writes `out`
 * directly; otherwise the partition's max, exp-sum and unnormalized output go to the workspace
 * and a second parallel pass over (sequence, q head) combines them (log-sum-exp rescaling).
 *
 * Prefill: one task per (sequence, kv head, tile of up to 16 new tokens); keys are taken in
 * spans small enough that the span's K and V stay in L1 while every row of the tile (and every
 * head of the group) uses them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/float_formats.h"
#include "../core/ops_dispatch.h"
#include "../core/status.h"
#include "attn_span.h"
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
                             int64_t hk, int64_t d, int64_t eb) {
  uint64_t block_bytes = (uint64_t)bs * (uint64_t)hk * (uint64_t)d * (uint64_t)eb;
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

/* First key a query at position pos sees (sliding window; 0 = from the start). */
static inline int64_t window_start(int64_t pos, int64_t window) {
  return window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
}

/* What both ops share: the cache, its dtype and scales, the kernel. */
typedef struct {
  const uint8_t *kc, *vc;
  const int32_t *bt;
  int64_t hq, hk, d, bs, maxb, qs, window, eb;
  float qk_scale; /* scale * k_scale * kernel unit */
  float v_fac;    /* v_scale * kernel unit */
  float softcap;
  hr_attn_kernel kern;
} attn_common;

static hr_attn_span span_of(const attn_common *c, int64_t s, int64_t hk) {
  hr_attn_span sp = {
      .nh = c->hq / c->hk,
      .d = c->d,
      .kc = c->kc,
      .vc = c->vc,
      .bt = c->bt + s * c->maxb,
      .bs = c->bs,
      .row_bytes = c->hk * c->d * c->eb,
      .head_bytes = hk * c->d * c->eb,
      .head_row_bytes = c->d * c->eb,
      .qk_scale = c->qk_scale,
      .softcap = c->softcap,
  };
  return sp;
}

static void state_init(float *m, float *l, float *acc, int64_t nh, int64_t d) {
  for (int64_t h = 0; h < nh; h++) {
    m[h] = -INFINITY;
    l[h] = 0.0f;
  }
  memset(acc, 0, (size_t)(nh * d) * sizeof(float));
}

/* Reads the op record's cache fields; picks the kernel. */
static attn_common common_of(const int64_t *a, int kc, int vc, int bt, int hq, int hk, int d, int bs, int maxb, int qs,
                             int window, int scale, int softcap, int kvdt, int ksc, int vsc) {
  attn_common c = {
      .kc = HR_PTR(a, kc, const uint8_t),
      .vc = HR_PTR(a, vc, const uint8_t),
      .bt = HR_PTR(a, bt, const int32_t),
      .hq = a[hq],
      .hk = a[hk],
      .d = a[d],
      .bs = a[bs],
      .maxb = a[maxb],
      .qs = a[qs],
      .window = a[window],
      .eb = hr_kv_elem_bytes(a[kvdt]),
      .softcap = (float)hr_bits_f64(a[softcap]),
      .kern = hr_attn_pick(a[kvdt], a[d]),
  };
  c.qk_scale = (float)(hr_bits_f64(a[scale]) * hr_bits_f64(a[ksc]) * c.kern.unit);
  c.v_fac = (float)(hr_bits_f64(a[vsc]) * c.kern.unit);
  return c;
}

/* ---------------------------------------------------------------- decode */

typedef struct {
  attn_common c;
  float *out, *ws;
  const float *q;
  const int32_t *seq_lens;
  int64_t b, part, nparts;
} dec_ctx;

static void dec_task(void *v, int64_t task, int thread, void *scratch) {
  (void)thread;
  const dec_ctx *x = v;
  const attn_common *c = &x->c;
  int64_t p = task % x->nparts, hk = (task / x->nparts) % c->hk, s = task / (x->nparts * c->hk);
  int64_t L = x->seq_lens[s];
  int64_t t0 = p * x->part, lo = window_start(L - 1, c->window);
  int64_t g = c->hq / c->hk, d = c->d;
  float *ws_max = x->ws, *ws_sum = NULL, *ws_out = NULL;
  if (x->ws) {
    int64_t n = x->b * c->hq * x->nparts;
    ws_sum = x->ws + n;
    ws_out = x->ws + 2 * n;
  }
  /* a partition wholly before the window is empty like one past the end */
  if (t0 >= L || t0 + x->part <= lo) {
    if (x->ws) /* empty partition: neutral element for the reduction */
      for (int64_t h = 0; h < g; h++) {
        int64_t idx = (s * c->hq + hk * g + h) * x->nparts + p;
        ws_max[idx] = -INFINITY;
        ws_sum[idx] = 0.0f;
      }
    return;
  }
  int64_t t1 = t0 + x->part < L ? t0 + x->part : L;
  if (t0 < lo) t0 = lo;
  float *acc = scratch, *m = acc + g * d, *l = m + g; /* acc first: 64-byte aligned */
  state_init(m, l, acc, g, d);
  hr_attn_span sp = span_of(c, s, hk);
  sp.q = x->q + s * c->qs + hk * g * d;
  sp.m = m;
  sp.l = l;
  sp.acc = acc;
  c->kern.fn(&sp, t0, t1);
  int single = L <= x->part;
  for (int64_t h = 0; h < g; h++) {
    int64_t qh_idx = hk * g + h;
    if (single || !x->ws) {
      float *o = x->out + (s * c->hq + qh_idx) * d, f = c->v_fac / l[h];
      for (int64_t i = 0; i < d; i++) o[i] = acc[h * d + i] * f;
    } else {
      int64_t idx = (s * c->hq + qh_idx) * x->nparts + p;
      ws_max[idx] = m[h];
      ws_sum[idx] = l[h];
      float *o = ws_out + idx * d;
      for (int64_t i = 0; i < d; i++) o[i] = acc[h * d + i] * c->v_fac;
    }
  }
}

static void dec_reduce_task(void *v, int64_t task, int thread, void *scratch) {
  (void)thread;
  (void)scratch;
  const dec_ctx *c = v;
  int64_t hq = c->c.hq;
  int64_t s = task / hq, h = task % hq, d = c->c.d;
  int64_t L = c->seq_lens[s];
  if (L <= c->part) return; /* written directly */
  int64_t n = c->b * hq * c->nparts, base = (s * hq + h) * c->nparts;
  const float *ws_max = c->ws, *ws_sum = c->ws + n, *ws_out = c->ws + 2 * n;
  int64_t used = (L + c->part - 1) / c->part;
  float m = -INFINITY;
  for (int64_t p = 0; p < used; p++) m = ws_max[base + p] > m ? ws_max[base + p] : m;
  float total = 0;
  float *o = c->out + (s * hq + h) * d;
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
  if (st != HR_OK) return st;
  dec_ctx x = {
      .c = common_of(a, HR_A_DEC_KC, HR_A_DEC_VC, HR_A_DEC_BT, HR_A_DEC_HQ, HR_A_DEC_HK, HR_A_DEC_D, HR_A_DEC_BS,
                     HR_A_DEC_MAXBLOCKS, HR_A_DEC_QSTRIDE, HR_A_DEC_WINDOW, HR_A_DEC_SCALE, HR_A_DEC_SOFTCAP,
                     HR_A_DEC_KVDTYPE, HR_A_DEC_KSCALE, HR_A_DEC_VSCALE),
      .out = HR_PTR(a, HR_A_DEC_OUT, float),
      .q = HR_PTR(a, HR_A_DEC_Q, const float),
      .seq_lens = HR_PTR(a, HR_A_DEC_SEQLENS, const int32_t),
      .b = a[HR_A_DEC_B],
      .part = a[HR_A_DEC_PART],
  };
  const attn_common *c = &x.c;
  if (c->hq / c->hk > 256)
    return hr_fail(HR_E_UNSUPPORTED, "%s: the CPU backend supports at most 256 query heads per KV head (got %lld)",
                   CALL, (long long)(c->hq / c->hk));
  int64_t ctx = c->maxb * c->bs;
  x.nparts = (ctx + x.part - 1) / x.part;
  x.ws = x.nparts > 1 ? HR_PTR(a, HR_A_DEC_WS, float) : NULL;
  st =
      check_tables(CALL, x.seq_lens, c->bt, x.b, c->maxb, c->bs, a[HR_A_DEC_NBLOCKS],
                   usable_blocks(inst, a, HR_A_DEC_KC, HR_A_DEC_VC, a[HR_A_DEC_NBLOCKS], c->bs, c->hk, c->d, c->eb), 1);
  if (st != HR_OK) return st;
  size_t scratch = (size_t)((c->hq / c->hk) * (c->d + 2)) * sizeof(float);
  st = hrt_parallel(x.b * c->hk * x.nparts, scratch, dec_task, &x);
  if (st == HR_OK && x.ws) st = hrt_parallel(x.b * c->hq, 0, dec_reduce_task, &x);
  return st;
}

/* ---------------------------------------------------------------- prefill */

#define QT 16 /* new tokens per task */

typedef struct {
  attn_common c;
  float *out;
  const float *q;
  const int32_t *seq_lens, *qsl;
  int64_t b, span;
  const int64_t *tile_start; /* [b + 1] prefix sums of tiles per sequence */
} pre_ctx;

static void pre_task(void *v, int64_t task, int thread, void *scratch) {
  (void)thread;
  const pre_ctx *x = v;
  const attn_common *c = &x->c;
  int64_t hk = task % c->hk, tile = task / c->hk;
  /* sequence of this tile: binary search in tile_start */
  int64_t lo = 0, hi = x->b;
  while (hi - lo > 1) {
    int64_t mid = (lo + hi) / 2;
    if (x->tile_start[mid] <= tile)
      lo = mid;
    else
      hi = mid;
  }
  int64_t s = lo, i0 = (tile - x->tile_start[s]) * QT;
  int64_t qbeg = x->qsl[s], qlen = x->qsl[s + 1] - qbeg, L = x->seq_lens[s];
  int64_t nrows = qlen - i0 < QT ? qlen - i0 : QT;
  int64_t g = c->hq / c->hk, d = c->d;
  int64_t nq = nrows * g;  /* (row, head) pairs */
  float *acc = scratch;    /* [nq][d] */
  float *m = acc + nq * d; /* [nq] */
  float *l = m + nq;       /* [nq] */
  state_init(m, l, acc, nq, d);
  hr_attn_span sp = span_of(c, s, hk);
  int64_t pos0 = L - qlen + i0;    /* position of the tile's first row */
  int64_t last = pos0 + nrows - 1; /* last key any row of the tile sees */
  for (int64_t k0 = window_start(pos0, c->window); k0 <= last; k0 += x->span) {
    int64_t k1 = k0 + x->span < last + 1 ? k0 + x->span : last + 1;
    for (int64_t r = 0; r < nrows; r++) {
      int64_t pos = pos0 + r, a = window_start(pos, c->window), b = pos + 1;
      if (a < k0) a = k0;
      if (b > k1) b = k1;
      if (a >= b) continue; /* the row sees nothing of this span */
      sp.q = x->q + (qbeg + i0 + r) * c->qs + hk * g * d;
      sp.m = m + r * g;
      sp.l = l + r * g;
      sp.acc = acc + r * g * d;
      c->kern.fn(&sp, a, b);
    }
  }
  for (int64_t j = 0; j < nq; j++) {
    int64_t r = j / g, h = j % g;
    float *o = x->out + ((qbeg + i0 + r) * c->hq + hk * g + h) * d, f = c->v_fac / l[j];
    for (int64_t i = 0; i < d; i++) o[i] = acc[j * d + i] * f;
  }
}

int hr_cpu_exec_attn_prefill(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_attention_prefill";
  int st = need_f32("attention_prefill", a[HR_A_PRE_DTYPE]);
  if (st != HR_OK) return st;
  pre_ctx x = {
      .c = common_of(a, HR_A_PRE_KC, HR_A_PRE_VC, HR_A_PRE_BT, HR_A_PRE_HQ, HR_A_PRE_HK, HR_A_PRE_D, HR_A_PRE_BS,
                     HR_A_PRE_MAXBLOCKS, HR_A_PRE_QSTRIDE, HR_A_PRE_WINDOW, HR_A_PRE_SCALE, HR_A_PRE_SOFTCAP,
                     HR_A_PRE_KVDTYPE, HR_A_PRE_KSCALE, HR_A_PRE_VSCALE),
      .out = HR_PTR(a, HR_A_PRE_OUT, float),
      .q = HR_PTR(a, HR_A_PRE_Q, const float),
      .seq_lens = HR_PTR(a, HR_A_PRE_SEQLENS, const int32_t),
      .qsl = HR_PTR(a, HR_A_PRE_QSL, const int32_t),
      .b = a[HR_A_PRE_B],
  };
  const attn_common *c = &x.c;
  int64_t T = a[HR_A_PRE_T];
  if (x.qsl[0] != 0) return hr_fail(HR_E_INVALID, "%s: query_start_loc[0] must be 0 (got %d)", CALL, x.qsl[0]);
  for (int64_t s = 0; s < x.b; s++) {
    int64_t ql = (int64_t)x.qsl[s + 1] - x.qsl[s];
    if (ql < 0 || x.qsl[s + 1] > T)
      return hr_fail(HR_E_INVALID,
                     "%s: query_start_loc must be non-decreasing and <= num_tokens=%lld (qsl[%lld]=%d, qsl[%lld]=%d)",
                     CALL, (long long)T, (long long)s, x.qsl[s], (long long)(s + 1), x.qsl[s + 1]);
    if (ql > x.seq_lens[s])
      return hr_fail(HR_E_INVALID, "%s: sequence %lld has %lld new tokens but seq_lens[%lld] = %d", CALL, (long long)s,
                     (long long)ql, (long long)s, x.seq_lens[s]);
  }
  st =
      check_tables(CALL, x.seq_lens, c->bt, x.b, c->maxb, c->bs, a[HR_A_PRE_NBLOCKS],
                   usable_blocks(inst, a, HR_A_PRE_KC, HR_A_PRE_VC, a[HR_A_PRE_NBLOCKS], c->bs, c->hk, c->d, c->eb), 0);
  if (st != HR_OK) return st;
  /* keys per span: the span's K and V rows of one head within ~32 KiB (L1), 16..256 */
  int64_t span = 16384 / (c->d * c->eb);
  x.span = span < 16 ? 16 : span > 256 ? 256 : span / 16 * 16;
  int64_t *tile_start = malloc(sizeof(int64_t) * (size_t)(x.b + 1));
  if (!tile_start) return hr_fail(HR_E_OOM, "%s: host allocation failed", CALL);
  tile_start[0] = 0;
  for (int64_t s = 0; s < x.b; s++) tile_start[s + 1] = tile_start[s] + ((x.qsl[s + 1] - x.qsl[s]) + QT - 1) / QT;
  x.tile_start = tile_start;
  int64_t nq = QT * (c->hq / c->hk);
  size_t scratch = (size_t)(nq * c->d + 2 * nq) * sizeof(float);
  st = hrt_parallel(tile_start[x.b] * c->hk, scratch, pre_task, &x);
  free(tile_start);
  return st;
}
