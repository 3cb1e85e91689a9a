/*
 * CPU backend device: "device memory" is host memory with a capacity, so the memory model
 * (free/total, OOM, other users of the device) behaves as on a GPU and can be tested in CI.
 *
 * Segments are anonymous mmaps. Capacity accounting counts the whole mapping at once, like
 * cudaMalloc, even though Linux commits pages lazily.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <errno.h>

#include "../core/backend.h"
#include "../core/status.h"

#define MAX_CPU_DEVICES 64

struct hrb_device {
  int64_t ordinal;
  int refs;
  uint64_t capacity;
  uint64_t raw_used;      /* bytes of live segments, all instances */
  uint64_t other_process; /* simulated category-1 usage */
  uint64_t non_allocator; /* simulated category-3 usage, summed over instances */
  pthread_mutex_t lock;
};

static pthread_mutex_t devices_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hrb_device devices[MAX_CPU_DEVICES];

const char *hrb_name(void) { return "cpu"; }

int hrb_device_count(int64_t *count_out) {
  *count_out = MAX_CPU_DEVICES;
  return HR_OK;
}

static uint64_t host_total(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return (pages > 0 && page > 0) ? (uint64_t)pages * (uint64_t)page : 0;
}

int hrb_device_acquire(int64_t ordinal, uint64_t cap, hrb_device **out) {
  if (ordinal < 0 || ordinal >= MAX_CPU_DEVICES)
    return hr_fail(HR_E_INVALID, "hr_device_open: CPU device ordinal %lld out of range 0..%d", (long long)ordinal,
                   MAX_CPU_DEVICES - 1);
  pthread_mutex_lock(&devices_lock);
  struct hrb_device *d = &devices[ordinal];
  int st = HR_OK;
  if (d->refs == 0) {
    uint64_t total = host_total();
    if (cap == 0) cap = total / 2; /* default: half of RAM */
    if (cap < (1ull << 20) || (total && cap > total)) {
      st = hr_fail(HR_E_INVALID,
                   "hr_device_open: CPU device capacity %llu bytes must be between 1 MiB and host memory (%llu)",
                   (hr_ull)cap, (hr_ull)total);
    } else {
      memset(d, 0, sizeof *d);
      pthread_mutex_init(&d->lock, NULL);
      d->ordinal = ordinal;
      d->capacity = cap;
    }
  } else if (cap != 0 && cap != d->capacity) {
    st = hr_fail(
        HR_E_INVALID,
        "hr_device_open: CPU device %lld is already open with capacity %llu; pass 0 or the same capacity (got %llu)",
        (long long)ordinal, (hr_ull)d->capacity, (hr_ull)cap);
  }
  if (st == HR_OK) {
    d->refs++;
    *out = d;
  }
  pthread_mutex_unlock(&devices_lock);
  return st;
}

void hrb_device_release(hrb_device *d) {
  pthread_mutex_lock(&devices_lock);
  if (--d->refs == 0) {
    /* last instance gone: the simulated other process goes with the device */
    d->other_process = 0;
  }
  pthread_mutex_unlock(&devices_lock);
}

static uint64_t used_locked(const hrb_device *d) { return d->raw_used + d->other_process + d->non_allocator; }

int hrb_raw_alloc(hrb_device *d, uint64_t size, uint64_t *ptr_out) {
  pthread_mutex_lock(&d->lock);
  uint64_t used = used_locked(d);
  if (size > d->capacity || used > d->capacity - size) {
    pthread_mutex_unlock(&d->lock);
    return hr_fail(HR_E_OOM, "cpu device %lld: cannot reserve %llu bytes (free %llu of %llu)", (long long)d->ordinal,
                   (hr_ull)size, (hr_ull)(d->capacity - (used < d->capacity ? used : d->capacity)),
                   (hr_ull)d->capacity);
  }
  d->raw_used += size;
  pthread_mutex_unlock(&d->lock);
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    pthread_mutex_lock(&d->lock);
    d->raw_used -= size;
    pthread_mutex_unlock(&d->lock);
    return hr_fail(HR_E_OOM, "cpu device %lld: mmap of %llu bytes failed: %s", (long long)d->ordinal, (hr_ull)size,
                   strerror(e));
  }
  *ptr_out = (uint64_t)(uintptr_t)p;
  return HR_OK;
}

