// Quantized weights (GGUF block formats, csrc/core/quant.h) on CUDA: matmul / logits and
// embedding gather, weights kept in the file's format on the device.
//  - decode (m <= HR_MATMUL_Q_GEMM_MIN_M, or no workspace): a warp computes one output column n:
//    its lanes take 32-element chunks of the weight row in turn, dequantize one chunk
//    (quant_chunk32, the same rule as hr_dequantize) in registers and multiply it with up to MT
//    rows of x at a time; x rows beyond MT are handled by further passes over the row.
//  - prefill (m above it, with the caller's workspace, hr_op_matmul_q_ws): chunks of weight rows
//    are dequantized into the workspace in the op's dtype (bf16/f16/f32) and multiplied on the
//    tensor cores by cuBLAS with fp32 accumulation, each chunk into its columns of y (ldc = n).
//    The weight bytes are read once per chunk instead of once per MT rows of x.
#include "cuda_common.cuh"

extern "C" {
#include "../core/allocator.h"
#include "../core/quant.h"
}

int hrc_gather_rows(const char *call, cudaStream_t stream, int64_t dtype, uint64_t out, uint64_t table, uint64_t ids,
                    int64_t num_tokens, int64_t num_rows, int64_t dim); // ops_embedding.cu
int hrc_fill_bias(const char *call, cudaStream_t stream, int64_t dtype, uint64_t y, uint64_t bias, int64_t m,
                  int64_t n); // ops_matmul.cu

