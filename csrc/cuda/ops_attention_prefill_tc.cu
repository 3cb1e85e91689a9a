// Tensor-core paged prefill attention (FlashAttention-2 structure) for f16/bf16 activations,
// head_dim 64/128/256. Same contract as the CUDA-core kernel in ops_attention_prefill.cu
// (headroom.h hr_op_attention_prefill): causal mask, cached prefix (chunked prefill), sliding
// window, softcap, k_scale/v_scale, varlen batches, bad metadata -> NaN rows.
//
// Rows. A CTA owns kM = 64 rows of one KV head: (token, head-in-group) pairs of ONE sequence,
// pair p = token * G + gi (G = query heads per KV head), so the G query heads that read the
// same KV head share every K/V tile. Each of the 4 warps owns 16 rows.
// Grid. x: tile slots, y: KV heads. Sequence b owns the slots [start(b), start(b + 1)) with
// start(b) = floor(qsl[b] * G / kM) + b, which are always at least ceil(q_len * G / kM) (the
// tiles it needs), so the grid, floor(T * G / kM) + B slots, is fixed by host-known sizes and
// each CTA finds its sequence by a binary search of start() over qsl (device memory, never read
// by the host: the launch is graph-capturable). Slots are walked in reverse so that the
// last (longest) tiles of each sequence start first.
// Loop. Keys from the first one visible to the CTA's first row (window) to the position of its
// last row, in tiles of kN keys looked up through the block table. K/V tiles go to shared
// memory double-buffered: cp.async 16-byte copies when the cache dtype is the activation
// dtype, else converted to it while staged (fp8 / f32 / the other 16-bit type; k_scale and
// v_scale stay outside: folded into the score scale and the output). Per tile and warp:
// S = Q K^T with mma.sync m16n8k16 (fp32 accumulation), scale * log2(e) folded into the
// scores (or softcap * tanh(...) * log2(e)), causal / window mask on the tiles that need it,
// online softmax in fp32 registers with exp2 (one rescale of the output per tile), P rounded
// to the activation type and O += P V with mma.sync (V fragments via ldmatrix.trans). A warp
// whose rows see none of a tile skips it.
// Shared-memory rows are XOR-swizzled in 16-byte chunks (chunk c of row r at c ^ (r & 7)), so
// ldmatrix (8 rows, same chunk) and the row-wise stores hit 8 different bank groups.
// Bad metadata: inconsistent lengths give NaN rows; a block id outside the mapped blocks is
// never read (its K/V rows are zero-filled) and makes every row of the CTA NaN, as in the
// CUDA-core kernel.
#include "attention_prefill.cuh"
#include "kv_types.cuh"
#include "mma_sm80.cuh"

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kM = 16 * kWarps; // rows per CTA
constexpr float kLog2e = 1.4426950408889634f;

template <int D>
struct Shape {
  static constexpr int kN = D <= 128 ? 64 : 32; // keys per tile (D 256: keeps smem at 96 KiB)
  static constexpr bool kQInRegs = D <= 128;    // Q fragments held in registers across tiles
  static constexpr int kChunks = D / 8;         // 16-byte chunks per row
  static constexpr size_t kSmem = sizeof(uint16_t) * (size_t)(kM * D + 4 * kN * D) + 16;
};

// Element offset of (row, col) in a [rows][D] tile, col a multiple of 8 (a 16-byte chunk).
template <int D>
__device__ __forceinline__ int swz(int row, int col) {
  return row * D + ((((col >> 3) ^ row) & 7) | ((col >> 3) & ~7)) * 8;
}

// 8 cache elements at src as T, into shared memory (the converting path).
template <typename T, typename KV>
__device__ __forceinline__ void stage8(T *dst, const KV *src) {
  float f[8];
  hrc_kv8(src, f);
  uint4 v;
  v.x = hrc_pack2<T>(f[0], f[1]);
  v.y = hrc_pack2<T>(f[2], f[3]);
  v.z = hrc_pack2<T>(f[4], f[5]);
  v.w = hrc_pack2<T>(f[6], f[7]);
  *reinterpret_cast<uint4 *>(dst) = v;
}

