/*
 * Device instances: the handle table behind hr_device_open/close, and the public device,
 * allocator and transfer calls that only need to find the instance and delegate.
 *
 * Handles come from the one handle table (handles.c): a closed, forged or wrong-kind handle
 * is caught instead of dereferenced. An instance owns what is created on it: closing it
 * releases its copy engines (joining their threads), graph sets, host buffers, backend
 * objects (events, streams), reserved ranges and finally its allocator.
 */
#include "device.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>

#include "graph.h"
#include "handles.h"
#include "status.h"

hr_instance *hr_instance_get(uint64_t handle, const char *call) {
  return (hr_instance *)hr_handle_get(handle, HR_H_INSTANCE, NULL, call);
}

#define GET(handle, call)                                \
  hr_clear_error();                                      \
  hr_instance *inst = hr_instance_get((handle), (call)); \
  if (!inst) return HR_E_INVALID

const char *hr_backend_name(void) { return hrb_name(); }

int hr_device_count(int64_t *count_out) {
  hr_clear_error();
  HR_CHECK_PTR(count_out, "hr_device_count");
  return hrb_device_count(count_out);
}

static int raw_alloc(void *ctx, uint64_t size, uint64_t *ptr_out) {
  return hrb_raw_alloc((hrb_device *)ctx, size, ptr_out);
}
static int raw_free(void *ctx, uint64_t ptr, uint64_t size) { return hrb_raw_free((hrb_device *)ctx, ptr, size); }
static int raw_mem_info(void *ctx, uint64_t *free_out, uint64_t *total_out) {
  return hrb_mem_info((hrb_device *)ctx, free_out, total_out);
}

int hr_device_open(int64_t ordinal, uint64_t cpu_capacity_bytes, uint64_t *dev_out) {
  hr_clear_error();
  HR_CHECK_PTR(dev_out, "hr_device_open");
  *dev_out = 0;
  hrb_device *d = NULL;
  int st = hrb_device_acquire(ordinal, cpu_capacity_bytes, &d);
  if (st != HR_OK) return st;
  hr_instance *inst = calloc(1, sizeof *inst);
  hr_raw_ops ops = {.ctx = d, .alloc = raw_alloc, .free = raw_free, .mem_info = raw_mem_info};
  hr_allocator *a = inst ? hr_allocator_create(ops) : NULL;
  if (!inst || !a) {
    free(inst);
    hrb_device_release(d);
    return hr_fail(HR_E_OOM, "hr_device_open: host allocation of the instance failed");
  }
  inst->dev = d;
  inst->alloc = a;
  inst->ordinal = ordinal;
  int st2 = hr_handle_new(HR_H_INSTANCE, inst, NULL, "hr_device_open", dev_out);
  if (st2 != HR_OK) {
    hr_allocator_destroy(a);
    hrb_device_release(d);
    free(inst);
    return st2;
  }
  inst->handle = *dev_out;
  return HR_OK;
}

int hr_device_close(uint64_t handle) {
  GET(handle, "hr_device_close");
  if (hr_handle_take(handle, HR_H_INSTANCE) != inst)
    return hr_fail(HR_E_INVALID, "hr_device_close: handle 0x%llx closed concurrently", (hr_ull)handle);
  /* Children first, in dependency order: graph sets (then the device is waited for: no
   * replay runs any more), copy engines (pending copies waited for, threads joined), then the
   * host buffers those copies read. */
  hr_graph_release_instance(inst);
  hr_copy_release_instance(inst);
  hr_host_release_instance(inst);
  hrb_instance_close(inst);
  if (inst->sim_non_allocator) hrb_simulate_usage(inst->dev, HR_SIM_NON_ALLOCATOR, inst->sim_non_allocator, 0);
  hr_vmm_release_all(inst);
  hr_allocator_destroy(inst->alloc);
  hrb_device_release(inst->dev);
  free(inst);
  return HR_OK;
}

int hr_device_mem_info(uint64_t handle, uint64_t *free_out, uint64_t *total_out) {
  GET(handle, "hr_device_mem_info");
  HR_CHECK_PTR(free_out, "hr_device_mem_info");
  HR_CHECK_PTR(total_out, "hr_device_mem_info");
  return hrb_mem_info(inst->dev, free_out, total_out);
}

