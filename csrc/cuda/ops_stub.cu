// Placeholder CUDA executors for the ops seam (csrc/core/ops_dispatch.h): every op kind is
// NULL, so hr_ops_submit answers HR_E_UNSUPPORTED naming the op and the backend. The CUDA
// backend issue replaces this file with real kernels behind the same table.
extern "C" {
#include "../core/ops_dispatch.h"

const hr_op_exec_fn hrb_op_executors[HR_OPK_COUNT] = {};

// CPU worker threads do not apply to the CUDA backend.
int hrb_ops_set_num_threads(int64_t n) {
  (void)n;
  return HR_OK;
}
int64_t hrb_ops_get_num_threads(void) { return 1; }
}
