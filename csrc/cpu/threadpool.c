/* Persistent pthread pool for CPU ops; see threadpool.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "threadpool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() __asm__ __volatile__("" ::: "memory")
#endif

#include "../core/status.h"

#define MAX_THREADS 4096
#define SPIN_ITERS 40000 /* ~1-4 ms of pause before a worker sleeps */

typedef struct {
  void *ptr;
  size_t size;
} scratch_t;

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER; /* one region at a time, config */
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;

static int nthreads;         /* 0 = not started */
static pthread_t *workers;   /* nthreads - 1 */
static scratch_t *scratch;   /* nthreads */
static _Atomic uint64_t gen; /* bumped per region (wakes workers) */
static atomic_int quit;
static atomic_int sleepers;
static _Thread_local int in_region;
static uint64_t start_gen; /* gen when the workers were created (run_lock held) */

/*
 * Task claiming. A region publishes its job in slot (region & 1) and then the ticket
 * (region << 40 | next task index). Threads claim a task by CAS on the ticket, so a worker
 * that wakes late (after its region ended) can never claim a task of another region: its
 * CAS fails as soon as a new ticket is published. The region's caller waits only for its
 * tasks to be *done* (not for every worker to check in), so a descheduled worker does not
 * stall a region; whoever is running claims the remaining tasks.
 */
typedef struct {
  _Atomic(hrt_task_fn) fn;
  _Atomic(void *) ctx;
  _Atomic int64_t n;
  _Atomic int64_t done;
} job_t;
static job_t jobs[2];
static _Atomic uint64_t ticket;
static uint64_t region_no;
#define IDX_BITS 40
#define IDX_MASK ((UINT64_C(1) << IDX_BITS) - 1)

static void run_tasks(int tid) {
  for (;;) {
    uint64_t t = atomic_load(&ticket);
    job_t *j = &jobs[(t >> IDX_BITS) & 1];
    int64_t idx = (int64_t)(t & IDX_MASK);
    if (idx >= atomic_load_explicit(&j->n, memory_order_relaxed)) return;
    if (!atomic_compare_exchange_weak(&ticket, &t, t + 1)) continue;
    /* claimed: the region cannot end before this task is done, so its job is stable */
    hrt_task_fn fn = atomic_load_explicit(&j->fn, memory_order_relaxed);
    fn(atomic_load_explicit(&j->ctx, memory_order_relaxed), idx, tid, scratch[tid].ptr);
    atomic_fetch_add_explicit(&j->done, 1, memory_order_release);
  }
}

static void *worker_main(void *arg) {
  int tid = (int)(intptr_t)arg;
  in_region = 1;
  /* The generation at creation (not at thread start-up, which may come after the first region). */
  uint64_t seen = start_gen;
  for (;;) {
    uint64_t g;
    int spins = 0;
    while ((g = atomic_load_explicit(&gen, memory_order_acquire)) == seen && !atomic_load(&quit)) {
      if (++spins < SPIN_ITERS) {
        CPU_RELAX();
        continue;
      }
      pthread_mutex_lock(&wake_lock);
      atomic_fetch_add(&sleepers, 1);
      while (atomic_load(&gen) == seen && !atomic_load(&quit)) pthread_cond_wait(&wake_cond, &wake_lock);
      atomic_fetch_sub(&sleepers, 1);
      pthread_mutex_unlock(&wake_lock);
    }
    if (atomic_load(&quit)) break;
    seen = g;
    run_tasks(tid);
  }
  return NULL;
}

