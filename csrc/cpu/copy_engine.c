/*
 * CPU copy engine: one copy thread per engine serving a FIFO of memcpy requests from host
 * buffers into "device" (capacity-limited host) memory. Per slot, `issued` is the sequence
 * number of the last copy queued and `done` the last one finished; hr_copy_wait blocks the
 * compute thread until done >= issued (read at the wait). Compute ops on this backend have
 * finished when they return, so releasing a slot needs nothing: a copy queued after the
 * release cannot overtake it. The FIFO keeps copies into one slot in order.
 *
 * Test knob: delay_us (hr_copy_engine_set_delay_us, env HEADROOM_COPY_DELAY_US) sleeps before
 * every copy, so a missing wait reads stale weights and shows up as wrong tokens.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../core/copy_backend.h"
#include "../core/status.h"

typedef struct copy_req {
  int64_t slot;
  uint64_t seq, bytes;
  void *dst;
  const void *src;
} copy_req;

struct hrb_copy {
  pthread_mutex_t lock;
  pthread_cond_t work; /* queue non-empty or stopping */
  pthread_cond_t done; /* a copy finished */
  pthread_t thread;
  int stop;
  int64_t num_slots;
  uint64_t *issued, *finished; /* per slot */
  copy_req *q;                 /* ring */
  int64_t q_cap, q_head, q_len;
  int64_t delay_us;
  double stats[HR_COPY_STAT_COUNT];
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int hrb_host_alloc(int64_t ordinal, uint64_t bytes, void **out) {
  (void)ordinal;
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return hr_fail(HR_E_OOM, "hr_host_alloc: mmap of %llu bytes of host memory failed: %s", (hr_ull)bytes,
                   strerror(errno));
  *out = p;
  return HR_OK;
}

int hrb_host_free(int64_t ordinal, void *p, uint64_t bytes) {
  (void)ordinal;
  if (munmap(p, bytes) != 0)
    return hr_fail(HR_E_BACKEND, "hr_host_free: munmap(%p, %llu) failed: %s", p, (hr_ull)bytes, strerror(errno));
  return HR_OK;
}

static void *copy_thread(void *arg) {
  hrb_copy *c = arg;
  pthread_mutex_lock(&c->lock);
  for (;;) {
    while (c->q_len == 0 && !c->stop) pthread_cond_wait(&c->work, &c->lock);
    if (c->q_len == 0) break; /* stopping and drained */
    copy_req r = c->q[c->q_head];
    int64_t delay = c->delay_us;
    pthread_mutex_unlock(&c->lock);
    if (delay > 0) {
      struct timespec ts = {.tv_sec = delay / 1000000, .tv_nsec = (delay % 1000000) * 1000};
      while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
    double t0 = now_s();
    memcpy(r.dst, r.src, r.bytes);
    double t1 = now_s();
    pthread_mutex_lock(&c->lock);
    /* dequeue only now: hr_copy_synchronize waits for an empty queue */
    c->q_head = (c->q_head + 1) % c->q_cap;
    c->q_len--;
    c->finished[r.slot] = r.seq;
    c->stats[HR_COPY_STAT_BYTES] += (double)r.bytes;
    c->stats[HR_COPY_STAT_COPIES] += 1;
    c->stats[HR_COPY_STAT_BUSY_S] += t1 - t0;
    pthread_cond_broadcast(&c->done);
  }
  pthread_mutex_unlock(&c->lock);
  return NULL;
}

int hrb_copy_create(hr_instance *inst, int64_t num_slots, hrb_copy **out) {
  (void)inst;
  hrb_copy *c = calloc(1, sizeof *c);
  if (!c) return hr_fail(HR_E_OOM, "hr_copy_engine_create: host allocation failed");
  c->num_slots = num_slots;
  c->issued = calloc((size_t)num_slots, sizeof *c->issued);
  c->finished = calloc((size_t)num_slots, sizeof *c->finished);
  c->q_cap = 64;
  c->q = calloc((size_t)c->q_cap, sizeof *c->q);
  if (!c->issued || !c->finished || !c->q) {
    free(c->issued);
    free(c->finished);
    free(c->q);
    free(c);
    return hr_fail(HR_E_OOM, "hr_copy_engine_create: host allocation failed");
  }
  const char *env = getenv("HEADROOM_COPY_DELAY_US");
  if (env && *env) {
    long v = strtol(env, NULL, 10);
    if (v > 0 && v <= 10000000) c->delay_us = v;
  }
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->work, NULL);
  pthread_cond_init(&c->done, NULL);
  int e = pthread_create(&c->thread, NULL, copy_thread, c);
  if (e != 0) {
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->work);
    pthread_cond_destroy(&c->done);
    free(c->issued);
    free(c->finished);
    free(c->q);
    free(c);
    return hr_fail(HR_E_BACKEND, "hr_copy_engine_create: pthread_create failed: %s", strerror(e));
  }
  *out = c;
  return HR_OK;
}

