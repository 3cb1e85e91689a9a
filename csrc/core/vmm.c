/*
 * Reserve-then-map ranges (hr_vmm_*), used for the KV cache: the address range exists from
 * start-up (graphs are captured against it), physical memory is committed last, sized to
 * what is measurably left. A range is a number of equal slices (one per layer and K/V) whose
 * mapped prefixes grow together. The backend does the mapping; this file keeps per-instance
 * bookkeeping and validation. Instances are used from one thread at a time (the engine).
 *
 * Note [Reservation size]
 * All slices grow together, so no slice can ever map more than total / num_slices bytes of
 * the device: the stride is clamped to that (rounded up to the granularity). Asking for
 * "the whole device per slice" therefore reserves about one device of address space for the
 * whole KV cache, not 2 x layers devices (8.8 TiB for 32 layers on an H200).
 *
 * Note [Mapped word]
 * Graphs are captured before the KV cache is sized, so the block count they bake in is the
 * reserved one. On backends whose kernels read block tables on the device (CUDA), each range
 * has an 8-byte device word holding the mapped bytes per slice, updated by hr_vmm_map; the
 * kernels bound block ids by it at run time, so a block id between the mapped and the
 * reserved count yields the documented NaN rather than a read of unmapped memory.
 */
#include <stdio.h>
#include <string.h>

#include "checked.h"
#include "device.h"
#include "graph.h"
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

/* The range and slice offset of ptr, or NULL. */
static hr_vmm_range *range_of(hr_instance *inst, uint64_t ptr, uint64_t *in_slice) {
  for (int i = 0; i < HR_MAX_VMM_RANGES; i++) {
    hr_vmm_range *r = &inst->vmm[i];
    if (!r->base || ptr < r->base) continue;
    uint64_t off = ptr - r->base;
    if (off / r->slice_stride < (uint64_t)r->num_slices) {
      *in_slice = off % r->slice_stride;
      return r;
    }
  }
  return NULL;
}

int hr_vmm_owns_range(hr_instance *inst, uint64_t ptr, uint64_t bytes) {
  uint64_t in = 0;
  hr_vmm_range *r = range_of(inst, ptr, &in);
  return r && bytes <= r->mapped && in <= r->mapped - bytes;
}

uint64_t hr_vmm_usable_bytes(hr_instance *inst, uint64_t ptr) {
  uint64_t in = 0;
  hr_vmm_range *r = range_of(inst, ptr, &in);
  if (!r) return UINT64_MAX;
  return r->mapped > in ? r->mapped - in : 0;
}

int64_t hr_vmm_block_limit(hr_instance *inst, uint64_t ptr, int64_t num_blocks, uint64_t block_bytes) {
  uint64_t usable = hr_vmm_usable_bytes(inst, ptr);
  if (usable == UINT64_MAX || block_bytes == 0) return num_blocks;
  uint64_t n = usable / block_bytes;
  return n < (uint64_t)num_blocks ? (int64_t)n : num_blocks;
}

void hr_vmm_device_word(hr_instance *inst, uint64_t ptr, uint64_t *word_out, uint64_t *offset_out) {
  uint64_t in = 0;
  hr_vmm_range *r = range_of(inst, ptr, &in);
  *word_out = r ? r->word : 0;
  *offset_out = r ? in : 0;
}

/* Writes r->mapped into the range's device word (Note [Mapped word]). */
static int publish(hr_instance *inst, hr_vmm_range *r, const char *call) {
  if (!r->word) return HR_OK;
  uint64_t v = r->mapped;
  int st = hrb_memcpy(inst, HRB_H2D, (void *)(uintptr_t)r->word, &v, sizeof v);
  if (st != HR_OK) {
    char msg[700];
    snprintf(msg, sizeof msg, "%s", hr_last_error());
    return hr_fail(st, "%s: updating the mapped-size word of range 0x%llx failed: %s", call, (hr_ull)r->base, msg);
  }
  return HR_OK;
}

static void range_free(hr_instance *inst, hr_vmm_range *r) {
  if (r->word) hr_allocator_free(inst->alloc, r->word);
  memset(r, 0, sizeof *r);
}

void hr_vmm_release_all(hr_instance *inst) {
  for (int i = 0; i < HR_MAX_VMM_RANGES; i++) {
    hr_vmm_range *r = &inst->vmm[i];
    if (r->base) hrb_vmm_release(inst->dev, r->state, r->base, r->slice_stride, r->num_slices, r->mapped);
    range_free(inst, r);
  }
}

