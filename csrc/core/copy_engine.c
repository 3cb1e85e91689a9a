/*
 * Offload copy engine, backend-independent part: host-buffer registry (hr_host_*), the copy
 * engine handle table, argument validation, and the executors of the copy op kinds, which
 * run through the op dispatcher (hr_ops_submit) so op-list graphs record them and CUDA
 * stream capture sees them. Backends: csrc/cpu/copy_engine.c, csrc/cuda/copy_engine.cu.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "allocator.h"
#include "copy_backend.h"
#include "graph.h"
#include "handles.h"
#include "ops_dispatch.h"
#include "status.h"

/* ---- host buffers ---- */

typedef struct host_block {
  uint64_t ptr, bytes, dev;
  int64_t ordinal;
} host_block;

static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;
static host_block *hosts;
static int64_t hosts_n, hosts_cap;

#define GET(handle, call)                                \
  hr_clear_error();                                      \
  hr_instance *inst = hr_instance_get((handle), (call)); \
  if (!inst) return HR_E_INVALID

int hr_host_alloc(uint64_t dev, uint64_t bytes, uint64_t *ptr_out) {
  static const char *const CALL = "hr_host_alloc";
  GET(dev, CALL);
  HR_CHECK_PTR(ptr_out, CALL);
  *ptr_out = 0;
  if (inst->graph_capture) return hr_graph_refuse(inst, CALL); /* cudaHostAlloc synchronizes */
  if (bytes == 0 || bytes > (1ull << 48))
    return hr_fail(HR_E_INVALID, "%s: bytes must be in 1..2^48 (got %llu)", CALL, (hr_ull)bytes);
  pthread_mutex_lock(&host_lock);
  if (hosts_n == hosts_cap) {
    int64_t cap = hosts_cap ? hosts_cap * 2 : 64;
    host_block *p = realloc(hosts, sizeof *hosts * (size_t)cap);
    if (!p) {
      pthread_mutex_unlock(&host_lock);
      return hr_fail(HR_E_OOM, "%s: host allocation of the registry failed", CALL);
    }
    hosts = p;
    hosts_cap = cap;
  }
  pthread_mutex_unlock(&host_lock);
  void *p = NULL;
  int st = hrb_host_alloc(inst->ordinal, bytes, &p);
  if (st != HR_OK) return st;
  pthread_mutex_lock(&host_lock);
  hosts[hosts_n++] = (host_block){.ptr = (uint64_t)(uintptr_t)p, .bytes = bytes, .dev = dev, .ordinal = inst->ordinal};
  pthread_mutex_unlock(&host_lock);
  *ptr_out = (uint64_t)(uintptr_t)p;
  return HR_OK;
}

int hr_host_free(uint64_t dev, uint64_t ptr) {
  static const char *const CALL = "hr_host_free";
  GET(dev, CALL);
  if (inst->graph_capture) return hr_graph_refuse(inst, CALL); /* cudaFreeHost synchronizes */
  if (ptr == 0) return HR_OK;
  pthread_mutex_lock(&host_lock);
  int64_t i = 0;
  while (i < hosts_n && !(hosts[i].ptr == ptr && hosts[i].dev == dev)) i++;
  if (i == hosts_n) {
    pthread_mutex_unlock(&host_lock);
    return hr_fail(HR_E_INVALID, "%s: 0x%llx is not a live host buffer of device handle 0x%llx", CALL, (hr_ull)ptr,
                   (hr_ull)dev);
  }
  host_block b = hosts[i];
  hosts[i] = hosts[--hosts_n];
  pthread_mutex_unlock(&host_lock);
  return hrb_host_free(b.ordinal, (void *)(uintptr_t)b.ptr, b.bytes);
}

int hr_host_bytes(uint64_t dev, uint64_t *bytes_out) {
  static const char *const CALL = "hr_host_bytes";
  GET(dev, CALL);
  (void)inst;
  HR_CHECK_PTR(bytes_out, CALL);
  uint64_t n = 0;
  pthread_mutex_lock(&host_lock);
  for (int64_t i = 0; i < hosts_n; i++)
    if (hosts[i].dev == dev) n += hosts[i].bytes;
  pthread_mutex_unlock(&host_lock);
  *bytes_out = n;
  return HR_OK;
}

