// hr_op_add_logit_bias (headroom.h "logit bias"; the CPU executor csrc/cpu/ops_logit_bias.c is
// the reference): one thread per entry adds its bias to one logit. The (row, token) pairs
// are distinct (the caller's contract), so there is no race. The sum is rounded to double
// and then to float (__dadd_rn, then a round-to-nearest conversion), exactly as the CPU
// executor and the engine's JavaScript sampler compute it, so the logits are bit-identical.
// Entries are read on the device, so the op sits in a captured graph with the entries staged
// per replay (padding entries have row -1).
#include "cuda_common.cuh"

static_assert(sizeof(hr_logit_bias_entry) == 16, "hr_logit_bias_entry is a packed 16-byte record");

__global__ void __launch_bounds__(256)
    logit_bias_kernel(float *logits, int64_t logits_rows, const hr_logit_bias_entry *e, int64_t n, int64_t vocab) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t row = e[i].row, tok = e[i].token;
  if (row < 0 || row >= logits_rows || tok < 0 || tok >= vocab) return; // padding
  float *l = logits + row * vocab + tok;
  *l = __double2float_rn(__dadd_rn((double)*l, e[i].bias));
}

int hrc_exec_logit_bias(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_add_logit_bias";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  const int64_t n = a[HR_A_LB_N_ENTRIES];
  const unsigned threads = 256;
  const int64_t blocks = (n + threads - 1) / threads;
  if (blocks > 0x7fffffff) return hr_fail(HR_E_INVALID, "%s: n (%lld) is too large", CALL, (long long)n);
  logit_bias_kernel<<<(unsigned)blocks, threads, 0, st->stream>>>(HR_PTR(a, HR_A_LB_LOGITS, float), a[HR_A_LB_LROWS],
                                                                  HR_PTR(a, HR_A_LB_ENTRIES, const hr_logit_bias_entry),
                                                                  n, a[HR_A_LB_V]);
  return hrc_launched(CALL, "logit_bias_kernel");
}