void hrb_copy_destroy(hrb_copy *c) {
  pthread_mutex_lock(&c->lock);
  c->stop = 1;
  pthread_cond_broadcast(&c->work);
  pthread_mutex_unlock(&c->lock);
  pthread_join(c->thread, NULL);
  pthread_mutex_destroy(&c->lock);
  pthread_cond_destroy(&c->work);
  pthread_cond_destroy(&c->done);
  free(c->issued);
  free(c->finished);
  free(c->q);
  free(c);
}

int hrb_copy_begin(hrb_copy *c, hr_instance *inst) {
  (void)c;
  (void)inst;
  return HR_OK;
}

int hrb_copy_submit(hrb_copy *c, int64_t slot, void *dst, const void *src, uint64_t bytes, int after_release) {
  (void)after_release; /* CPU ops are finished when they return: the release already happened */
  pthread_mutex_lock(&c->lock);
  if (c->q_len == c->q_cap) {
    int64_t cap = c->q_cap * 2;
    copy_req *q = malloc(sizeof *q * (size_t)cap);
    if (!q) {
      pthread_mutex_unlock(&c->lock);
      return hr_fail(HR_E_OOM, "hr_copy_async: growing the copy queue to %lld entries failed", (long long)cap);
    }
    for (int64_t i = 0; i < c->q_len; i++) q[i] = c->q[(c->q_head + i) % c->q_cap];
    free(c->q);
    c->q = q;
    c->q_cap = cap;
    c->q_head = 0;
  }
  copy_req *r = &c->q[(c->q_head + c->q_len) % c->q_cap];
  r->slot = slot;
  r->seq = ++c->issued[slot];
  r->dst = dst;
  r->src = src;
  r->bytes = bytes;
  c->q_len++;
  pthread_cond_signal(&c->work);
  pthread_mutex_unlock(&c->lock);
  return HR_OK;
}

int hrb_copy_wait(hrb_copy *c, hr_instance *inst, int64_t slot) {
  (void)inst;
  pthread_mutex_lock(&c->lock);
  uint64_t target = c->issued[slot];
  c->stats[HR_COPY_STAT_WAITS] += 1;
  if (c->finished[slot] < target) {
    c->stats[HR_COPY_STAT_WAITS_BLOCKED] += 1;
    double t0 = now_s();
    while (c->finished[slot] < target) pthread_cond_wait(&c->done, &c->lock);
    c->stats[HR_COPY_STAT_WAIT_S] += now_s() - t0;
  }
  pthread_mutex_unlock(&c->lock);
  return HR_OK;
}

int hrb_copy_release(hrb_copy *c, hr_instance *inst, int64_t slot) {
  (void)c;
  (void)inst;
  (void)slot;
  return HR_OK;
}

/* Replays run the recorded copies through the same queue: nothing else to consider. */
int hrb_copy_query(hrb_copy *c, hr_instance *inst, int64_t slot, int *done_out) {
  (void)inst;
  pthread_mutex_lock(&c->lock);
  *done_out = c->finished[slot] >= c->issued[slot];
  pthread_mutex_unlock(&c->lock);
  return HR_OK;
}

int hrb_copy_sync(hrb_copy *c, hr_instance *inst) {
  (void)inst;
  pthread_mutex_lock(&c->lock);
  while (c->q_len > 0) pthread_cond_wait(&c->done, &c->lock);
  pthread_mutex_unlock(&c->lock);
  return HR_OK;
}

void hrb_copy_stats(hrb_copy *c, double *out) {
  pthread_mutex_lock(&c->lock);
  memcpy(out, c->stats, sizeof c->stats);
  pthread_mutex_unlock(&c->lock);
}

int hrb_copy_set_delay_us(hrb_copy *c, int64_t delay_us) {
  pthread_mutex_lock(&c->lock);
  c->delay_us = delay_us;
  pthread_mutex_unlock(&c->lock);
  return HR_OK;
}
