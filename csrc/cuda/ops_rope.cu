// Rotary embedding in place on q [T, Hq, D] and k [T, Hk, D] (row strides q_stride/k_stride).
// One block per token (grid-stride), one thread per rotated pair: the angle
// positions[t] * inv_freq[i] and its cos/sin are computed once in double (as the CPU backend
// does: long positions keep full fp32 accuracy), then applied to every head.
// NEOX pairs (i, i + rot/2); GPT-J pairs (2i, 2i + 1). A negative position writes NaN into
// the rotated dims of that token.
#include "cuda_common.cuh"

template <typename T, bool GPTJ>
__device__ __forceinline__ void rotate(T *h, int64_t i, int64_t half, float cs, float sn) {
  const int64_t a = GPTJ ? 2 * i : i, b = GPTJ ? 2 * i + 1 : i + half;
  const float x0 = hrc_to_f(h[a]), x1 = hrc_to_f(h[b]);
  h[a] = hrc_from_f<T>(x0 * cs - x1 * sn);
  h[b] = hrc_from_f<T>(x1 * cs + x0 * sn);
}

template <typename T, bool GPTJ>
__global__ void __launch_bounds__(128)
    rope_kernel(T *q, T *k, const int32_t *__restrict__ positions, const float *__restrict__ inv_freq,
                int64_t num_tokens, int64_t hq, int64_t hk, int64_t d, int64_t rot, int64_t qs, int64_t ks) {
  const int64_t half = rot / 2;
  for (int64_t t = blockIdx.x; t < num_tokens; t += gridDim.x) {
    const int32_t pos = positions[t];
    for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
      float cs, sn;
      if (pos >= 0) {
        double s, c;
        sincos((double)pos * (double)inv_freq[i], &s, &c);
        cs = (float)c;
        sn = (float)s;
      } else {
        cs = sn = __int_as_float(0x7fc00000);
      }
      for (int64_t h = 0; h < hq; h++) rotate<T, GPTJ>(q + t * qs + h * d, i, half, cs, sn);
      if (k)
        for (int64_t h = 0; h < hk; h++) rotate<T, GPTJ>(k + t * ks + h * d, i, half, cs, sn);
    }
  }
}

int hrc_exec_rope(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_rope";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  const int64_t T_ = a[HR_A_ROPE_T], half = a[HR_A_ROPE_ROT] / 2;
  const int threads = half >= 128 ? 128 : (int)((half + 31) / 32 * 32);
  const unsigned grid = hrc_grid(T_, 1, 65535 * 16);
  const bool gptj = a[HR_A_ROPE_LAYOUT] == HR_ROPE_GPTJ;
  HRC_DISPATCH(a[HR_A_ROPE_DTYPE], {
    auto kern = gptj ? rope_kernel<T, true> : rope_kernel<T, false>;
    kern<<<grid, threads, 0, st->stream>>>(
        HR_PTR(a, HR_A_ROPE_Q, T), HR_PTR(a, HR_A_ROPE_K, T), HR_PTR(a, HR_A_ROPE_POS, const int32_t),
        HR_PTR(a, HR_A_ROPE_INVF, const float), T_, a[HR_A_ROPE_HQ], a[HR_A_ROPE_HK], a[HR_A_ROPE_D], a[HR_A_ROPE_ROT],
        a[HR_A_ROPE_QSTRIDE], a[HR_A_ROPE_KSTRIDE]);
    return hrc_launched(CALL, "rope_kernel");
  });
}
