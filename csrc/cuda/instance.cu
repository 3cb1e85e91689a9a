// Per-instance CUDA state (stream, cuBLAS handle and workspace) and the "CUDA extras" of
// headroom.h that need it: async copies, stream sync, the raw stream, events.
//
// The core's hr_instance has no backend slot, so states live in a table here keyed by the
// instance pointer. hrb_instance_close (instance close) waits for the stream, destroys the
// instance's events, cuBLAS handle and stream and frees the slot. As a second line of defence
// a state whose allocator pointer or ordinal no longer matches the instance at that address
// is treated as stale (its workspace is never touched again).
//
// The stream is non-blocking (cudaStreamNonBlocking): work other threads put on the legacy
// default stream (another instance's cudaMemcpy, a library) neither waits for it nor, worse,
// joins or invalidates a capture in progress on it. The synchronous hr_memcpy_*/hr_memset
// therefore run on this stream and wait for it (device.cu).
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.cuh"

extern "C" {
#include "../core/allocator.h"
#include "../core/device.h"
#include "../core/graph.h"
#include "../core/handles.h"
}

// ---- errors -------------------------------------------------------------------------

int hrc_status_of(cudaError_t e) {
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || e == cudaErrorInitializationError)
    return HR_E_NODEVICE;
  if (e == cudaErrorMemoryAllocation) return HR_E_OOM;
  return HR_E_BACKEND;
}

int hrc_fail(cudaError_t e, const char *call, const char *what) {
  cudaGetLastError(); // clear a non-sticky error so the next call starts clean
  return hr_fail(hrc_status_of(e), "%s: %s failed: %s (%s)", call, what, cudaGetErrorString(e), cudaGetErrorName(e));
}

int hrc_launched(const char *call, const char *kernel) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return HR_OK;
  return hr_fail(hrc_status_of(e), "%s: launching %s failed: %s (%s)", call, kernel, cudaGetErrorString(e),
                 cudaGetErrorName(e));
}

// ---- state table --------------------------------------------------------------------

#define HRC_MAX_STATES 256
static pthread_mutex_t states_lock = PTHREAD_MUTEX_INITIALIZER;
static hrc_state states[HRC_MAX_STATES];
static uint64_t use_clock;

