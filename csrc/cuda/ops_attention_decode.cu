// Paged decode attention (one query token per sequence), split-K over partitions.
//
// Grid: one CTA per (sequence, kv head, batch of up to GMAX query heads of its group,
// partition of `part` tokens). The CTA reads each K and V row of its partition exactly once
// and uses it for all query heads of the batch (GQA: with group size <= 8 that is the whole
// group, so K/V are read once per kv head).
//
// Inside a CTA (128 threads): lanes form "teams" of TEAM lanes; a team covers one K/V row
// (head_dim = TEAM * EPL elements, EPL per lane, 16-byte loads on the fast paths). The
// partition is walked in chunks of CHUNK tokens:
//   1. the chunk's row offsets are looked up in the block table (bad block id: flagged, the
//      outputs of the CTA become NaN);
//   2. K pass: each team takes every NTEAMS-th token; every lane dots its K slice with its
//      slice of each query head (queries live in registers, pre-scaled), the team sums by
//      shuffles; scores go to shared memory;
//   3. online softmax per head (one warp per head): running max m, sum l, correction factor;
//      scores become probabilities in place;
//   4. V pass: each lane rescales its partial accumulators and adds p * v for its team's
//      tokens.
// Finally the team partials are summed (shuffles within a warp, shared memory across warps).
// A sequence that fits in one partition writes out = acc / l directly; otherwise the
// partition's max, sum and unnormalized acc go to the workspace (same layout as the CPU
// backend: max [n], sum [n], out [n][d] with n = B * Hq * nparts, index (s*Hq + h)*nparts + p)
// and the reduction kernel combines the used partitions with log-sum-exp weights.
#include "cuda_common.cuh"

namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kChunk = 64;
constexpr int kUnroll = 4;

struct DecParams {
  void *out;
  const void *q, *kc, *vc;
  const int32_t *bt, *seq_lens;
  float *ws;
  int64_t hq, hk, d, num_blocks, bs, maxb, part, nparts, qs, max_ctx, nws;
  int64_t window; // sliding window (0 = full): keys L - window .. L - 1
  int g, head_batches;
  float scale, softcap; // softcap 0 = off
  HrcKvBound bound;     // block ids >= the mapped blocks are bad (read at run time)
};

// First key the decode query (position L - 1) sees.
__device__ __forceinline__ int64_t window_lo(int64_t L, int64_t window) {
  return window > 0 && L > window ? L - window : 0;
}

// EPL elements of a row slice as floats (zeros past d on the generic path).
template <typename T, int EPL, bool VEC>
__device__ __forceinline__ void load_slice(float (&f)[EPL], const T *row, int64_t first, int64_t d) {
  if constexpr (VEC) {
    static_assert(EPL * sizeof(T) == 16, "16-byte slices");
    const uint4 raw = *reinterpret_cast<const uint4 *>(row + first);
    const T *e = reinterpret_cast<const T *>(&raw);
#pragma unroll
    for (int i = 0; i < EPL; i++) f[i] = hrc_to_f(e[i]);
  } else {
#pragma unroll
    for (int i = 0; i < EPL; i++) f[i] = first + i < d ? hrc_to_f(row[first + i]) : 0.0f;
  }
}

