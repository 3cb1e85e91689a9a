// Sampling: hr_op_sample / hr_op_argmax (the rule is stated in headroom.h "sampling"; the CPU
// executor csrc/cpu/ops_sample.c is the reference). One block of 512 threads per row
// (grid-stride over rows); nothing is sorted and no workspace is needed:
//   1. argmax: block max-reduction of (key << 32 | ~id) (largest key, lowest id);
//   greedy rows (temperature < 1e-5, NaN, or an infinite max) stop here;
//   2. top-k: radix select of the k-th largest key, 4 passes of 8 bits, each a 256-bin count
//      histogram in shared memory walked from the top by one thread;
//   3. top-p: the same radix select weighted by the integer weights q (exact uint64 sums,
//      so the order of the atomic adds does not matter) over the top-k survivors;
//   4. draw: every thread owns a contiguous chunk of token ids; two block-wide exclusive
//      scans (ties of the cut key, survivor mass) order the chunks, and the one thread whose
//      chunk holds the draw position walks it in ascending id.
// Keys and weights come from csrc/core/sample_rule.h (__fadd_rn/__fmul_rn, no contraction),
// so the result equals the CPU executor's bit for bit. Every pass reads the row again (about
// 12 passes with top-k and top-p on); weights are recomputed, never stored.
#include "cuda_common.cuh"

extern "C" {
#include "../core/sample_rule.h"
}

#define SMP_THREADS 512

namespace {

// hist[bin] += w for the active lanes of a warp, one atomic per distinct bin: similar logits
// share their top key bits, so without aggregation up to 32 lanes hit one shared counter per
// step (serialized atomics). Must be reached by all 32 lanes (the loops below are
// warp-uniform); inactive lanes pass active = false. Sums are exact uint64, so the order
// does not matter.
__device__ __forceinline__ void hist_add_warp(unsigned long long *hist, unsigned bin, uint64_t w, bool active) {
  const unsigned mask = __ballot_sync(0xffffffffu, active);
  if (!active) return;
  const unsigned peers = __match_any_sync(mask, bin);
  const int lane = threadIdx.x & 31;
  uint64_t sum = 0;
  for (unsigned rest = peers; rest; rest &= rest - 1) sum += __shfl_sync(peers, w, __ffs(rest) - 1);
  if (lane == __ffs(peers) - 1) atomicAdd(&hist[bin], (unsigned long long)sum);
}

__device__ __forceinline__ uint64_t warp_max_u64(uint64_t v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const uint64_t w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}
__device__ __forceinline__ uint64_t warp_sum_u64(uint64_t v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Block-wide max / sum of one uint64 per thread, result in every thread. red: 32 slots.
__device__ uint64_t block_max_u64(uint64_t v, uint64_t *red) {
  v = warp_max_u64(v);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
  __syncthreads(); // red may still be read by a previous call
  if (lane == 0) red[warp] = v;
  __syncthreads();
  return warp_max_u64(lane < nw ? red[lane] : 0);
}
__device__ uint64_t block_sum_u64(uint64_t v, uint64_t *red) {
  v = warp_sum_u64(v);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  return warp_sum_u64(lane < nw ? red[lane] : 0);
}

// Exclusive prefix sum over threads in threadIdx order; *total = the block's sum.
__device__ uint64_t block_excl_scan_u64(uint64_t v, uint64_t *red, uint64_t *total) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
  uint64_t x = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const uint64_t y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  __syncthreads();
  if (lane == 31) red[warp] = x;
  __syncthreads();
  if (warp == 0) {
    uint64_t w = lane < nw ? red[lane] : 0;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const uint64_t y = __shfl_up_sync(0xffffffffu, w, o);
      if (lane >= o) w += y;
    }
    red[lane] = w; // inclusive prefix over warps
  }
  __syncthreads();
  *total = red[nw - 1];
  return (warp ? red[warp - 1] : 0) + x - v;
}

__device__ __forceinline__ uint32_t mask_above(int shift) { return shift >= 24 ? 0u : ~((1u << (shift + 8)) - 1u); }