namespace {

constexpr int MT = 8; // x rows per pass

__device__ __forceinline__ float half_at(const uint8_t *p) {
  return __half2float(__ushort_as_half((unsigned short)(p[0] | (p[1] << 8))));
}

__device__ __forceinline__ void scale_min_k4(int j, const uint8_t *q, int &d, int &m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Elements [32c, 32c + 32) of one block (c = 0 for 32-element types, 0..7 for K-quants).
template <int QT>
__device__ __forceinline__ void quant_chunk32(const uint8_t *b, int c, float *y) {
  if (QT == HR_QTYPE_Q8_0) {
    const float d = half_at(b);
#pragma unroll
    for (int j = 0; j < 32; j++) y[j] = (float)((const int8_t *)(b + 2))[j] * d;
  } else if (QT == HR_QTYPE_Q4_0 || QT == HR_QTYPE_Q4_1) {
    const bool has_min = QT == HR_QTYPE_Q4_1;
    const float d = half_at(b), m = has_min ? half_at(b + 2) : 0.0f;
    const uint8_t *qs = b + (has_min ? 4 : 2);
    const int off = has_min ? 0 : 8;
#pragma unroll
    for (int j = 0; j < 16; j++) {
      y[j] = (float)((qs[j] & 0xF) - off) * d + m;
      y[j + 16] = (float)((qs[j] >> 4) - off) * d + m;
    }
  } else if (QT == HR_QTYPE_Q5_0 || QT == HR_QTYPE_Q5_1) {
    const bool has_min = QT == HR_QTYPE_Q5_1;
    const float d = half_at(b), m = has_min ? half_at(b + 2) : 0.0f;
    const uint8_t *p = b + (has_min ? 4 : 2);
    const uint32_t qh = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    const uint8_t *qs = p + 4;
    const int off = has_min ? 0 : 16;
#pragma unroll
    for (int j = 0; j < 16; j++) {
      const int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
      y[j] = (float)(((qs[j] & 0xF) | h0) - off) * d + m;
      y[j + 16] = (float)(((qs[j] >> 4) | h1) - off) * d + m;
    }
  } else if (QT == HR_QTYPE_Q4_K || QT == HR_QTYPE_Q5_K) {
    const bool five = QT == HR_QTYPE_Q5_K;
    const float d = half_at(b), dmin = half_at(b + 2);
    int sc, mn;
    scale_min_k4(c, b + 4, sc, mn);
    const float d1 = d * (float)sc, m1 = dmin * (float)mn;
    const uint8_t *ql = b + (five ? 48 : 16) + (c >> 1) * 32;
    const uint8_t *qh = b + 16;
    const int shift = (c & 1) ? 4 : 0;
#pragma unroll
    for (int l = 0; l < 32; l++) {
      const int h = five && (qh[l] & (1 << c)) ? 16 : 0;
      y[l] = d1 * (float)(((ql[l] >> shift) & 0xF) + h) - m1;
    }
  } else { // Q6_K
    const int half = c >> 2, q = c & 3;
    const uint8_t *ql = b + 64 * half + ((q & 1) ? 32 : 0), *qh = b + 128 + 32 * half;
    const int8_t *sc = (const int8_t *)(b + 192) + 8 * half + 2 * q;
    const float d = half_at(b + 208);
    const int shift = q >= 2 ? 4 : 0;
#pragma unroll
    for (int l = 0; l < 32; l++) {
      const int v = (((ql[l] >> shift) & 0xF) | (((qh[l] >> (2 * q)) & 3) << 4)) - 32;
      y[l] = d * (float)sc[l / 16] * (float)v;
    }
  }
}

template <int QT>
struct qt_traits {
  static constexpr int block_elems = (QT == HR_QTYPE_Q4_K || QT == HR_QTYPE_Q5_K || QT == HR_QTYPE_Q6_K) ? 256 : 32;
  static constexpr int block_bytes = QT == HR_QTYPE_Q4_0   ? 18
                                     : QT == HR_QTYPE_Q4_1 ? 20
                                     : QT == HR_QTYPE_Q5_0 ? 22
                                     : QT == HR_QTYPE_Q5_1 ? 24
                                     : QT == HR_QTYPE_Q8_0 ? 34
                                     : QT == HR_QTYPE_Q4_K ? 144
                                     : QT == HR_QTYPE_Q5_K ? 176
                                                           : 210;
};

// y[r, n] = x[row(r), :] . dequant(w[n, :]) (+ bias[n]); rows == nullptr: row(r) = r.
// A row id outside [0, xrows) makes that output row NaN.
template <int QT, typename T, typename Y>
__global__ void __launch_bounds__(128)
    matmul_q_kernel(Y *__restrict__ y, const T *__restrict__ x, const uint8_t *__restrict__ w,
                    const T *__restrict__ bias, const int32_t *__restrict__ rows, int64_t xrows, int64_t m, int64_t n,
                    int64_t k) {
  typedef qt_traits<QT> Q;
  const int lane = threadIdx.x & 31;
  const int64_t col = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (col >= n) return;
  const int64_t row_bytes = k / Q::block_elems * Q::block_bytes, chunks = k / 32;
  const uint8_t *wr = w + col * row_bytes;
  for (int64_t m0 = 0; m0 < m; m0 += MT) {
    float acc[MT];
    const T *xr[MT];
    bool bad[MT];
#pragma unroll
    for (int i = 0; i < MT; i++) {
      acc[i] = 0.0f;
      const int64_t r = m0 + i < m ? (rows ? (int64_t)rows[m0 + i] : m0 + i) : 0;
      bad[i] = r < 0 || r >= xrows;
      xr[i] = x + (bad[i] ? 0 : r) * k;
    }
    for (int64_t ch = lane; ch < chunks; ch += 32) {
      float wv[32];
      const int64_t e0 = ch * 32;
      quant_chunk32<QT>(wr + (e0 / Q::block_elems) * Q::block_bytes, (int)((e0 % Q::block_elems) / 32), wv);
#pragma unroll
      for (int i = 0; i < MT; i++) {
        if (m0 + i >= m) break;
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < 32; j++) s += wv[j] * hrc_to_f(xr[i][e0 + j]);
        acc[i] += s;
      }
    }
#pragma unroll
    for (int i = 0; i < MT; i++) {
      float v = acc[i];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
      if (lane == 0 && m0 + i < m) {
        if (bias) v += hrc_to_f(bias[col]);
        y[(m0 + i) * n + col] = bad[i] ? hrc_nan<Y>() : hrc_from_f<Y>(v);
      }
    }
  }
}

// out[t, :] = dequant(table[ids[t], :]); a bad id writes a NaN row.
template <int QT, typename T>
__global__ void __launch_bounds__(128)
    embedding_q_kernel(T *__restrict__ out, const uint8_t *__restrict__ table, const int32_t *__restrict__ ids,
                       int64_t num_tokens, int64_t num_rows, int64_t dim) {
  typedef qt_traits<QT> Q;
  const int64_t row_bytes = dim / Q::block_elems * Q::block_bytes;
  for (int64_t t = blockIdx.x; t < num_tokens; t += gridDim.x) {
    const int32_t id = ids[t];
    T *o = out + t * dim;
    for (int64_t ch = threadIdx.x; ch < dim / 32; ch += blockDim.x) {
      float wv[32];
      if (id < 0 || id >= num_rows) {
#pragma unroll
        for (int j = 0; j < 32; j++) o[ch * 32 + j] = hrc_nan<T>();
        continue;
      }
      const int64_t e0 = ch * 32;
      quant_chunk32<QT>(table + id * row_bytes + (e0 / Q::block_elems) * Q::block_bytes,
                        (int)((e0 % Q::block_elems) / 32), wv);
#pragma unroll
      for (int j = 0; j < 32; j++) o[e0 + j] = hrc_from_f<T>(wv[j]);
    }
  }
}

// out[r, :] = dequant(w[r, :]) for r < rows, in T: one thread per 32-element chunk of a row
// (grid-stride), the values of quant_chunk32 rounded once to T.
template <int QT, typename T>
__global__ void __launch_bounds__(256)
    dequant_rows_kernel(T *__restrict__ out, const uint8_t *__restrict__ w, int64_t rows, int64_t k) {
  typedef qt_traits<QT> Q;
  const int64_t chunks = k / 32, row_bytes = k / Q::block_elems * Q::block_bytes, total = rows * chunks;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / chunks, e0 = (i % chunks) * 32;
    float v[32];
    quant_chunk32<QT>(w + r * row_bytes + (e0 / Q::block_elems) * Q::block_bytes, (int)((e0 % Q::block_elems) / 32), v);
    T *o = out + r * k + e0;
#pragma unroll
    for (int j = 0; j < 32; j++) o[j] = hrc_from_f<T>(v[j]);
  }
}