template <typename T, int TEAM, int EPL, bool VEC, int GMAX>
__global__ void __launch_bounds__(kThreads) attn_decode_kernel(const DecParams p) {
  static_assert(TEAM >= 1 && TEAM <= 32 && (TEAM & (TEAM - 1)) == 0, "TEAM must be a power of two <= 32");
  constexpr int NTEAMS = kThreads / TEAM;
  constexpr int TPT = kChunk / NTEAMS; // tokens per team per chunk
  static_assert(TPT % kUnroll == 0, "chunk split");
  constexpr int DMAX = TEAM * EPL;

  __shared__ float s_p[GMAX][kChunk];
  __shared__ int64_t s_row[kChunk];
  __shared__ float s_m[GMAX], s_l[GMAX], s_corr[GMAX];
  __shared__ float s_red[kWarps][GMAX][DMAX];
  __shared__ int s_bad;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int team = tid / TEAM, lt = tid % TEAM;

  int64_t idx = blockIdx.x;
  const int64_t part = idx % p.nparts;
  idx /= p.nparts;
  const int hb = (int)(idx % p.head_batches);
  idx /= p.head_batches;
  const int64_t kvh = idx % p.hk;
  const int64_t s = idx / p.hk;

  const int64_t L = p.seq_lens[s];
  const bool bad_len = L < 1 || L > p.max_ctx;
  const int64_t t0 = part * p.part;
  if (bad_len) {
    // Without a workspace this CTA owns the outputs; with one, the reduction writes NaN.
    if (!p.ws && part == 0) {
      const int gn = min(GMAX, p.g - hb * GMAX);
      T *o = (T *)p.out + (s * p.hq + kvh * p.g + hb * GMAX) * p.d;
      for (int64_t i = tid; i < gn * p.d; i += kThreads) o[i] = hrc_nan<T>();
    }
    return;
  }
  if (t0 >= L) return; // partition past the end of this sequence: not used by the reduction
  const int64_t t1 = min(t0 + p.part, L);
  // A partition wholly before the sliding window is skipped (the reduction starts after it).
  const int64_t lo = window_lo(L, p.window);
  if (t1 <= lo) return;
  const int64_t h0 = kvh * p.g + (int64_t)hb * GMAX; // first query head of this CTA
  const int gn = min(GMAX, p.g - hb * GMAX);         // query heads in this CTA (uniform)
  const int64_t d = p.d;
  const int64_t first = (int64_t)lt * EPL; // this lane's slice of a row

  // Queries of the batch, pre-scaled, in registers.
  float qv[GMAX][EPL];
  {
    const T *q = (const T *)p.q + s * p.qs + (int64_t)h0 * d;
#pragma unroll
    for (int h = 0; h < GMAX; h++)
#pragma unroll
      for (int e = 0; e < EPL; e++)
        qv[h][e] = (h < gn && first + e < d) ? hrc_to_f(q[h * d + first + e]) * p.scale : 0.0f;
  }
  float acc[GMAX][EPL];
#pragma unroll
  for (int h = 0; h < GMAX; h++)
#pragma unroll
    for (int e = 0; e < EPL; e++) acc[h][e] = 0.0f;
  if (tid < GMAX) {
    s_m[tid] = -INFINITY;
    s_l[tid] = 0.0f;
  }
  if (tid == 0) s_bad = 0;
  // Every warp may set s_bad in step 1 below: the clear must be visible to all of them first
  // (without this barrier warp 1 could flag a bad block before warp 0 clears the flag).
  __syncthreads();
  const int64_t nblk = hrc_mapped_blocks(p.bound, p.num_blocks);

  const T *kc = (const T *)p.kc, *vc = (const T *)p.vc;
  const int64_t row_elems = p.hk * d;
  for (int64_t c0 = max(t0, lo); c0 < t1; c0 += kChunk) {
    const int n = (int)min((int64_t)kChunk, t1 - c0);
    // 1. row offsets of the chunk's tokens
    if (tid < kChunk) {
      int64_t off = -1;
      if (tid < n) {
        const int64_t t = c0 + tid;
        const int32_t blk = p.bt[s * p.maxb + t / p.bs];
        if (blk >= 0 && blk < nblk)
          off = ((int64_t)blk * p.bs + t % p.bs) * row_elems + kvh * d;
        else
          s_bad = 1;
      }
      s_row[tid] = off;
    }
    __syncthreads();

    // 2. K pass: scores of the team's tokens (kUnroll rows loaded before they are used)
#pragma unroll 1
    for (int jj = 0; jj < TPT; jj += kUnroll) {
      float kf[kUnroll][EPL];
#pragma unroll
      for (int u = 0; u < kUnroll; u++) {
        const int j = team + (jj + u) * NTEAMS;
        const int64_t off = s_row[j];
        if (off >= 0)
          load_slice<T, EPL, VEC>(kf[u], kc + off, first, d);
        else
#pragma unroll
          for (int e = 0; e < EPL; e++) kf[u][e] = 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kUnroll; u++) {
        const int j = team + (jj + u) * NTEAMS;
        const bool valid = s_row[j] >= 0;
#pragma unroll
        for (int h = 0; h < GMAX; h++) {
          if (h < gn) { // uniform over the CTA
            float dot = 0.0f;
#pragma unroll
            for (int e = 0; e < EPL; e++) dot = fmaf(qv[h][e], kf[u][e], dot);
#pragma unroll
            for (int o = TEAM / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
            if (p.softcap > 0.0f) dot = p.softcap * tanhf(dot / p.softcap);
            if (lt == 0) s_p[h][j] = valid ? dot : -INFINITY;
          }
        }
      }
    }
    __syncthreads();

    // 3. online softmax, one warp per head
    for (int h = warp; h < gn; h += kWarps) {
      float v0 = s_p[h][lane], v1 = s_p[h][lane + 32];
      float mx = fmaxf(v0, v1);
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float m_old = s_m[h];
      const float m_new = fmaxf(m_old, mx);
      float corr = 1.0f, p0 = 0.0f, p1 = 0.0f;
      if (m_new != -INFINITY) {     // all keys so far invalid: nothing to add
        corr = expf(m_old - m_new); // 0 when m_old = -inf
        p0 = expf(v0 - m_new);
        p1 = expf(v1 - m_new);
      }
      s_p[h][lane] = p0;
      s_p[h][lane + 32] = p1;
      float sum = p0 + p1;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      if (lane == 0) {
        s_m[h] = m_new;
        s_l[h] = s_l[h] * corr + sum;
        s_corr[h] = corr;
      }
    }
    __syncthreads();

    // 4. V pass
#pragma unroll
    for (int h = 0; h < GMAX; h++) {
      const float c = h < gn ? s_corr[h] : 1.0f;
#pragma unroll
      for (int e = 0; e < EPL; e++) acc[h][e] *= c;
    }
#pragma unroll 1
    for (int jj = 0; jj < TPT; jj += kUnroll) {
      float vf[kUnroll][EPL];
#pragma unroll
      for (int u = 0; u < kUnroll; u++) {
        const int j = team + (jj + u) * NTEAMS;
        const int64_t off = s_row[j];
        if (off >= 0)
          load_slice<T, EPL, VEC>(vf[u], vc + off, first, d);
        else
#pragma unroll
          for (int e = 0; e < EPL; e++) vf[u][e] = 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kUnroll; u++) {
        const int j = team + (jj + u) * NTEAMS;
#pragma unroll
        for (int h = 0; h < GMAX; h++) {
          if (h < gn) { // uniform over the CTA
            const float pr = s_p[h][j];
#pragma unroll
            for (int e = 0; e < EPL; e++) acc[h][e] = fmaf(pr, vf[u][e], acc[h][e]);
          }
        }
      }
    }
    __syncthreads(); // s_p / s_row are rewritten by the next chunk
  }

  // Sum the team partials: within the warp by shuffles, across warps in shared memory.
#pragma unroll
  for (int h = 0; h < GMAX; h++)
#pragma unroll
    for (int e = 0; e < EPL; e++)
#pragma unroll
      for (int o = TEAM; o < 32; o <<= 1) acc[h][e] += __shfl_xor_sync(0xffffffffu, acc[h][e], o);
  if (lane < TEAM)
#pragma unroll
    for (int h = 0; h < GMAX; h++)
#pragma unroll
      for (int e = 0; e < EPL; e++) s_red[warp][h][first + e] = acc[h][e];
  __syncthreads();

  const bool single = L <= p.part;
  const bool bad = s_bad != 0;
  const float nan = __int_as_float(0x7fc00000);
  for (int64_t i = tid; i < (int64_t)gn * d; i += kThreads) {
    const int h = (int)(i / d);
    const int64_t e = i % d;
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; w++) sum += s_red[w][h][e];
    const int64_t qh = h0 + h;
    if (single) {
      ((T *)p.out)[(s * p.hq + qh) * d + e] = hrc_from_f<T>(bad ? nan : sum / s_l[h]);
    } else {
      const int64_t w_idx = (s * p.hq + qh) * p.nparts + part;
      float *ws_out = p.ws + 2 * p.nws;
      ws_out[w_idx * d + e] = bad ? nan : sum;
      if (e == 0) {
        p.ws[w_idx] = s_m[h];
        p.ws[p.nws + w_idx] = bad ? nan : s_l[h];
      }
    }
  }
}

