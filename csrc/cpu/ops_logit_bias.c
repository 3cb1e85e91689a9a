/*
 * CPU executor of hr_op_add_logit_bias (headroom.h "logit bias"): the reference of the op.
 * Sequential over the entries: they are few (a fixed staging buffer of a few thousand at most,
 * most of them padding with row -1), so a thread pool would cost more than it saves.
 * The sum is rounded to double, then to float: (float)((double)l + bias), as the engine's
 * host sampler computes `l + b` in JavaScript and stores it into a Float32Array.
 */
#include <stdint.h>

#include "../core/ops_dispatch.h"

_Static_assert(sizeof(hr_logit_bias_entry) == 16, "hr_logit_bias_entry is a packed 16-byte record");

int hr_cpu_exec_logit_bias(hr_instance *inst, const int64_t *a) {
  (void)inst;
  float *logits = HR_PTR(a, HR_A_LB_LOGITS, float);
  const hr_logit_bias_entry *e = HR_PTR(a, HR_A_LB_ENTRIES, const hr_logit_bias_entry);
  const int64_t rows = a[HR_A_LB_LROWS], n = a[HR_A_LB_N_ENTRIES], v = a[HR_A_LB_V];
  for (int64_t i = 0; i < n; i++) {
    const int64_t row = e[i].row, tok = e[i].token;
    if (row < 0 || row >= rows || tok < 0 || tok >= v) continue; /* padding */
    float *l = logits + row * v + tok;
    *l = (float)((double)*l + e[i].bias);
  }
  return HR_OK;
}