// Prefill: y = x . dequant(w)^T chunk by chunk of weight rows through the workspace (see top).
template <int QT>
int gemm_matmul(hr_instance *inst, hrc_state *st, const int64_t *a) {
  typedef qt_traits<QT> Q;
  const int64_t dtype = a[HR_A_MM_DTYPE], m = a[HR_A_MM_M], n = a[HR_A_MM_N], k = a[HR_A_MM_K];
  const bool logits = a[HR_A_MM_ROWS] != 0;
  const char *CALL = logits ? "hr_op_logits_q" : "hr_op_matmul_q";
  const uint64_t y = (uint64_t)a[HR_A_MM_Y], bias = logits ? 0 : (uint64_t)a[HR_A_MM_BIAS];
  const uint64_t ws = (uint64_t)a[HR_A_MM_WS], ws_bytes = (uint64_t)a[HR_A_MM_WSBYTES];
  const uint8_t *w = (const uint8_t *)a[HR_A_MM_W];
  const int64_t esz = hrc_dtype_size(dtype), ydtype = logits ? HR_DTYPE_F32 : dtype, yesz = hrc_dtype_size(ydtype);
  const int64_t row_bytes = k / Q::block_elems * Q::block_bytes;
  int64_t chunk = (int64_t)(ws_bytes / (uint64_t)(k * esz)); // >= 1: core checked workspace_bytes
  if (chunk > 64) chunk -= chunk % 64; // chunk columns of y start 16-byte aligned (tensor-core friendly)
  if (chunk > n) chunk = n;
  // cuBLAS first: a missing cuBLAS must fail before anything is queued.
  int s = hrc_blas_ready(st, CALL, 0);
  if (s != HR_OK) return s;
  uint64_t x = (uint64_t)a[HR_A_MM_X], tmp = 0;
  if (logits) {
    // the selected rows, gathered (a bad row id gathers a NaN row, so its logits come out NaN)
    s = hr_allocator_malloc(inst->alloc, (uint64_t)(m * k * esz), &tmp);
    if (s != HR_OK) return s;
    s = hrc_gather_rows(CALL, st->stream, dtype, tmp, x, (uint64_t)a[HR_A_MM_ROWS], m, a[HR_A_MM_XROWS], k);
    x = tmp;
  } else if (bias) {
    s = hrc_fill_bias(CALL, st->stream, dtype, y, bias, m, n);
  }
  for (int64_t n0 = 0; n0 < n && s == HR_OK; n0 += chunk) {
    const int64_t nc = n - n0 < chunk ? n - n0 : chunk;
    const unsigned grid = hrc_grid(nc * (k / 32), 256, 65535 * 16);
    HRC_DISPATCH(dtype, {
      dequant_rows_kernel<QT, T><<<grid, 256, 0, st->stream>>>((T *)ws, w + n0 * row_bytes, nc, k);
      s = hrc_launched(CALL, "dequant_rows_kernel");
      break;
    });
    if (s == HR_OK) s = hrc_gemm_ld(st, CALL, dtype, ydtype, y + (uint64_t)(n0 * yesz), n, x, ws, m, nc, k, bias != 0);
  }
  // Stream-ordered reuse, as hr_op_logits: whatever touches the block next queues behind the GEMMs.
  if (tmp) hr_allocator_free(inst->alloc, tmp);
  return s;
}

