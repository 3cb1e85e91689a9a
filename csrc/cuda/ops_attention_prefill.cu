// Paged prefill attention with causal mask and cached prefix (chunked prefill): decodes the
// op's arguments and launches the tensor-core kernel (ops_attention_prefill_tc.cu) for f16/bf16
// activations with head_dim 64/128/256; everything else (fp32 activations, other head dims,
// unaligned buffers, HEADROOM_CUDA_PREFILL=simt) runs this file's kernel:
// a straightforward tiled online-softmax kernel on CUDA cores, fp32 math. The cache may hold any
// KV dtype (kv_types.cuh): elements are dequantized as they are staged, k_scale is folded into
// the query scale and v_scale into the output.
//
// Grid: (tiles of kQ consecutive query rows of the flat [num_tokens] range, query heads).
// A tile may span several sequences: the CTA walks its rows, finds each row's sequence by a
// binary search in query_start_loc (device memory, never read by the host) and processes
// the run of rows that belongs to that sequence. Rows covered by no sequence are untouched.
// For a run: Q rows (pre-scaled) go to shared memory; keys 0 .. position of the run's last
// row are walked in chunks of kK keys, looked up through the block table; K and V chunks are
// staged in shared memory (rows padded by one float against bank conflicts); scores are
// masked causally (key t is visible to the row at position pos iff t <= pos); per-row online
// softmax (one warp per row, one lane per key) rescales the accumulators in shared memory.
// Inconsistent metadata (a sequence with seq_len < its new tokens, seq_len above the cache,
// a block id out of range) makes the affected rows NaN instead of reading out of bounds.
#include <stdlib.h>
#include <string.h>

#include "attention_prefill.cuh"
#include "kv_types.cuh"

namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kQ = 16; // query rows per CTA
constexpr int kK = 32; // keys per chunk (one per lane in the softmax)

typedef HrcPrefillParams PreParams;

size_t smem_bytes(int64_t d) {
  return sizeof(int64_t) * kK + sizeof(float) * (size_t)(2 * kQ * d + 2 * kK * (d + 1) + kQ * kK + 3 * kQ) +
         sizeof(int);
}