template <typename T, typename KV, int D>
__global__ void __launch_bounds__(kThreads, 2) attn_prefill_tc_kernel(const HrcPrefillParams p) {
  using S = Shape<D>;
  constexpr int kN = S::kN;
  extern __shared__ __align__(128) unsigned char smem[];
  T *s_q = reinterpret_cast<T *>(smem); // [kM][D]
  T *s_k = s_q + kM * D;                // [2][kN][D]
  T *s_v = s_k + 2 * kN * D;            // [2][kN][D]
  int *s_bad = reinterpret_cast<int *>(s_v + 2 * kN * D);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g4 = lane >> 2, t4 = lane & 3;
  const int64_t kvh = blockIdx.y, G = p.g;

  // ---- which sequence and tile: the largest b with start(b) <= slot ----
  const int64_t slot = (int64_t)gridDim.x - 1 - blockIdx.x;
  auto start = [&](int64_t b) { return (int64_t)p.qsl[b] * G / kM + b; };
  if (start(0) > slot) return;
  int64_t lo = 0, hi = p.B;
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (start(mid) <= slot)
      lo = mid;
    else
      hi = mid;
  }
  const int64_t b = lo, qbeg = p.qsl[b], qend = p.qsl[b + 1], qlen = qend - qbeg;
  const int64_t pair0 = (slot - start(b)) * kM, npairs = qlen * G;
  if (qlen <= 0 || pair0 >= npairs) return; // a spare slot (or a non-increasing qsl)
  const int64_t rows = min((int64_t)kM, npairs - pair0);
  const int64_t L = p.seq_lens[b];
  T *out = (T *)p.out;

  if (qbeg < 0 || qend > p.T || L < qlen || L > p.max_ctx) { // inconsistent metadata: NaN rows
    for (int64_t i = tid; i < rows * D; i += kThreads) {
      const int64_t pr = pair0 + i / D, tok = qbeg + pr / G;
      if (tok >= 0 && tok < p.T) out[(tok * p.hq + kvh * G + pr % G) * D + i % D] = hrc_nan<T>();
    }
    return;
  }
  const int64_t pos_base = L - qlen; // position of the sequence's first new token
  const int64_t pos_lo = pos_base + pair0 / G, pos_hi = pos_base + (pair0 + rows - 1) / G;
  const int64_t kbeg = p.window > 0 && pos_lo - p.window + 1 > 0 ? pos_lo - p.window + 1 : 0;
  const int64_t kend = pos_hi; // last key any row sees
  const int ntiles = (int)((kend - kbeg) / kN + 1);

  // Positions of this thread's two rows (g4 and g4 + 8 of its warp) and of its warp's rows.
  const int wr0 = warp * 16;
  const int64_t posA = wr0 + g4 < rows ? pos_base + (pair0 + wr0 + g4) / G : -1;
  const int64_t posB = wr0 + g4 + 8 < rows ? pos_base + (pair0 + wr0 + g4 + 8) / G : -1;
  const bool warp_live = wr0 < rows;
  const int64_t wpos_lo = pos_base + (pair0 + wr0) / G;
  const int64_t wpos_hi = pos_base + (pair0 + min((int64_t)wr0 + 15, rows - 1)) / G;

  if (tid == 0) *s_bad = 0;
  __syncthreads();

  // ---- Q tile (cp.async; rows past the CTA's pairs are zero) ----
  const T *q = (const T *)p.q;
  for (int i = tid; i < kM * S::kChunks; i += kThreads) {
    const int r = i / S::kChunks, c = (i % S::kChunks) * 8;
    const T *src = q;
    int bytes = 0;
    if (r < rows) {
      const int64_t pr = pair0 + r;
      src = q + (qbeg + pr / G) * p.qs + (kvh * G + pr % G) * D + c;
      bytes = 16;
    }
    hrc_cp_async16(s_q + swz<D>(r, c), src, bytes);
  }

  // ---- K/V tile staging: keys c0 .. c0 + kN - 1 into buffer buf ----
  const KV *kc = (const KV *)p.kc, *vc = (const KV *)p.vc;
  const int64_t nblk = hrc_mapped_blocks(p.bound, p.num_blocks);
  const int32_t *bt = p.bt + b * p.maxb;
  const unsigned bs = (unsigned)p.bs; // positions are < 2^31 (int32 seq_lens): 32-bit division
  auto stage = [&](int buf, int64_t c0) {
    T *dk = s_k + buf * kN * D, *dv = s_v + buf * kN * D;
    for (int i = tid; i < kN * S::kChunks; i += kThreads) {
      const int j = i / S::kChunks, c = (i % S::kChunks) * 8;
      const unsigned t = (unsigned)(c0 + j);
      int64_t off = -1;
      if (c0 + j <= kend) {
        const int32_t blk = bt[t / bs];
        if (blk >= 0 && blk < nblk)
          off = (((int64_t)blk * p.bs + t % bs) * p.hk + kvh) * D + c;
        else
          *s_bad = 1;
      }
      if constexpr (std::is_same<KV, T>::value) {
        hrc_cp_async16(dk + swz<D>(j, c), off >= 0 ? kc + off : kc, off >= 0 ? 16 : 0);
        hrc_cp_async16(dv + swz<D>(j, c), off >= 0 ? vc + off : vc, off >= 0 ? 16 : 0);
      } else if (off >= 0) {
        stage8<T>(dk + swz<D>(j, c), kc + off);
        stage8<T>(dv + swz<D>(j, c), vc + off);
      } else {
        *reinterpret_cast<uint4 *>(dk + swz<D>(j, c)) = make_uint4(0, 0, 0, 0);
        *reinterpret_cast<uint4 *>(dv + swz<D>(j, c)) = make_uint4(0, 0, 0, 0);
      }
    }
  };

  stage(0, kbeg);
  hrc_cp_async_commit(); // Q and the first K/V tile

  // ---- per-thread state: O (16 x D per warp), row max / partial row sum of rows A and B ----
  float o[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float mA = -INFINITY, mB = -INFINITY, lA = 0.0f, lB = 0.0f;
  uint32_t qf[S::kQInRegs ? D / 16 : 1][4];
  const bool capped = p.softcap > 0.0f;
  const float sc = capped ? p.scale / p.softcap : p.scale * kLog2e; // applied to the raw dot
  const float post = capped ? p.softcap * kLog2e : 1.0f;            // after tanh (capped only)
  // ldmatrix row addresses of this lane: A-style (rows lane & 15, chunk lane >> 4) and
  // B-style for K (rows (lane & 7) + 8 * (lane >> 4), chunk (lane >> 3) & 1).
  const int a_row = lane & 15, a_col = (lane >> 4) * 8;
  const int k_row = (lane & 7) + ((lane >> 4) << 3), k_col = ((lane >> 3) & 1) * 8;

  for (int it = 0; it < ntiles; it++) {
    const int buf = it & 1;
    const int64_t c0 = kbeg + (int64_t)it * kN;
    if (it + 1 < ntiles) {
      stage(buf ^ 1, c0 + kN);
      hrc_cp_async_commit();
      hrc_cp_async_wait<1>();
    } else {
      hrc_cp_async_wait<0>();
    }
    __syncthreads(); // tile `it` (and Q) visible to every warp
    if constexpr (S::kQInRegs) {
      if (it == 0) {
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) hrc_ldmatrix_x4(qf[kk], s_q + swz<D>(wr0 + a_row, kk * 16 + a_col));
      }
    }
    // Rows of this warp that see any key of the tile (causal: c0 <= their position; window:
    // the tile's last key after their first visible one).
    const bool any = warp_live && c0 <= wpos_hi && (p.window <= 0 || c0 + kN - 1 > wpos_lo - p.window);
    if (any) {
      const T *tk = s_k + buf * kN * D, *tv = s_v + buf * kN * D;
      float s[kN / 8][4];
#pragma unroll
      for (int n = 0; n < kN / 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) {
        uint32_t a[4];
        if constexpr (S::kQInRegs) {
#pragma unroll
          for (int i = 0; i < 4; i++) a[i] = qf[kk][i];
        } else {
          hrc_ldmatrix_x4(a, s_q + swz<D>(wr0 + a_row, kk * 16 + a_col));
        }
#pragma unroll
        for (int n2 = 0; n2 < kN / 16; n2++) {
          uint32_t kb[4];
          hrc_ldmatrix_x4(kb, tk + swz<D>(n2 * 16 + k_row, kk * 16 + k_col));
          hrc_mma16816<T>(s[2 * n2], a, kb[0], kb[1]);
          hrc_mma16816<T>(s[2 * n2 + 1], a, kb[2], kb[3]);
        }
      }
      // Scores in the log2 domain; mask where some row of the warp does not see the whole tile.
      const bool full = c0 + kN - 1 <= wpos_lo && (p.window <= 0 || c0 > wpos_hi - p.window);
      // Keys c0 + j with lo <= j <= hi are visible to a row (int32, clamped to the tile).
      const int hiA = (int)max(-1ll, min((long long)kN, (long long)(posA - c0)));
      const int hiB = (int)max(-1ll, min((long long)kN, (long long)(posB - c0)));
      const int loA = p.window > 0 ? (int)max(0ll, min((long long)kN, (long long)(posA - p.window + 1 - c0))) : 0;
      const int loB = p.window > 0 ? (int)max(0ll, min((long long)kN, (long long)(posB - p.window + 1 - c0))) : 0;
      float mxA = -INFINITY, mxB = -INFINITY;
#pragma unroll
      for (int n = 0; n < kN / 8; n++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
          float x = s[n][e] * sc;
          if (capped) x = tanhf(x) * post;
          if (!full) {
            const int j = n * 8 + 2 * t4 + (e & 1);
            if (e < 2 ? (j > hiA || j < loA) : (j > hiB || j < loB)) x = -INFINITY;
          }
          s[n][e] = x;
        }
        mxA = fmaxf(mxA, fmaxf(s[n][0], s[n][1]));
        mxB = fmaxf(mxB, fmaxf(s[n][2], s[n][3]));
      }
#pragma unroll
      for (int o2 = 1; o2 < 4; o2 <<= 1) { // the 4 lanes of a quad hold one row
        mxA = fmaxf(mxA, __shfl_xor_sync(0xffffffffu, mxA, o2));
        mxB = fmaxf(mxB, __shfl_xor_sync(0xffffffffu, mxB, o2));
      }
      const float nA = fmaxf(mA, mxA), nB = fmaxf(mB, mxB);
      const float bA = nA == -INFINITY ? 0.0f : nA, bB = nB == -INFINITY ? 0.0f : nB; // rows with no key yet
      const float cA = hrc_exp2(mA - bA), cB = hrc_exp2(mB - bB);
      mA = nA;
      mB = nB;
      float sA = 0.0f, sB = 0.0f;
      uint32_t pk[kN / 8][2]; // P as T pairs: [n][0] row A, [n][1] row B
#pragma unroll
      for (int n = 0; n < kN / 8; n++) {
        const float p0 = hrc_exp2(s[n][0] - bA), p1 = hrc_exp2(s[n][1] - bA);
        const float p2 = hrc_exp2(s[n][2] - bB), p3 = hrc_exp2(s[n][3] - bB);
        sA += p0 + p1;
        sB += p2 + p3;
        pk[n][0] = hrc_pack2<T>(p0, p1);
        pk[n][1] = hrc_pack2<T>(p2, p3);
      }
      lA = lA * cA + sA;
      lB = lB * cB + sB;
#pragma unroll
      for (int n = 0; n < D / 8; n++) {
        o[n][0] *= cA;
        o[n][1] *= cA;
        o[n][2] *= cB;
        o[n][3] *= cB;
      }
      // O += P V: the C fragments of key blocks 2j, 2j + 1 are the A fragment of k-step j.
#pragma unroll
      for (int j = 0; j < kN / 16; j++) {
        const uint32_t a[4] = {pk[2 * j][0], pk[2 * j][1], pk[2 * j + 1][0], pk[2 * j + 1][1]};
#pragma unroll
        for (int n2 = 0; n2 < D / 16; n2++) {
          uint32_t vb[4];
          hrc_ldmatrix_x4_trans(vb, tv + swz<D>(j * 16 + a_row, n2 * 16 + a_col));
          hrc_mma16816<T>(o[2 * n2], a, vb[0], vb[1]);
          hrc_mma16816<T>(o[2 * n2 + 1], a, vb[2], vb[3]);
        }
      }
    }
    __syncthreads(); // buffer `buf` is consumed before the next iteration stages into it
  }

  // ---- normalize and store: row sums are spread over the quad ----