int hr_vmm_reserve(uint64_t handle, uint64_t slice_bytes, int64_t num_slices, uint64_t *base_out,
                   uint64_t *granularity_out, uint64_t *slice_stride_out) {
  static const char *const CALL = "hr_vmm_reserve";
  GET(handle, CALL);
  HR_CHECK_PTR(base_out, CALL);
  HR_CHECK_PTR(granularity_out, CALL);
  HR_CHECK_PTR(slice_stride_out, CALL);
  if (inst->graph_capture) return hr_graph_refuse(inst, CALL);
  if (slice_bytes == 0 || num_slices <= 0 || num_slices > (1 << 20))
    return hr_fail(HR_E_INVALID, "%s: slice_bytes must be > 0 and num_slices 1..2^20 (got %llu, %lld)", CALL,
                   (hr_ull)slice_bytes, (long long)num_slices);
  hr_vmm_range *slot = NULL;
  for (int i = 0; i < HR_MAX_VMM_RANGES && !slot; i++)
    if (!inst->vmm[i].base) slot = &inst->vmm[i];
  if (!slot) return hr_fail(HR_E_STATE, "%s: this instance already holds %d ranges", CALL, HR_MAX_VMM_RANGES);
  uint64_t gran = 0, dfree = 0, total = 0;
  int st = hrb_vmm_granularity(inst->dev, &gran);
  if (st == HR_OK) st = hrb_mem_info(inst->dev, &dfree, &total);
  if (st != HR_OK) return st;
  /* Note [Reservation size]: no slice can map more than its share of the device */
  uint64_t n = (uint64_t)num_slices;
  uint64_t share = total / n + (total % n != 0);
  uint64_t want = slice_bytes < share ? slice_bytes : share;
  uint64_t stride = (want + gran - 1) / gran * gran;
  uint64_t all = 0;
  if (stride < want || hr_mul_u64(stride, n, &all))
    return hr_fail(HR_E_INVALID, "%s: %lld slices of %llu bytes overflow", CALL, (long long)num_slices,
                   (hr_ull)slice_bytes);
  uint64_t word = 0;
  if (hrb_vmm_wants_device_word()) {
    st = hr_allocator_malloc(inst->alloc, sizeof(uint64_t), &word);
    if (st != HR_OK) return st;
  }
  uint64_t base = 0;
  void *state = NULL;
  st = hrb_vmm_reserve(inst->dev, stride, num_slices, &base, &state);
  if (st != HR_OK) {
    if (word) hr_allocator_free(inst->alloc, word);
    return st;
  }
  slot->base = base;
  slot->slice_stride = stride;
  slot->num_slices = num_slices;
  slot->granularity = gran;
  slot->mapped = 0;
  slot->state = state;
  slot->word = word;
  st = publish(inst, slot, CALL);
  if (st != HR_OK) {
    hrb_vmm_release(inst->dev, state, base, stride, num_slices, 0);
    range_free(inst, slot);
    return st;
  }
  *base_out = base;
  *granularity_out = gran;
  *slice_stride_out = stride;
  return HR_OK;
}

int hr_vmm_map(uint64_t handle, uint64_t base, uint64_t bytes) {
  static const char *const CALL = "hr_vmm_map";
  GET(handle, CALL);
  /* mapping synchronizes the device and changes what a captured graph reads */
  if (inst->graph_capture) return hr_graph_refuse(inst, CALL);
  hr_vmm_range *r = find(inst, base);
  if (!r) return hr_fail(HR_E_INVALID, "%s: 0x%llx is not a reserved range of this instance", CALL, (hr_ull)base);
  if (bytes % r->granularity)
    return hr_fail(HR_E_INVALID, "%s: %llu bytes is not a multiple of the granularity %llu", CALL, (hr_ull)bytes,
                   (hr_ull)r->granularity);
  if (bytes > r->slice_stride)
    return hr_fail(HR_E_INVALID,
                   "%s: cannot map %llu bytes per slice: a slice holds at most %llu (the reservation of %lld slices is "
                   "bounded by the device size)",
                   CALL, (hr_ull)bytes, (hr_ull)r->slice_stride, (long long)r->num_slices);
  if (bytes == r->mapped) return HR_OK;
  uint64_t now = r->mapped;
  int st = hrb_vmm_set_mapped(inst->dev, r->state, r->base, r->slice_stride, r->num_slices, r->mapped, bytes, &now);
  int changed = now != r->mapped;
  r->mapped = now; /* what is really mapped, even after a failure (a shrink, then a failed re-grow) */
  if (st == HR_OK) return changed ? publish(inst, r, CALL) : HR_OK;
  if (!changed) return st;
  char msg[700];
  snprintf(msg, sizeof msg, "%s", hr_last_error());
  (void)publish(inst, r, CALL); /* keep the device word true; the mapping error is the one to report */
  return hr_fail(st, "%s (the mapping changed: %llu bytes per slice are mapped now)", msg, (hr_ull)now);
}

int hr_vmm_release(uint64_t handle, uint64_t base) {
  static const char *const CALL = "hr_vmm_release";
  GET(handle, CALL);
  if (inst->graph_capture) return hr_graph_refuse(inst, CALL);
  hr_vmm_range *r = find(inst, base);
  if (!r) return hr_fail(HR_E_INVALID, "%s: 0x%llx is not a reserved range of this instance", CALL, (hr_ull)base);
  int st = hrb_vmm_release(inst->dev, r->state, r->base, r->slice_stride, r->num_slices, r->mapped);
  range_free(inst, r);
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
