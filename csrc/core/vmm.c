/*
 * Reserve-then-map ranges (hr_vmm_*), used for the KV cache: the address range exists from
 * start-up (graphs are captured against it), physical memory is committed last, sized to
 * what is measurably left. A range is a number of equal slices (one per layer and K/V) whose
 * mapped prefixes grow together. The backend does the mapping; this file keeps per-instance
 * bookkeeping and validation. Instances are used from one thread at a time (the engine).
 */
#include <string.h>

#include "device.h"
#include "status.h"

#define GET(handle, call)                                \
  hr_clear_error();                                      \
  hr_instance *inst = hr_instance_get((handle), (call)); \
  if (!inst) return HR_E_INVALID

static hr_vmm_range *find(hr_instance *inst, uint64_t base) {
  for (int i = 0; i < HR_MAX_VMM_RANGES; i++)
    if (inst->vmm[i].base == base && base != 0) return &inst->vmm[i];
  return NULL;
}

int hr_vmm_owns_range(hr_instance *inst, uint64_t ptr, uint64_t bytes) {
  for (int i = 0; i < HR_MAX_VMM_RANGES; i++) {
    const hr_vmm_range *r = &inst->vmm[i];
    if (!r->base || ptr < r->base || bytes > r->mapped) continue;
    uint64_t off = ptr - r->base;
    uint64_t slice = off / r->slice_stride, in = off % r->slice_stride;
    if (slice < (uint64_t)r->num_slices && in <= r->mapped - bytes) return 1;
  }
  return 0;
}

void hr_vmm_release_all(hr_instance *inst) {
  for (int i = 0; i < HR_MAX_VMM_RANGES; i++) {
    hr_vmm_range *r = &inst->vmm[i];
    if (r->base) hrb_vmm_release(inst->dev, r->state, r->base, r->slice_stride, r->num_slices, r->mapped);
    memset(r, 0, sizeof *r);
  }
}

int hr_vmm_reserve(uint64_t handle, uint64_t slice_bytes, int64_t num_slices, uint64_t *base_out,
                   uint64_t *granularity_out, uint64_t *slice_stride_out) {
  GET(handle, "hr_vmm_reserve");
  HR_CHECK_PTR(base_out, "hr_vmm_reserve");
  HR_CHECK_PTR(granularity_out, "hr_vmm_reserve");
  HR_CHECK_PTR(slice_stride_out, "hr_vmm_reserve");
  if (slice_bytes == 0 || num_slices <= 0 || num_slices > (1 << 20))
    return hr_fail(HR_E_INVALID, "hr_vmm_reserve: slice_bytes must be > 0 and num_slices 1..2^20 (got %llu, %lld)",
                   (hr_ull)slice_bytes, (long long)num_slices);
  hr_vmm_range *slot = NULL;
  for (int i = 0; i < HR_MAX_VMM_RANGES && !slot; i++)
    if (!inst->vmm[i].base) slot = &inst->vmm[i];
  if (!slot) return hr_fail(HR_E_STATE, "hr_vmm_reserve: this instance already holds %d ranges", HR_MAX_VMM_RANGES);
  uint64_t gran = 0;
  int st = hrb_vmm_granularity(inst->dev, &gran);
  if (st != HR_OK) return st;
  uint64_t stride = (slice_bytes + gran - 1) / gran * gran;
  if (stride < slice_bytes || stride > UINT64_MAX / (uint64_t)num_slices)
    return hr_fail(HR_E_INVALID, "hr_vmm_reserve: %lld slices of %llu bytes overflow", (long long)num_slices,
                   (hr_ull)slice_bytes);
  uint64_t base = 0;
  void *state = NULL;
  st = hrb_vmm_reserve(inst->dev, stride, num_slices, &base, &state);
  if (st != HR_OK) return st;
  slot->base = base;
  slot->slice_stride = stride;
  slot->num_slices = num_slices;
  slot->granularity = gran;
  slot->mapped = 0;
  slot->state = state;
  *base_out = base;
  *granularity_out = gran;
  *slice_stride_out = stride;
  return HR_OK;
}

int hr_vmm_map(uint64_t handle, uint64_t base, uint64_t bytes) {
  GET(handle, "hr_vmm_map");
  hr_vmm_range *r = find(inst, base);
  if (!r) return hr_fail(HR_E_INVALID, "hr_vmm_map: 0x%llx is not a reserved range of this instance", (hr_ull)base);
  if (bytes % r->granularity)
    return hr_fail(HR_E_INVALID, "hr_vmm_map: %llu bytes is not a multiple of the granularity %llu", (hr_ull)bytes,
                   (hr_ull)r->granularity);
  if (bytes > r->slice_stride)
    return hr_fail(HR_E_INVALID, "hr_vmm_map: %llu bytes per slice exceed the reserved slice of %llu", (hr_ull)bytes,
                   (hr_ull)r->slice_stride);
  if (bytes == r->mapped) return HR_OK;
  int st = hrb_vmm_set_mapped(inst->dev, r->state, r->base, r->slice_stride, r->num_slices, r->mapped, bytes);
  if (st == HR_OK) r->mapped = bytes;
  return st;
}

int hr_vmm_release(uint64_t handle, uint64_t base) {
  GET(handle, "hr_vmm_release");
  hr_vmm_range *r = find(inst, base);
  if (!r) return hr_fail(HR_E_INVALID, "hr_vmm_release: 0x%llx is not a reserved range of this instance", (hr_ull)base);
  int st = hrb_vmm_release(inst->dev, r->state, r->base, r->slice_stride, r->num_slices, r->mapped);
  memset(r, 0, sizeof *r);
  return st;
}

int hr_vmm_mapped_bytes(uint64_t handle, uint64_t *bytes_out) {
  GET(handle, "hr_vmm_mapped_bytes");
  HR_CHECK_PTR(bytes_out, "hr_vmm_mapped_bytes");
  uint64_t sum = 0;
  for (int i = 0; i < HR_MAX_VMM_RANGES; i++) sum += inst->vmm[i].mapped * (uint64_t)inst->vmm[i].num_slices;
  *bytes_out = sum;
  return HR_OK;
}