/* 1 if [ptr, ptr + bytes) lies inside one host buffer of `dev`. */
static int host_owns(uint64_t dev, uint64_t ptr, uint64_t bytes) {
  int ok = 0;
  pthread_mutex_lock(&host_lock);
  for (int64_t i = 0; i < hosts_n && !ok; i++)
    ok = hosts[i].dev == dev && ptr >= hosts[i].ptr && bytes <= hosts[i].bytes &&
         ptr - hosts[i].ptr <= hosts[i].bytes - bytes;
  pthread_mutex_unlock(&host_lock);
  return ok;
}

/* ---- copy engines ---- */

#define MAX_SLOTS 64

typedef struct engine {
  hrb_copy *c;
  int64_t num_slots;
} engine;

/* Resolves an engine handle of instance `inst`; sets an error naming `call` on failure. */
static hrb_copy *engine_get(hr_instance *inst, uint64_t h, const char *call, int64_t *num_slots) {
  engine *e = (engine *)hr_handle_get(h, HR_H_COPY_ENGINE, inst, call);
  if (!e) return NULL;
  if (num_slots) *num_slots = e->num_slots;
  return e->c;
}

static void engine_destroy(engine *e) {
  hrb_copy_destroy(e->c); /* waits for pending copies (CPU: joins the copy thread) */
  free(e);
}

void hr_copy_release_instance(hr_instance *inst) {
  engine *e;
  while ((e = (engine *)hr_handle_take_owned(HR_H_COPY_ENGINE, inst, NULL)) != NULL) engine_destroy(e);
}

void hr_host_release_instance(hr_instance *inst) {
  for (;;) {
    host_block b = {0};
    int found = 0;
    pthread_mutex_lock(&host_lock);
    for (int64_t i = 0; i < hosts_n && !found; i++)
      if (hosts[i].dev == inst->handle) {
        b = hosts[i];
        hosts[i] = hosts[--hosts_n];
        found = 1;
      }
    if (!found && hosts_n == 0) { /* last one out frees the registry (no leak at exit) */
      free(hosts);
      hosts = NULL;
      hosts_cap = 0;
    }
    pthread_mutex_unlock(&host_lock);
    if (!found) return;
    hrb_host_free(b.ordinal, (void *)(uintptr_t)b.ptr, b.bytes);
  }
}

int hr_copy_engine_create(uint64_t dev, int64_t num_slots, uint64_t *engine_out) {
  static const char *const CALL = "hr_copy_engine_create";
  GET(dev, CALL);
  HR_CHECK_PTR(engine_out, CALL);
  *engine_out = 0;
  if (num_slots < 1 || num_slots > MAX_SLOTS)
    return hr_fail(HR_E_INVALID, "%s: num_slots must be in 1..%d (got %lld)", CALL, MAX_SLOTS, (long long)num_slots);
  engine *e = calloc(1, sizeof *e);
  if (!e) return hr_fail(HR_E_OOM, "%s: host allocation failed", CALL);
  e->num_slots = num_slots;
  int st = hrb_copy_create(inst, num_slots, &e->c);
  if (st == HR_OK) st = hr_handle_new(HR_H_COPY_ENGINE, e, inst, CALL, engine_out);
  if (st != HR_OK) {
    if (e->c) hrb_copy_destroy(e->c);
    free(e);
    return st;
  }
  return HR_OK;
}

int hr_copy_engine_destroy(uint64_t dev, uint64_t h) {
  static const char *const CALL = "hr_copy_engine_destroy";
  GET(dev, CALL);
  if (!engine_get(inst, h, CALL, NULL)) return HR_E_INVALID;
  if (inst->graph_capture) return hr_graph_refuse(inst, CALL); /* destroy waits for the copy stream */
  engine_destroy((engine *)hr_handle_take(h, HR_H_COPY_ENGINE));
  return HR_OK;
}

static int check_slot(const char *call, int64_t slot, int64_t n) {
  if (slot < 0 || slot >= n)
    return hr_fail(HR_E_INVALID, "%s: slot %lld out of range 0..%lld", call, (long long)slot, (long long)n - 1);
  return HR_OK;
}

