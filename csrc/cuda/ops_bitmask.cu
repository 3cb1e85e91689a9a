// hr_op_apply_token_bitmask (structured outputs): logits of tokens whose bit is clear become
// -inf. Grid (word blocks, bitmask rows); one thread per 32-bit word writes its 32 logits, so
// an allowed-everything word costs one load. Row indices are read on the device, so the op can
// sit in a captured graph with the mask and indices staged per replay.
#include <math.h>

#include "cuda_common.cuh"

__global__ void __launch_bounds__(256) token_bitmask_kernel(float *logits, int64_t logits_rows, const uint32_t *mask,
                                                            const int32_t *idx, int64_t vocab, int64_t words) {
  const int64_t r = blockIdx.y;
  const int64_t row = idx ? (int64_t)idx[r] : r;
  if (row < 0 || row >= logits_rows) return;
  const uint32_t *m = mask + r * words;
  float *l = logits + row * vocab;
  for (int64_t w = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; w < words; w += (int64_t)gridDim.x * blockDim.x) {
    const uint32_t bits = m[w];
    if (bits == 0xffffffffu) continue;
    const int64_t base = w * 32, end = base + 32 < vocab ? base + 32 : vocab;
    for (int64_t t = base; t < end; t++)
      if (!((bits >> (t - base)) & 1u)) l[t] = -INFINITY;
  }
}

int hrc_exec_token_bitmask(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_apply_token_bitmask";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  const int64_t rows = a[HR_A_TBM_ROWS], vocab = a[HR_A_TBM_V], words = (vocab + 31) / 32;
  if (rows > 65535) return hr_fail(HR_E_INVALID, "%s: rows (%lld) > 65535", CALL, (long long)rows);
  const unsigned threads = 256;
  const unsigned gx = (unsigned)((words + threads - 1) / threads);
  token_bitmask_kernel<<<dim3(gx, (unsigned)rows), threads, 0, st->stream>>>(
      HR_PTR(a, HR_A_TBM_LOGITS, float), a[HR_A_TBM_LROWS], HR_PTR(a, HR_A_TBM_MASK, const uint32_t),
      HR_PTR(a, HR_A_TBM_IDX, const int32_t), vocab, words);
  return hrc_launched(CALL, "token_bitmask_kernel");
}
