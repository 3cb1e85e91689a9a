// Matmul and logits through cuBLAS (csrc/cuda/blas.cu; row-major mapping explained there).
//   matmul: y[m, n] = x[m, k] . w[n, k]^T (+ bias[n]); y has the input dtype.
//   logits: the selected rows x[row_ids[r], :] are first gathered into a temporary buffer
//           (from the instance's caching allocator, freed in stream order), then
//           logits[r, :] = gathered . w^T in float32 (cuBLAS A/B fp16/bf16/fp32, C fp32).
// Bias: y is first filled with bias broadcast over rows, then the GEMM accumulates (beta 1).
#include "cuda_common.cuh"

extern "C" {
#include "../core/allocator.h"
}

int hrc_gather_rows(const char *call, cudaStream_t stream, int64_t dtype, uint64_t out, uint64_t table, uint64_t ids,
                    int64_t num_tokens, int64_t num_rows, int64_t dim);

template <typename T>
__global__ void __launch_bounds__(256)
    fill_bias_kernel(T *__restrict__ y, const T *__restrict__ bias, int64_t m, int64_t n) {
  for (int64_t r = blockIdx.x; r < m; r += gridDim.x)
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) y[r * n + j] = bias[j];
}

int hrc_exec_matmul_q(hr_instance *inst, hrc_state *st, const int64_t *a); // ops_matmul_q.cu

// y[r, :] = bias for r < m (queued on `stream`); the GEMM then accumulates onto it.
int hrc_fill_bias(const char *call, cudaStream_t stream, int64_t dtype, uint64_t y, uint64_t bias, int64_t m,
                  int64_t n) {
  const unsigned grid = hrc_grid(m, 1, 65535 * 16);
  HRC_DISPATCH(dtype, {
    fill_bias_kernel<T><<<grid, 256, 0, stream>>>((T *)y, (const T *)bias, m, n);
    return hrc_launched(call, "fill_bias_kernel");
  });
}

int hrc_exec_matmul(hr_instance *inst, const int64_t *a) {
  const bool logits = a[HR_A_MM_ROWS] != 0;
  const char *CALL = logits ? "hr_op_logits" : "hr_op_matmul";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  const int64_t dtype = a[HR_A_MM_DTYPE], m = a[HR_A_MM_M], n = a[HR_A_MM_N], k = a[HR_A_MM_K];
  if (a[HR_A_MM_WTYPE] != dtype) return hrc_exec_matmul_q(inst, st, a);
  const uint64_t y = (uint64_t)a[HR_A_MM_Y], w = (uint64_t)a[HR_A_MM_W], bias = (uint64_t)a[HR_A_MM_BIAS];
  uint64_t x = (uint64_t)a[HR_A_MM_X];
  // cuBLAS first: a missing cuBLAS must fail before anything is queued.
  s = hrc_blas_ready(st, CALL, 0);
  if (s != HR_OK) return s;
  uint64_t tmp = 0;
  if (logits) {
    s = hr_allocator_malloc(inst->alloc, (uint64_t)(m * k * hrc_dtype_size(dtype)), &tmp);
    if (s != HR_OK) return s;
    s = hrc_gather_rows(CALL, st->stream, dtype, tmp, x, (uint64_t)a[HR_A_MM_ROWS], m, a[HR_A_MM_XROWS], k);
    if (s != HR_OK) {
      hr_allocator_free(inst->alloc, tmp);
      return s;
    }
    x = tmp;
  }
  const int64_t ydtype = logits ? HR_DTYPE_F32 : dtype;
  if (bias && !logits) {
    s = hrc_fill_bias(CALL, st->stream, dtype, y, bias, m, n);
    if (s != HR_OK) return s;
  }
  s = hrc_gemm(st, CALL, dtype, ydtype, y, x, w, m, n, k, bias && !logits);
  // Stream-ordered reuse: the block may be handed out again at once, but everything that can
  // touch it later is queued behind this GEMM on the same stream (or on the legacy stream,
  // which waits for it).
  if (tmp) hr_allocator_free(inst->alloc, tmp);
  return s;
}