static int default_threads(void) {
  const char *env = getenv("HEADROOM_NUM_THREADS");
  if (env && *env) {
    char *end = NULL;
    long v = strtol(env, &end, 10);
    if (end && *end == '\0' && v > 0 && v <= MAX_THREADS) return (int)v;
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int c = CPU_COUNT(&set);
    if (c > 0) return c;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

/* run_lock held */
static void stop_locked(void) {
  if (nthreads == 0) return;
  pthread_mutex_lock(&wake_lock);
  atomic_store(&quit, 1);
  pthread_cond_broadcast(&wake_cond);
  pthread_mutex_unlock(&wake_lock);
  for (int i = 0; i < nthreads - 1; i++) pthread_join(workers[i], NULL);
  for (int i = 0; i < nthreads; i++) free(scratch[i].ptr);
  free(workers);
  free(scratch);
  workers = NULL;
  scratch = NULL;
  nthreads = 0;
  atomic_store(&quit, 0);
}

/* run_lock held */
static int start_locked(int n) {
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  scratch = calloc((size_t)n, sizeof *scratch);
  workers = n > 1 ? calloc((size_t)(n - 1), sizeof *workers) : NULL;
  if (!scratch || (n > 1 && !workers)) {
    free(scratch);
    free(workers);
    scratch = NULL;
    workers = NULL;
    return hr_fail(HR_E_OOM, "hr_set_num_threads: host allocation for %d threads failed", n);
  }
  nthreads = 1;
  start_gen = atomic_load(&gen);
  for (int i = 1; i < n; i++) {
    if (pthread_create(&workers[i - 1], NULL, worker_main, (void *)(intptr_t)i) != 0) break;
    nthreads++;
  }
  return HR_OK; /* fewer threads than asked if creation failed: still a working pool */
}

static int ensure_started_locked(void) { return nthreads ? HR_OK : start_locked(default_threads()); }

int hrt_set_num_threads(int64_t n) {
  pthread_mutex_lock(&run_lock);
  stop_locked();
  int st = start_locked(n <= 0 ? default_threads() : (int)n);
  pthread_mutex_unlock(&run_lock);
  return st;
}

int hrt_num_threads(void) {
  pthread_mutex_lock(&run_lock);
  int st = ensure_started_locked();
  int n = st == HR_OK ? nthreads : 1;
  pthread_mutex_unlock(&run_lock);
  return n;
}

static int reserve_scratch_locked(size_t bytes) {
  if (bytes == 0) return HR_OK;
  bytes = (bytes + 63) & ~(size_t)63;
  for (int i = 0; i < nthreads; i++) {
    if (scratch[i].size >= bytes) continue;
    void *p = aligned_alloc(64, bytes);
    if (!p) return hr_fail(HR_E_OOM, "CPU ops: host scratch allocation of %zu bytes failed", bytes);
    free(scratch[i].ptr);
    scratch[i].ptr = p;
    scratch[i].size = bytes;
  }
  return HR_OK;
}

int hrt_parallel(int64_t n_tasks, size_t scratch_bytes, hrt_task_fn fn, void *ctx) {
  if (n_tasks <= 0) return HR_OK;
  if (in_region) {
    /* nested: run inline with a private scratch buffer */
    void *p = NULL;
    if (scratch_bytes && !(p = aligned_alloc(64, (scratch_bytes + 63) & ~(size_t)63)))
      return hr_fail(HR_E_OOM, "CPU ops: host scratch allocation of %zu bytes failed", scratch_bytes);
    for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, 0, p);
    free(p);
    return HR_OK;
  }
  pthread_mutex_lock(&run_lock);
  int st = ensure_started_locked();
  if (st == HR_OK) st = reserve_scratch_locked(scratch_bytes);
  if (st != HR_OK) {
    pthread_mutex_unlock(&run_lock);
    return st;
  }
  in_region = 1;
  if (nthreads == 1 || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, 0, scratch[0].ptr);
  } else {
    region_no++;
    job_t *j = &jobs[region_no & 1];
    atomic_store_explicit(&j->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&j->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&j->n, n_tasks, memory_order_relaxed);
    atomic_store_explicit(&j->done, 0, memory_order_relaxed);
    atomic_store(&ticket, (region_no & ((UINT64_C(1) << (64 - IDX_BITS)) - 1)) << IDX_BITS); /* publishes the job */
    atomic_fetch_add(&gen, 1); /* seq_cst: pairs with the sleepers check */
    if (atomic_load(&sleepers) > 0) {
      pthread_mutex_lock(&wake_lock);
      pthread_cond_broadcast(&wake_cond);
      pthread_mutex_unlock(&wake_lock);
    }
    run_tasks(0);
    while (atomic_load_explicit(&j->done, memory_order_acquire) < n_tasks) CPU_RELAX();
  }
  in_region = 0;
  pthread_mutex_unlock(&run_lock);
  return HR_OK;
}