#pragma unroll
  for (int o2 = 1; o2 < 4; o2 <<= 1) {
    lA += __shfl_xor_sync(0xffffffffu, lA, o2);
    lB += __shfl_xor_sync(0xffffffffu, lB, o2);
  }
  const bool bad = *s_bad != 0;
  const float nan = __int_as_float(0x7fc00000);
  const float fA = bad ? nan : p.v_scale / lA, fB = bad ? nan : p.v_scale / lB;
#pragma unroll
  for (int half = 0; half < 2; half++) {
    const int r = wr0 + g4 + 8 * half;
    if (r >= rows) continue;
    const int64_t pr = pair0 + r;
    T *dst = out + ((qbeg + pr / G) * p.hq + kvh * G + pr % G) * D + 2 * t4;
    const float f = half ? fB : fA;
#pragma unroll
    for (int n = 0; n < D / 8; n++)
      *reinterpret_cast<uint32_t *>(dst + n * 8) = hrc_pack2<T>(o[n][2 * half] * f, o[n][2 * half + 1] * f);
  }
}

template <typename T, typename KV, int D>
int launch(hrc_state *st, const char *call, const HrcPrefillParams &p) {
  const size_t smem = Shape<D>::kSmem;
  const int64_t slots = p.T * p.g / kM + p.B;
  if (slots > 0x7fffffff || p.hk > 65535)
    return hr_fail(HR_E_UNSUPPORTED, "%s: %lld row tiles x %lld KV heads exceed the grid limits", call,
                   (long long)slots, (long long)p.hk);
  // More than 48 KiB of dynamic shared memory needs the opt-in (cheap, per device).
  HRC_TRY(call, cudaFuncSetAttribute(attn_prefill_tc_kernel<T, KV, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     (int)smem));
  attn_prefill_tc_kernel<T, KV, D><<<dim3((unsigned)slots, (unsigned)p.hk), kThreads, smem, st->stream>>>(p);
  return hrc_launched(call, "attn_prefill_tc_kernel");
}

