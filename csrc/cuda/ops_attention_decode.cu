// Paged decode attention (one query token per sequence), split-K over partitions.
//
// Work: (sequence, partition) pairs x KV heads x head batches. Planned mode (the engine): the
// pairs, the partition length and where split sequences keep their partials come from the
// plan at the head of the workspace (core/attn_plan.h), written by hr_attention_decode_plan
// from the step's real context lengths. Fixed mode (partition_size >= 0): every sequence has
// ceil(max_context / partition) pairs, those past its length do nothing. Either way the grid
// is bounded by occupancy x SMs (queried once per device and kernel variant) and its CTAs
// stride over the work, so a graph captured once replays any plan.
//
// One CTA (128 threads) per work item at a time:
//   - block ids of the partition are staged in shared memory (kBlkSeg at a time); a bad id
//     (negative, or past the mapped blocks, read at run time) flags the item: outputs NaN;
//   - K and V rows stream through shared memory in tiles of kTokens tokens, double-buffered
//     with cp.async (16-byte chunks; zero-filled past the row, the tile or a bad block), so
//     the next tile is in flight while this one is used;
//   - thread (tx, ty, tz): tx = 8-element slice of head_dim (BDX slices cover it), ty = query
//     head of the batch (GQA: the K/V tile in shared memory serves every head of the group),
//     tz = which tokens of the tile. Each thread keeps q (pre-scaled by scale * k_scale * log2 e)
//     and its slice of the accumulator in registers and runs its own online softmax (base 2);
//     dots are reduced over the BDX lanes by shuffles;
//   - the tz partials are merged in shared memory; a sequence with one partition writes
//     out = acc / l * v_scale directly, a split one writes (max, sum, acc * v_scale) to the
//     workspace and the reduction kernel combines them.
// Registers stay under 64 per thread (__launch_bounds__(128, 8)) and shared memory at ~17 KiB,
// so 8 CTAs (32 warps, 50 %) fit an SM for every group size and head_dim.
#include "kv_types.cuh"

extern "C" {
#include "../core/attn_plan.h"
}

namespace {

constexpr int kThreads = 128;
constexpr int kVec = 8;           // elements of a row per lane
constexpr int kStageBytes = 4096; // K (and V) bytes per pipeline stage
constexpr int kBlkSeg = 256;      // block ids staged at a time
constexpr int kMinCtasPerSm = 8;  // 50 % occupancy with 128-thread CTAs
constexpr float kLog2e = 1.4426950408889634f;

struct DecParams {
  void *out;
  const void *q, *kc, *vc;
  const int32_t *bt, *seq_lens;
  void *ws;
  int64_t b, hq, hk, d, num_blocks, bs, maxb, qs, max_ctx;
  int64_t window; // sliding window (0 = full): keys L - window .. L - 1
  // fixed mode: partition length and partitions per sequence; planned: from the plan
  int64_t part, nparts;
  int planned, dtype;
  int g, hpc, gy, hbatches; // group size, heads per CTA, pow2 thread rows for them, batches
  int aligned;              // 16-byte cp.async path usable
  float qscale;             // scale * k_scale * log2(e)
  float softcap;            // 0 = off
  float v_scale;
  HrcKvBound bound;
};

// First key the decode query (position L - 1) sees.
__device__ __forceinline__ int64_t window_lo(int64_t L, int64_t window) {
  return window > 0 && L > window ? L - window : 0;
}

// The work description both kernels share: planned (from the plan) or fixed. Small on
// purpose (the partition kernel keeps it in registers); workspace addresses are recomputed
// from the parameters where they are used.
struct Work {
  const int32_t *plan; // null in fixed mode
  int part, npairs;
  bool valid;

