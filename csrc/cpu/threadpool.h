/*
 * Internal: the CPU backend's persistent worker pool (process-wide).
 *
 * hrt_parallel runs fn(ctx, task, thread, scratch) for task = 0 .. n_tasks-1 on the pool's
 * threads (the caller is thread 0 and takes part). Tasks are claimed dynamically. Each
 * participating thread gets its own 64-byte aligned scratch buffer of at least
 * scratch_bytes (kept between calls). Parallel regions are serialized by a lock; a call
 * made from inside a task runs inline on that thread. Workers spin briefly after a region
 * (so back-to-back ops do not pay a wake-up) and then sleep on a condition variable.
 */
#ifndef HR_CPU_THREADPOOL_H
#define HR_CPU_THREADPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef void (*hrt_task_fn)(void *ctx, int64_t task, int thread, void *scratch);

/* HR_OK, or HR_E_OOM (with message) if scratch could not be allocated. */
int hrt_parallel(int64_t n_tasks, size_t scratch_bytes, hrt_task_fn fn, void *ctx);
/* Threads a parallel region uses (>= 1); starts the pool on first use. */
int hrt_num_threads(void);
/* n <= 0: default (HEADROOM_NUM_THREADS, else CPUs in this process's affinity mask). */
int hrt_set_num_threads(int64_t n);

#endif
