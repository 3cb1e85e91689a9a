// Embedding / row gather: out[t, :] = table[ids[t], :]. One block per row (grid-stride),
// 16-byte copies when rows and pointers allow. An id outside [0, num_rows) writes a NaN row.
// Also used by logits to gather the selected hidden rows before the GEMM.
#include "cuda_common.cuh"

template <typename T, bool VEC>
__global__ void __launch_bounds__(256)
    gather_rows_kernel(T *__restrict__ out, const T *__restrict__ table, const int32_t *__restrict__ ids,
                       int64_t num_tokens, int64_t num_rows, int64_t dim) {
  for (int64_t t = blockIdx.x; t < num_tokens; t += gridDim.x) {
    const int32_t id = ids[t];
    T *o = out + t * dim;
    if (id < 0 || id >= num_rows) {
      for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) o[i] = hrc_nan<T>();
      continue;
    }
    const T *src = table + (int64_t)id * dim;
    if (VEC) {
      const int64_t n16 = dim * (int64_t)sizeof(T) / 16;
      const uint4 *s4 = reinterpret_cast<const uint4 *>(src);
      uint4 *o4 = reinterpret_cast<uint4 *>(o);
      for (int64_t i = threadIdx.x; i < n16; i += blockDim.x) o4[i] = s4[i];
    } else {
      for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) o[i] = src[i];
    }
  }
}

// Queues the gather on `stream` (used by embedding and logits).
int hrc_gather_rows(const char *call, cudaStream_t stream, int64_t dtype, uint64_t out, uint64_t table, uint64_t ids,
                    int64_t num_tokens, int64_t num_rows, int64_t dim) {
  const int64_t esz = hrc_dtype_size(dtype);
  const bool vec = (dim * esz) % 16 == 0 && out % 16 == 0 && table % 16 == 0;
  const unsigned grid = hrc_grid(num_tokens, 1, 65535 * 16);
  const int threads = dim * esz >= 4096 ? 256 : 128;
  HRC_DISPATCH(dtype, {
    if (vec)
      gather_rows_kernel<T, true>
          <<<grid, threads, 0, stream>>>((T *)out, (const T *)table, (const int32_t *)ids, num_tokens, num_rows, dim);
    else
      gather_rows_kernel<T, false>
          <<<grid, threads, 0, stream>>>((T *)out, (const T *)table, (const int32_t *)ids, num_tokens, num_rows, dim);
    return hrc_launched(call, "gather_rows_kernel");
  });
}

int hrc_exec_embedding_q(hr_instance *inst, hrc_state *st, const int64_t *a); // ops_matmul_q.cu

int hrc_exec_embedding(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_embedding";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  if (a[HR_A_EMB_WTYPE] != a[HR_A_EMB_DTYPE]) return hrc_exec_embedding_q(inst, st, a);
  return hrc_gather_rows(CALL, st->stream, a[HR_A_EMB_DTYPE], (uint64_t)a[HR_A_EMB_OUT], (uint64_t)a[HR_A_EMB_TABLE],
                         (uint64_t)a[HR_A_EMB_IDS], a[HR_A_EMB_T], a[HR_A_EMB_ROWS], a[HR_A_EMB_DIM]);
}