  __device__ void init(const DecParams &p) {
    valid = true;
    if (p.planned) {
      plan = static_cast<const int32_t *>(p.ws);
      valid = plan[HR_DPLAN_W_MAGIC] == HR_DPLAN_MAGIC && plan[HR_DPLAN_W_B] == p.b && plan[HR_DPLAN_W_HQ] == p.hq &&
              plan[HR_DPLAN_W_HK] == p.hk && plan[HR_DPLAN_W_D] == p.d && plan[HR_DPLAN_W_BS] == p.bs &&
              plan[HR_DPLAN_W_MAXB] == p.maxb;
      part = plan[HR_DPLAN_W_PART];
      npairs = plan[HR_DPLAN_W_PAIRS];
      valid = valid && part >= 1 && npairs >= 0 && npairs <= hr_dplan_pair_cap(p.b, p.hq, p.hk, p.bs, p.maxb);
    } else {
      plan = nullptr;
      part = (int)p.part;
      npairs = (int)(p.b * p.nparts);
    }
  }
  __device__ void pair(const DecParams &p, int i, int &s, int &pi) const {
    if (plan) {
      s = plan[hr_dplan_pair_seq_at() + i];
      pi = plan[hr_dplan_pair_part_at(p.b, p.hq, p.hk, p.bs, p.maxb) + i];
    } else {
      s = i / (int)p.nparts;
      pi = i % (int)p.nparts;
    }
  }
  // Partitions of sequence s per the work description (planned: the plan's count).
  __device__ int nparts(const DecParams &p, int64_t s, int L) const {
    return plan ? plan[hr_dplan_seq_nparts_at(p.b, p.hq, p.hk, p.bs, p.maxb) + s] : (L + part - 1) / part;
  }
  // Workspace row of (s, partition pi, query head h); -1 when it has none.
  __device__ int64_t ws_row(const DecParams &p, int64_t s, int pi, int64_t h) const {
    if (plan) {
      const int64_t w = plan[hr_dplan_seq_ws_at(p.b, p.hq, p.hk, p.bs, p.maxb) + s];
      if (w < 0 || w + pi >= hr_dplan_ws_pairs_cap(p.b, p.hq, p.hk, p.bs, p.maxb)) return -1;
      return (w + pi) * p.hq + h;
    }
    return p.ws ? (s * p.hq + h) * p.nparts + pi : -1;
  }
  // The partials: max [rows], sum [rows], out [rows][d].
  __device__ float *ws_base(const DecParams &p) const {
    return plan ? reinterpret_cast<float *>(static_cast<char *>(p.ws) + hr_dplan_bytes(p.b, p.hq, p.hk, p.bs, p.maxb))
                : static_cast<float *>(p.ws);
  }
  __device__ int64_t ws_rows(const DecParams &p) const {
    return plan ? hr_dplan_ws_pairs_cap(p.b, p.hq, p.hk, p.bs, p.maxb) * p.hq : p.b * p.hq * p.nparts;
  }
};

template <typename KV, int BDX>
struct Tile {
  static constexpr int kRowBytes = BDX * kVec * (int)sizeof(KV); // padded row in shared memory
  static constexpr int kTokens = kStageBytes / kRowBytes;        // >= kThreads / BDX
  static constexpr int kChunks = kRowBytes / 16;
  static_assert(kTokens * BDX >= kThreads, "every tz needs a token");
};

// Copies n tokens of the partition (block ids in s_blk from the segment's first block) into one
// stage of K and V shared memory: cp.async for the 16-byte aligned layouts, element copies
// otherwise. Rows past n, chunks past head_dim and bad blocks are zero.
template <typename KV, int BDX>
__device__ __forceinline__ void load_tile(const DecParams &p, const int32_t *s_blk, int tseg, int n, int kvh,
                                          unsigned char *sk, unsigned char *sv) {
  // tseg: the tile's first token relative to the segment's first block (32-bit arithmetic)
  const int bs = (int)p.bs;
  using TL = Tile<KV, BDX>;
  const KV *kc = static_cast<const KV *>(p.kc), *vc = static_cast<const KV *>(p.vc);
  const int row_bytes = (int)(p.d * (int64_t)sizeof(KV));
  if (p.aligned) {
    for (int c = threadIdx.x; c < TL::kTokens * TL::kChunks; c += kThreads) {
      const int j = c / TL::kChunks, cc = c % TL::kChunks;
      const KV *src_k = kc, *src_v = vc;
      int bytes = 0;
      if (j < n && cc * 16 < row_bytes) {
        const int t = tseg + j;
        const int32_t blk = s_blk[t / bs];
        if (blk >= 0) {
          const int64_t off = (((int64_t)blk * bs + t % bs) * p.hk + kvh) * p.d;
          src_k = kc + off + cc * (16 / (int)sizeof(KV));
          src_v = vc + off + cc * (16 / (int)sizeof(KV));
          bytes = 16;
        }
      }
      hrc_cp_async16(sk + j * TL::kRowBytes + cc * 16, src_k, bytes);
      hrc_cp_async16(sv + j * TL::kRowBytes + cc * 16, src_v, bytes);
    }
  } else {
    constexpr int W = BDX * kVec;
    for (int c = threadIdx.x; c < TL::kTokens * W; c += kThreads) {
      const int j = c / W, e = c % W;
      KV kv = hrc_kv_from_f<KV>(0.0f), vv = kv;
      if (j < n && e < p.d) {
        const int t = tseg + j;
        const int32_t blk = s_blk[t / bs];
        if (blk >= 0) {
          const int64_t off = (((int64_t)blk * bs + t % bs) * p.hk + kvh) * p.d + e;
          kv = kc[off];
          vv = vc[off];
        }
      }
      reinterpret_cast<KV *>(sk + j * TL::kRowBytes)[e] = kv;
      reinterpret_cast<KV *>(sv + j * TL::kRowBytes)[e] = vv;
    }
  }
}

template <typename KV, int BDX>
__global__ void __launch_bounds__(kThreads, kMinCtasPerSm) attn_decode_kernel(const DecParams p) {
  using TL = Tile<KV, BDX>;
  __shared__ __align__(16) unsigned char s_k[2][kStageBytes];
  __shared__ __align__(16) unsigned char s_v[2][kStageBytes];
  __shared__ int32_t s_blk[kBlkSeg];
  __shared__ int s_bad;

  Work w;
  w.init(p);
  if (!w.valid) return; // the reduction writes NaN for every row

  const int tid = threadIdx.x, tx = tid % BDX, rest = tid / BDX;
  const int ty = rest % p.gy, tz = rest / p.gy, bdz = kThreads / (BDX * p.gy);
  const int per_pair = (int)(p.hk * p.hbatches);
  const int nblk = (int)min(hrc_mapped_blocks(p.bound, p.num_blocks), (int64_t)INT32_MAX);
  const int first_e = tx * kVec;

  for (int64_t item = blockIdx.x; item < (int64_t)w.npairs * per_pair; item += gridDim.x) {
    const int pr = (int)(item / per_pair), r = (int)(item % per_pair);
    const int kvh = r / p.hbatches;
    const int hb = r % p.hbatches;
    int s, pi;
    w.pair(p, pr, s, pi);
    if (s < 0 || s >= p.b) continue; // garbage plan: the reduction sees the count mismatch
    const int L = p.seq_lens[s];
    if (L < 1 || L > p.max_ctx) continue; // bad length: the reduction writes NaN
    const int np = w.nparts(p, s, L);
    if (np != (L + w.part - 1) / w.part || pi >= np) continue; // stale plan: NaN by the reduction
    const int lo = (int)window_lo(L, p.window);
    const int t_end = (int)min((int64_t)(pi + 1) * w.part, (int64_t)L);
    const int t_beg = max(pi * w.part, lo);
    if (t_end <= t_beg) continue; // wholly before the sliding window
    const bool single = np == 1;

    const int hl = hb * p.hpc + ty; // query head of this thread inside the group
    const bool head_ok = ty < p.hpc && hl < p.g;
    const int qh = kvh * p.g + hl;
    float q[kVec], acc[kVec];
    {
      const int64_t base = s * p.qs + (int64_t)qh * p.d;
#pragma unroll
      for (int e = 0; e < kVec; e++) {
        q[e] = head_ok && first_e + e < p.d ? hrc_load_act(p.q, base + first_e + e, p.dtype) * p.qscale : 0.0f;
        acc[e] = 0.0f;
      }
    }
    float m = -INFINITY, l = 0.0f;
    if (tid == 0) s_bad = 0;

    // block-id segments, then double-buffered tiles inside each
    const int bs = (int)p.bs;
    for (int seg0 = t_beg; seg0 < t_end;) {
      const int sb = seg0 / bs;
      const int seg1 = (int)min((int64_t)t_end, ((int64_t)sb + kBlkSeg) * bs);
      const int nb_seg = (seg1 - 1) / bs - sb + 1;
      __syncthreads(); // s_blk and the stages of the previous segment are consumed; s_bad cleared
      for (int i = tid; i < nb_seg; i += kThreads) {
        int32_t blk = p.bt[(int64_t)s * p.maxb + sb + i];
        if (blk < 0 || blk >= nblk) {
          s_bad = 1;
          blk = -1;
        }
        s_blk[i] = blk;
      }
      __syncthreads();
      const int n_seg = seg1 - seg0;
      const int ntiles = (n_seg + TL::kTokens - 1) / TL::kTokens;
      const int tseg0 = seg0 - sb * bs;
      load_tile<KV, BDX>(p, s_blk, tseg0, min(TL::kTokens, n_seg), kvh, s_k[0], s_v[0]);
      hrc_cp_async_commit();
      for (int it = 0; it < ntiles; it++) {
        const int t0 = it * TL::kTokens; // relative to seg0
        if (it + 1 < ntiles)
          load_tile<KV, BDX>(p, s_blk, tseg0 + t0 + TL::kTokens, min(TL::kTokens, n_seg - t0 - TL::kTokens), kvh,
                             s_k[(it + 1) & 1], s_v[(it + 1) & 1]);
        hrc_cp_async_commit(); // (possibly empty) group: the wait count stays uniform
        hrc_cp_async_wait<1>();
        __syncthreads();
        const int n = min(TL::kTokens, n_seg - t0);
        const unsigned char *sk = s_k[it & 1], *sv = s_v[it & 1];
        for (int jj = 0; jj < n; jj += bdz) { // uniform trip count: the shuffles need every lane
          const int j = jj + tz;
          const int jr = j < TL::kTokens ? j : TL::kTokens - 1;
          float kf[kVec];
          hrc_kv8(reinterpret_cast<const KV *>(sk + jr * TL::kRowBytes) + first_e, kf);
          float dot = 0.0f;
#pragma unroll
          for (int e = 0; e < kVec; e++) dot = fmaf(q[e], kf[e], dot);
#pragma unroll
          for (int o = BDX / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
          if (j >= n) continue;
          if (p.softcap > 0.0f) dot = p.softcap * tanhf(dot / kLog2e / p.softcap) * kLog2e;
          if (dot > m) {                       // rescale only when the running max grows
            const float corr = exp2f(m - dot); // 0 on the first key
            l *= corr;
#pragma unroll
            for (int e = 0; e < kVec; e++) acc[e] *= corr;
            m = dot;
          }
          const float pr_ = exp2f(dot - m);
          l += pr_;
          float vf[kVec];
          hrc_kv8(reinterpret_cast<const KV *>(sv + j * TL::kRowBytes) + first_e, vf);
#pragma unroll
          for (int e = 0; e < kVec; e++) acc[e] = fmaf(pr_, vf[e], acc[e]);
        }
        __syncthreads(); // this stage is rewritten by the load two tiles on
      }
      seg0 = seg1;
    }

    // Merge the tz partials (shared memory of the stages is free now).
    float *s_acc = reinterpret_cast<float *>(s_k); // [bdz][gy][BDX * kVec]
    float *s_ml = reinterpret_cast<float *>(s_v);  // [bdz][gy][2]
    const int slot = tz * p.gy + ty;
#pragma unroll
    for (int e = 0; e < kVec; e++) s_acc[(slot * BDX + tx) * kVec + e] = acc[e];
    if (tx == 0) {
      s_ml[2 * slot] = m;
      s_ml[2 * slot + 1] = l;
    }
    __syncthreads();
    const bool bad = s_bad != 0;
    if (tz == 0 && head_ok) {
      float M = -INFINITY;
      for (int z = 0; z < bdz; z++) M = fmaxf(M, s_ml[2 * (z * p.gy + ty)]);
      float Ls = 0.0f, A[kVec];
#pragma unroll
      for (int e = 0; e < kVec; e++) A[e] = 0.0f;
      if (M != -INFINITY) {
        for (int z = 0; z < bdz; z++) {
          const int sl = z * p.gy + ty;
          const float f = exp2f(s_ml[2 * sl] - M); // 0 for a tz that saw no key
          Ls += f * s_ml[2 * sl + 1];
#pragma unroll
          for (int e = 0; e < kVec; e++) A[e] = fmaf(f, s_acc[(sl * BDX + tx) * kVec + e], A[e]);
        }
      }
      const float nan = __int_as_float(0x7fc00000);
      if (single) {
        const int64_t o = ((int64_t)s * p.hq + qh) * p.d;
#pragma unroll
        for (int e = 0; e < kVec; e++)
          if (first_e + e < p.d) hrc_store_act(p.out, o + first_e + e, bad ? nan : A[e] / Ls * p.v_scale, p.dtype);
      } else {
        const int64_t row = w.ws_row(p, s, pi, qh);
        if (row >= 0) {
          float *base = w.ws_base(p);
          const int64_t rows = w.ws_rows(p);
#pragma unroll
          for (int e = 0; e < kVec; e++)
            if (first_e + e < p.d) base[2 * rows + row * p.d + first_e + e] = bad ? nan : A[e] * p.v_scale;
          if (tx == 0) {
            base[row] = M;
            base[rows + row] = bad ? nan : Ls;
          }
        }
      }
    }
    __syncthreads(); // s_acc / s_ml / s_bad are reused by the next item
  }
}

// Every (sequence, query head) row: NaN for a bad length or plan; nothing for a sequence of
// one partition (written by the partition kernel); else out = sum_p 2^(m_p - M) acc_p /
// sum_p 2^(m_p - M) l_p over the partitions from the window's first one.
__global__ void __launch_bounds__(128) attn_decode_reduce_kernel(const DecParams p) {
  constexpr int kW = 256;
  __shared__ float s_w[kW];
  __shared__ float red[32];
  Work w;
  w.init(p);
  const float nan = __int_as_float(0x7fc00000);
  const float *ws_max = w.ws_base(p);
  const int64_t rows = w.ws_rows(p);
  const float *ws_sum = ws_max + rows, *ws_out = ws_max + 2 * rows;
  for (int64_t sh = blockIdx.x; sh < p.b * p.hq; sh += gridDim.x) {
    const int64_t s = sh / p.hq, h = sh % p.hq;
    const int L = p.seq_lens[s];
    const int64_t o = sh * p.d;
    const bool bad_len = !w.valid || L < 1 || L > p.max_ctx;
    const int np = bad_len ? 0 : w.nparts(p, s, L);
    const bool stale = !bad_len && np != (L + w.part - 1) / w.part;
    const int first = bad_len || stale ? 0 : (int)(window_lo(L, p.window) / w.part);
    const int64_t base = np > 1 ? w.ws_row(p, s, first, h) : 0;
    const bool no_ws = np > 1 && (base < 0 || w.ws_row(p, s, np - 1, h) < 0);
    if (bad_len || stale || no_ws) {
      for (int64_t e = threadIdx.x; e < p.d; e += blockDim.x) hrc_store_act(p.out, o + e, nan, p.dtype);
      continue;
    }
    if (np == 1) continue; // written directly by the partition kernel
    // rows of consecutive partitions: planned hq apart, fixed 1 apart
    const int64_t stride = w.plan ? p.hq : 1;
    const int64_t used = np - first;
    float m = -INFINITY;
    for (int64_t q = threadIdx.x; q < used; q += blockDim.x) m = fmaxf(m, ws_max[base + q * stride]);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    __syncthreads();
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = m;
    __syncthreads();
    m = -INFINITY;
    for (int i = 0; i < (int)(blockDim.x >> 5); i++) m = fmaxf(m, red[i]);

    float total = 0.0f;
    constexpr int kMaxDPerThread = 2; // d <= 256 with 128 threads
    float accum[kMaxDPerThread] = {0.0f, 0.0f};
    for (int64_t c0 = 0; c0 < used; c0 += kW) {
      const int64_t cn = min((int64_t)kW, used - c0);
      __syncthreads();
      for (int64_t q = threadIdx.x; q < cn; q += blockDim.x) {
        const float mq = ws_max[base + (c0 + q) * stride];
        s_w[q] = mq == -INFINITY ? 0.0f : exp2f(mq - m);
      }
      __syncthreads();
      for (int64_t q = 0; q < cn; q++) total += s_w[q] * ws_sum[base + (c0 + q) * stride];
#pragma unroll
      for (int rr = 0; rr < kMaxDPerThread; rr++) {
        const int64_t e = threadIdx.x + (int64_t)rr * blockDim.x;
        if (e < p.d)
          for (int64_t q = 0; q < cn; q++)
            accum[rr] = fmaf(s_w[q], ws_out[(base + (c0 + q) * stride) * p.d + e], accum[rr]);
      }
    }
#pragma unroll
    for (int rr = 0; rr < kMaxDPerThread; rr++) {
      const int64_t e = threadIdx.x + (int64_t)rr * blockDim.x;
      if (e < p.d) hrc_store_act(p.out, o + e, accum[rr] / total, p.dtype);
    }
  }
}

// ---- variants and occupancy ----------------------------------------------------------

// BDX lanes cover head_dim in 8-element slices: 8 (<= 64), 16 (<= 128), 32 (<= 256).
int bdx_for(int64_t d) { return d <= 64 ? 8 : d <= 128 ? 16 : 32; }

template <typename KV>
const void *kernel_for(int bdx) {
  if (bdx == 8) return (const void *)attn_decode_kernel<KV, 8>;
  if (bdx == 16) return (const void *)attn_decode_kernel<KV, 16>;
  return (const void *)attn_decode_kernel<KV, 32>;
}

const void *kernel_of(int64_t kv_dtype, int bdx) { HRC_KV_DISPATCH(kv_dtype, return kernel_for<KV>(bdx)); }

// CTAs one wave holds: occupancy x SMs, per device and variant, queried once.
constexpr int kMaxOrdinals = 64;
int g_ctas[kMaxOrdinals][5][3]; // 0 = not queried yet (benign race: every writer stores the same value)

int decode_ctas(hrc_state *st, const char *call, int64_t kv_dtype, int64_t d, int64_t *out) {
  const int bi = bdx_for(d) == 8 ? 0 : bdx_for(d) == 16 ? 1 : 2;
  const int64_t ord = st->ordinal;
  int *slot = ord >= 0 && ord < kMaxOrdinals ? &g_ctas[ord][kv_dtype][bi] : nullptr;
  int v = slot ? __atomic_load_n(slot, __ATOMIC_RELAXED) : 0;
  if (v == 0) {
    int per_sm = 0, sms = 0, dev = 0;
    HRC_TRY(call, cudaGetDevice(&dev));
    HRC_TRY(call, cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    HRC_TRY(call, cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel_of(kv_dtype, bdx_for(d)), kThreads, 0));
    v = per_sm * sms > 0 ? per_sm * sms : 1;
    if (slot) __atomic_store_n(slot, v, __ATOMIC_RELAXED);
  }
  *out = v;
  return HR_OK;
}

template <typename KV>
int launch_kernel(const DecParams &p, unsigned grid, cudaStream_t stream, const char *call) {
  const int bdx = bdx_for(p.d);
  if (bdx == 8)
    attn_decode_kernel<KV, 8><<<grid, kThreads, 0, stream>>>(p);
  else if (bdx == 16)
    attn_decode_kernel<KV, 16><<<grid, kThreads, 0, stream>>>(p);
  else
    attn_decode_kernel<KV, 32><<<grid, kThreads, 0, stream>>>(p);
  return hrc_launched(call, "attn_decode_kernel");
}

} // namespace

extern "C" int hrb_attn_decode_ctas(struct hr_instance *inst, int64_t dtype, int64_t kv_dtype, int64_t head_dim,
                                    int64_t *ctas_out) {
  (void)dtype;
  static const char *const CALL = "hr_attention_decode_plan";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  if (head_dim > 256)
    return hr_fail(HR_E_UNSUPPORTED, "%s: the CUDA backend supports head_dim <= 256 (got %lld)", CALL,
                   (long long)head_dim);
  return decode_ctas(st, CALL, kv_dtype, head_dim, ctas_out);
}

int hrc_exec_attn_decode(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_attention_decode";
  DecParams p;
  p.out = HR_PTR(a, HR_A_DEC_OUT, void);
  p.q = HR_PTR(a, HR_A_DEC_Q, const void);
  p.kc = HR_PTR(a, HR_A_DEC_KC, const void);
  p.vc = HR_PTR(a, HR_A_DEC_VC, const void);
  p.bt = HR_PTR(a, HR_A_DEC_BT, const int32_t);
  p.seq_lens = HR_PTR(a, HR_A_DEC_SEQLENS, const int32_t);
  p.b = a[HR_A_DEC_B];
  p.hq = a[HR_A_DEC_HQ];
  p.hk = a[HR_A_DEC_HK];
  p.d = a[HR_A_DEC_D];
  p.num_blocks = a[HR_A_DEC_NBLOCKS];
  p.bs = a[HR_A_DEC_BS];
  p.maxb = a[HR_A_DEC_MAXBLOCKS];
  p.qs = a[HR_A_DEC_QSTRIDE];
  p.window = a[HR_A_DEC_WINDOW];
  p.dtype = (int)a[HR_A_DEC_DTYPE];
  p.planned = (int)a[HR_A_DEC_PLANNED];
  const int64_t kv_dtype = a[HR_A_DEC_KVDTYPE];
  const double scale = hr_bits_f64(a[HR_A_DEC_SCALE]), k_scale = hr_bits_f64(a[HR_A_DEC_KSCALE]);
  p.qscale = (float)(scale * k_scale * 1.4426950408889634);
  p.softcap = (float)hr_bits_f64(a[HR_A_DEC_SOFTCAP]);
  p.v_scale = (float)hr_bits_f64(a[HR_A_DEC_VSCALE]);
  p.max_ctx = p.maxb * p.bs;
  if (p.d > 256)
    return hr_fail(HR_E_UNSUPPORTED, "%s: the CUDA backend supports head_dim <= 256 (got %lld)", CALL, (long long)p.d);
  if (p.max_ctx > INT32_MAX)
    return hr_fail(HR_E_UNSUPPORTED, "%s: contexts beyond 2^31 tokens (max_blocks_per_seq x block_size = %lld)", CALL,
                   (long long)p.max_ctx);
  p.g = (int)(p.hq / p.hk);
  const int bdx = bdx_for(p.d);
  p.hpc = min(HR_DPLAN_HEADS_PER_CTA, kThreads / bdx);
  p.gy = 1;
  while (p.gy < min(p.g, p.hpc)) p.gy *= 2;
  p.hbatches = (p.g + p.hpc - 1) / p.hpc;
  if (p.planned) {
    p.ws = HR_PTR(a, HR_A_DEC_WS, void);
    p.part = 0;
    p.nparts = 0;
  } else {
    p.part = a[HR_A_DEC_PART];
    p.nparts = (p.max_ctx + p.part - 1) / p.part;
    p.ws = p.nparts > 1 ? HR_PTR(a, HR_A_DEC_WS, void) : nullptr;
  }
  const int64_t kv_esz = hrc_kv_size(kv_dtype);
  p.aligned = ((uint64_t)a[HR_A_DEC_KC] | (uint64_t)a[HR_A_DEC_VC]) % 16 == 0 && (p.d * kv_esz) % 16 == 0;
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  hrc_kv_bound(inst, (uint64_t)a[HR_A_DEC_KC], (uint64_t)a[HR_A_DEC_VC], (uint64_t)(p.bs * p.hk * p.d * kv_esz),
               &p.bound);
  int64_t ctas = 0;
  s = decode_ctas(st, CALL, kv_dtype, p.d, &ctas);
  if (s != HR_OK) return s;
  // The most work items any plan for these arguments can have, and the grid: one wave at most.
  const int64_t pairs = p.planned ? hr_dplan_pair_cap(p.b, p.hq, p.hk, p.bs, p.maxb) : p.b * p.nparts;
  const int64_t items = pairs * p.hk * p.hbatches;
  const unsigned grid = (unsigned)max((int64_t)1, min(items, ctas));
  HRC_KV_DISPATCH(kv_dtype, {
    s = launch_kernel<KV>(p, grid, st->stream, CALL);
    if (s != HR_OK) return s;
    // Always: it also writes NaN for bad lengths and plans (device data the host never sees).
    attn_decode_reduce_kernel<<<hrc_grid(p.b * p.hq, 1, 65535 * 16), 128, 0, st->stream>>>(p);
    return hrc_launched(CALL, "attn_decode_reduce_kernel");
  });
}
