// hr_memcpy_h2d_async on CUDA: a pinned staging ring per instance, so per-step inputs reach the
// device without the host waiting for the stream (a cudaMemcpy from pageable memory waits for
// the stream first; the synchronous hr_memcpy_h2d waits after). The caller's bytes are copied
// into the ring, a cudaMemcpyAsync from the ring is queued on the instance's stream and an event
// recorded behind it. Ring space is reused only after its copy's event has completed: the
// pending copies form a FIFO in ring order, so making room means waiting for the oldest ones
// (in the engine's steady state they finished long ago and nothing waits).
//
// Positions are monotonic byte counters: `issued` counts every byte handed out (including the
// padding skipped at the end of the ring when a copy does not fit there), `retired` the bytes
// whose copies are known complete; issued - retired <= cap.
#include <stdlib.h>
#include <string.h>

#include "cuda_common.cuh"

namespace {

constexpr uint64_t kInitialBytes = 1ull << 20;
constexpr uint64_t kAlign = 64;
constexpr int kMaxPending = 64;

struct Pending {
  uint64_t end; // `issued` after this copy
  cudaEvent_t done;
};

} // namespace

struct hrc_stage {
  unsigned char *buf; // cudaHostAlloc
  uint64_t cap, issued, retired;
  Pending ring[kMaxPending]; // pending copies, oldest at `first`
  int first, count;
  cudaEvent_t spare[kMaxPending]; // completed copies' events, reused
  int spares;
};

static void retire_oldest(hrc_stage *s) {
  Pending *p = &s->ring[s->first];
  s->retired = p->end;
  s->spare[s->spares++] = p->done;
  s->first = (s->first + 1) % kMaxPending;
  s->count--;
}

// Retires the pending copies that have completed, oldest first, without waiting.
static void retire_completed(hrc_stage *s) {
  while (s->count > 0 && cudaEventQuery(s->ring[s->first].done) == cudaSuccess) retire_oldest(s);
  cudaGetLastError(); // cudaErrorNotReady is not an error here
}

static int wait_oldest(hrc_stage *s, const char *call) {
  HRC_TRY(call, cudaEventSynchronize(s->ring[s->first].done));
  retire_oldest(s);
  return HR_OK;
}

static void destroy_events(hrc_stage *s) {
  while (s->count > 0) retire_oldest(s);
  for (int i = 0; i < s->spares; i++) cudaEventDestroy(s->spare[i]);
  s->spares = 0;
}

// A ring of at least `bytes`: waits for the stream (every pending copy) before replacing one.
static int ensure_capacity(hrc_stage *s, hrc_state *st, uint64_t bytes, const char *call) {
  if (s->buf && s->cap >= bytes) return HR_OK;
  uint64_t cap = s->cap ? s->cap : kInitialBytes;
  while (cap < bytes) cap *= 2;
  if (s->buf) {
    HRC_TRY(call, cudaStreamSynchronize(st->stream));
    while (s->count > 0) retire_oldest(s);
    cudaFreeHost(s->buf);
    s->buf = NULL;
    s->cap = 0;
  }
  void *p = NULL;
  HRC_TRY(call, cudaHostAlloc(&p, cap, cudaHostAllocPortable));
  s->buf = (unsigned char *)p;
  s->cap = cap;
  s->issued = s->retired = 0;
  return HR_OK;
}

void hrc_stage_destroy(void *stage) {
  hrc_stage *s = (hrc_stage *)stage;
  if (!s) return;
  destroy_events(s);
  if (s->buf) cudaFreeHost(s->buf);
  free(s);
  cudaGetLastError();
}

extern "C" int hrb_memcpy_h2d_staged(struct hr_instance *inst, void *dst, const void *src, uint64_t bytes) {
  static const char *const CALL = "hr_memcpy_h2d_async";
  hrc_state *st = NULL;
  int rc = hrc_begin(inst, CALL, &st);
  if (rc != HR_OK) return rc;
  if (!st->stage) {
    st->stage = calloc(1, sizeof(hrc_stage));
    if (!st->stage) return hr_fail(HR_E_OOM, "%s: out of host memory for the staging ring", CALL);
  }
  hrc_stage *s = (hrc_stage *)st->stage;
  const uint64_t n = (bytes + kAlign - 1) / kAlign * kAlign;
  rc = ensure_capacity(s, st, n, CALL);
  if (rc != HR_OK) return rc;

  retire_completed(s);
  uint64_t pad = 0;
  for (;;) {
    if (s->count == 0) s->issued = s->retired = 0; // nothing in flight: start at the ring's head
    const uint64_t pos = s->issued % s->cap;
    pad = pos + n > s->cap ? s->cap - pos : 0; // a copy never wraps: skip the ring's tail
    // [retired, issued) is in flight; the new copy takes [issued + pad, issued + pad + n).
    if (s->issued + pad + n - s->retired <= s->cap && s->count < kMaxPending) break;
    rc = wait_oldest(s, CALL);
    if (rc != HR_OK) return rc;
  }
  const uint64_t at = (s->issued + pad) % s->cap;
  memcpy(s->buf + at, src, bytes);

  cudaEvent_t done = NULL;
  if (s->spares > 0)
    done = s->spare[--s->spares];
  else
    HRC_TRY(CALL, cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  cudaError_t e = cudaMemcpyAsync(dst, s->buf + at, bytes, cudaMemcpyHostToDevice, st->stream);
  if (e == cudaSuccess) e = cudaEventRecord(done, st->stream);
  if (e != cudaSuccess) {
    s->spare[s->spares++] = done;
    return hrc_fail(e, CALL, "cudaMemcpyAsync from the staging ring");
  }
  s->issued += pad + n;
  const int slot = (s->first + s->count) % kMaxPending;
  s->ring[slot] = Pending{s->issued, done};
  s->count++;
  return HR_OK;
}
