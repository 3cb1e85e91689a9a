/*
 * CUDA backend device: device memory through cudaMalloc (the caching allocator in
 * csrc/core does all the accounting), info through cudaGetDeviceProperties.
 * cudart is linked statically, so a machine without a driver can still load the library;
 * every entry point then reports HR_E_NODEVICE with the CUDA error text.
 */
#include <cuda_runtime.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "../core/backend.h"
#include "../core/status.h"
}
#include "cuda_device.h"
#include "cuda_common.cuh"

#define MAX_CUDA_DEVICES 64

static pthread_mutex_t devices_lock = PTHREAD_MUTEX_INITIALIZER;
static hrb_device devices[MAX_CUDA_DEVICES];

static int cuda_fail(cudaError_t e, const char *what) {
  int st = (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || e == cudaErrorInitializationError)
               ? HR_E_NODEVICE
               : (e == cudaErrorMemoryAllocation ? HR_E_OOM : HR_E_BACKEND);
  cudaGetLastError(); /* clear sticky-free errors */
  return hr_fail(st, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

#define CU(call, what)                                 \
  do {                                                 \
    cudaError_t e_ = (call);                           \
    if (e_ != cudaSuccess) return cuda_fail(e_, what); \
  } while (0)

static int use(hrb_device *d, const char *what) {
  CU(cudaSetDevice((int)d->ordinal), what);
  return HR_OK;
}

extern "C" {

const char *hrb_name(void) { return "cuda"; }

int hrb_device_count(int64_t *count_out) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    *count_out = 0;
    return cuda_fail(e, "no CUDA device: cudaGetDeviceCount");
  }
  *count_out = n;
  return HR_OK;
}

int hrb_device_acquire(int64_t ordinal, uint64_t cap, hrb_device **out) {
  if (cap != 0)
    return hr_fail(HR_E_INVALID, "hr_device_open: cpu_capacity_bytes must be 0 on the CUDA backend (got %llu)",
                   (hr_ull)cap);
  int64_t n = 0;
  int st = hrb_device_count(&n);
  if (st != HR_OK) return st;
  if (n == 0) return hr_fail(HR_E_NODEVICE, "hr_device_open: no CUDA device");
  if (ordinal < 0 || ordinal >= n || ordinal >= MAX_CUDA_DEVICES)
    return hr_fail(HR_E_INVALID, "hr_device_open: CUDA ordinal %lld out of range 0..%lld", (long long)ordinal,
                   (long long)n - 1);
  CU(cudaSetDevice((int)ordinal), "hr_device_open: cudaSetDevice");
  CU(cudaFree(0), "hr_device_open: creating the CUDA context");
  pthread_mutex_lock(&devices_lock);
  hrb_device *d = &devices[ordinal];
  d->ordinal = ordinal;
  d->refs++;
  pthread_mutex_unlock(&devices_lock);
  *out = d;
  return HR_OK;
}

void hrb_device_release(hrb_device *d) {
  pthread_mutex_lock(&devices_lock);
  d->refs--;
  pthread_mutex_unlock(&devices_lock);
}

int hrb_raw_alloc(hrb_device *d, uint64_t size, uint64_t *ptr_out) {
  int st = use(d, "cudaSetDevice");
  if (st != HR_OK) return st;
  void *p = NULL;
  cudaError_t e = cudaMalloc(&p, size);
  if (e != cudaSuccess) {
    size_t fr = 0, tot = 0;
    cudaGetLastError();
    cudaMemGetInfo(&fr, &tot);
    int code = e == cudaErrorMemoryAllocation ? HR_E_OOM : HR_E_BACKEND;
    return hr_fail(code, "cuda device %lld: cudaMalloc(%llu) failed: %s (free %llu of %llu)", (long long)d->ordinal,
                   (hr_ull)size, cudaGetErrorString(e), (hr_ull)fr, (hr_ull)tot);
  }
  *ptr_out = (uint64_t)(uintptr_t)p;
  return HR_OK;
}

int hrb_raw_free(hrb_device *d, uint64_t ptr, uint64_t size) {
  int st = use(d, "cudaSetDevice");
  if (st != HR_OK) return st;
  hrc_on_segment_free(ptr, size); /* a cuBLAS workspace inside is gone with it */
  CU(cudaFree((void *)(uintptr_t)ptr), "cudaFree");
  return HR_OK;
}

int hrb_mem_info(hrb_device *d, uint64_t *free_out, uint64_t *total_out) {
  int st = use(d, "cudaSetDevice");
  if (st != HR_OK) return st;
  size_t fr = 0, tot = 0;
  CU(cudaMemGetInfo(&fr, &tot), "cudaMemGetInfo");
  *free_out = fr;
  *total_out = tot;
  return HR_OK;
}

int hrb_device_info(hrb_device *d, int64_t *out) {
  int st = use(d, "cudaSetDevice");
  if (st != HR_OK) return st;
  cudaDeviceProp p;
  CU(cudaGetDeviceProperties(&p, (int)d->ordinal), "cudaGetDeviceProperties");
  size_t fr = 0, tot = 0;
  CU(cudaMemGetInfo(&fr, &tot), "cudaMemGetInfo");
  int shared_optin = 0, integrated = 0;
  cudaDeviceGetAttribute(&shared_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, (int)d->ordinal);
  cudaDeviceGetAttribute(&integrated, cudaDevAttrIntegrated, (int)d->ordinal);
  out[HR_INFO_TOTAL_BYTES] = (int64_t)tot;
  out[HR_INFO_FREE_BYTES] = (int64_t)fr;
  out[HR_INFO_CC_MAJOR] = p.major;
  out[HR_INFO_CC_MINOR] = p.minor;
  out[HR_INFO_MAX_SHARED_PER_BLOCK] = shared_optin ? shared_optin : (int64_t)p.sharedMemPerBlock;
  out[HR_INFO_MULTIPROCESSORS] = p.multiProcessorCount;
  out[HR_INFO_UNIFIED_MEMORY] = integrated;
  out[HR_INFO_CPU_FEATURES] = 0;
  return HR_OK;
}

int hrb_device_name(hrb_device *d, char *buf, int64_t len) {
  cudaDeviceProp p;
  CU(cudaGetDeviceProperties(&p, (int)d->ordinal), "cudaGetDeviceProperties");
  snprintf(buf, (size_t)len, "cuda:%lld (%s)", (long long)d->ordinal, p.name);
  return HR_OK;
}

int hrb_simulate_usage(hrb_device *d, int64_t kind, uint64_t old_bytes, uint64_t new_bytes) {
  (void)d;
  (void)kind;
  (void)old_bytes;
  (void)new_bytes;
  return hr_fail(HR_E_UNSUPPORTED, "hr_device_simulate_usage: only the CPU backend simulates device usage");
}

// The instance's stream is non-blocking (instance.cu), so the legacy-stream cudaMemcpy would
// not be ordered with its kernels: copies run on that stream, then the host waits for it.
int hrb_memcpy(struct hr_instance *inst, int kind, void *dst, const void *src, uint64_t bytes) {
  hrc_state *s = NULL;
  int st = hrc_begin(inst, "hr_memcpy", &s);
  if (st != HR_OK) return st;
  cudaMemcpyKind k = kind == HRB_H2D   ? cudaMemcpyHostToDevice
                     : kind == HRB_D2H ? cudaMemcpyDeviceToHost
                                       : cudaMemcpyDeviceToDevice;
  CU(cudaMemcpyAsync(dst, src, bytes, k, s->stream), "cudaMemcpyAsync");
  CU(cudaStreamSynchronize(s->stream), "cudaStreamSynchronize (after a copy)");
  return HR_OK;
}

int hrb_memset(struct hr_instance *inst, uint64_t dst, int value, uint64_t bytes) {
  hrc_state *s = NULL;
  int st = hrc_begin(inst, "hr_memset", &s);
  if (st != HR_OK) return st;
  CU(cudaMemsetAsync((void *)(uintptr_t)dst, value, bytes, s->stream), "cudaMemsetAsync");
  CU(cudaStreamSynchronize(s->stream), "cudaStreamSynchronize (after a memset)");
  return HR_OK;
}

int hrb_synchronize(hrb_device *d) {
  int st = use(d, "cudaSetDevice");
  if (st != HR_OK) return st;
  CU(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  return HR_OK;
}

} /* extern "C" */