int hrb_raw_free(hrb_device *d, uint64_t ptr, uint64_t size) {
  if (munmap((void *)(uintptr_t)ptr, size) != 0)
    return hr_fail(HR_E_BACKEND, "cpu device: munmap(0x%llx, %llu) failed: %s", (hr_ull)ptr, (hr_ull)size,
                   strerror(errno));
  pthread_mutex_lock(&d->lock);
  d->raw_used -= size;
  pthread_mutex_unlock(&d->lock);
  return HR_OK;
}

int hrb_mem_info(hrb_device *d, uint64_t *free_out, uint64_t *total_out) {
  pthread_mutex_lock(&d->lock);
  uint64_t used = used_locked(d);
  *total_out = d->capacity;
  *free_out = used < d->capacity ? d->capacity - used : 0;
  pthread_mutex_unlock(&d->lock);
  return HR_OK;
}

static int64_t cpu_features(void) {
  int64_t f = 0;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2")) f |= HR_CPU_SSE4_2;
  if (__builtin_cpu_supports("avx")) f |= HR_CPU_AVX;
  if (__builtin_cpu_supports("avx2")) f |= HR_CPU_AVX2;
  if (__builtin_cpu_supports("fma")) f |= HR_CPU_FMA;
  if (__builtin_cpu_supports("avx512f")) f |= HR_CPU_AVX512F;
#elif defined(__aarch64__)
  f |= HR_CPU_NEON;
#endif
  return f;
}

int hrb_device_info(hrb_device *d, int64_t *out) {
  uint64_t fr, tot;
  hrb_mem_info(d, &fr, &tot);
  out[HR_INFO_TOTAL_BYTES] = (int64_t)tot;
  out[HR_INFO_FREE_BYTES] = (int64_t)fr;
  out[HR_INFO_MULTIPROCESSORS] = sysconf(_SC_NPROCESSORS_ONLN);
  out[HR_INFO_UNIFIED_MEMORY] = 1;
  out[HR_INFO_CPU_FEATURES] = cpu_features();
  return HR_OK;
}

int hrb_device_name(hrb_device *d, char *buf, int64_t len) {
  char model[128] = "cpu";
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    char line[256];
    while (fgets(line, sizeof line, f)) {
      char *colon = strchr(line, ':');
      if (colon && strncmp(line, "model name", 10) == 0) {
        snprintf(model, sizeof model, "%s", colon + 2);
        model[strcspn(model, "\n")] = '\0';
        break;
      }
    }
    fclose(f);
  }
  snprintf(buf, (size_t)len, "cpu:%lld (%s)", (long long)d->ordinal, model);
  return HR_OK;
}

int hrb_simulate_usage(hrb_device *d, int64_t kind, uint64_t old_bytes, uint64_t new_bytes) {
  pthread_mutex_lock(&d->lock);
  uint64_t *slot = kind == 0 ? &d->other_process : &d->non_allocator;
  if (kind == 0) old_bytes = d->other_process;
  uint64_t used_without = used_locked(d) - old_bytes;
  int st = HR_OK;
  if (new_bytes > d->capacity || used_without > d->capacity - new_bytes)
    st = hr_fail(HR_E_OOM, "hr_device_simulate_usage: %llu bytes do not fit (device %lld: %llu used by others of %llu)",
                 (hr_ull)new_bytes, (long long)d->ordinal, (hr_ull)used_without, (hr_ull)d->capacity);
  else
    *slot = *slot - old_bytes + new_bytes;
  pthread_mutex_unlock(&d->lock);
  return st;
}

int hrb_memcpy(struct hr_instance *inst, int kind, void *dst, const void *src, uint64_t bytes) {
  (void)inst;
  (void)kind;
  memmove(dst, src, bytes);
  return HR_OK;
}

/* CPU ops run when they are called, so there is nothing to overlap with: a plain copy. */
int hrb_memcpy_h2d_staged(struct hr_instance *inst, void *dst, const void *src, uint64_t bytes) {
  (void)inst;
  memmove(dst, src, bytes);
  return HR_OK;
}

int hrb_memset(struct hr_instance *inst, uint64_t dst, int value, uint64_t bytes) {
  (void)inst;
  memset((void *)(uintptr_t)dst, value, bytes);
  return HR_OK;
}