int hr_copy_begin(uint64_t dev, uint64_t engine) {
  static const char *const CALL = "hr_copy_begin";
  GET(dev, CALL);
  if (!engine_get(inst, engine, CALL, NULL)) return HR_E_INVALID;
  int64_t a[HR_A_CP_N] = {0};
  a[HR_A_CP_ENGINE] = (int64_t)engine;
  return hr_ops_submit(inst, HR_OPK_COPY_BEGIN, a);
}

int hr_copy_async(uint64_t dev, uint64_t engine, int64_t slot, uint64_t dst, uint64_t src_host, uint64_t bytes,
                  int64_t after_release) {
  static const char *const CALL = "hr_copy_async";
  GET(dev, CALL);
  int64_t n = 0;
  if (!engine_get(inst, engine, CALL, &n)) return HR_E_INVALID;
  int st = check_slot(CALL, slot, n);
  if (st != HR_OK) return st;
  if (after_release != 0 && after_release != 1)
    return hr_fail(HR_E_INVALID, "%s: after_release must be 0 or 1 (got %lld)", CALL, (long long)after_release);
  if (bytes == 0 || dst == 0 || src_host == 0)
    return hr_fail(HR_E_INVALID, "%s: dst, src_host and bytes must not be 0 (dst 0x%llx, src 0x%llx, %llu bytes)", CALL,
                   (hr_ull)dst, (hr_ull)src_host, (hr_ull)bytes);
  if (!hr_allocator_owns_range(inst->alloc, dst, bytes) && !hr_vmm_owns_range(inst, dst, bytes))
    return hr_fail(HR_E_INVALID, "%s: dst range [0x%llx, +%llu) is not inside a live allocation of this instance", CALL,
                   (hr_ull)dst, (hr_ull)bytes);
  if (!host_owns(dev, src_host, bytes))
    return hr_fail(HR_E_INVALID,
                   "%s: src range [0x%llx, +%llu) is not inside a host buffer (hr_host_alloc) of this device", CALL,
                   (hr_ull)src_host, (hr_ull)bytes);
  int64_t a[HR_A_CP_N] = {0};
  a[HR_A_CP_ENGINE] = (int64_t)engine;
  a[HR_A_CP_SLOT] = slot;
  a[HR_A_CP_DST] = (int64_t)dst;
  a[HR_A_CP_SRC] = (int64_t)src_host;
  a[HR_A_CP_BYTES] = (int64_t)bytes;
  a[HR_A_CP_AFTER_RELEASE] = after_release;
  return hr_ops_submit(inst, HR_OPK_COPY_ASYNC, a);
}

static int slot_op(uint64_t dev, uint64_t engine, int64_t slot, int kind, const char *call) {
  hr_clear_error();
  hr_instance *inst = hr_instance_get(dev, call);
  if (!inst) return HR_E_INVALID;
  int64_t n = 0;
  if (!engine_get(inst, engine, call, &n)) return HR_E_INVALID;
  int st = check_slot(call, slot, n);
  if (st != HR_OK) return st;
  int64_t a[HR_A_CP_N] = {0};
  a[HR_A_CP_ENGINE] = (int64_t)engine;
  a[HR_A_CP_SLOT] = slot;
  return hr_ops_submit(inst, kind, a);
}

int hr_copy_wait(uint64_t dev, uint64_t engine, int64_t slot) {
  return slot_op(dev, engine, slot, HR_OPK_COPY_WAIT, "hr_copy_wait");
}

int hr_copy_release(uint64_t dev, uint64_t engine, int64_t slot) {
  return slot_op(dev, engine, slot, HR_OPK_COPY_RELEASE, "hr_copy_release");
}

int hr_copy_query(uint64_t dev, uint64_t engine, int64_t slot, int64_t *done_out) {
  static const char *const CALL = "hr_copy_query";
  GET(dev, CALL);
  HR_CHECK_PTR(done_out, CALL);
  if (inst->graph_capture) return hr_graph_refuse(inst, CALL); /* the copies are being captured, not run */
  int64_t n = 0;
  hrb_copy *c = engine_get(inst, engine, CALL, &n);
  if (!c) return HR_E_INVALID;
  int st = check_slot(CALL, slot, n);
  if (st != HR_OK) return st;
  int done = 0;
  st = hrb_copy_query(c, inst, slot, &done);
  *done_out = done;
  return st;
}