int hr_device_info(uint64_t handle, int64_t *out, int64_t n) {
  GET(handle, "hr_device_info");
  HR_CHECK_PTR(out, "hr_device_info");
  if (n <= 0) return hr_fail(HR_E_INVALID, "hr_device_info: n must be > 0 (got %lld)", (long long)n);
  int64_t all[HR_INFO_COUNT] = {0};
  int st = hrb_device_info(inst->dev, all);
  if (st != HR_OK) return st;
  all[HR_INFO_ORDINAL] = inst->ordinal;
  memcpy(out, all, sizeof(int64_t) * (size_t)(n < HR_INFO_COUNT ? n : HR_INFO_COUNT));
  return HR_OK;
}

int hr_device_name(uint64_t handle, char *buf, int64_t len) {
  GET(handle, "hr_device_name");
  HR_CHECK_PTR(buf, "hr_device_name");
  if (len <= 0) return hr_fail(HR_E_INVALID, "hr_device_name: len must be > 0 (got %lld)", (long long)len);
  return hrb_device_name(inst->dev, buf, len);
}

int hr_device_simulate_usage(uint64_t handle, int64_t kind, uint64_t bytes) {
  GET(handle, "hr_device_simulate_usage");
  if (kind == HR_SIM_NON_ALLOCATOR) {
    int st = hrb_simulate_usage(inst->dev, kind, inst->sim_non_allocator, bytes);
    if (st == HR_OK) inst->sim_non_allocator = bytes;
    return st;
  }
  if (kind == HR_SIM_OTHER_PROCESS) return hrb_simulate_usage(inst->dev, kind, 0, bytes);
  return hr_fail(HR_E_INVALID, "hr_device_simulate_usage: unknown kind %lld (0 = other process, 1 = non-allocator)",
                 (long long)kind);
}

/* ---- caching allocator ---- */

int hr_alloc(uint64_t handle, uint64_t size, uint64_t *ptr_out) {
  GET(handle, "hr_alloc");
  HR_CHECK_PTR(ptr_out, "hr_alloc");
  return hr_allocator_malloc(inst->alloc, size, ptr_out);
}

int hr_free(uint64_t handle, uint64_t ptr) {
  GET(handle, "hr_free");
  return hr_allocator_free(inst->alloc, ptr);
}

int hr_allocator_set_limit(uint64_t handle, uint64_t limit_bytes) {
  GET(handle, "hr_allocator_set_limit");
  return hr_allocator_limit(inst->alloc, limit_bytes);
}

int hr_allocator_empty_cache(uint64_t handle) {
  GET(handle, "hr_allocator_empty_cache");
  return hr_allocator_release_cached(inst->alloc);
}

int hr_allocator_reset_peak(uint64_t handle) {
  GET(handle, "hr_allocator_reset_peak");
  return hr_allocator_peak_reset(inst->alloc);
}

int hr_allocator_stats(uint64_t handle, int64_t *out, int64_t n) {
  GET(handle, "hr_allocator_stats");
  HR_CHECK_PTR(out, "hr_allocator_stats");
  return hr_allocator_get_stats(inst->alloc, out, n);
}

int hr_allocator_snapshot(uint64_t handle, int64_t *out, int64_t max_rows, int64_t *rows_out) {
  GET(handle, "hr_allocator_snapshot");
  HR_CHECK_PTR(rows_out, "hr_allocator_snapshot");
  if (max_rows > 0) HR_CHECK_PTR(out, "hr_allocator_snapshot");
  return hr_allocator_get_snapshot(inst->alloc, out, max_rows, rows_out);
}

int hr_pool_create(uint64_t handle, uint64_t *pool_out) {
  GET(handle, "hr_pool_create");
  HR_CHECK_PTR(pool_out, "hr_pool_create");
  return hr_allocator_pool_create(inst->alloc, pool_out);
}

int hr_pool_begin(uint64_t handle, uint64_t pool) {
  GET(handle, "hr_pool_begin");
  return hr_allocator_pool_begin(inst->alloc, pool);
}

int hr_pool_end(uint64_t handle) {
  GET(handle, "hr_pool_end");
  return hr_allocator_pool_end(inst->alloc);
}

int hr_pool_destroy(uint64_t handle, uint64_t pool) {
  GET(handle, "hr_pool_destroy");
  return hr_allocator_pool_destroy(inst->alloc, pool);
}

int hr_pool_reserved(uint64_t handle, uint64_t pool, uint64_t *bytes_out) {
  GET(handle, "hr_pool_reserved");
  HR_CHECK_PTR(bytes_out, "hr_pool_reserved");
  return hr_allocator_pool_reserved(inst->alloc, pool, bytes_out);
}

/* ---- transfers: device ranges must lie inside one live block of this instance ---- */