// Combines the partitions of every (sequence, query head) whose context needed more than
// one: out = sum_p exp(m_p - M) acc_p / sum_p exp(m_p - M) l_p. Weights are computed once per
// chunk of partitions into shared memory.
template <typename T>
__global__ void __launch_bounds__(128)
    attn_decode_reduce_kernel(T *__restrict__ out, const float *__restrict__ ws, const int32_t *__restrict__ seq_lens,
                              int64_t num_seqs, int64_t hq, int64_t d, int64_t nparts, int64_t part, int64_t max_ctx,
                              int64_t nws, int64_t window) {
  constexpr int kW = 256;
  __shared__ float s_w[kW];
  __shared__ float red[32];
  const float *ws_max = ws, *ws_sum = ws + nws, *ws_out = ws + 2 * nws;
  for (int64_t sh = blockIdx.x; sh < num_seqs * hq; sh += gridDim.x) {
    const int64_t s = sh / hq;
    const int64_t L = seq_lens[s];
    T *o = out + sh * d;
    if (L < 1 || L > max_ctx) {
      for (int64_t e = threadIdx.x; e < d; e += blockDim.x) o[e] = hrc_nan<T>();
      continue;
    }
    if (L <= part) continue; // written directly by the partition kernel
    // partitions first .. used-1 hold the sliding window (first = 0 without one)
    const int64_t first = window_lo(L, window) / part;
    const int64_t used = (L + part - 1) / part - first, base = sh * nparts + first;
    float m = -INFINITY;
    for (int64_t q = threadIdx.x; q < used; q += blockDim.x) m = fmaxf(m, ws_max[base + q]);
      // block max (via the sum helper's pattern)
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    __syncthreads();
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = m;
    __syncthreads();
    m = -INFINITY;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) m = fmaxf(m, red[w]);

    float total = 0.0f;
    constexpr int kMaxDPerThread = 2; // d <= 256 with 128 threads
    float accum[kMaxDPerThread] = {0.0f, 0.0f};
    for (int64_t c0 = 0; c0 < used; c0 += kW) {
      const int64_t cn = min((int64_t)kW, used - c0);
      __syncthreads();
      for (int64_t q = threadIdx.x; q < cn; q += blockDim.x) s_w[q] = expf(ws_max[base + c0 + q] - m);
      __syncthreads();
      for (int64_t q = 0; q < cn; q++) total += s_w[q] * ws_sum[base + c0 + q];
#pragma unroll
      for (int r = 0; r < kMaxDPerThread; r++) {
        const int64_t e = threadIdx.x + (int64_t)r * blockDim.x;
        if (e < d)
          for (int64_t q = 0; q < cn; q++) accum[r] = fmaf(s_w[q], ws_out[(base + c0 + q) * d + e], accum[r]);
      }
    }
#pragma unroll
    for (int r = 0; r < kMaxDPerThread; r++) {
      const int64_t e = threadIdx.x + (int64_t)r * blockDim.x;
      if (e < d) o[e] = hrc_from_f<T>(accum[r] / total);
    }
  }
}

