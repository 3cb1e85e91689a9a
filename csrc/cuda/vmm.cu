/*
 * CUDA reserve-then-map (hr_vmm_*): cuMemAddressReserve / cuMemCreate / cuMemMap /
 * cuMemSetAccess, obtained at run time through cudaGetDriverEntryPointByVersion so the
 * library links without libcuda. Each growth of the mapped prefix is one physical chunk;
 * shrinking releases chunks from the end and re-maps any remainder.
 */
#include <cuda.h>
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "../core/backend.h"
#include "../core/status.h"
}
#include "cuda_device.h"

typedef CUresult (*PFN_reserve)(CUdeviceptr *, size_t, size_t, CUdeviceptr, unsigned long long);
typedef CUresult (*PFN_free_addr)(CUdeviceptr, size_t);
typedef CUresult (*PFN_create)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *, unsigned long long);
typedef CUresult (*PFN_release)(CUmemGenericAllocationHandle);
typedef CUresult (*PFN_map)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle, unsigned long long);
typedef CUresult (*PFN_unmap)(CUdeviceptr, size_t);
typedef CUresult (*PFN_set_access)(CUdeviceptr, size_t, const CUmemAccessDesc *, size_t);
typedef CUresult (*PFN_granularity)(size_t *, const CUmemAllocationProp *, CUmemAllocationGranularity_flags);
typedef CUresult (*PFN_error_string)(CUresult, const char **);

static struct {
  int loaded;
  PFN_reserve reserve;
  PFN_free_addr free_addr;
  PFN_create create;
  PFN_release release;
  PFN_map map;
  PFN_unmap unmap;
  PFN_set_access set_access;
  PFN_granularity granularity;
  PFN_error_string error_string;
} drv;

static int load_driver(void) {
  if (drv.loaded) return HR_OK;
  struct {
    const char *name;
    void **fn;
  } want[] = {
      {"cuMemAddressReserve", (void **)&drv.reserve},
      {"cuMemAddressFree", (void **)&drv.free_addr},
      {"cuMemCreate", (void **)&drv.create},
      {"cuMemRelease", (void **)&drv.release},
      {"cuMemMap", (void **)&drv.map},
      {"cuMemUnmap", (void **)&drv.unmap},
      {"cuMemSetAccess", (void **)&drv.set_access},
      {"cuMemGetAllocationGranularity", (void **)&drv.granularity},
      {"cuGetErrorString", (void **)&drv.error_string},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    cudaDriverEntryPointQueryResult q;
    cudaError_t e = cudaGetDriverEntryPointByVersion(want[i].name, want[i].fn, 12000, cudaEnableDefault, &q);
    if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || !*want[i].fn)
      return hr_fail(HR_E_UNSUPPORTED, "hr_vmm: driver entry point %s unavailable (%s)", want[i].name,
                     cudaGetErrorString(e));
  }
  drv.loaded = 1;
  return HR_OK;
}

static int cu_fail(CUresult r, const char *what) {
  const char *s = "unknown";
  if (drv.error_string) drv.error_string(r, &s);
  return hr_fail(r == CUDA_ERROR_OUT_OF_MEMORY ? HR_E_OOM : HR_E_BACKEND, "%s: %s (CUresult %d)", what, s, (int)r);
}

/* One physical chunk per slice per growth step: (slice, offset within slice, size). */
struct vmm_chunk {
  CUmemGenericAllocationHandle handle;
  uint64_t slice, offset, size;
};
struct vmm_state {
  vmm_chunk *chunks;
  int64_t n, cap;
};

static CUmemAllocationProp prop_for(hrb_device *d) {
  CUmemAllocationProp p;
  memset(&p, 0, sizeof p);
  p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  p.location.id = (int)d->ordinal;
  return p;
}

extern "C" int hrb_vmm_granularity(hrb_device *d, uint64_t *granularity_out) {
  int st = load_driver();
  if (st != HR_OK) return st;
  cudaSetDevice((int)d->ordinal);
  CUmemAllocationProp prop = prop_for(d);
  size_t gran = 0;
  CUresult r = drv.granularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
  if (r != CUDA_SUCCESS) return cu_fail(r, "hr_vmm_reserve: cuMemGetAllocationGranularity");
  *granularity_out = gran;
  return HR_OK;
}

extern "C" int hrb_vmm_reserve(hrb_device *d, uint64_t slice_stride, int64_t num_slices, uint64_t *base_out,
                               void **state_out) {
  int st = load_driver();
  if (st != HR_OK) return st;
  cudaSetDevice((int)d->ordinal);
  uint64_t gran = 0;
  st = hrb_vmm_granularity(d, &gran);
  if (st != HR_OK) return st;
  CUdeviceptr base = 0;
  CUresult r = drv.reserve(&base, slice_stride * (uint64_t)num_slices, gran, 0, 0);
  if (r != CUDA_SUCCESS) {
    // Address space, not device memory: never report it as "out of memory".
    const char *s = "unknown";
    if (drv.error_string) drv.error_string(r, &s);
    return hr_fail(HR_E_BACKEND,
                   "hr_vmm_reserve: cuda device %lld: reserving %llu bytes of virtual address space (%lld slices of "
                   "%llu; no device memory is used) failed: %s (CUresult %d)",
                   (long long)d->ordinal, (unsigned long long)(slice_stride * (uint64_t)num_slices),
                   (long long)num_slices, (unsigned long long)slice_stride, s, (int)r);
  }
  vmm_state *s = (vmm_state *)calloc(1, sizeof(vmm_state));
  if (!s) {
    drv.free_addr(base, slice_stride * (uint64_t)num_slices);
    return hr_fail(HR_E_OOM, "hr_vmm_reserve: host allocation failed");
  }
  *base_out = (uint64_t)base;
  *state_out = s;
  return HR_OK;
}

