/*
 * CUDA reserve-then-map (hr_vmm_*): cuMemAddressReserve / cuMemCreate / cuMemMap /
 * cuMemSetAccess, obtained at run time through cudaGetDriverEntryPointByVersion so the
 * library links without libcuda. Each growth of the mapped prefix is one physical chunk per
 * slice; shrinking releases whole chunks from the end and replaces a chunk the new end cuts
 * through by a smaller one holding the same bytes (the CPU backend's semantics: what stays
 * mapped keeps its contents, on a grow as on a shrink).
 */
#include <cuda.h>
#include <cuda_runtime.h>
#include <stdio.h>
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

/* Test hook (test/memory/vmm-fault-child.ts): HEADROOM_TEST_VMM_FAIL="first:count" makes the
 * cuMemCreate calls number first .. first+count-1 of this process (1-based, counted by
 * hr_vmm_map) fail as out of memory, so the failure paths below run on a real device. */
static int64_t create_calls;
static CUresult create_phys(CUmemGenericAllocationHandle *h, size_t size, const CUmemAllocationProp *prop) {
  int64_t n = __atomic_add_fetch(&create_calls, 1, __ATOMIC_RELAXED);
  const char *e = getenv("HEADROOM_TEST_VMM_FAIL");
  long long first = 0, count = 0;
  if (e && *e && sscanf(e, "%lld:%lld", &first, &count) == 2 && n >= first && n < first + count)
    return CUDA_ERROR_OUT_OF_MEMORY;
  return drv.create(h, size, prop, 0);
}

/* Maps `h` at `at` read-write for this device; nothing stays mapped on failure. */
static CUresult map_handle(hrb_device *d, CUdeviceptr at, size_t size, CUmemGenericAllocationHandle h,
                           const char **what) {
  CUresult r = drv.map(at, size, 0, h, 0);
  if (r != CUDA_SUCCESS) {
    *what = "hr_vmm_map: cuMemMap";
    return r;
  }
  CUmemAccessDesc acc;
  memset(&acc, 0, sizeof acc);
  acc.location = prop_for(d).location;
  acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  r = drv.set_access(at, size, &acc, 1);
  if (r != CUDA_SUCCESS) {
    drv.unmap(at, size);
    *what = "hr_vmm_map: cuMemSetAccess";
  }
  return r;
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
  CUresult r = create_phys(&h, size, &prop);
  if (r != CUDA_SUCCESS) return cu_fail(r, "hr_vmm_map: cuMemCreate");
  const char *what = "";
  r = map_handle(d, at, size, h, &what);
  if (r != CUDA_SUCCESS) {
    drv.release(h);
    return cu_fail(r, what);
  }
  s->chunks[s->n++] = vmm_chunk{h, slice, offset, size};
  return HR_OK;
}

static void unmap_last(vmm_state *s, uint64_t base, uint64_t slice_stride) {
  vmm_chunk c = s->chunks[--s->n];
  if (c.size == 0) return; /* a hole left by a failed replacement (shrink_cut) */
  drv.unmap((CUdeviceptr)(base + c.slice * slice_stride + c.offset), c.size);
  drv.release(c.handle);
}

/*
 * The last num_slices chunks (one per slice, the last growth step, all at offset `from`) end
 * past new_mapped: each is replaced by a chunk of keep = new_mapped - from bytes holding the
 * same first `keep` bytes. Per slice: new memory is created and mapped at a temporary address,
 * the kept bytes copied device to device, then the old chunk unmapped and released and the new
 * one mapped in its place (extra device memory: one slice's `keep`, transiently). When that
 * new memory cannot be had, the kept bytes go through host memory instead (old chunk out, new
 * chunk in, bytes back). On any failure every slice goes back to `from` (this step's chunks,
 * old or replaced, are dropped) and the caller reports `from`: [0, from) is never touched.
 */
