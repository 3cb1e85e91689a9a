// Per-instance CUDA state (stream, cuBLAS handle and workspace) and the "CUDA extras" of
// headroom.h that need it: async copies, stream sync, the raw stream, events.
//
// The core's hr_instance has no backend slot, so states live in a table here keyed by the
// instance pointer. A closed instance is noticed two ways: hrb_raw_free tells us when the
// segment holding a cuBLAS workspace goes back to the device (only happens when its
// allocator is destroyed), and a state whose allocator pointer or ordinal no longer matches
// the instance at that address is treated as stale. The stream of a stale state is reused
// (streams are per device, not per instance object), its workspace is never touched again.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.cuh"

extern "C" {
#include "../core/allocator.h"
#include "../core/device.h"
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
    if (states[i].inst == inst) st = &states[i];
    else if (states[i].last_use < oldest->last_use) oldest = &states[i];
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
    // Default (blocking) flags: the synchronous hr_memcpy_*/hr_memset calls on the legacy
    // stream are ordered with this stream's work.
    HRC_TRY(call, cudaStreamCreateWithFlags(&s, cudaStreamDefault));
    st->stream = s;
  }
  *out = st;
  return HR_OK;
}

int hrc_blas_forget_workspace(void *blas); // blas.cu

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

// ---- public extras ----------------------------------------------------------------

#define GET(handle, call)                                  \
  hr_clear_error();                                        \
  hr_instance *inst = hr_instance_get((handle), (call));   \
  if (!inst) return HR_E_INVALID

static int device_range(hr_instance *inst, uint64_t ptr, uint64_t bytes, const char *call, const char *what) {
  if (!hr_allocator_owns_range(inst->alloc, ptr, bytes) && !hr_vmm_owns_range(inst, ptr, bytes))
    return hr_fail(HR_E_INVALID, "%s: %s range [0x%llx, +%llu) is not inside a live allocation of this instance",
                   call, what, (hr_ull)ptr, (hr_ull)bytes);
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

// ---- events: a handle table (slot + generation), so a stale handle is an error ----

#define HRC_MAX_EVENTS 4096
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  cudaEvent_t ev;
  int64_t ordinal;
  uint32_t gen;
} events[HRC_MAX_EVENTS];

static cudaEvent_t event_get(uint64_t h, const char *call, int64_t ordinal) {
  uint64_t slot = (h & 0xffff) - 1, gen = h >> 16;
  cudaEvent_t ev = NULL;
  int other_device = 0;
  if ((h & 0xffff) != 0 && slot < HRC_MAX_EVENTS) {
    pthread_mutex_lock(&events_lock);
    if (events[slot].ev && events[slot].gen == gen) {
      ev = events[slot].ev;
      other_device = events[slot].ordinal != ordinal;
    }
    pthread_mutex_unlock(&events_lock);
  }
  if (!ev) hr_fail(HR_E_INVALID, "%s: invalid or destroyed event handle 0x%llx", call, (hr_ull)h);
  else if (other_device) {
    hr_fail(HR_E_INVALID, "%s: event 0x%llx belongs to another CUDA device", call, (hr_ull)h);
    ev = NULL;
  }
  return ev;
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
  pthread_mutex_lock(&events_lock);
  int slot = -1;
  for (int i = 0; i < HRC_MAX_EVENTS; i++)
    if (!events[i].ev) {
      slot = i;
      break;
    }
  if (slot >= 0) {
    events[slot].ev = ev;
    events[slot].ordinal = inst->ordinal;
    events[slot].gen = (events[slot].gen + 1) & 0xffffffffu;
    if (events[slot].gen == 0) events[slot].gen = 1;
    *event_out = ((uint64_t)events[slot].gen << 16) | (uint64_t)(slot + 1);
  }
  pthread_mutex_unlock(&events_lock);
  if (slot < 0) {
    cudaEventDestroy(ev);
    return hr_fail(HR_E_STATE, "%s: too many live events (max %d)", CALL, HRC_MAX_EVENTS);
  }
  return HR_OK;
}

int hr_event_destroy(uint64_t dev, uint64_t event) {
  static const char *const CALL = "hr_event_destroy";
  GET(dev, CALL);
  cudaEvent_t ev = event_get(event, CALL, inst->ordinal);
  if (!ev) return HR_E_INVALID;
  pthread_mutex_lock(&events_lock);
  events[(event & 0xffff) - 1].ev = NULL;
  pthread_mutex_unlock(&events_lock);
  HRC_TRY(CALL, cudaSetDevice((int)inst->ordinal));
  HRC_TRY(CALL, cudaEventDestroy(ev));
  return HR_OK;
}

int hr_event_record(uint64_t dev, uint64_t event) {
  static const char *const CALL = "hr_event_record";
  GET(dev, CALL);
  cudaEvent_t ev = event_get(event, CALL, inst->ordinal);
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
  cudaEvent_t ev = event_get(event, CALL, inst->ordinal);
  if (!ev) return HR_E_INVALID;
  HRC_TRY(CALL, cudaSetDevice((int)inst->ordinal));
  HRC_TRY(CALL, cudaEventSynchronize(ev));
  return HR_OK;
}

int hr_event_elapsed_ms(uint64_t dev, uint64_t start, uint64_t end, double *ms_out) {
  static const char *const CALL = "hr_event_elapsed_ms";
  GET(dev, CALL);
  HR_CHECK_PTR(ms_out, CALL);
  cudaEvent_t a = event_get(start, CALL, inst->ordinal);
  if (!a) return HR_E_INVALID;
  cudaEvent_t b = event_get(end, CALL, inst->ordinal);
  if (!b) return HR_E_INVALID;
  HRC_TRY(CALL, cudaSetDevice((int)inst->ordinal));
  float ms = 0;
  HRC_TRY(CALL, cudaEventElapsedTime(&ms, a, b));
  *ms_out = ms;
  return HR_OK;
}

} // extern "C"