template <typename T, typename KV>
__global__ void __launch_bounds__(kThreads) attn_prefill_kernel(const PreParams p) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int64_t d = p.d, dp = d + 1;
  int64_t *s_off = reinterpret_cast<int64_t *>(smem);              // [kK]
  float *s_q = reinterpret_cast<float *>(s_off + kK);              // [kQ][d]
  float *s_acc = s_q + kQ * d;                                     // [kQ][d]
  float *s_k = s_acc + kQ * d;                                     // [kK][d + 1]
  float *s_v = s_k + kK * dp;                                      // [kK][d + 1]
  float *s_s = s_v + kK * dp;                                      // [kQ][kK]
  float *s_m = s_s + kQ * kK, *s_l = s_m + kQ, *s_corr = s_l + kQ; // [kQ] each
  int *s_bad = reinterpret_cast<int *>(s_corr + kQ);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t h = blockIdx.y, kvh = h / p.g;
  const int64_t r_begin = (int64_t)blockIdx.x * kQ, r_end = min(r_begin + kQ, p.T);
  const T *q = (const T *)p.q;
  const KV *kc = (const KV *)p.kc, *vc = (const KV *)p.vc;
  T *out = (T *)p.out;
  const int64_t row_elems = p.hk * d;
  const float nan = __int_as_float(0x7fc00000);
  const int64_t nblk = hrc_mapped_blocks(p.bound, p.num_blocks);

  int64_t r = r_begin;
  while (r < r_end) {
    // Sequence of row r: the largest b with qsl[b] <= r, then check r < qsl[b + 1].
    if (p.qsl[0] > r) {
      r++;
      continue;
    }
    int64_t lo = 0, hi = p.B;
    while (hi - lo > 1) {
      const int64_t mid = (lo + hi) / 2;
      if (p.qsl[mid] <= r)
        lo = mid;
      else
        hi = mid;
    }
    const int64_t b = lo, qbeg = p.qsl[b], qend = p.qsl[b + 1];
    if (!(qbeg <= r && r < qend)) { // not covered (past qsl[B]) or inconsistent table
      r++;
      continue;
    }
    const int64_t ra = r, rb = min(r_end, qend), nr = rb - ra;
    r = rb;
    const int64_t qlen = qend - qbeg, L = p.seq_lens[b];
    const bool bad_meta = qbeg < 0 || qend > p.T || L < qlen || L > p.max_ctx;
    if (bad_meta) {
      for (int64_t i = tid; i < nr * d; i += kThreads) out[((ra + i / d) * p.hq + h) * d + i % d] = hrc_nan<T>();
      continue;
    }
    const int64_t pos0 = L - qlen + (ra - qbeg); // position of row ra; row i is at pos0 + i
    const int64_t last = pos0 + nr - 1;

    __syncthreads(); // shared memory of the previous run is no longer read
    for (int64_t i = tid; i < kQ * d; i += kThreads) {
      const int64_t row = i / d, e = i % d;
      s_q[i] = row < nr ? hrc_to_f(q[(ra + row) * p.qs + h * d + e]) * p.scale : 0.0f;
      s_acc[i] = 0.0f;
    }
    if (tid < kQ) {
      s_m[tid] = -INFINITY;
      s_l[tid] = 0.0f;
    }
    if (tid == 0) *s_bad = 0;

    // keys before the first row's window are never visible to the run
    const int64_t first_key = p.window > 0 && pos0 - p.window + 1 > 0 ? pos0 - p.window + 1 : 0;
    for (int64_t c0 = first_key; c0 <= last; c0 += kK) {
      const int64_t nk = min((int64_t)kK, last + 1 - c0);
      __syncthreads(); // previous chunk's K/V/scores are consumed
      if (tid < kK) {
        int64_t off = -1;
        if (tid < nk) {
          const int64_t t = c0 + tid;
          const int32_t blk = p.bt[b * p.maxb + t / p.bs];
          if (blk >= 0 && blk < nblk)
            off = ((int64_t)blk * p.bs + t % p.bs) * row_elems + kvh * d;
          else
            *s_bad = 1;
        }
        s_off[tid] = off;
      }
      __syncthreads();
      for (int64_t i = tid; i < kK * d; i += kThreads) {
        const int64_t j = i / d, e = i % d, off = s_off[j];
        s_k[j * dp + e] = off >= 0 ? hrc_to_f(kc[off + e]) : 0.0f;
        s_v[j * dp + e] = off >= 0 ? hrc_to_f(vc[off + e]) : 0.0f;
      }
      __syncthreads();
      for (int i = tid; i < kQ * kK; i += kThreads) {
        const int row = i / kK, j = i % kK;
        const int64_t t = c0 + j;
        float sc = -INFINITY;
        const bool in_window = p.window <= 0 || pos0 + row - t < p.window;
        if (row < nr && j < nk && t <= pos0 + row && in_window && s_off[j] >= 0) {
          const float *qr = s_q + row * d, *kr = s_k + j * dp;
          float dot = 0.0f;
          for (int64_t e = 0; e < d; e++) dot = fmaf(qr[e], kr[e], dot);
          sc = p.softcap > 0.0f ? p.softcap * tanhf(dot / p.softcap) : dot;
        }
        s_s[i] = sc;
      }
      __syncthreads();
      for (int row = warp; row < kQ; row += kWarps) {
        const float v = s_s[row * kK + lane];
        float mx = v;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
        const float m_old = s_m[row], m_new = fmaxf(m_old, mx);
        float corr = 1.0f, pr = 0.0f;
        if (m_new != -INFINITY) {
          corr = expf(m_old - m_new); // 0 when m_old = -inf
          pr = expf(v - m_new);       // 0 for masked keys
        }
        s_s[row * kK + lane] = pr;
        float sum = pr;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        if (lane == 0) {
          s_m[row] = m_new;
          s_l[row] = s_l[row] * corr + sum;
          s_corr[row] = corr;
        }
      }
      __syncthreads();
      for (int64_t i = tid; i < kQ * d; i += kThreads) {
        const int64_t row = i / d, e = i % d;
        const float *pr = s_s + row * kK;
        float acc = s_acc[i] * s_corr[row];
        for (int64_t j = 0; j < nk; j++) acc = fmaf(pr[j], s_v[j * dp + e], acc);
        s_acc[i] = acc;
      }
    }
    __syncthreads();
    const bool bad = *s_bad != 0;
    for (int64_t i = tid; i < nr * d; i += kThreads) {
      const int64_t row = i / d, e = i % d;
      out[((ra + row) * p.hq + h) * d + e] = hrc_from_f<T>(bad ? nan : s_acc[i] / s_l[row] * p.v_scale);
    }
  }
}

