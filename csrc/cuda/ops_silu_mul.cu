// SiLU-and-mul: out[r, i] = silu(gate[r, i]) * up[r, i], silu(g) = g / (1 + exp(-g)), fp32
// math. gate/up rows are in_stride elements apart (merged gate_up), out is dense [rows, inter].
// Blocks walk rows (grid-stride), threads walk the row.
#include "cuda_common.cuh"

template <typename T>
__global__ void __launch_bounds__(256)
    silu_mul_kernel(T *out, const T *gate, const T *up, int64_t rows, int64_t inter, int64_t stride) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *g = gate + r * stride, *u = up + r * stride;
    T *o = out + r * inter;
    for (int64_t i = threadIdx.x; i < inter; i += blockDim.x) {
      const float gv = hrc_to_f(g[i]);
      o[i] = hrc_from_f<T>(gv / (1.0f + expf(-gv)) * hrc_to_f(u[i]));
    }
  }
}

int hrc_exec_silu_mul(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_silu_mul";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  const int64_t rows = a[HR_A_SILU_ROWS], inter = a[HR_A_SILU_I];
  const int threads = inter >= 2048 ? 256 : 128;
  const unsigned grid = hrc_grid(rows, 1, 65535 * 16);
  HRC_DISPATCH(a[HR_A_SILU_DTYPE], {
    silu_mul_kernel<T>
        <<<grid, threads, 0, st->stream>>>(HR_PTR(a, HR_A_SILU_OUT, T), HR_PTR(a, HR_A_SILU_GATE, const T),
                                           HR_PTR(a, HR_A_SILU_UP, const T), rows, inter, a[HR_A_SILU_STRIDE]);
    return hrc_launched(CALL, "silu_mul_kernel");
  });
}