struct SelectState {
  uint32_t prefix;
  uint64_t rem; // count (top-k) or mass (top-p) still needed inside the chosen bin
  uint64_t gt;  // count / mass of the higher bins, summed over the passes
};

// One thread: picks the highest bin b with sum(hist[b..255]) >= rem (bin 0 at worst), as the
// CPU executor's walk does.
__device__ void walk_bins(const uint64_t *hist, int shift, SelectState *s) {
  uint64_t acc = 0;
  int b = 255;
  for (; b > 0; b--) {
    if (acc + hist[b] >= s->rem) break;
    acc += hist[b];
  }
  s->rem -= acc;
  s->gt += acc;
  s->prefix |= (uint32_t)b << shift;
}

__global__ void __launch_bounds__(SMP_THREADS)
    sample_kernel(int32_t *out, const float *logits, const float *temperature, const int32_t *top_k, const float *top_p,
                  const float *uniform, int64_t rows, int64_t v) {
  __shared__ uint64_t hist[256];
  __shared__ uint64_t red[32];
  __shared__ SelectState sel;
  __shared__ int found;
  const int tid = threadIdx.x, nthr = blockDim.x;

  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float *l = logits + row * v;

    // 1. argmax (lowest id of the largest key); ids < 2^23 fit the low 32 bits
    uint64_t best = 0;
    for (int64_t i = tid; i < v; i += nthr) {
      const uint64_t p = ((uint64_t)hr_sr_key(l[i]) << 32) | (uint64_t)(0xffffffffu - (uint32_t)i);
      best = p > best ? p : best;
    }
    best = block_max_u64(best, red);
    const uint32_t kmax = (uint32_t)(best >> 32);
    const int32_t amax = (int32_t)(0xffffffffu - (uint32_t)best);
    const float temp = temperature ? temperature[row] : 0.0f;
    if (!(temp >= HR_SAMPLE_GREEDY_T) || kmax == HR_SR_KEY_NEG_INF || kmax == HR_SR_KEY_POS_INF) {
      if (tid == 0) out[row] = amax;
      continue; // block-uniform
    }
    const float m = hr_sr_unkey(kmax), inv_t = hr_sr_inv_t(temp);

    // 2. top-k: K = 0, n = 0 when off (every token has a key > 0)
    uint32_t kk = 0;
    uint64_t nk = 0;
    const int64_t k = hr_sr_top_k(top_k[row], v);
    if (k > 0) {
      if (tid == 0) sel = SelectState{0u, (uint64_t)k, 0};
      for (int shift = 24; shift >= 0; shift -= 8) {
        for (int b = tid; b < 256; b += nthr) hist[b] = 0;
        __syncthreads(); // also publishes sel
        const uint32_t hm = mask_above(shift), prefix = sel.prefix;
        for (int64_t i0 = 0; i0 < v; i0 += nthr) { // warp-uniform trip count (hist_add_warp)
          const int64_t i = i0 + tid;
          const uint32_t key = i < v ? hr_sr_key(l[i]) : 0u;
          hist_add_warp((unsigned long long *)hist, (key >> shift) & 255u, 1u, i < v && (key & hm) == prefix);
        }
        __syncthreads();
        if (tid == 0) walk_bins(hist, shift, &sel);
        __syncthreads();
      }
      kk = sel.prefix;
      nk = sel.rem;
    }
    const uint64_t qk = hr_sr_weight_key(kk, m, inv_t);

    // 3. top-p over the top-k survivors
    uint32_t kp = kk;
    uint64_t np = nk;
    const float p = top_p[row];
    if (hr_sr_top_p_on(p)) {
      uint64_t part = 0;
      for (int64_t i = tid; i < v; i += nthr) {
        const float li = l[i];
        if (hr_sr_key(li) > kk) part += hr_sr_weight(li, m, inv_t);
      }
      const uint64_t total_k = block_sum_u64(part, red) + nk * qk;
      const uint64_t target = hr_sr_top_p_target(p, total_k);
      __syncthreads(); // every thread has read sel (top-k) before it is reset
      if (tid == 0) sel = SelectState{0u, target, 0};
      for (int shift = 24; shift >= 0; shift -= 8) {
        for (int b = tid; b < 256; b += nthr) hist[b] = 0;
        __syncthreads();
        const uint32_t hm = mask_above(shift), prefix = sel.prefix;
        if (tid == 0 && (kk & hm) == prefix) atomicAdd((unsigned long long *)&hist[(kk >> shift) & 255u], nk * qk);
        for (int64_t i0 = 0; i0 < v; i0 += nthr) { // warp-uniform trip count (hist_add_warp)
          const int64_t i = i0 + tid;
          const float li = i < v ? l[i] : 0.0f;
          const uint32_t key = i < v ? hr_sr_key(li) : 0u;
          const bool in = i < v && key > kk && (key & hm) == prefix;
          const uint64_t w = in ? hr_sr_weight(li, m, inv_t) : 0u;
          hist_add_warp((unsigned long long *)hist, (key >> shift) & 255u, w, in && w != 0);
        }
        __syncthreads();
        if (tid == 0) walk_bins(hist, shift, &sel);
        __syncthreads();
      }
      kp = sel.prefix;
      const uint64_t qp = hr_sr_weight_key(kp, m, inv_t);
      np = qp ? (sel.rem + qp - 1) / qp : ~0ull; // sel.rem = target - mass above kp
      if (kp == kk && np > nk) np = nk;
    }

    // 4. draw: thread t owns ids [t * chunk, (t + 1) * chunk)
    const int64_t chunk = (v + nthr - 1) / nthr;
    const int64_t i0 = (int64_t)tid * chunk < v ? (int64_t)tid * chunk : v;
    const int64_t i1 = i0 + chunk < v ? i0 + chunk : v;
    uint64_t my_ties = 0;
    for (int64_t i = i0; i < i1; i++) my_ties += hr_sr_key(l[i]) == kp;
    uint64_t all_ties = 0;
    const uint64_t ties_before = block_excl_scan_u64(my_ties, red, &all_ties);
    uint64_t my_mass = 0, t = ties_before;
    for (int64_t i = i0; i < i1; i++) {
      const float li = l[i];
      const uint32_t key = hr_sr_key(li);
      if (key > kp || (key == kp && t++ < np)) my_mass += hr_sr_weight(li, m, inv_t);
    }
    uint64_t total = 0;
    const uint64_t mass_before = block_excl_scan_u64(my_mass, red, &total);
    const uint64_t r = hr_sr_draw(uniform[row], total);
    if (tid == 0) found = 0;
    __syncthreads();
    if (mass_before <= r && r < mass_before + my_mass) {
      uint64_t acc = mass_before;
      t = ties_before;
      for (int64_t i = i0; i < i1; i++) {
        const float li = l[i];
        const uint32_t key = hr_sr_key(li);
        if (key > kp || (key == kp && t++ < np)) {
          acc += hr_sr_weight(li, m, inv_t);
          if (acc > r) {
            out[row] = (int32_t)i;
            found = 1;
            break;
          }
        }
      }
    }
    __syncthreads();
    if (tid == 0 && !found) out[row] = amax; // not reached: the top token survives with q = 2^40
    __syncthreads();                         // `found` and the shared state are reused by the next row
  }
}

} // namespace

int hrc_exec_sample(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_sample";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  const int64_t rows = a[HR_A_SMP_ROWS];
  const unsigned grid = hrc_grid(rows, 1, 65535);
  sample_kernel<<<grid, SMP_THREADS, 0, st->stream>>>(
      HR_PTR(a, HR_A_SMP_OUT, int32_t), HR_PTR(a, HR_A_SMP_LOGITS, const float), HR_PTR(a, HR_A_SMP_TEMP, const float),
      HR_PTR(a, HR_A_SMP_TOPK, const int32_t), HR_PTR(a, HR_A_SMP_TOPP, const float),
      HR_PTR(a, HR_A_SMP_U, const float), rows, a[HR_A_SMP_V]);
  return hrc_launched(CALL, "sample_kernel");
}