template <typename T, typename KV>
int launch_d(hrc_state *st, const char *call, const HrcPrefillParams &p) {
  if (p.d == 64) return launch<T, KV, 64>(st, call, p);
  if (p.d == 128) return launch<T, KV, 128>(st, call, p);
  return launch<T, KV, 256>(st, call, p);
}

} // namespace

bool hrc_prefill_tc_takes(const HrcPrefillParams &p, int64_t dtype) {
  const bool aligned = ((uint64_t)p.q | (uint64_t)p.out | (uint64_t)p.kc | (uint64_t)p.vc) % 16 == 0 && p.qs % 8 == 0;
  return (dtype == HR_DTYPE_F16 || dtype == HR_DTYPE_BF16) && (p.d == 64 || p.d == 128 || p.d == 256) && aligned;
}

int hrc_prefill_tc_launch(hrc_state *st, const char *call, const HrcPrefillParams &p, int64_t dtype, int64_t kv_dtype) {
  if (dtype == HR_DTYPE_BF16) {
    typedef __nv_bfloat16 T;
    HRC_KV_DISPATCH(kv_dtype, return launch_d<T, KV>(st, call, p));
  }
  typedef __half T;
  HRC_KV_DISPATCH(kv_dtype, return launch_d<T, KV>(st, call, p));
}