template <typename T, int TEAM, int EPL, bool VEC>
int launch_gmax(const DecParams &p, int64_t grid, cudaStream_t stream, const char *call) {
  // GMAX 4 for groups <= 4 (MHA included: unused heads are skipped by uniform branches),
  // else 8 (groups > 8 take several head batches, each re-reading K/V).
  if (p.g <= 4)
    attn_decode_kernel<T, TEAM, EPL, VEC, 4><<<(unsigned)grid, kThreads, 0, stream>>>(p);
  else
    attn_decode_kernel<T, TEAM, EPL, VEC, 8><<<(unsigned)grid, kThreads, 0, stream>>>(p);
  return hrc_launched(call, "attn_decode_kernel");
}

template <typename T>
int launch_decode(const DecParams &p, int64_t grid, cudaStream_t stream, const char *call, bool aligned) {
  constexpr int VE = 16 / sizeof(T); // elements per 16-byte load
  // Fast paths (16-byte loads) for fp16/bf16 with head_dim 64/128/256. fp32 (a testing
  // dtype) always takes the generic path, which keeps the build short.
  if constexpr (VE == 8) {
    if (aligned && p.d == 64) return launch_gmax<T, 64 / VE, VE, true>(p, grid, stream, call);
    if (aligned && p.d == 128) return launch_gmax<T, 128 / VE, VE, true>(p, grid, stream, call);
    if (aligned && p.d == 256) return launch_gmax<T, 256 / VE, VE, true>(p, grid, stream, call);
  }
  // Generic path: a warp per row, up to 8 elements per lane (any head_dim <= 256).
  return launch_gmax<T, 32, 8, false>(p, grid, stream, call);
}

} // namespace

