// GELU(tanh)-and-mul (Gemma's GeGLU): out[r, i] = gelu_tanh(gate[r, i]) * up[r, i], fp32 math,
// gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) as HF's gelu_pytorch_tanh.
// Layout and launch as silu_mul: blocks walk rows (grid-stride), threads walk the row.
#include "cuda_common.cuh"

template <typename T>
__global__ void __launch_bounds__(256)
    gelu_tanh_mul_kernel(T *out, const T *gate, const T *up, int64_t rows, int64_t inter, int64_t stride) {
  const float k0 = 0.7978845608028654f; // sqrt(2 / pi)
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *g = gate + r * stride, *u = up + r * stride;
    T *o = out + r * inter;
    for (int64_t i = threadIdx.x; i < inter; i += blockDim.x) {
      const float x = hrc_to_f(g[i]);
      o[i] = hrc_from_f<T>(0.5f * x * (1.0f + tanhf(k0 * (x + 0.044715f * x * x * x))) * hrc_to_f(u[i]));
    }
  }
}

int hrc_exec_gelu_mul(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_gelu_tanh_mul";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  const int64_t rows = a[HR_A_SILU_ROWS], inter = a[HR_A_SILU_I];
  const int threads = inter >= 2048 ? 256 : 128;
  const unsigned grid = hrc_grid(rows, 1, 65535 * 16);
  HRC_DISPATCH(a[HR_A_SILU_DTYPE], {
    gelu_tanh_mul_kernel<T>
        <<<grid, threads, 0, st->stream>>>(HR_PTR(a, HR_A_SILU_OUT, T), HR_PTR(a, HR_A_SILU_GATE, const T),
                                           HR_PTR(a, HR_A_SILU_UP, const T), rows, inter, a[HR_A_SILU_STRIDE]);
    return hrc_launched(CALL, "gelu_tanh_mul_kernel");
  });
}
