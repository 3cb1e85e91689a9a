// RMSNorm with the optional fused residual add (x += residual, written back into x first),
// then out = x * 1/sqrt(mean(x^2) + eps) * weight. Rows may be grouped (hr_op_rms_norm_strided:
// per-head q/k norms inside a fused QKV output). One block per row (grid-stride over rows),
// fp32 accumulation. For fp16/bf16 the sum is rounded to the storage type when written back,
// and the norm uses that stored value (what a later read of x sees). out may equal x: each
// element is read and written by the same thread.
#include "cuda_common.cuh"

template <typename T>
__global__ void __launch_bounds__(256)
    rms_norm_kernel(T *out, T *x, const T *__restrict__ residual, const T *__restrict__ weight, int64_t rows,
                    int64_t dim, float eps, int64_t group, int64_t group_stride) {
  __shared__ float red[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    // row r of group r / group (grouped rows: per-head norms inside a fused QKV; else r * dim)
    const int64_t at = (r / group) * group_stride + (r % group) * dim;
    T *xr = x + at;
    float ss = 0.0f;
    if (residual) {
      const T *rr = residual + at;
      for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
        const T s = hrc_from_f<T>(hrc_to_f(xr[i]) + hrc_to_f(rr[i]));
        xr[i] = s;
        const float v = hrc_to_f(s);
        ss += v * v;
      }
    } else {
      for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
        const float v = hrc_to_f(xr[i]);
        ss += v * v;
      }
    }
    const float total = hrc_block_sum(ss, red);
    const float inv = 1.0f / sqrtf(total / (float)dim + eps);
    T *o = out + at;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
      o[i] = hrc_from_f<T>(hrc_to_f(xr[i]) * inv * hrc_to_f(weight[i]));
  }
}

int hrc_exec_rms_norm(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_rms_norm";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  const int64_t rows = a[HR_A_RMS_ROWS], dim = a[HR_A_RMS_DIM];
  const float eps = (float)hr_bits_f64(a[HR_A_RMS_EPS]);
  const int threads = dim >= 2048 ? 256 : dim >= 512 ? 128 : 64;
  const unsigned grid = hrc_grid(rows, 1, 65535 * 16);
  HRC_DISPATCH(a[HR_A_RMS_DTYPE], {
    rms_norm_kernel<T><<<grid, threads, 0, st->stream>>>(
        HR_PTR(a, HR_A_RMS_OUT, T), HR_PTR(a, HR_A_RMS_X, T), HR_PTR(a, HR_A_RMS_RES, const T),
        HR_PTR(a, HR_A_RMS_W, const T), rows, dim, eps, a[HR_A_RMS_GROUP], a[HR_A_RMS_GSTRIDE]);
    return hrc_launched(CALL, "rms_norm_kernel");
  });
}
