/*
 * The decode-attention plan (headroom.h "Decode-attention plan", layout in attn_plan.h):
 * host-side arithmetic over the batch's real context lengths, once per step.
 *
 * Choosing the partition length: a decode step's time is about the longest CTA's work or
 * the average work per CTA slot of one wave, whichever is larger, plus a fixed cost per CTA
 * wave and per reduction. Candidates are powers of two times the shortest partition and the
 * longest context itself (no split); each candidate's cost is
 *     max(min(part, longest), total_tokens * ctas_per_pair / ctas_per_wave)
 *       + kOverhead * waves(pairs * ctas_per_pair)
 * and the cheapest wins (ties: fewer pairs). A candidate whose split pairs exceed the
 * workspace bound is not eligible, so the workspace never depends on max_model_len.
 */
#include "attn_plan.h"

#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "device.h"
#include "graph.h"
#include "status.h"

/* Cost of one more wave of CTAs / of the reduction, in tokens of streaming. */
#define HR_DPLAN_OVERHEAD 32

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static int check_shapes(const char *call, int64_t b, int64_t hq, int64_t hk, int64_t d, int64_t bs, int64_t maxb) {
  const int64_t lim = 1LL << 30;
  if (b < 1 || b > lim || hq < 1 || hq > lim || hk < 1 || hk > lim || d < 1 || d > lim || bs < 1 || bs > lim ||
      maxb < 1 || maxb > lim)
    return hr_fail(HR_E_INVALID,
                   "%s: num_seqs=%lld num_q_heads=%lld num_kv_heads=%lld head_dim=%lld block_size=%lld "
                   "max_blocks_per_seq=%lld must each be in 1..2^30",
                   call, (long long)b, (long long)hq, (long long)hk, (long long)d, (long long)bs, (long long)maxb);
  if (hq % hk != 0)
    return hr_fail(HR_E_INVALID, "%s: num_q_heads (%lld) must be a multiple of num_kv_heads (%lld)", call,
                   (long long)hq, (long long)hk);
  if (maxb * bs > (int64_t)INT32_MAX)
    return hr_fail(HR_E_INVALID, "%s: max_blocks_per_seq x block_size = %lld exceeds int32 positions", call,
                   (long long)(maxb * bs));
  return HR_OK;
}

/* Bytes of the workspace in planned mode: the plan, then the partials of the bounded pairs. */
static uint64_t workspace_bytes(int64_t b, int64_t hq, int64_t hk, int64_t d, int64_t bs, int64_t maxb) {
  uint64_t v = (uint64_t)hr_dplan_bytes(b, hq, hk, bs, maxb), part = 0;
  hr_mul_u64((uint64_t)hr_dplan_ws_pairs_cap(b, hq, hk, bs, maxb) * (uint64_t)hq, ((uint64_t)d + 2u) * 4u, &part);
  hr_add_u64(v, part, &v);
  return v;
}

int hr_attention_decode_workspace_bytes(int64_t num_seqs, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                                        int64_t block_size, int64_t max_blocks_per_seq, uint64_t *bytes_out) {
  static const char *const CALL = "hr_attention_decode_workspace_bytes";
  hr_clear_error();
  HR_CHECK_PTR(bytes_out, CALL);
  *bytes_out = 0;
  int st = check_shapes(CALL, num_seqs, num_q_heads, num_kv_heads, head_dim, block_size, max_blocks_per_seq);
  if (st != HR_OK) return st;
  *bytes_out = workspace_bytes(num_seqs, num_q_heads, num_kv_heads, head_dim, block_size, max_blocks_per_seq);
  return HR_OK;
}

/* Planned pairs of a partition length: sum of ceil(L / part) over valid lengths (1 for others). */
static int64_t count_pairs(const int32_t *lens, int64_t b, int64_t max_ctx, int64_t part, int64_t *split_out) {
  int64_t pairs = 0, split = 0;
  for (int64_t s = 0; s < b; s++) {
    const int64_t L = lens[s];
    const int64_t n = (L >= 1 && L <= max_ctx) ? ceil_div(L, part) : 1;
    pairs += n;
    if (n > 1) split += n;
  }
  *split_out = split;
  return pairs;
}

typedef struct {
  int32_t tokens, seq, part;
} pair_t;

static int by_tokens_desc(const void *x, const void *y) {
  const pair_t *a = (const pair_t *)x, *b = (const pair_t *)y;
  if (a->tokens != b->tokens) return a->tokens > b->tokens ? -1 : 1;
  if (a->seq != b->seq) return a->seq < b->seq ? -1 : 1;
  return a->part < b->part ? -1 : (a->part > b->part);
}

