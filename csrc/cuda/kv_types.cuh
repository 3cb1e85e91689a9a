// KV cache element types (headroom.h "KV cache dtype"): f32, f16, bf16 and OCP fp8 E4M3/E5M2.
// kv_write stores value / scale rounded to nearest even in the cache type (fp8 saturates to
// the finite max, NaN stays NaN: cuda_fp8.h's __NV_SATFINITE conversions); attention reads
// cache * scale. Shared by ops_kv_write.cu and both attention kernels.
#ifndef HR_CUDA_KV_TYPES_CUH
#define HR_CUDA_KV_TYPES_CUH

#include <cuda_fp8.h>

#include "cuda_common.cuh"

__device__ __forceinline__ float hrc_to_f(__nv_fp8_e4m3 v) { return static_cast<float>(v); }
__device__ __forceinline__ float hrc_to_f(__nv_fp8_e5m2 v) { return static_cast<float>(v); }

// value (already divided by the scale) in the cache type, RNE; fp8 saturating.
template <typename KV>
__device__ __forceinline__ KV hrc_kv_from_f(float v) {
  return hrc_from_f<KV>(v);
}
template <>
__device__ __forceinline__ __nv_fp8_e4m3 hrc_kv_from_f<__nv_fp8_e4m3>(float v) {
  __nv_fp8_e4m3 r;
  r.__x = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
  return r;
}
template <>
__device__ __forceinline__ __nv_fp8_e5m2 hrc_kv_from_f<__nv_fp8_e5m2>(float v) {
  __nv_fp8_e5m2 r;
  r.__x = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E5M2);
  return r;
}

// 8 consecutive cache elements at p (aligned to 8 * sizeof(KV)) as floats.
__device__ __forceinline__ void hrc_kv8(const float *p, float (&f)[8]) {
  const float4 a = reinterpret_cast<const float4 *>(p)[0], b = reinterpret_cast<const float4 *>(p)[1];
  f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}
__device__ __forceinline__ void hrc_kv8(const __half *p, float (&f)[8]) {
  const uint4 r = *reinterpret_cast<const uint4 *>(p);
  const __half2 *h = reinterpret_cast<const __half2 *>(&r);
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const float2 x = __half22float2(h[i]);
    f[2 * i] = x.x, f[2 * i + 1] = x.y;
  }
}
__device__ __forceinline__ void hrc_kv8(const __nv_bfloat16 *p, float (&f)[8]) {
  const uint4 r = *reinterpret_cast<const uint4 *>(p);
  const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&r);
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const float2 x = __bfloat1622float2(h[i]);
    f[2 * i] = x.x, f[2 * i + 1] = x.y;
  }
}
template <typename FP8>
__device__ __forceinline__ void hrc_fp8x8(const FP8 *p, float (&f)[8], __nv_fp8_interpretation_t kind) {
  const uint2 r = *reinterpret_cast<const uint2 *>(p);
  const __nv_fp8x2_storage_t *s = reinterpret_cast<const __nv_fp8x2_storage_t *>(&r);
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const __half2 h = __half2(__nv_cvt_fp8x2_to_halfraw2(s[i], kind));
    const float2 x = __half22float2(h);
    f[2 * i] = x.x, f[2 * i + 1] = x.y;
  }
}
__device__ __forceinline__ void hrc_kv8(const __nv_fp8_e4m3 *p, float (&f)[8]) { hrc_fp8x8(p, f, __NV_E4M3); }
__device__ __forceinline__ void hrc_kv8(const __nv_fp8_e5m2 *p, float (&f)[8]) { hrc_fp8x8(p, f, __NV_E5M2); }

// Bytes of one cache element.
static inline int64_t hrc_kv_size(int64_t kv_dtype) {
  return kv_dtype == HR_DTYPE_F32 ? 4 : kv_dtype >= HR_DTYPE_FP8_E4M3 ? 1 : 2;
}

// Runs the statement(s) with KV = the storage type of kv_dtype (validated by core); they must
// return.
#define HRC_KV_DISPATCH(kv_dtype, ...) \
  switch (kv_dtype) {                  \
    case HR_DTYPE_F16: {               \
      typedef __half KV;               \
      __VA_ARGS__;                     \
    }                                  \
    case HR_DTYPE_BF16: {              \
      typedef __nv_bfloat16 KV;        \
      __VA_ARGS__;                     \
    }                                  \
    case HR_DTYPE_FP8_E4M3: {          \
      typedef __nv_fp8_e4m3 KV;        \
      __VA_ARGS__;                     \
    }                                  \
    case HR_DTYPE_FP8_E5M2: {          \
      typedef __nv_fp8_e5m2 KV;        \
      __VA_ARGS__;                     \
    }                                  \
    default: {                         \
      typedef float KV;                \
      __VA_ARGS__;                     \
    }                                  \
  }

// Activations of a run-time dtype (q in, out): read/written once per row, so no template.
__device__ __forceinline__ float hrc_load_act(const void *p, int64_t i, int dtype) {
  if (dtype == HR_DTYPE_F16) return __half2float(static_cast<const __half *>(p)[i]);
  if (dtype == HR_DTYPE_BF16) return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[i]);
  return static_cast<const float *>(p)[i];
}
__device__ __forceinline__ void hrc_store_act(void *p, int64_t i, float v, int dtype) {
  if (dtype == HR_DTYPE_F16)
    static_cast<__half *>(p)[i] = __float2half_rn(v);
  else if (dtype == HR_DTYPE_BF16)
    static_cast<__nv_bfloat16 *>(p)[i] = __float2bfloat16_rn(v);
  else
    static_cast<float *>(p)[i] = v;
}

// ---- cp.async (sm_80+): 16-byte global -> shared copies that do not stall the thread ----
// src_bytes 0 zero-fills the 16 shared bytes without reading global memory.
__device__ __forceinline__ void hrc_cp_async16(void *smem, const void *gmem, int src_bytes) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void hrc_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void hrc_cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

#endif
