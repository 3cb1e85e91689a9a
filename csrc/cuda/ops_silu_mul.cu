// SiLU-and-mul: out[r, i] = silu(gate[r, i]) * up[r, i], silu(g) = g / (1 + exp(-g)), fp32
// math. gate/up rows are in_stride elements apart (merged gate_up), out is dense [rows, inter].
// Blocks walk rows (grid-stride), threads walk the row.
#include "cuda_common.cuh"

// GeGLU (Gemma) shares the layout: out = gelu_tanh(gate) * up, gelu_tanh as HF's gelu_pytorch_tanh.
enum class GatedAct { Silu, GeluTanh };

template <GatedAct A>
__device__ __forceinline__ float gated_act(float g) {
  if (A == GatedAct::Silu) return g / (1.0f + expf(-g));
  const float k0 = 0.7978845608028654f; // sqrt(2 / pi)
  return 0.5f * g * (1.0f + tanhf(k0 * (g + 0.044715f * g * g * g)));
}

template <typename T, GatedAct A>
__global__ void __launch_bounds__(256)
    gated_mul_kernel(T *out, const T *gate, const T *up, int64_t rows, int64_t inter, int64_t stride) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *g = gate + r * stride, *u = up + r * stride;
    T *o = out + r * inter;
    for (int64_t i = threadIdx.x; i < inter; i += blockDim.x)
      o[i] = hrc_from_f<T>(gated_act<A>(hrc_to_f(g[i])) * hrc_to_f(u[i]));
  }
}

template <GatedAct A>
static int launch_gated_mul(hr_instance *inst, const int64_t *a, const char *call) {
  hrc_state *st = NULL;
  int s = hrc_begin(inst, call, &st);
  if (s != HR_OK) return s;
  const int64_t rows = a[HR_A_SILU_ROWS], inter = a[HR_A_SILU_I];
  const int threads = inter >= 2048 ? 256 : 128;
  const unsigned grid = hrc_grid(rows, 1, 65535 * 16);
  HRC_DISPATCH(a[HR_A_SILU_DTYPE], {
    gated_mul_kernel<T, A>
        <<<grid, threads, 0, st->stream>>>(HR_PTR(a, HR_A_SILU_OUT, T), HR_PTR(a, HR_A_SILU_GATE, const T),
                                           HR_PTR(a, HR_A_SILU_UP, const T), rows, inter, a[HR_A_SILU_STRIDE]);
    return hrc_launched(call, "gated_mul_kernel");
  });
}

int hrc_exec_silu_mul(hr_instance *inst, const int64_t *a) {
  return launch_gated_mul<GatedAct::Silu>(inst, a, "hr_op_silu_mul");
}

int hrc_exec_gelu_mul(hr_instance *inst, const int64_t *a) {
  return launch_gated_mul<GatedAct::GeluTanh>(inst, a, "hr_op_gelu_tanh_mul");
}