template <int QT>
int launch_matmul(hr_instance *inst, hrc_state *st, const int64_t *a) {
  const int64_t dtype = a[HR_A_MM_DTYPE], m = a[HR_A_MM_M], n = a[HR_A_MM_N], k = a[HR_A_MM_K];
  if (a[HR_A_MM_WS] != 0 && m > HR_MATMUL_Q_GEMM_MIN_M) return gemm_matmul<QT>(inst, st, a);
  cudaStream_t s = st->stream;
  const bool logits = a[HR_A_MM_ROWS] != 0;
  const unsigned grid = hrc_grid(n, 4, INT32_MAX);
  const uint8_t *w = (const uint8_t *)a[HR_A_MM_W];
  const int32_t *rows = (const int32_t *)a[HR_A_MM_ROWS];
  HRC_DISPATCH(dtype, {
    if (logits)
      matmul_q_kernel<QT, T, float><<<grid, 128, 0, s>>>((float *)a[HR_A_MM_Y], (const T *)a[HR_A_MM_X], w, nullptr,
                                                         rows, a[HR_A_MM_XROWS], m, n, k);
    else
      matmul_q_kernel<QT, T, T><<<grid, 128, 0, s>>>((T *)a[HR_A_MM_Y], (const T *)a[HR_A_MM_X], w,
                                                     (const T *)a[HR_A_MM_BIAS], nullptr, m, m, n, k);
    return hrc_launched(logits ? "hr_op_logits_q" : "hr_op_matmul_q", "matmul_q_kernel");
  });
}

template <int QT>
int launch_embedding(cudaStream_t s, const int64_t *a) {
  const unsigned grid = hrc_grid(a[HR_A_EMB_T], 1, 65535 * 16);
  HRC_DISPATCH(a[HR_A_EMB_DTYPE], {
    embedding_q_kernel<QT, T><<<grid, 128, 0, s>>>((T *)a[HR_A_EMB_OUT], (const uint8_t *)a[HR_A_EMB_TABLE],
                                                   (const int32_t *)a[HR_A_EMB_IDS], a[HR_A_EMB_T], a[HR_A_EMB_ROWS],
                                                   a[HR_A_EMB_DIM]);
    return hrc_launched("hr_op_embedding_q", "embedding_q_kernel");
  });
}

#define HRC_QTYPE_SWITCH(qt, FN, ...)                          \
  switch (qt) {                                                \
    case HR_QTYPE_Q4_0: return FN<HR_QTYPE_Q4_0>(__VA_ARGS__); \
    case HR_QTYPE_Q4_1: return FN<HR_QTYPE_Q4_1>(__VA_ARGS__); \
    case HR_QTYPE_Q5_0: return FN<HR_QTYPE_Q5_0>(__VA_ARGS__); \
    case HR_QTYPE_Q5_1: return FN<HR_QTYPE_Q5_1>(__VA_ARGS__); \
    case HR_QTYPE_Q8_0: return FN<HR_QTYPE_Q8_0>(__VA_ARGS__); \
    case HR_QTYPE_Q4_K: return FN<HR_QTYPE_Q4_K>(__VA_ARGS__); \
    case HR_QTYPE_Q5_K: return FN<HR_QTYPE_Q5_K>(__VA_ARGS__); \
    case HR_QTYPE_Q6_K: return FN<HR_QTYPE_Q6_K>(__VA_ARGS__); \
    default: break;                                            \
  }

} // namespace

int hrc_exec_matmul_q(hr_instance *inst, hrc_state *st, const int64_t *a) {
  HRC_QTYPE_SWITCH(a[HR_A_MM_WTYPE], launch_matmul, inst, st, a);
  return hr_fail(HR_E_UNSUPPORTED, "hr_op_matmul_q: weight type %lld is not supported by the CUDA backend",
                 (long long)a[HR_A_MM_WTYPE]);
}

int hrc_exec_embedding_q(hr_instance *inst, hrc_state *st, const int64_t *a) {
  (void)inst;
  HRC_QTYPE_SWITCH(a[HR_A_EMB_WTYPE], launch_embedding, st->stream, a);
  return hr_fail(HR_E_UNSUPPORTED, "hr_op_embedding_q: table type %lld is not supported by the CUDA backend",
                 (long long)a[HR_A_EMB_WTYPE]);
}
