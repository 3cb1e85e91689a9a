// Writes key/value [T, Hk, D] (rows kv_stride apart) into the paged caches
// [num_blocks, block_size, Hk, D] at slot_mapping[t] = block * block_size + offset.
// Slot -1 is padding; any slot outside [0, num_blocks * block_size) is skipped as well (the
// host cannot check device-resident slots), and so is a slot in a block the KV range has
// reserved but not mapped (HrcKvBound: the bound is read at run time, also in graphs). One block per token, 16-byte copies when the
// row size, stride and pointers allow.
#include "cuda_common.cuh"

template <typename T, bool VEC>
__global__ void __launch_bounds__(128)
    kv_write_kernel(T *__restrict__ kc, T *__restrict__ vc, const T *__restrict__ key, const T *__restrict__ value,
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

int hrc_exec_kv_write(hr_instance *inst, const int64_t *a) {
  static const char *const CALL = "hr_op_kv_write";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s == HR_OK) s = hr_need_kv_dtype_eq(CALL, a[HR_A_KVW_DTYPE], a[HR_A_KVW_KVDTYPE]);
  if (s != HR_OK) return s;
  const int64_t esz = hrc_dtype_size(a[HR_A_KVW_DTYPE]);
  const int64_t row = a[HR_A_KVW_HK] * a[HR_A_KVW_D], stride = a[HR_A_KVW_STRIDE];
  const uint64_t ptrs =
      (uint64_t)a[HR_A_KVW_KC] | (uint64_t)a[HR_A_KVW_VC] | (uint64_t)a[HR_A_KVW_K] | (uint64_t)a[HR_A_KVW_V];
  const bool vec = (row * esz) % 16 == 0 && (stride * esz) % 16 == 0 && ptrs % 16 == 0;
  const int64_t T_ = a[HR_A_KVW_T];
  const unsigned grid = hrc_grid(T_, 1, 65535 * 16);
  HrcKvBound bound;
  hrc_kv_bound(inst, (uint64_t)a[HR_A_KVW_KC], (uint64_t)a[HR_A_KVW_VC], (uint64_t)(a[HR_A_KVW_BS] * row * esz),
               &bound);
  HRC_DISPATCH(a[HR_A_KVW_DTYPE], {
    auto kern = vec ? kv_write_kernel<T, true> : kv_write_kernel<T, false>;
    kern<<<grid, 128, 0, st->stream>>>(HR_PTR(a, HR_A_KVW_KC, T), HR_PTR(a, HR_A_KVW_VC, T),
                                       HR_PTR(a, HR_A_KVW_K, const T), HR_PTR(a, HR_A_KVW_V, const T),
                                       HR_PTR(a, HR_A_KVW_SLOTS, const int32_t), T_, row, stride, a[HR_A_KVW_NBLOCKS],
                                       a[HR_A_KVW_BS], bound);
    return hrc_launched(CALL, "kv_write_kernel");
  });
}