int hr_attention_decode_plan(uint64_t dev, const int32_t *seq_lens, int64_t num_seqs, int64_t num_q_heads,
                             int64_t num_kv_heads, int64_t head_dim, int64_t block_size, int64_t max_blocks_per_seq,
                             int64_t dtype, int64_t kv_dtype, int64_t partition_size, uint64_t workspace,
                             uint64_t workspace_bytes_, int64_t *info_out) {
  static const char *const CALL = "hr_attention_decode_plan";
  hr_clear_error();
  hr_instance *inst = hr_instance_get(dev, CALL);
  if (!inst) return HR_E_INVALID;
  if (inst->graph_capture) return hr_graph_refuse(inst, CALL);
  HR_CHECK_PTR(seq_lens, CALL);
  const int64_t b = num_seqs, hq = num_q_heads, hk = num_kv_heads, d = head_dim, bs = block_size,
                maxb = max_blocks_per_seq;
  int st = check_shapes(CALL, b, hq, hk, d, bs, maxb);
  if (st != HR_OK) return st;
  if (dtype < HR_DTYPE_F32 || dtype > HR_DTYPE_BF16 || kv_dtype < HR_DTYPE_F32 || kv_dtype > HR_DTYPE_FP8_E5M2)
    return hr_fail(HR_E_INVALID, "%s: bad dtype %lld / kv_dtype %lld", CALL, (long long)dtype, (long long)kv_dtype);
  if (workspace == 0) return hr_fail(HR_E_INVALID, "%s: workspace must not be 0", CALL);
  const uint64_t need = workspace_bytes(b, hq, hk, d, bs, maxb);
  if (workspace_bytes_ < need)
    return hr_fail(HR_E_INVALID,
                   "%s: workspace of %llu bytes is too small: hr_attention_decode_workspace_bytes gives %llu for "
                   "num_seqs=%lld num_q_heads=%lld num_kv_heads=%lld head_dim=%lld",
                   CALL, (hr_ull)workspace_bytes_, (hr_ull)need, (long long)b, (long long)hq, (long long)hk,
                   (long long)d);
  const int64_t max_ctx = maxb * bs;
  if (partition_size < 0 || (partition_size > 0 && partition_size % bs != 0))
    return hr_fail(HR_E_INVALID,
                   "%s: partition_size must be 0 (choose) or a positive multiple of block_size=%lld "
                   "(got %lld)",
                   CALL, (long long)bs, (long long)partition_size);

  const int64_t per_pair = hk * hr_dplan_head_batches(hq, hk);
  const int64_t ws_cap = hr_dplan_ws_pairs_cap(b, hq, hk, bs, maxb);
  int64_t ctas = 0;
  st = hrb_attn_decode_ctas(inst, dtype, kv_dtype, d, &ctas);
  if (st != HR_OK) return st;
  if (ctas < 1) ctas = 1;

  int64_t longest = 1, total = 0;
  for (int64_t s = 0; s < b; s++) {
    const int64_t L = seq_lens[s];
    if (L >= 1 && L <= max_ctx) {
      if (L > longest) longest = L;
      total += L;
    }
  }
  int64_t part, split = 0;
  if (partition_size > 0) {
    part = partition_size;
    count_pairs(seq_lens, b, max_ctx, part, &split);
    if (split > ws_cap)
      return hr_fail(HR_E_INVALID,
                     "%s: partition_size=%lld splits into %lld (sequence, partition) pairs; the workspace holds %lld "
                     "(HR_DECODE_MAX_WORK / (num_kv_heads x head batches), and partitions of >= %lld tokens)",
                     CALL, (long long)part, (long long)split, (long long)ws_cap, (long long)hr_dplan_min_part(bs));
  } else {
    /* no split: every sequence in one partition (the whole context, so any valid length fits) */
    part = max_ctx;
    const int64_t avg = ceil_div(total * per_pair, ctas);
    int64_t best = (longest > avg ? longest : avg) + HR_DPLAN_OVERHEAD * ceil_div(b * per_pair, ctas);
    const int64_t min_part = hr_dplan_min_part(bs);
    for (int64_t cand = min_part; cand < longest; cand *= 2) {
      int64_t sp = 0;
      const int64_t pairs = count_pairs(seq_lens, b, max_ctx, cand, &sp);
      if (sp > ws_cap) continue;
      const int64_t cost = (cand > avg ? cand : avg) + HR_DPLAN_OVERHEAD * (ceil_div(pairs * per_pair, ctas) + 1);
      if (cost < best) {
        best = cost;
        part = cand;
        split = sp;
      }
    }
  }

  /* the pairs, longest first (the grid takes them in order: long ones start early) */
  int64_t sp_unused = 0;
  const int64_t pairs = count_pairs(seq_lens, b, max_ctx, part, &sp_unused);
  const int64_t words = hr_dplan_words(b, hq, hk, bs, maxb);
  int32_t *plan = (int32_t *)calloc((size_t)words, sizeof(int32_t));
  pair_t *list = (pair_t *)malloc((size_t)pairs * sizeof(pair_t));
  if (!plan || !list) {
    free(plan);
    free(list);
    return hr_fail(HR_E_OOM, "%s: no host memory for a plan of %lld pairs", CALL, (long long)pairs);
  }
  int32_t *seq_ws = plan + hr_dplan_seq_ws_at(b, hq, hk, bs, maxb),
          *seq_np = plan + hr_dplan_seq_nparts_at(b, hq, hk, bs, maxb);
  int64_t at = 0, ws_at = 0;
  for (int64_t s = 0; s < b; s++) {
    const int64_t L = seq_lens[s];
    const int64_t n = (L >= 1 && L <= max_ctx) ? ceil_div(L, part) : 1;
    seq_np[s] = (int32_t)n;
    seq_ws[s] = n > 1 ? (int32_t)ws_at : -1;
    if (n > 1) ws_at += n;
    for (int64_t p = 0; p < n; p++) {
      const int64_t t0 = p * part, t1 = (L >= 1 && L <= max_ctx) ? (t0 + part < L ? t0 + part : L) : 1;
      list[at++] = (pair_t){(int32_t)(t1 - t0), (int32_t)s, (int32_t)p};
    }
  }
  qsort(list, (size_t)pairs, sizeof(pair_t), by_tokens_desc);
  int32_t *pseq = plan + hr_dplan_pair_seq_at(), *ppart = plan + hr_dplan_pair_part_at(b, hq, hk, bs, maxb);
  for (int64_t i = 0; i < pairs; i++) {
    pseq[i] = list[i].seq;
    ppart[i] = list[i].part;
  }
  free(list);
  plan[HR_DPLAN_W_MAGIC] = HR_DPLAN_MAGIC;
  plan[HR_DPLAN_W_B] = (int32_t)b;
  plan[HR_DPLAN_W_HQ] = (int32_t)hq;
  plan[HR_DPLAN_W_HK] = (int32_t)hk;
  plan[HR_DPLAN_W_D] = (int32_t)d;
  plan[HR_DPLAN_W_BS] = (int32_t)bs;
  plan[HR_DPLAN_W_MAXB] = (int32_t)maxb;
  plan[HR_DPLAN_W_PART] = (int32_t)part;
  plan[HR_DPLAN_W_PAIRS] = (int32_t)pairs;
  plan[HR_DPLAN_W_WS_PAIRS] = (int32_t)ws_at;
  st = hr_memcpy_h2d_async(dev, workspace, plan, (uint64_t)words * 4u); /* queued: no wait */
  free(plan);
  if (st != HR_OK) return st;
  if (info_out) {
    info_out[HR_DPLAN_INFO_PARTITION] = part;
    info_out[HR_DPLAN_INFO_PAIRS] = pairs;
    info_out[HR_DPLAN_INFO_WS_PAIRS] = ws_at;
    info_out[HR_DPLAN_INFO_CTAS] = ctas;
  }
  return HR_OK;
}