// HEADROOM_CUDA_PREFILL=simt keeps every call on this CUDA-core kernel (the GPU suite compares
// both kernels with the reference; the bench measures this one as the baseline). Read per
// call so that a test can switch within one process; a getenv is ~0.1 us next to a launch.
bool force_simt() {
  const char *e = getenv("HEADROOM_CUDA_PREFILL");
  return e && !strcmp(e, "simt");
}

} // namespace

int hrc_exec_attn_prefill(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_attention_prefill";
  PreParams p;
  p.out = HR_PTR(a, HR_A_PRE_OUT, void);
  p.q = HR_PTR(a, HR_A_PRE_Q, const void);
  p.kc = HR_PTR(a, HR_A_PRE_KC, const void);
  p.vc = HR_PTR(a, HR_A_PRE_VC, const void);
  p.bt = HR_PTR(a, HR_A_PRE_BT, const int32_t);
  p.seq_lens = HR_PTR(a, HR_A_PRE_SEQLENS, const int32_t);
  p.qsl = HR_PTR(a, HR_A_PRE_QSL, const int32_t);
  p.B = a[HR_A_PRE_B];
  p.T = a[HR_A_PRE_T];
  p.hq = a[HR_A_PRE_HQ];
  p.hk = a[HR_A_PRE_HK];
  p.d = a[HR_A_PRE_D];
  p.num_blocks = a[HR_A_PRE_NBLOCKS];
  p.bs = a[HR_A_PRE_BS];
  p.maxb = a[HR_A_PRE_MAXBLOCKS];
  p.qs = a[HR_A_PRE_QSTRIDE];
  p.scale = (float)(hr_bits_f64(a[HR_A_PRE_SCALE]) * hr_bits_f64(a[HR_A_PRE_KSCALE]));
  p.v_scale = (float)hr_bits_f64(a[HR_A_PRE_VSCALE]);
  const int64_t kv_dtype = a[HR_A_PRE_KVDTYPE];
  p.window = a[HR_A_PRE_WINDOW];
  p.softcap = (float)hr_bits_f64(a[HR_A_PRE_SOFTCAP]);
  p.max_ctx = p.maxb * p.bs;
  p.g = p.hq / p.hk;
  if (p.d > 256)
    return hr_fail(HR_E_UNSUPPORTED, "%s: the CUDA backend supports head_dim <= 256 (got %lld)", CALL, (long long)p.d);
  const int64_t tiles = (p.T + kQ - 1) / kQ;
  if (tiles > 0x7fffffff || p.hq > 65535)
    return hr_fail(HR_E_UNSUPPORTED, "%s: %lld token tiles x %lld query heads exceed the grid limits", CALL,
                   (long long)tiles, (long long)p.hq);
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  hrc_kv_bound(inst, (uint64_t)p.kc, (uint64_t)p.vc, (uint64_t)(p.bs * p.hk * p.d * hrc_kv_size(kv_dtype)), &p.bound);
  if (hrc_prefill_tc_takes(p, a[HR_A_PRE_DTYPE]) && !force_simt())
    return hrc_prefill_tc_launch(st, CALL, p, a[HR_A_PRE_DTYPE], kv_dtype);
  const size_t smem = smem_bytes(p.d);
  const dim3 grid((unsigned)tiles, (unsigned)p.hq);
  HRC_DISPATCH(a[HR_A_PRE_DTYPE], {
    HRC_KV_DISPATCH(kv_dtype, {
      // More than 48 KiB of dynamic shared memory needs the opt-in (cheap, per device).
      HRC_TRY(CALL,
              cudaFuncSetAttribute(attn_prefill_kernel<T, KV>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
      attn_prefill_kernel<T, KV><<<grid, kThreads, smem, st->stream>>>(p);
      return hrc_launched(CALL, "attn_prefill_kernel");
    });
  });
}
