// Internal to the CUDA backend: dtype traits, error helpers, per-instance state (stream,
// cuBLAS) and the small pieces every ops_*.cu file shares.
//
// Conventions for the executors (csrc/cuda/ops_*.cu):
//  - hrc_begin() makes the instance's device current and returns its stream; every kernel
//    of every op is queued on that stream (nothing synchronizes).
//  - Index arrays (ids, slots, positions, block tables, seq lens, qsl, row ids) live in
//    device memory and are never read by the host. Kernels check every index they use:
//    an out-of-range value never causes an out-of-bounds access; the outputs it affects are
//    written as NaN (kv_write skips the token), so a bad index is visible, not silent.
//  - hrc_launched() turns a launch error into HR_E_BACKEND with the CUDA error text.
#ifndef HR_CUDA_COMMON_CUH
#define HR_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "../core/device.h"
#include "../core/ops_dispatch.h"
#include "../core/status.h"
}

// ---- errors -------------------------------------------------------------------------
// Status for a CUDA error: HR_E_NODEVICE for a missing device/driver, HR_E_OOM for
// allocation failures, else HR_E_BACKEND. Clears the (non-sticky) error.
int hrc_status_of(cudaError_t e);
int hrc_fail(cudaError_t e, const char *call, const char *what);

#define HRC_TRY(call_name, expr)                                    \
  do {                                                              \
    cudaError_t e_ = (expr);                                        \
    if (e_ != cudaSuccess) return hrc_fail(e_, (call_name), #expr); \
  } while (0)

// After a kernel launch: HR_OK, or HR_E_BACKEND naming the op and kernel.
int hrc_launched(const char *call, const char *kernel);

// ---- per-instance state ---------------------------------------------------------------
// One per hr_instance (found by the instance pointer): the stream all ops use, and the
// cuBLAS handle and workspace (allocated through the instance's caching allocator).
struct hrc_state {
  hr_instance *inst;
  hr_allocator *alloc; // to notice a closed instance whose address was reused
  int64_t ordinal;
  uint64_t last_use;
  cudaStream_t stream;
  void *blas;            // cublasHandle_t, 0 until first use
  uint64_t ws, ws_bytes; // cuBLAS workspace (a block of inst->alloc), 0 = none
  void *stage;           // pinned staging ring of hr_memcpy_h2d_async (h2d_stage.cu), 0 until first use
};

// Makes inst's device current and returns its state (created on first use). Sets an
// hr_fail message naming `call` on failure.
int hrc_begin(hr_instance *inst, const char *call, hrc_state **out);
// Called by hrb_raw_free before a segment goes back to the device: forgets any cuBLAS
// workspace inside it (the segment of a live workspace is only released when its
// instance's allocator is destroyed, i.e. at hr_device_close).
void hrc_on_segment_free(uint64_t ptr, uint64_t size);
// Frees a staging ring (h2d_stage.cu) once its stream has no copy from it in flight.
void hrc_stage_destroy(void *stage);
// cuBLAS (csrc/cuda/blas.cu): makes sure st has a handle on its stream and a workspace.
int hrc_blas_ready(hrc_state *st, const char *call, uint64_t workspace_bytes);
// y[m, n] = x[m, k] . w[n, k]^T (+ y if accumulate) in row-major terms; x/w of `dtype`,
// y of `ydtype`; fp32 accumulation.
int hrc_gemm(hrc_state *st, const char *call, int64_t dtype, int64_t ydtype, uint64_t y, uint64_t x, uint64_t w,
             int64_t m, int64_t n, int64_t k, int accumulate);
// The same into columns of a wider y: row r of the result lands at y + r * ldy (ldy >= n), so
// y may point at column n0 of a [m, ldy] matrix (the chunks of a dequantized weight).
int hrc_gemm_ld(hrc_state *st, const char *call, int64_t dtype, int64_t ydtype, uint64_t y, int64_t ldy, uint64_t x,
                uint64_t w, int64_t m, int64_t n, int64_t k, int accumulate);

// ---- KV caches in reserved ranges ---------------------------------------------------
// Graphs are captured while the KV range is reserved but not yet mapped, so the num_blocks
// they bake in is the reserved count. The kernels bound block ids by the blocks really mapped,
// read at run time from the range's device word (core/vmm.c, Note [Mapped word]); a cache
// outside any range (a plain allocation) has no word and keeps num_blocks.
struct HrcKvBound {
  const uint64_t *kw, *vw; // mapped bytes per slice of the K / V cache's range, or null
  uint64_t koff, voff;     // offset of the cache inside its slice
  uint64_t block_bytes;    // bytes of one block of one cache
};
// Fills b for caches kc/vc of inst (host side, once per launch).
void hrc_kv_bound(hr_instance *inst, uint64_t kc, uint64_t vc, uint64_t block_bytes, HrcKvBound *b);
// Blocks usable by a kernel: min(num_blocks, mapped blocks of K, mapped blocks of V).
__device__ __forceinline__ int64_t hrc_mapped_blocks(const HrcKvBound &b, int64_t num_blocks) {
  int64_t n = num_blocks;
  if (b.kw) {
    const uint64_t m = *b.kw, u = m > b.koff ? (m - b.koff) / b.block_bytes : 0;
    if (u < (uint64_t)n) n = (int64_t)u;
  }
  if (b.vw) {
    const uint64_t m = *b.vw, u = m > b.voff ? (m - b.voff) / b.block_bytes : 0;
    if (u < (uint64_t)n) n = (int64_t)u;
  }
  return n;
}

// ---- dtypes -----------------------------------------------------------------------
__device__ __forceinline__ float hrc_to_f(float v) { return v; }
__device__ __forceinline__ float hrc_to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float hrc_to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T hrc_from_f(float v);
template <>
__device__ __forceinline__ float hrc_from_f<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half hrc_from_f<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 hrc_from_f<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// NaN of each storage type (written for outputs affected by a bad index).
template <typename T>
__device__ __forceinline__ T hrc_nan() {
  return hrc_from_f<T>(__int_as_float(0x7fc00000));
}

// Element size of an HR_DTYPE_*.
static inline int64_t hrc_dtype_size(int64_t dtype) { return dtype == HR_DTYPE_F32 ? 4 : 2; }

// Runs the statement(s) with T = the storage type of dtype (validated by core); the
// statements must return.
#define HRC_DISPATCH(dtype, ...) \
  switch (dtype) {               \
    case HR_DTYPE_F16: {         \
      typedef __half T;          \
      __VA_ARGS__;               \
    }                            \
    case HR_DTYPE_BF16: {        \
      typedef __nv_bfloat16 T;   \
      __VA_ARGS__;               \
    }                            \
    default: {                   \
      typedef float T;           \
      __VA_ARGS__;               \
    }                            \
  }

// Grid size for grid-stride loops over `work` items with `per_block` items per block.
static inline unsigned hrc_grid(int64_t work, int64_t per_block, int64_t cap = 1 << 20) {
  int64_t g = (work + per_block - 1) / per_block;
  if (g < 1) g = 1;
  if (g > cap) g = cap;
  return (unsigned)g;
}

// Block-wide sum of one float per thread (blockDim.x a multiple of 32, <= 1024).
__device__ __forceinline__ float hrc_block_sum(float v, float *shared32) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
  __syncthreads(); // shared32 may still be read by a previous call
  if (lane == 0) shared32[warp] = v;
  __syncthreads();
  float s = lane < nw ? shared32[lane] : 0.0f;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  return s;
}

#endif
