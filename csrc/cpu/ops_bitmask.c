/*
 * CPU executor of hr_op_apply_token_bitmask (structured outputs): a disallowed token's logit
 * becomes -inf. One task per bitmask row on the thread pool; a row walks 32-token words and
 * skips words that allow everything (the common case early in a JSON value is a sparse mask,
 * late in a string a dense one, so both paths stay O(vocab / 32) word reads).
 */
#include <math.h>
#include <stdint.h>

#include "../core/ops_dispatch.h"
#include "threadpool.h"

typedef struct {
  const int64_t *a;
} bitmask_ctx;

static void bitmask_task(void *vctx, int64_t r, int thread, void *scratch) {
  (void)thread;
  (void)scratch;
  const int64_t *a = ((bitmask_ctx *)vctx)->a;
  const int64_t v = a[HR_A_TBM_V], words = (v + 31) / 32;
  const int32_t *idx = HR_PTR(a, HR_A_TBM_IDX, const int32_t);
  const int64_t row = idx ? (int64_t)idx[r] : r;
  if (row < 0 || row >= a[HR_A_TBM_LROWS]) return; /* padding row */
  const uint32_t *m = HR_PTR(a, HR_A_TBM_MASK, const uint32_t) + r * words;
  float *l = HR_PTR(a, HR_A_TBM_LOGITS, float) + row * v;
  for (int64_t w = 0; w < words; w++) {
    const uint32_t bits = m[w];
    if (bits == 0xffffffffu) continue;
    const int64_t base = w * 32, end = base + 32 < v ? base + 32 : v;
    for (int64_t t = base; t < end; t++)
      if (!((bits >> (t - base)) & 1u)) l[t] = -INFINITY;
  }
}

int hr_cpu_exec_token_bitmask(hr_instance *inst, const int64_t *a) {
  (void)inst;
  bitmask_ctx c = {.a = a};
  return hrt_parallel(a[HR_A_TBM_ROWS], 0, bitmask_task, &c);
}