int hr_dplan_check(const char *call, const int32_t *plan, const int32_t *seq_lens, int64_t b, int64_t hq, int64_t hk,
                   int64_t d, int64_t bs, int64_t maxb) {
  if (plan[HR_DPLAN_W_MAGIC] != HR_DPLAN_MAGIC)
    return hr_fail(HR_E_INVALID, "%s: the workspace holds no decode plan (call hr_attention_decode_plan first)", call);
  const int64_t want[] = {b, hq, hk, d, bs, maxb};
  static const char *const names[] = {"num_seqs", "num_q_heads", "num_kv_heads",
                                      "head_dim", "block_size",  "max_blocks_per_seq"};
  for (int i = 0; i < 6; i++)
    if (plan[HR_DPLAN_W_B + i] != want[i])
      return hr_fail(HR_E_INVALID, "%s: the decode plan was made for %s=%d, the op has %lld", call, names[i],
                     plan[HR_DPLAN_W_B + i], (long long)want[i]);
  const int64_t part = plan[HR_DPLAN_W_PART], max_ctx = maxb * bs;
  const int32_t *np = plan + hr_dplan_seq_nparts_at(b, hq, hk, bs, maxb);
  for (int64_t s = 0; s < b; s++) {
    const int64_t L = seq_lens[s];
    if (L < 1 || L > max_ctx) continue; /* the executor reports it */
    if (part < 1 || np[s] != ceil_div(L, part))
      return hr_fail(HR_E_INVALID,
                     "%s: stale decode plan: sequence %lld has seq_len %lld, the plan has %d partitions of %lld "
                     "tokens for it (plan again after staging seq_lens)",
                     call, (long long)s, (long long)L, np[s], (long long)part);
  }
  return HR_OK;
}
