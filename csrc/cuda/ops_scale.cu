// hr_op_scale / hr_op_softcap in place: x = x * scale, or x = cap * tanh(x * scale / cap) when
// cap > 0 (Gemma's embedding scale, Gemma 2's final logit soft-capping), fp32 math.
#include "cuda_common.cuh"

template <typename T>
__global__ void __launch_bounds__(256) scale_kernel(T *x, int64_t n, float scale, float cap) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float v = hrc_to_f(x[i]) * scale;
    x[i] = hrc_from_f<T>(cap > 0.0f ? cap * tanhf(v / cap) : v);
  }
}

int hrc_exec_scale(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_scale";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  const int64_t n = a[HR_A_SCL_N_ELEMS];
  const float scale = (float)hr_bits_f64(a[HR_A_SCL_SCALE]), cap = (float)hr_bits_f64(a[HR_A_SCL_CAP]);
  const unsigned grid = hrc_grid((n + 255) / 256, 1, 65535 * 16);
  HRC_DISPATCH(a[HR_A_SCL_DTYPE], {
    scale_kernel<T><<<grid, 256, 0, st->stream>>>(HR_PTR(a, HR_A_SCL_X, T), n, scale, cap);
    return hrc_launched(CALL, "scale_kernel");
  });
}
