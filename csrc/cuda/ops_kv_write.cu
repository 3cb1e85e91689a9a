// Writes key/value [T, Hk, D] (rows kv_stride apart) into the paged caches
// [num_blocks, block_size, Hk, D] at slot_mapping[t] = block * block_size + offset.
// Slot -1 is padding; any slot outside [0, num_blocks * block_size) is skipped as well (the
// host cannot check device-resident slots), and so is a slot in a block the KV range has
// reserved but not mapped (HrcKvBound: the bound is read at run time, also in graphs).
// One block per token. A cache of the activations' dtype is a copy (16-byte when the row size,
// stride and pointers allow); any other cache type stores value / scale rounded to nearest
// even (fp8: saturating), headroom.h "KV cache dtype".
#include "kv_types.cuh"

namespace {

template <typename T, bool VEC>
__global__ void __launch_bounds__(128)
    kv_copy_kernel(T *__restrict__ kc, T *__restrict__ vc, const T *__restrict__ key, const T *__restrict__ value,
                   const int32_t *__restrict__ slots, int64_t num_tokens, int64_t row, int64_t stride,
                   int64_t num_blocks, int64_t bs, const HrcKvBound bound) {
  const int64_t num_slots = hrc_mapped_blocks(bound, num_blocks) * bs;
  for (int64_t t = blockIdx.x; t < num_tokens; t += gridDim.x) {
    const int64_t s = slots[t];
    if (s < 0 || s >= num_slots) continue;
    const T *ks = key + t * stride, *vs = value + t * stride;
    T *kd = kc + s * row, *vd = vc + s * row;
    if (VEC) {
      const int64_t n16 = row * (int64_t)sizeof(T) / 16;
      for (int64_t i = threadIdx.x; i < n16; i += blockDim.x) {
        reinterpret_cast<uint4 *>(kd)[i] = reinterpret_cast<const uint4 *>(ks)[i];
        reinterpret_cast<uint4 *>(vd)[i] = reinterpret_cast<const uint4 *>(vs)[i];
      }
    } else {
      for (int64_t i = threadIdx.x; i < row; i += blockDim.x) {
        kd[i] = ks[i];
        vd[i] = vs[i];
      }
    }
  }
}

// Converting write: activations T -> cache KV, divided by the per-layer scale in fp32.
template <typename T, typename KV>
__global__ void __launch_bounds__(128)
    kv_convert_kernel(KV *__restrict__ kc, KV *__restrict__ vc, const T *__restrict__ key, const T *__restrict__ value,
                      const int32_t *__restrict__ slots, int64_t num_tokens, int64_t row, int64_t stride,
                      int64_t num_blocks, int64_t bs, const HrcKvBound bound, float k_scale, float v_scale) {
  const int64_t num_slots = hrc_mapped_blocks(bound, num_blocks) * bs;
  for (int64_t t = blockIdx.x; t < num_tokens; t += gridDim.x) {
    const int64_t s = slots[t];
    if (s < 0 || s >= num_slots) continue;
    const T *ks = key + t * stride, *vs = value + t * stride;
    KV *kd = kc + s * row, *vd = vc + s * row;
    for (int64_t i = threadIdx.x; i < row; i += blockDim.x) {
      kd[i] = hrc_kv_from_f<KV>(hrc_to_f(ks[i]) / k_scale);
      vd[i] = hrc_kv_from_f<KV>(hrc_to_f(vs[i]) / v_scale);
    }
  }
}

} // namespace

int hrc_exec_kv_write(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_kv_write";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  const int64_t dtype = a[HR_A_KVW_DTYPE], kv_dtype = a[HR_A_KVW_KVDTYPE];
  const float k_scale = (float)hr_bits_f64(a[HR_A_KVW_KSCALE]), v_scale = (float)hr_bits_f64(a[HR_A_KVW_VSCALE]);
  const int64_t esz = hrc_dtype_size(dtype), kv_esz = hrc_kv_size(kv_dtype);
  const int64_t row = a[HR_A_KVW_HK] * a[HR_A_KVW_D], stride = a[HR_A_KVW_STRIDE];
  const int64_t T_ = a[HR_A_KVW_T];
  const unsigned grid = hrc_grid(T_, 1, 65535 * 16);
  HrcKvBound bound;
  hrc_kv_bound(inst, (uint64_t)a[HR_A_KVW_KC], (uint64_t)a[HR_A_KVW_VC], (uint64_t)(a[HR_A_KVW_BS] * row * kv_esz),
               &bound);
  // The same type and scales of exactly 1: a plain copy (bit for bit, NaN payloads included).
  const bool copy = kv_dtype == dtype && k_scale == 1.0f && v_scale == 1.0f;
  if (copy) {
    const uint64_t ptrs =
        (uint64_t)a[HR_A_KVW_KC] | (uint64_t)a[HR_A_KVW_VC] | (uint64_t)a[HR_A_KVW_K] | (uint64_t)a[HR_A_KVW_V];
    const bool vec = (row * esz) % 16 == 0 && (stride * esz) % 16 == 0 && ptrs % 16 == 0;
    HRC_DISPATCH(dtype, {
      auto kern = vec ? kv_copy_kernel<T, true> : kv_copy_kernel<T, false>;
      kern<<<grid, 128, 0, st->stream>>>(HR_PTR(a, HR_A_KVW_KC, T), HR_PTR(a, HR_A_KVW_VC, T),
                                         HR_PTR(a, HR_A_KVW_K, const T), HR_PTR(a, HR_A_KVW_V, const T),
                                         HR_PTR(a, HR_A_KVW_SLOTS, const int32_t), T_, row, stride, a[HR_A_KVW_NBLOCKS],
                                         a[HR_A_KVW_BS], bound);
      return hrc_launched(CALL, "kv_copy_kernel");
    });
  }
  HRC_DISPATCH(dtype, {
    HRC_KV_DISPATCH(kv_dtype, {
      kv_convert_kernel<T, KV><<<grid, 128, 0, st->stream>>>(
          HR_PTR(a, HR_A_KVW_KC, KV), HR_PTR(a, HR_A_KVW_VC, KV), HR_PTR(a, HR_A_KVW_K, const T),
          HR_PTR(a, HR_A_KVW_V, const T), HR_PTR(a, HR_A_KVW_SLOTS, const int32_t), T_, row, stride,
          a[HR_A_KVW_NBLOCKS], a[HR_A_KVW_BS], bound, k_scale, v_scale);
      return hrc_launched(CALL, "kv_convert_kernel");
    });
  });
}
