// Warp-level tensor-core primitives (sm_80+, PTX ISA 7.0): ldmatrix fragment loads from
// shared memory and mma.sync m16n8k16 with bf16/f16 inputs and fp32 accumulation.
//
// Fragment layouts (PTX ISA "Matrix fragments for mma.m16n8k16"), with g = lane / 4 and
// t = lane % 4; every 32-bit register holds two 16-bit values, the lower column/k first:
//   A 16x16 (row-major) a0: (row g,   k 2t..2t+1)   a1: (row g+8, k 2t..2t+1)
//                       a2: (row g,   k 2t+8..+9)   a3: (row g+8, k 2t+8..+9)
//   B 16x8  (k x n)     b0: (k 2t..2t+1, col g)     b1: (k 2t+8..2t+9, col g)
//   C 16x8  fp32        c0, c1: (row g, cols 2t, 2t+1)   c2, c3: (row g+8, cols 2t, 2t+1)
// ldmatrix.x4 loads four 8x8 16-bit matrices; lanes 8i..8i+7 give the row addresses of
// matrix i, and register i of lane l receives row l/4, elements 2(l%4)..+1 of matrix i
// (.trans: column l/4, rows 2(l%4)..+1, i.e. the transpose).
#ifndef HR_CUDA_MMA_SM80_CUH
#define HR_CUDA_MMA_SM80_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include <type_traits>

__device__ __forceinline__ void hrc_ldmatrix_x4(uint32_t (&r)[4], const void *smem) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}
__device__ __forceinline__ void hrc_ldmatrix_x4_trans(uint32_t (&r)[4], const void *smem) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

// c += a . b for one 16x8x16 tile; T = __half or __nv_bfloat16 picks the input type.
template <typename T>
__device__ __forceinline__ void hrc_mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same<T, __nv_bfloat16>::value)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as one register of T values (round to nearest even), x in the low half.
template <typename T>
__device__ __forceinline__ uint32_t hrc_pack2(float x, float y) {
  if constexpr (std::is_same<T, __nv_bfloat16>::value) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(x, y);
    return *reinterpret_cast<const uint32_t *>(&v);
  } else {
    const __half2 v = __floats2half2_rn(x, y);
    return *reinterpret_cast<const uint32_t *>(&v);
  }
}

// 2^x with the hardware approximation (rel. error ~2^-22); 2^-inf = +0.
__device__ __forceinline__ float hrc_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

#endif