int hrc_begin(hr_instance *inst, const char *call, hrc_state **out) {
  HRC_TRY(call, cudaSetDevice((int)inst->ordinal));
  pthread_mutex_lock(&states_lock);
  hrc_state *st = NULL, *oldest = &states[0];
  for (int i = 0; i < HRC_MAX_STATES && !st; i++) {
    if (states[i].inst == inst)
      st = &states[i];
    else if (states[i].last_use < oldest->last_use)
      oldest = &states[i];
  }
  int fresh = 0;
  if (!st) { // free slot (last_use 0) or the least recently used one
    st = oldest;
    fresh = 1;
  }
  if (!fresh && (st->alloc != inst->alloc || st->ordinal != inst->ordinal)) fresh = 1;
  if (fresh) {
    // Another instance (or a dead one) owned this slot: keep the stream and cuBLAS handle
    // only when they belong to the same device; never touch the old workspace again.
    if ((st->stream || st->blas) && st->ordinal != inst->ordinal) {
      st->stream = NULL; // leaked on purpose: it belongs to another device's context
      st->blas = NULL;
      st->stage = NULL;
    }
    st->ws = st->ws_bytes = 0;
    st->inst = inst;
    st->alloc = inst->alloc;
    st->ordinal = inst->ordinal;
  }
  st->last_use = ++use_clock;
  pthread_mutex_unlock(&states_lock);
  if (!st->stream) {
    cudaStream_t s = NULL;
    // Non-blocking: no implicit synchronization with the legacy stream (see the top).
    HRC_TRY(call, cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    st->stream = s;
  }
  *out = st;
  return HR_OK;
}

int hrc_blas_forget_workspace(void *blas); // blas.cu
void hrc_blas_destroy(void *blas);         // blas.cu

static void event_destroy_owned(hr_instance *inst);

extern "C" void hrb_instance_close(struct hr_instance *inst) {
  event_destroy_owned(inst);
  pthread_mutex_lock(&states_lock);
  hrc_state *st = NULL;
  for (int i = 0; i < HRC_MAX_STATES && !st; i++)
    if (states[i].inst == inst && states[i].alloc == inst->alloc) st = &states[i];
  hrc_state copy;
  if (st) {
    copy = *st;
    memset(st, 0, sizeof *st); // the slot is free again (last_use 0)
  }
  pthread_mutex_unlock(&states_lock);
  if (!st) return;
  if (cudaSetDevice((int)copy.ordinal) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  if (copy.stream) cudaStreamSynchronize(copy.stream);
  if (copy.blas) {
    hrc_blas_forget_workspace(copy.blas);
    hrc_blas_destroy(copy.blas);
  }
  hrc_stage_destroy(copy.stage); // after the stream sync above: no copy from it in flight
  if (copy.stream) cudaStreamDestroy(copy.stream);
  cudaGetLastError(); // nothing here is reported: close never fails visibly
}

void hrc_on_segment_free(uint64_t ptr, uint64_t size) {
  pthread_mutex_lock(&states_lock);
  for (int i = 0; i < HRC_MAX_STATES; i++) {
    hrc_state *st = &states[i];
    if (st->ws && st->ws >= ptr && st->ws < ptr + size) {
      if (st->blas) hrc_blas_forget_workspace(st->blas);
      st->ws = st->ws_bytes = 0;
      st->inst = NULL; // its instance is being closed
      st->alloc = NULL;
    }
  }
  pthread_mutex_unlock(&states_lock);
}

void hrc_kv_bound(hr_instance *inst, uint64_t kc, uint64_t vc, uint64_t block_bytes, HrcKvBound *b) {
  uint64_t kw = 0, vw = 0;
  hr_vmm_device_word(inst, kc, &kw, &b->koff);
  hr_vmm_device_word(inst, vc, &vw, &b->voff);
  b->kw = (const uint64_t *)(uintptr_t)kw;
  b->vw = (const uint64_t *)(uintptr_t)vw;
  b->block_bytes = block_bytes ? block_bytes : 1;
}

// ---- public extras ----------------------------------------------------------------

#define GET(handle, call)                                \
  hr_clear_error();                                      \
  hr_instance *inst = hr_instance_get((handle), (call)); \
  if (!inst) return HR_E_INVALID

static int device_range(hr_instance *inst, uint64_t ptr, uint64_t bytes, const char *call, const char *what) {
  if (!hr_allocator_owns_range(inst->alloc, ptr, bytes) && !hr_vmm_owns_range(inst, ptr, bytes))
    return hr_fail(HR_E_INVALID, "%s: %s range [0x%llx, +%llu) is not inside a live allocation of this instance", call,
                   what, (hr_ull)ptr, (hr_ull)bytes);
  return HR_OK;
}

extern "C" {

int hr_memcpy_async(uint64_t dev, int64_t kind, uint64_t dst, uint64_t src, uint64_t bytes) {
  static const char *const CALL = "hr_memcpy_async";
  GET(dev, CALL);
  if (kind < HRC_COPY_H2D || kind > HRC_COPY_D2D)
    return hr_fail(HR_E_INVALID, "%s: kind must be 0 (H2D), 1 (D2H) or 2 (D2D) (got %lld)", CALL, (long long)kind);
  if (bytes == 0) return HR_OK;
  if (dst == 0 || src == 0) return hr_fail(HR_E_INVALID, "%s: dst and src must not be 0", CALL);
  int st_ = HR_OK;
  if (kind != HRC_COPY_D2H) st_ = device_range(inst, dst, bytes, CALL, "dst");
  if (st_ == HR_OK && kind != HRC_COPY_H2D) st_ = device_range(inst, src, bytes, CALL, "src");
  if (st_ != HR_OK) return st_;
  hrc_state *st = NULL;
  st_ = hrc_begin(inst, CALL, &st);
  if (st_ != HR_OK) return st_;
  cudaMemcpyKind k = kind == HRC_COPY_H2D   ? cudaMemcpyHostToDevice
                     : kind == HRC_COPY_D2H ? cudaMemcpyDeviceToHost
                                            : cudaMemcpyDeviceToDevice;
  HRC_TRY(CALL, cudaMemcpyAsync((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, bytes, k, st->stream));
  return HR_OK;
}

int hr_stream_synchronize(uint64_t dev) {
  static const char *const CALL = "hr_stream_synchronize";
  GET(dev, CALL);
  if (inst->graph_capture) return hr_graph_refuse(inst, CALL);
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  HRC_TRY(CALL, cudaStreamSynchronize(st->stream));
  return HR_OK;
}

int hr_cuda_stream(uint64_t dev, uint64_t *stream_out) {
  static const char *const CALL = "hr_cuda_stream";
  GET(dev, CALL);
  HR_CHECK_PTR(stream_out, CALL);
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  *stream_out = (uint64_t)(uintptr_t)st->stream;
  return HR_OK;
}

} // extern "C"

// ---- events: entries of the core handle table (kind HR_H_EVENT), owned by the instance that
// created them (destroyed with it), so a stale or wrong-kind handle is an error ----

static cudaEvent_t event_get(hr_instance *inst, uint64_t h, const char *call) {
  return (cudaEvent_t)hr_handle_get(h, HR_H_EVENT, inst, call);
}

static void event_destroy_owned(hr_instance *inst) {
  void *ev;
  int set = 0;
  while ((ev = hr_handle_take_owned(HR_H_EVENT, inst, NULL)) != NULL) {
    if (!set) set = cudaSetDevice((int)inst->ordinal) == cudaSuccess;
    cudaEventDestroy((cudaEvent_t)ev);
  }
  cudaGetLastError();
}

extern "C" {

int hr_event_create(uint64_t dev, uint64_t *event_out) {
  static const char *const CALL = "hr_event_create";
  GET(dev, CALL);
  HR_CHECK_PTR(event_out, CALL);
  *event_out = 0;
  HRC_TRY(CALL, cudaSetDevice((int)inst->ordinal));
  cudaEvent_t ev = NULL;
  HRC_TRY(CALL, cudaEventCreate(&ev));
  int st = hr_handle_new(HR_H_EVENT, (void *)ev, inst, CALL, event_out);
  if (st != HR_OK) cudaEventDestroy(ev);
  return st;
}

int hr_event_destroy(uint64_t dev, uint64_t event) {
  static const char *const CALL = "hr_event_destroy";
  GET(dev, CALL);
  if (!event_get(inst, event, CALL)) return HR_E_INVALID;
  cudaEvent_t ev = (cudaEvent_t)hr_handle_take(event, HR_H_EVENT);
  HRC_TRY(CALL, cudaSetDevice((int)inst->ordinal));
  HRC_TRY(CALL, cudaEventDestroy(ev));
  return HR_OK;
}

int hr_event_record(uint64_t dev, uint64_t event) {
  static const char *const CALL = "hr_event_record";
  GET(dev, CALL);
  cudaEvent_t ev = event_get(inst, event, CALL);
  if (!ev) return HR_E_INVALID;
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  HRC_TRY(CALL, cudaEventRecord(ev, st->stream));
  return HR_OK;
}

int hr_event_synchronize(uint64_t dev, uint64_t event) {
  static const char *const CALL = "hr_event_synchronize";
  GET(dev, CALL);
  cudaEvent_t ev = event_get(inst, event, CALL);
  if (!ev) return HR_E_INVALID;
  if (inst->graph_capture) return hr_graph_refuse(inst, CALL);
  HRC_TRY(CALL, cudaSetDevice((int)inst->ordinal));
  HRC_TRY(CALL, cudaEventSynchronize(ev));
  return HR_OK;
}

int hr_event_elapsed_ms(uint64_t dev, uint64_t start, uint64_t end, double *ms_out) {
  static const char *const CALL = "hr_event_elapsed_ms";
  GET(dev, CALL);
  HR_CHECK_PTR(ms_out, CALL);
  cudaEvent_t a = event_get(inst, start, CALL);
  if (!a) return HR_E_INVALID;
  cudaEvent_t b = event_get(inst, end, CALL);
  if (!b) return HR_E_INVALID;
  HRC_TRY(CALL, cudaSetDevice((int)inst->ordinal));
  float ms = 0;
  HRC_TRY(CALL, cudaEventElapsedTime(&ms, a, b));
  *ms_out = ms;
  return HR_OK;
}

} // extern "C"
