/*
 * CPU executor of hr_op_sample / hr_op_argmax: the reference of the rule stated in headroom.h
 * ("sampling"). Rows run in parallel on the thread pool; each row is sequential:
 *   1. keys (order-preserving uint32 of the logits) and the argmax (lowest id of the max key);
 *   2. top-k: radix select (4 passes of 8-bit count histograms) of the k-th key K_k; the
 *      survivors are the keys > K_k plus the first n_k tokens (ascending id) with key == K_k;
 *   3. integer weights q_i of the tokens with key >= K_k (csrc/core/sample_rule.h:
 *      bit-identical to the CUDA kernel; the others are never read);
 *   4. top-p: the same radix select weighted by q (exact uint64 sums) over the top-k survivors:
 *      the cut key K_p and the number n_p of its ties kept;
 *   5. the draw: ascending token ids, running sum of the survivors' q, first one > r.
 * Scratch per thread: vocab * (4 + 8) bytes (keys and weights).
 */
#include <stdint.h>

#include "../core/ops_dispatch.h"
#include "../core/sample_rule.h"
#include "../core/status.h"
#include "threadpool.h"

typedef struct {
  const int64_t *a;
} sample_ctx;

static inline uint32_t mask_above(int shift) { return shift >= 24 ? 0u : ~((1u << (shift + 8)) - 1u); }

/* Largest key t with count(key >= t) >= k (1 <= k <= V); *ties_out = k - count(key > t). */
static uint32_t select_kth(const uint32_t *key, int64_t v, uint64_t k, uint64_t *ties_out) {
  uint32_t prefix = 0;
  uint64_t rem = k;
  for (int shift = 24; shift >= 0; shift -= 8) {
    uint64_t hist[256] = {0};
    const uint32_t hm = mask_above(shift);
    for (int64_t i = 0; i < v; i++)
      if ((key[i] & hm) == prefix) hist[(key[i] >> shift) & 255u]++;
    uint64_t acc = 0;
    int b = 255;
    for (; b > 0; b--) {
      if (acc + hist[b] >= rem) break;
      acc += hist[b];
    }
    rem -= acc; /* tokens of higher bins are all kept */
    prefix |= (uint32_t)b << shift;
  }
  *ties_out = rem;
  return prefix;
}

/*
 * Largest key t >= kk with M(t) >= target, M(t) = sum of q over the top-k survivors with key >=
 * t (the tokens with key == kk contribute nk * q(kk) in all; keys < kk nothing).
 * *mass_gt_out = M over keys > t.
 */
static uint32_t select_mass(const uint32_t *key, const uint64_t *q, int64_t v, uint32_t kk, uint64_t nk_mass,
                            uint64_t target, uint64_t *mass_gt_out) {
  uint32_t prefix = 0;
  uint64_t need = target, gt = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    uint64_t hist[256] = {0};
    const uint32_t hm = mask_above(shift);
    for (int64_t i = 0; i < v; i++)
      if (key[i] > kk && (key[i] & hm) == prefix) hist[(key[i] >> shift) & 255u] += q[i];
    if ((kk & hm) == prefix) hist[(kk >> shift) & 255u] += nk_mass;
    uint64_t acc = 0;
    int b = 255;
    for (; b > 0; b--) {
      if (acc + hist[b] >= need) break;
      acc += hist[b];
    }
    need -= acc;
    gt += acc;
    prefix |= (uint32_t)b << shift;
  }
  *mass_gt_out = gt;
  return prefix;
}

static int32_t sample_row(const float *l, int64_t v, float temp, int32_t top_k, float top_p, float u, uint32_t *key,
                          uint64_t *q) {
  uint32_t kmax = 0;
  int64_t amax = 0;
  for (int64_t i = 0; i < v; i++) {
    key[i] = hr_sr_key(l[i]);
    if (key[i] > kmax) {
      kmax = key[i];
      amax = i;
    }
  }
  if (!(temp >= HR_SAMPLE_GREEDY_T) || kmax == HR_SR_KEY_NEG_INF || kmax == HR_SR_KEY_POS_INF) return (int32_t)amax;
  const float m = hr_sr_unkey(kmax), inv_t = hr_sr_inv_t(temp);

  /* top-k: K = 0, n = 0 when off (key 0 never occurs: every token has key > 0) */
  uint32_t kk = 0;
  uint64_t nk = 0;
  const int64_t k = hr_sr_top_k(top_k, v);
  if (k > 0) kk = select_kth(key, v, (uint64_t)k, &nk);
  const uint64_t qk = hr_sr_weight_key(kk, m, inv_t);
  /* weights of the tokens that can survive top-k (key >= K); every later step reads q only
   * for those, so the exp is skipped for the rest (most of the row when top-k is on) */
  for (int64_t i = 0; i < v; i++) q[i] = key[i] >= kk ? hr_sr_weight(l[i], m, inv_t) : 0;

  uint32_t kp = kk;
  uint64_t np = nk;
  if (hr_sr_top_p_on(top_p)) {
    uint64_t total_k = nk * qk;
    for (int64_t i = 0; i < v; i++)
      if (key[i] > kk) total_k += q[i];
    const uint64_t target = hr_sr_top_p_target(top_p, total_k);
    uint64_t gt = 0;
    kp = select_mass(key, q, v, kk, nk * qk, target, &gt);
    const uint64_t qp = hr_sr_weight_key(kp, m, inv_t);
    np = qp ? (target - gt + qp - 1) / qp : UINT64_MAX;
    if (kp == kk && np > nk) np = nk;
  }

  /* the draw over the survivors in ascending id */
  uint64_t total = 0, ties = 0;
  for (int64_t i = 0; i < v; i++)
    if (key[i] > kp || (key[i] == kp && ties++ < np)) total += q[i];
  const uint64_t r = hr_sr_draw(u, total);
  uint64_t acc = 0;
  ties = 0;
  for (int64_t i = 0; i < v; i++)
    if (key[i] > kp || (key[i] == kp && ties++ < np)) {
      acc += q[i];
      if (acc > r) return (int32_t)i;
    }
  return (int32_t)amax; /* not reached: the top token survives with q = 2^40 */
}

static void sample_task(void *vctx, int64_t row, int thread, void *scratch) {
  (void)thread;
  const int64_t *a = ((sample_ctx *)vctx)->a;
  const int64_t v = a[HR_A_SMP_V];
  const float *logits = HR_PTR(a, HR_A_SMP_LOGITS, const float) + row * v;
  int32_t *out = HR_PTR(a, HR_A_SMP_OUT, int32_t);
  const float *temp = HR_PTR(a, HR_A_SMP_TEMP, const float);
  uint64_t *q = (uint64_t *)scratch;
  uint32_t *key = (uint32_t *)(q + v);
  if (!temp) {
    out[row] = sample_row(logits, v, 0.0f, 0, 1.0f, 0.0f, key, q);
    return;
  }
  out[row] = sample_row(logits, v, temp[row], HR_PTR(a, HR_A_SMP_TOPK, const int32_t)[row],
                        HR_PTR(a, HR_A_SMP_TOPP, const float)[row], HR_PTR(a, HR_A_SMP_U, const float)[row], key, q);
}

int hr_cpu_exec_sample(hr_instance *inst, const int64_t *a) {
  (void)inst;
  sample_ctx c = {.a = a};
  return hrt_parallel(a[HR_A_SMP_ROWS], (size_t)a[HR_A_SMP_V] * (sizeof(uint64_t) + sizeof(uint32_t)), sample_task, &c);
}
