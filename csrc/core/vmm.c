/*
 * Reserve-then-map ranges (hr_vmm_*), used for the KV cache: the address range exists from
 * start-up (graphs are captured against it), physical memory is committed last, sized to
 * what is measurably left. The backend does the mapping; this file keeps per-instance
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
    if (r->base && ptr >= r->base && bytes <= r->mapped && ptr - r->base <= r->mapped - bytes) return 1;
  }
  return 0;
}

void hr_vmm_release_all(hr_instance *inst) {
  for (int i = 0; i < HR_MAX_VMM_RANGES; i++) {
    hr_vmm_range *r = &inst->vmm[i];
    if (r->base) hrb_vmm_release(inst->dev, r->state, r->base, r->reserved, r->mapped);
    memset(r, 0, sizeof *r);
  }
}

int hr_vmm_reserve(uint64_t handle, uint64_t max_bytes, uint64_t *base_out, uint64_t *granularity_out) {
  GET(handle, "hr_vmm_reserve");
  HR_CHECK_PTR(base_out, "hr_vmm_reserve");
  HR_CHECK_PTR(granularity_out, "hr_vmm_reserve");
  if (max_bytes == 0) return hr_fail(HR_E_INVALID, "hr_vmm_reserve: max_bytes must be > 0");
  hr_vmm_range *slot = NULL;
  for (int i = 0; i < HR_MAX_VMM_RANGES && !slot; i++)
    if (!inst->vmm[i].base) slot = &inst->vmm[i];
  if (!slot) return hr_fail(HR_E_STATE, "hr_vmm_reserve: this instance already holds %d ranges", HR_MAX_VMM_RANGES);
  uint64_t base = 0, gran = 0;
  void *state = NULL;
  int st = hrb_vmm_reserve(inst->dev, max_bytes, &base, &gran, &state);
  if (st != HR_OK) return st;
  slot->base = base;
  slot->reserved = (max_bytes + gran - 1) / gran * gran;
  slot->granularity = gran;
  slot->mapped = 0;
  slot->state = state;
  *base_out = base;
  *granularity_out = gran;
  return HR_OK;
}

int hr_vmm_map(uint64_t handle, uint64_t base, uint64_t bytes) {
  GET(handle, "hr_vmm_map");
  hr_vmm_range *r = find(inst, base);
  if (!r) return hr_fail(HR_E_INVALID, "hr_vmm_map: 0x%llx is not a reserved range of this instance", (hr_ull)base);
  if (bytes % r->granularity)
    return hr_fail(HR_E_INVALID, "hr_vmm_map: %llu bytes is not a multiple of the granularity %llu", (hr_ull)bytes,
                   (hr_ull)r->granularity);
  if (bytes > r->reserved)
    return hr_fail(HR_E_INVALID, "hr_vmm_map: %llu bytes exceed the reserved %llu", (hr_ull)bytes, (hr_ull)r->reserved);
  if (bytes == r->mapped) return HR_OK;
  int st = hrb_vmm_set_mapped(inst->dev, r->state, r->base, r->mapped, bytes);
  if (st == HR_OK) r->mapped = bytes;
  return st;
}

int hr_vmm_release(uint64_t handle, uint64_t base) {
  GET(handle, "hr_vmm_release");
  hr_vmm_range *r = find(inst, base);
  if (!r) return hr_fail(HR_E_INVALID, "hr_vmm_release: 0x%llx is not a reserved range of this instance", (hr_ull)base);
  int st = hrb_vmm_release(inst->dev, r->state, r->base, r->reserved, r->mapped);
  memset(r, 0, sizeof *r);
  return st;
}

int hr_vmm_mapped_bytes(uint64_t handle, uint64_t *bytes_out) {
  GET(handle, "hr_vmm_mapped_bytes");
  HR_CHECK_PTR(bytes_out, "hr_vmm_mapped_bytes");
  uint64_t sum = 0;
  for (int i = 0; i < HR_MAX_VMM_RANGES; i++) sum += inst->vmm[i].mapped;
  *bytes_out = sum;
  return HR_OK;
}