static int map_chunk(hrb_device *d, vmm_state *s, uint64_t base, uint64_t slice_stride, uint64_t slice, uint64_t offset,
                     uint64_t size) {
  if (s->n == s->cap) {
    int64_t cap = s->cap ? s->cap * 2 : 64;
    vmm_chunk *c = (vmm_chunk *)realloc(s->chunks, sizeof(vmm_chunk) * (size_t)cap);
    if (!c) return hr_fail(HR_E_OOM, "hr_vmm_map: host allocation failed");
    s->chunks = c;
    s->cap = cap;
  }
  CUmemAllocationProp prop = prop_for(d);
  CUdeviceptr at = (CUdeviceptr)(base + slice * slice_stride + offset);
  CUmemGenericAllocationHandle h;
  CUresult r = drv.create(&h, size, &prop, 0);
  if (r != CUDA_SUCCESS) return cu_fail(r, "hr_vmm_map: cuMemCreate");
  r = drv.map(at, size, 0, h, 0);
  if (r != CUDA_SUCCESS) {
    drv.release(h);
    return cu_fail(r, "hr_vmm_map: cuMemMap");
  }
  CUmemAccessDesc acc;
  memset(&acc, 0, sizeof acc);
  acc.location = prop.location;
  acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  r = drv.set_access(at, size, &acc, 1);
  if (r != CUDA_SUCCESS) {
    drv.unmap(at, size);
    drv.release(h);
    return cu_fail(r, "hr_vmm_map: cuMemSetAccess");
  }
  s->chunks[s->n++] = vmm_chunk{h, slice, offset, size};
  return HR_OK;
}

static void unmap_last(vmm_state *s, uint64_t base, uint64_t slice_stride) {
  vmm_chunk c = s->chunks[--s->n];
  drv.unmap((CUdeviceptr)(base + c.slice * slice_stride + c.offset), c.size);
  drv.release(c.handle);
}

/* Chunks are appended slice by slice per growth step, so the most recent chunks are the
 * highest offsets of every slice: shrinking pops from the end, then re-grows any remainder. */
extern "C" int hrb_vmm_wants_device_word(void) { return 1; }

// A shrink pops whole chunks past new_mapped, then re-grows the remainder [from, new_mapped).
// If that re-grow fails the range holds `from` bytes per slice, less than both old and new:
// *mapped_out reports it so the core's bookkeeping (and the kernels' bound) stay true.
extern "C" int hrb_vmm_set_mapped(hrb_device *d, void *state, uint64_t base, uint64_t slice_stride, int64_t num_slices,
                                  uint64_t old_mapped, uint64_t new_mapped, uint64_t *mapped_out) {
  vmm_state *s = (vmm_state *)state;
  *mapped_out = old_mapped;
  cudaSetDevice((int)d->ordinal);
  cudaDeviceSynchronize();
  int64_t n0 = s->n;
  uint64_t from = old_mapped;
  if (new_mapped < old_mapped) {
    while (s->n > 0 && s->chunks[s->n - 1].offset + s->chunks[s->n - 1].size > new_mapped)
      unmap_last(s, base, slice_stride);
    from = s->n > 0 ? s->chunks[s->n - 1].offset + s->chunks[s->n - 1].size : 0;
    n0 = s->n;
    *mapped_out = from;
    if (from >= new_mapped) return HR_OK;
  }
  for (int64_t i = 0; i < num_slices; i++) {
    int st = map_chunk(d, s, base, slice_stride, (uint64_t)i, from, new_mapped - from);
    if (st != HR_OK) {
      while (s->n > n0) unmap_last(s, base, slice_stride); /* back to `from` in every slice */
      return st;
    }
  }
  *mapped_out = new_mapped;
  return HR_OK;
}

extern "C" int hrb_vmm_release(hrb_device *d, void *state, uint64_t base, uint64_t slice_stride, int64_t num_slices,
                               uint64_t mapped) {
  (void)mapped;
  vmm_state *s = (vmm_state *)state;
  cudaSetDevice((int)d->ordinal);
  cudaDeviceSynchronize();
  while (s->n > 0) unmap_last(s, base, slice_stride);
  drv.free_addr((CUdeviceptr)base, slice_stride * (uint64_t)num_slices);
  free(s->chunks);
  free(s);
  return HR_OK;
}
