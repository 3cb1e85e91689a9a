// CUDA copy engine for weight offload: a non-blocking copy stream per engine and, per slot, a
// "copied" event (recorded on the copy stream after the slot's last copy) and a "released"
// event (recorded on the instance's compute stream after the work that used the slot).
//   begin:   fork event on the compute stream; the copy stream waits on it
//   async:   [copy stream waits "released"[slot]] → cudaMemcpyAsync H2D → record "copied"[slot]
//   wait:    the compute stream waits "copied"[slot] (host does not block)
//   release: record "released"[slot] on the compute stream
// Under stream capture of the compute stream these become a fork into the copy stream,
// memcpy nodes from pinned memory and cross-stream event dependencies joined back by the
// waits (every copy of a step is waited on by the step, so the capture is joined).
// Host buffers are pinned (cudaHostAlloc, portable).
//
// Replays: a captured copy runs inside the graph launched on the compute stream, and the
// cross-stream events of the capture are graph-internal, so neither the "copied" event nor
// the copy stream sees it. Once an engine has had copies captured, query and synchronize
// also look at the compute stream (an event recorded on it now / a stream sync), so copies
// made by graph replays are counted: conservative (other queued work counts too) but never
// blind.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.cuh"

extern "C" {
#include "../core/copy_backend.h"
}

struct hrb_copy {
  int64_t ordinal;
  int64_t num_slots;
  cudaStream_t stream;
  cudaEvent_t fork;
  cudaEvent_t *copied, *released;
  cudaEvent_t probe; // recorded on the compute stream by query once copies were captured
  int captured;      // some copy of this engine was recorded into a graph
  pthread_mutex_t lock;
  double stats[HR_COPY_STAT_COUNT];
};

static void destroy_events(hrb_copy *c) {
  if (c->fork) cudaEventDestroy(c->fork);
  if (c->probe) cudaEventDestroy(c->probe);
  for (int64_t i = 0; i < c->num_slots; i++) {
    if (c->copied && c->copied[i]) cudaEventDestroy(c->copied[i]);
    if (c->released && c->released[i]) cudaEventDestroy(c->released[i]);
  }
  free(c->copied);
  free(c->released);
  if (c->stream) cudaStreamDestroy(c->stream);
}

extern "C" {

int hrb_host_alloc(int64_t ordinal, uint64_t bytes, void **out) {
  HRC_TRY("hr_host_alloc", cudaSetDevice((int)ordinal));
  void *p = NULL;
  cudaError_t e = cudaHostAlloc(&p, bytes, cudaHostAllocPortable);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return hr_fail(e == cudaErrorMemoryAllocation ? HR_E_OOM : hrc_status_of(e),
                   "hr_host_alloc: cudaHostAlloc(%llu bytes) failed: %s (%s)", (hr_ull)bytes, cudaGetErrorString(e),
                   cudaGetErrorName(e));
  }
  *out = p;
  return HR_OK;
}

int hrb_host_free(int64_t ordinal, void *p, uint64_t bytes) {
  (void)bytes;
  HRC_TRY("hr_host_free", cudaSetDevice((int)ordinal));
  HRC_TRY("hr_host_free", cudaFreeHost(p));
  return HR_OK;
}

int hrb_copy_create(hr_instance *inst, int64_t num_slots, hrb_copy **out) {
  static const char *const CALL = "hr_copy_engine_create";
  HRC_TRY(CALL, cudaSetDevice((int)inst->ordinal));
  hrb_copy *c = (hrb_copy *)calloc(1, sizeof *c);
  if (!c) return hr_fail(HR_E_OOM, "%s: host allocation failed", CALL);
  c->ordinal = inst->ordinal;
  c->num_slots = num_slots;
  c->copied = (cudaEvent_t *)calloc((size_t)num_slots, sizeof(cudaEvent_t));
  c->released = (cudaEvent_t *)calloc((size_t)num_slots, sizeof(cudaEvent_t));
  cudaError_t e = (!c->copied || !c->released) ? cudaErrorMemoryAllocation : cudaSuccess;
  // Non-blocking: the copy stream must not serialize with the legacy default stream.
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
  if (e == cudaSuccess) e = cudaEventCreateWithFlags(&c->fork, cudaEventDisableTiming);
  if (e == cudaSuccess) e = cudaEventCreateWithFlags(&c->probe, cudaEventDisableTiming);
  for (int64_t i = 0; i < num_slots && e == cudaSuccess; i++) {
    e = cudaEventCreateWithFlags(&c->copied[i], cudaEventDisableTiming);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&c->released[i], cudaEventDisableTiming);
  }
  if (e != cudaSuccess) {
    destroy_events(c);
    free(c);
    return hrc_fail(e, CALL, "creating the copy stream and events");
  }
  pthread_mutex_init(&c->lock, NULL);
  *out = c;
  return HR_OK;
}