static int check_range(hr_instance *inst, uint64_t ptr, uint64_t bytes, const char *call, const char *what) {
  if (!hr_allocator_owns_range(inst->alloc, ptr, bytes) && !hr_vmm_owns_range(inst, ptr, bytes))
    return hr_fail(HR_E_INVALID, "%s: %s range [0x%llx, +%llu) is not inside a live allocation of this instance", call,
                   what, (hr_ull)ptr, (hr_ull)bytes);
  return HR_OK;
}

int hr_memcpy_h2d(uint64_t handle, uint64_t dst, const void *src, uint64_t bytes) {
  GET(handle, "hr_memcpy_h2d");
  if (inst->graph_capture) return hr_graph_refuse(inst, "hr_memcpy_h2d");
  if (bytes == 0) return HR_OK;
  HR_CHECK_PTR(src, "hr_memcpy_h2d");
  int st = check_range(inst, dst, bytes, "hr_memcpy_h2d", "dst");
  if (st != HR_OK) return st;
  return hrb_memcpy(inst, HRB_H2D, (void *)(uintptr_t)dst, src, bytes);
}

int hr_memcpy_h2d_async(uint64_t handle, uint64_t dst, const void *src, uint64_t bytes) {
  GET(handle, "hr_memcpy_h2d_async");
  if (inst->graph_capture) return hr_graph_refuse(inst, "hr_memcpy_h2d_async");
  if (bytes == 0) return HR_OK;
  HR_CHECK_PTR(src, "hr_memcpy_h2d_async");
  int st = check_range(inst, dst, bytes, "hr_memcpy_h2d_async", "dst");
  if (st != HR_OK) return st;
  return hrb_memcpy_h2d_staged(inst, (void *)(uintptr_t)dst, src, bytes);
}

int hr_memcpy_d2h(uint64_t handle, void *dst, uint64_t src, uint64_t bytes) {
  GET(handle, "hr_memcpy_d2h");
  if (inst->graph_capture) return hr_graph_refuse(inst, "hr_memcpy_d2h");
  if (bytes == 0) return HR_OK;
  HR_CHECK_PTR(dst, "hr_memcpy_d2h");
  int st = check_range(inst, src, bytes, "hr_memcpy_d2h", "src");
  if (st != HR_OK) return st;
  return hrb_memcpy(inst, HRB_D2H, dst, (const void *)(uintptr_t)src, bytes);
}

int hr_memcpy_d2d(uint64_t handle, uint64_t dst, uint64_t src, uint64_t bytes) {
  GET(handle, "hr_memcpy_d2d");
  if (inst->graph_capture) return hr_graph_refuse(inst, "hr_memcpy_d2d");
  if (bytes == 0) return HR_OK;
  int st = check_range(inst, dst, bytes, "hr_memcpy_d2d", "dst");
  if (st == HR_OK) st = check_range(inst, src, bytes, "hr_memcpy_d2d", "src");
  if (st != HR_OK) return st;
  return hrb_memcpy(inst, HRB_D2D, (void *)(uintptr_t)dst, (const void *)(uintptr_t)src, bytes);
}

int hr_memset(uint64_t handle, uint64_t dst, int64_t byte_value, uint64_t bytes) {
  GET(handle, "hr_memset");
  if (inst->graph_capture) return hr_graph_refuse(inst, "hr_memset");
  if (bytes == 0) return HR_OK;
  if (byte_value < 0 || byte_value > 255)
    return hr_fail(HR_E_INVALID, "hr_memset: byte_value must be 0..255 (got %lld)", (long long)byte_value);
  int st = check_range(inst, dst, bytes, "hr_memset", "dst");
  if (st != HR_OK) return st;
  return hrb_memset(inst, dst, (int)byte_value, bytes);
}

int hr_synchronize(uint64_t handle) {
  GET(handle, "hr_synchronize");
  if (inst->graph_capture) return hr_graph_refuse(inst, "hr_synchronize");
  return hrb_synchronize(inst->dev);
}

/* ---- host ---- */

int hr_get_cpu_memory(uint64_t *total_out, uint64_t *available_out) {
  hr_clear_error();
  HR_CHECK_PTR(total_out, "hr_get_cpu_memory");
  HR_CHECK_PTR(available_out, "hr_get_cpu_memory");
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return hr_fail(HR_E_BACKEND, "hr_get_cpu_memory: sysconf failed");
  *total_out = (uint64_t)pages * (uint64_t)page;
  *available_out = *total_out;
  FILE *f = fopen("/proc/meminfo", "r");
  if (f) {
    char line[256];
    unsigned long long kb;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
        *available_out = kb * 1024ull;
        break;
      }
    fclose(f);
  }
  return HR_OK;
}
