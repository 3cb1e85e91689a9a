/* Internal: device instances (one per hr_device_open) and handle lookup. */
#ifndef HR_DEVICE_H
#define HR_DEVICE_H

#include <stdint.h>

#include "allocator.h"
#include "backend.h"

#define HR_MAX_VMM_RANGES 16

typedef struct hr_vmm_range {
  uint64_t base, slice_stride, mapped, granularity; /* mapped: bytes per slice */
  int64_t num_slices;
  void *state;   /* backend-owned */
  uint64_t word; /* device copy of `mapped` (an 8-byte block of the allocator), 0 = none */
} hr_vmm_range;

typedef struct hr_instance {
  uint64_t handle; /* its own handle (children record it) */
  hrb_device *dev;
  hr_allocator *alloc;
  int64_t ordinal;
  uint64_t sim_non_allocator;          /* HR_SIM_NON_ALLOCATOR bytes held by this instance */
  hr_vmm_range vmm[HR_MAX_VMM_RANGES]; /* base == 0: unused slot */
  struct hr_graph_set *graph_capture;  /* set capturing on this instance (core/graph.c), else NULL */
} hr_instance;

/* 1 if [ptr, ptr + bytes) lies in the mapped part of one slice of the instance's vmm ranges. */
int hr_vmm_owns_range(hr_instance *inst, uint64_t ptr, uint64_t bytes);
/* Bytes usable from ptr to the end of the mapped prefix of its slice: 0 when ptr lies in a
 * reserved range beyond the mapped prefix, UINT64_MAX when ptr is in no range of the instance. */
uint64_t hr_vmm_usable_bytes(hr_instance *inst, uint64_t ptr);
/* Blocks of block_bytes usable in a paged cache at ptr: min(num_blocks, usable / block_bytes).
 * Executors bound block ids by this, so a block id between the mapped and the reserved count
 * is an error (CPU) instead of a read of unmapped memory. */
int64_t hr_vmm_block_limit(hr_instance *inst, uint64_t ptr, int64_t num_blocks, uint64_t block_bytes);
/* For kernels (CUDA): the device word holding the mapped bytes per slice of the range that
 * holds ptr, and ptr's offset inside its slice; *word_out = 0 when ptr is in no range. */
void hr_vmm_device_word(hr_instance *inst, uint64_t ptr, uint64_t *word_out, uint64_t *offset_out);
/* Releases every range (instance close). */
void hr_vmm_release_all(hr_instance *inst);

/* Instance close (core/copy_engine.c): destroys the instance's copy engines (joining their
 * threads) and frees its host buffers. */
void hr_copy_release_instance(hr_instance *inst);
void hr_host_release_instance(hr_instance *inst);

/* Resolves a handle; on failure sets an error naming `call` and returns NULL. */
hr_instance *hr_instance_get(uint64_t handle, const char *call);

#endif