int hr_copy_synchronize(uint64_t dev, uint64_t engine) {
  static const char *const CALL = "hr_copy_synchronize";
  GET(dev, CALL);
  hrb_copy *c = engine_get(inst, engine, CALL, NULL);
  if (!c) return HR_E_INVALID;
  if (inst->graph_capture) return hr_graph_refuse(inst, CALL);
  return hrb_copy_sync(c, inst);
}

int hr_copy_engine_stats(uint64_t dev, uint64_t engine, double *out, int64_t n) {
  static const char *const CALL = "hr_copy_engine_stats";
  GET(dev, CALL);
  HR_CHECK_PTR(out, CALL);
  if (n <= 0) return hr_fail(HR_E_INVALID, "%s: n must be > 0 (got %lld)", CALL, (long long)n);
  hrb_copy *c = engine_get(inst, engine, CALL, NULL);
  if (!c) return HR_E_INVALID;
  double all[HR_COPY_STAT_COUNT] = {0};
  hrb_copy_stats(c, all);
  memcpy(out, all, sizeof(double) * (size_t)(n < HR_COPY_STAT_COUNT ? n : HR_COPY_STAT_COUNT));
  return HR_OK;
}

int hr_copy_engine_set_delay_us(uint64_t dev, uint64_t engine, int64_t delay_us) {
  static const char *const CALL = "hr_copy_engine_set_delay_us";
  GET(dev, CALL);
  hrb_copy *c = engine_get(inst, engine, CALL, NULL);
  if (!c) return HR_E_INVALID;
  if (delay_us < 0 || delay_us > 10 * 1000 * 1000)
    return hr_fail(HR_E_INVALID, "%s: delay_us must be in 0..10000000 (got %lld)", CALL, (long long)delay_us);
  return hrb_copy_set_delay_us(c, delay_us);
}

/* ---- executors (validated by the public calls above; replayed as recorded) ---- */

static int exec_begin(hr_instance *inst, const int64_t *a) {
  hrb_copy *c = engine_get(inst, (uint64_t)a[HR_A_CP_ENGINE], "hr_copy_begin", NULL);
  return c ? hrb_copy_begin(c, inst) : HR_E_INVALID;
}

static int exec_async(hr_instance *inst, const int64_t *a) {
  hrb_copy *c = engine_get(inst, (uint64_t)a[HR_A_CP_ENGINE], "hr_copy_async", NULL);
  if (!c) return HR_E_INVALID;
  return hrb_copy_submit(c, a[HR_A_CP_SLOT], HR_PTR(a, HR_A_CP_DST, void), HR_PTR(a, HR_A_CP_SRC, const void),
                         (uint64_t)a[HR_A_CP_BYTES], (int)a[HR_A_CP_AFTER_RELEASE]);
}

static int exec_wait(hr_instance *inst, const int64_t *a) {
  hrb_copy *c = engine_get(inst, (uint64_t)a[HR_A_CP_ENGINE], "hr_copy_wait", NULL);
  return c ? hrb_copy_wait(c, inst, a[HR_A_CP_SLOT]) : HR_E_INVALID;
}

static int exec_release(hr_instance *inst, const int64_t *a) {
  hrb_copy *c = engine_get(inst, (uint64_t)a[HR_A_CP_ENGINE], "hr_copy_release", NULL);
  return c ? hrb_copy_release(c, inst, a[HR_A_CP_SLOT]) : HR_E_INVALID;
}

hr_op_exec_fn hr_copy_op_executor(int kind) {
  switch (kind) {
    case HR_OPK_COPY_BEGIN: return exec_begin;
    case HR_OPK_COPY_ASYNC: return exec_async;
    case HR_OPK_COPY_WAIT: return exec_wait;
    case HR_OPK_COPY_RELEASE: return exec_release;
    default: return NULL;
  }
}