int hrc_exec_attn_decode(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_attention_decode";
  const int kvs = hr_need_kv_dtype_eq(CALL, a[HR_A_DEC_DTYPE], a[HR_A_DEC_KVDTYPE]);
  if (kvs != HR_OK) return kvs;
  DecParams p;
  p.out = HR_PTR(a, HR_A_DEC_OUT, void);
  p.q = HR_PTR(a, HR_A_DEC_Q, const void);
  p.kc = HR_PTR(a, HR_A_DEC_KC, const void);
  p.vc = HR_PTR(a, HR_A_DEC_VC, const void);
  p.bt = HR_PTR(a, HR_A_DEC_BT, const int32_t);
  p.seq_lens = HR_PTR(a, HR_A_DEC_SEQLENS, const int32_t);
  const int64_t B = a[HR_A_DEC_B];
  p.hq = a[HR_A_DEC_HQ];
  p.hk = a[HR_A_DEC_HK];
  p.d = a[HR_A_DEC_D];
  p.num_blocks = a[HR_A_DEC_NBLOCKS];
  p.bs = a[HR_A_DEC_BS];
  p.maxb = a[HR_A_DEC_MAXBLOCKS];
  p.part = a[HR_A_DEC_PART];
  p.qs = a[HR_A_DEC_QSTRIDE];
  p.scale = (float)hr_bits_f64(a[HR_A_DEC_SCALE]);
  p.window = a[HR_A_DEC_WINDOW];
  p.softcap = (float)hr_bits_f64(a[HR_A_DEC_SOFTCAP]);
  p.max_ctx = p.maxb * p.bs;
  p.nparts = (p.max_ctx + p.part - 1) / p.part;
  p.nws = B * p.hq * p.nparts;
  p.ws = p.nparts > 1 ? HR_PTR(a, HR_A_DEC_WS, float) : nullptr;
  p.g = (int)(p.hq / p.hk);
  if (p.d > 256)
    return hr_fail(HR_E_UNSUPPORTED, "%s: the CUDA backend supports head_dim <= 256 (got %lld)", CALL, (long long)p.d);
  if (p.hq / p.hk > 4096)
    return hr_fail(HR_E_UNSUPPORTED, "%s: at most 4096 query heads per KV head (got %lld)", CALL,
                   (long long)(p.hq / p.hk));
  p.head_batches = (p.g + 7) / 8;
  if (p.g <= 4) p.head_batches = 1;
  const int64_t grid = B * p.hk * p.head_batches * p.nparts;
  if (grid > 0x7fffffff)
    return hr_fail(HR_E_UNSUPPORTED,
                   "%s: %lld CTAs (num_seqs x kv heads x partitions) exceed the grid limit; use a larger "
                   "partition_size",
                   CALL, (long long)grid);
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  const int64_t esz = hrc_dtype_size(a[HR_A_DEC_DTYPE]);
  hrc_kv_bound(inst, (uint64_t)a[HR_A_DEC_KC], (uint64_t)a[HR_A_DEC_VC], (uint64_t)(p.bs * p.hk * p.d * esz), &p.bound);
  const bool aligned = ((uint64_t)a[HR_A_DEC_KC] | (uint64_t)a[HR_A_DEC_VC]) % 16 == 0 && (p.hk * p.d * esz) % 16 == 0;
  HRC_DISPATCH(a[HR_A_DEC_DTYPE], {
    s = launch_decode<T>(p, grid, st->stream, CALL, aligned);
    if (s != HR_OK) return s;
    if (p.ws) {
      const unsigned rgrid = hrc_grid(B * p.hq, 1, 65535 * 16);
      attn_decode_reduce_kernel<T><<<rgrid, 128, 0, st->stream>>>((T *)p.out, p.ws, p.seq_lens, B, p.hq, p.d, p.nparts,
                                                                  p.part, p.max_ctx, p.nws, p.window);
      s = hrc_launched(CALL, "attn_decode_reduce_kernel");
    }
    return s;
  });
}