static int shrink_cut(hrb_device *d, vmm_state *s, uint64_t base, uint64_t slice_stride, int64_t num_slices,
                      uint64_t from, uint64_t new_mapped) {
  const uint64_t keep = new_mapped - from;
  const int64_t first = s->n - num_slices;
  CUmemAllocationProp prop = prop_for(d);
  CUdeviceptr tmp = 0;
  if (drv.reserve(&tmp, keep, 0, 0, 0) != CUDA_SUCCESS) tmp = 0; /* then through host memory only */
  void *host = NULL;
  int st = HR_OK;
  for (int64_t k = first; k < s->n && st == HR_OK; k++) {
    vmm_chunk *c = &s->chunks[k];
    const CUdeviceptr at = (CUdeviceptr)(base + c->slice * slice_stride + c->offset);
    CUmemGenericAllocationHandle h = 0;
    const char *what = "cuMemCreate";
    int have_new = 0;
    if (tmp && create_phys(&h, keep, &prop) == CUDA_SUCCESS) {
      CUresult r = map_handle(d, tmp, keep, h, &what);
      if (r != CUDA_SUCCESS) {
        drv.release(h);
        st = cu_fail(r, "hr_vmm_map (shrink): mapping the replacement chunk");
        break;
      }
      cudaError_t e = cudaMemcpy((void *)tmp, (const void *)at, keep, cudaMemcpyDeviceToDevice);
      if (e == cudaSuccess) e = cudaDeviceSynchronize();
      drv.unmap(tmp, keep);
      if (e != cudaSuccess) {
        drv.release(h);
        st = hr_fail(HR_E_BACKEND, "hr_vmm_map (shrink): copying the kept bytes: %s", cudaGetErrorString(e));
        break;
      }
      have_new = 1;
    } else {
      if (!host) host = malloc(keep);
      if (!host) {
        st = hr_fail(HR_E_OOM, "hr_vmm_map (shrink): no device or host memory to keep %llu bytes per slice",
                     (unsigned long long)keep);
        break;
      }
      cudaError_t e = cudaMemcpy(host, (const void *)at, keep, cudaMemcpyDeviceToHost);
      if (e != cudaSuccess) {
        st = hr_fail(HR_E_BACKEND, "hr_vmm_map (shrink): copying the kept bytes out: %s", cudaGetErrorString(e));
        break;
      }
    }
    /* the old chunk goes (its memory first: the host path needs it for the new chunk) */
    drv.unmap(at, c->size);
    drv.release(c->handle);
    c->size = 0;
    if (!have_new) {
      CUresult r = create_phys(&h, keep, &prop);
      if (r != CUDA_SUCCESS) {
        st = cu_fail(r, "hr_vmm_map (shrink): cuMemCreate of the kept part");
        break;
      }
    }
    CUresult r = map_handle(d, at, keep, h, &what);
    if (r != CUDA_SUCCESS) {
      drv.release(h);
      st = cu_fail(r, what);
      break;
    }
    c->handle = h;
    c->size = keep;
    if (!have_new) {
      cudaError_t e = cudaMemcpy((void *)at, host, keep, cudaMemcpyHostToDevice);
      if (e != cudaSuccess)
        st = hr_fail(HR_E_BACKEND, "hr_vmm_map (shrink): copying the kept bytes back: %s", cudaGetErrorString(e));
    }
  }
  if (tmp) drv.free_addr(tmp, keep);
  free(host);
  if (st != HR_OK)
    while (s->n > first) unmap_last(s, base, slice_stride); /* back to `from` in every slice */
  return st;
}

/* Chunks are appended slice by slice per growth step, so the most recent chunks are the
 * highest offsets of every slice: shrinking pops from the end, then cuts the last step's. */
extern "C" int hrb_vmm_wants_device_word(void) { return 1; }

// A shrink pops the chunks that lie wholly past new_mapped, then replaces the ones it cuts
// through by smaller chunks with the same contents (shrink_cut). If that fails the range holds
// `from` bytes per slice (the cut chunks' offset), less than both old and new: *mapped_out
// reports it so the core's bookkeeping (and the kernels' bound) stay true. A failed grow
// leaves the old mapping as it was.
extern "C" int hrb_vmm_set_mapped(hrb_device *d, void *state, uint64_t base, uint64_t slice_stride, int64_t num_slices,
                                  uint64_t old_mapped, uint64_t new_mapped, uint64_t *mapped_out) {
  vmm_state *s = (vmm_state *)state;
  *mapped_out = old_mapped;
  cudaSetDevice((int)d->ordinal);
  cudaDeviceSynchronize();
  if (new_mapped < old_mapped) {
    while (s->n > 0 && s->chunks[s->n - 1].offset >= new_mapped) unmap_last(s, base, slice_stride);
    const vmm_chunk *last = s->n > 0 ? &s->chunks[s->n - 1] : NULL;
    *mapped_out = last ? last->offset + last->size : 0;
    if (!last || last->offset + last->size <= new_mapped) return HR_OK; /* cut at a chunk boundary */
    const uint64_t from = last->offset;
    int st = shrink_cut(d, s, base, slice_stride, num_slices, from, new_mapped);
    *mapped_out = st == HR_OK ? new_mapped : from;
    return st;
  }
  const int64_t n0 = s->n;
  for (int64_t i = 0; i < num_slices; i++) {
    int st = map_chunk(d, s, base, slice_stride, (uint64_t)i, old_mapped, new_mapped - old_mapped);
    if (st != HR_OK) {
      while (s->n > n0) unmap_last(s, base, slice_stride); /* back to old_mapped in every slice */
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