int hrb_synchronize(hrb_device *d) {
  (void)d;
  return HR_OK;
}

/* ---- reserve-then-map: PROT_NONE reservation, committed against the capacity ---- */

/* Page granularity: the KV cache is mapped to within a page of its budget on CPU. */
int hrb_vmm_granularity(hrb_device *d, uint64_t *granularity_out) {
  (void)d;
  long page = sysconf(_SC_PAGESIZE);
  *granularity_out = page > 0 ? (uint64_t)page : 4096;
  return HR_OK;
}

int hrb_vmm_reserve(hrb_device *d, uint64_t slice_stride, int64_t num_slices, uint64_t *base_out, void **state_out) {
  uint64_t size = slice_stride * (uint64_t)num_slices;
  void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return hr_fail(HR_E_BACKEND,
                   "hr_vmm_reserve: cpu device %lld: reserving %llu bytes of virtual address space (no memory is "
                   "committed) failed: %s; check ulimit -v / vm.overcommit_memory",
                   (long long)d->ordinal, (hr_ull)size, strerror(errno));
  *base_out = (uint64_t)(uintptr_t)p;
  *state_out = NULL;
  return HR_OK;
}

/* Changes the usable prefix of every slice; accounting first so a full device fails cleanly. */
int hrb_vmm_wants_device_word(void) { return 0; }

int hrb_vmm_set_mapped(hrb_device *d, void *state, uint64_t base, uint64_t slice_stride, int64_t num_slices,
                       uint64_t old_mapped, uint64_t new_mapped, uint64_t *mapped_out) {
  (void)state;
  *mapped_out = old_mapped; /* on failure nothing changed */
  uint64_t n = (uint64_t)num_slices;
  if (new_mapped > old_mapped) {
    uint64_t grow = (new_mapped - old_mapped) * n;
    pthread_mutex_lock(&d->lock);
    uint64_t used = used_locked(d);
    if (grow > d->capacity || used > d->capacity - grow) {
      pthread_mutex_unlock(&d->lock);
      return hr_fail(HR_E_OOM, "hr_vmm_map: cpu device %lld: cannot map %llu more bytes (free %llu of %llu)",
                     (long long)d->ordinal, (hr_ull)grow, (hr_ull)(used < d->capacity ? d->capacity - used : 0),
                     (hr_ull)d->capacity);
    }
    d->raw_used += grow;
    pthread_mutex_unlock(&d->lock);
    for (uint64_t i = 0; i < n; i++) {
      void *at = (void *)(uintptr_t)(base + i * slice_stride + old_mapped);
      if (mprotect(at, new_mapped - old_mapped, PROT_READ | PROT_WRITE) != 0) {
        int e = errno;
        for (uint64_t j = 0; j < i; j++)
          mprotect((void *)(uintptr_t)(base + j * slice_stride + old_mapped), new_mapped - old_mapped, PROT_NONE);
        pthread_mutex_lock(&d->lock);
        d->raw_used -= grow;
        pthread_mutex_unlock(&d->lock);
        return hr_fail(HR_E_BACKEND, "hr_vmm_map: mprotect failed: %s", strerror(e));
      }
    }
  } else {
    uint64_t shrink = old_mapped - new_mapped;
    for (uint64_t i = 0; i < n; i++) {
      void *at = (void *)(uintptr_t)(base + i * slice_stride + new_mapped);
      madvise(at, shrink, MADV_DONTNEED);
      mprotect(at, shrink, PROT_NONE);
    }
    pthread_mutex_lock(&d->lock);
    d->raw_used -= shrink * n;
    pthread_mutex_unlock(&d->lock);
  }
  *mapped_out = new_mapped;
  return HR_OK;
}

int hrb_vmm_release(hrb_device *d, void *state, uint64_t base, uint64_t slice_stride, int64_t num_slices,
                    uint64_t mapped) {
  (void)state;
  munmap((void *)(uintptr_t)base, slice_stride * (uint64_t)num_slices);
  pthread_mutex_lock(&d->lock);
  d->raw_used -= mapped * (uint64_t)num_slices;
  pthread_mutex_unlock(&d->lock);
  return HR_OK;
}

/* Ops run synchronously and the instance owns no other backend object. */
void hrb_instance_close(struct hr_instance *inst) { (void)inst; }