void hrb_copy_destroy(hrb_copy *c) {
  if (cudaSetDevice((int)c->ordinal) == cudaSuccess) cudaStreamSynchronize(c->stream);
  cudaGetLastError();
  destroy_events(c);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

int hrb_copy_begin(hrb_copy *c, hr_instance *inst) {
  static const char *const CALL = "hr_copy_begin";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  HRC_TRY(CALL, cudaEventRecord(c->fork, st->stream));
  HRC_TRY(CALL, cudaStreamWaitEvent(c->stream, c->fork, 0));
  return HR_OK;
}

int hrb_copy_submit(hrb_copy *c, int64_t slot, void *dst, const void *src, uint64_t bytes, int after_release) {
  static const char *const CALL = "hr_copy_async";
  HRC_TRY(CALL, cudaSetDevice((int)c->ordinal));
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  HRC_TRY(CALL, cudaStreamIsCapturing(c->stream, &cs));
  if (cs != cudaStreamCaptureStatusNone) c->captured = 1; // replays will copy (see the top)
  // Waiting on an event that was never recorded completes at once.
  if (after_release) HRC_TRY(CALL, cudaStreamWaitEvent(c->stream, c->released[slot], 0));
  HRC_TRY(CALL, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream));
  HRC_TRY(CALL, cudaEventRecord(c->copied[slot], c->stream));
  pthread_mutex_lock(&c->lock);
  c->stats[HR_COPY_STAT_BYTES] += (double)bytes;
  c->stats[HR_COPY_STAT_COPIES] += 1;
  pthread_mutex_unlock(&c->lock);
  return HR_OK;
}

int hrb_copy_wait(hrb_copy *c, hr_instance *inst, int64_t slot) {
  static const char *const CALL = "hr_copy_wait";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  HRC_TRY(CALL, cudaStreamWaitEvent(st->stream, c->copied[slot], 0));
  pthread_mutex_lock(&c->lock);
  c->stats[HR_COPY_STAT_WAITS] += 1;
  pthread_mutex_unlock(&c->lock);
  return HR_OK;
}

int hrb_copy_release(hrb_copy *c, hr_instance *inst, int64_t slot) {
  static const char *const CALL = "hr_copy_release";
  hrc_state *st = NULL;
  int s = hrc_begin(inst, CALL, &st);
  if (s != HR_OK) return s;
  HRC_TRY(CALL, cudaEventRecord(c->released[slot], st->stream));
  return HR_OK;
}

// 1 = done, 0 = not yet, else an HR_* error (with message).
static int event_done(cudaEvent_t ev, const char *call) {
  cudaError_t e = cudaEventQuery(ev);
  if (e == cudaErrorNotReady) {
    cudaGetLastError();
    return 0;
  }
  if (e != cudaSuccess) return hrc_fail(e, call, "cudaEventQuery");
  return 1;
}

int hrb_copy_query(hrb_copy *c, hr_instance *inst, int64_t slot, int *done_out) {
  static const char *const CALL = "hr_copy_query";
  *done_out = 0;
  HRC_TRY(CALL, cudaSetDevice((int)c->ordinal));
  int d = event_done(c->copied[slot], CALL);
  if (d < 0) return d;
  if (d == 1 && c->captured) { // replayed copies run on the compute stream (see the top)
    hrc_state *st = NULL;
    int s = hrc_begin(inst, CALL, &st);
    if (s != HR_OK) return s;
    HRC_TRY(CALL, cudaEventRecord(c->probe, st->stream));
    d = event_done(c->probe, CALL);
    if (d < 0) return d;
  }
  *done_out = d;
  return HR_OK;
}

int hrb_copy_sync(hrb_copy *c, hr_instance *inst) {
  static const char *const CALL = "hr_copy_synchronize";
  HRC_TRY(CALL, cudaSetDevice((int)c->ordinal));
  HRC_TRY(CALL, cudaStreamSynchronize(c->stream));
  if (c->captured) {
    hrc_state *st = NULL;
    int s = hrc_begin(inst, CALL, &st);
    if (s != HR_OK) return s;
    HRC_TRY(CALL, cudaStreamSynchronize(st->stream));
  }
  return HR_OK;
}

void hrb_copy_stats(hrb_copy *c, double *out) {
  pthread_mutex_lock(&c->lock);
  memcpy(out, c->stats, sizeof c->stats);
  pthread_mutex_unlock(&c->lock);
}

int hrb_copy_set_delay_us(hrb_copy *c, int64_t delay_us) {
  (void)c;
  (void)delay_us;
  return hr_fail(HR_E_UNSUPPORTED, "hr_copy_engine_set_delay_us: a test knob of the CPU backend only");
}

} // extern "C"
