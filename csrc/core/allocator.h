/*
 * Internal interface of the backend-independent caching allocator (allocator.c).
 * One allocator per device instance. It obtains whole segments from the backend through
 * hr_raw_ops and carves blocks out of them; see the Notes at the top of allocator.c.
 */
#ifndef HR_ALLOCATOR_H
#define HR_ALLOCATOR_H

#include <stdint.h>

typedef struct hr_raw_ops {
  void *ctx;
  /* Reserve `size` bytes of device memory; HR_E_OOM (with hr_fail message) if no room. */
  int (*alloc)(void *ctx, uint64_t size, uint64_t *ptr_out);
  /* Release a segment obtained from alloc (same size). */
  int (*free)(void *ctx, uint64_t ptr, uint64_t size);
  /* Device-wide free/total, used in OOM messages. */
  int (*mem_info)(void *ctx, uint64_t *free_out, uint64_t *total_out);
} hr_raw_ops;

typedef struct hr_allocator hr_allocator;

/* Returns NULL only if host malloc fails. */
hr_allocator *hr_allocator_create(hr_raw_ops ops);
/* Releases every segment, live blocks included. */
void hr_allocator_destroy(hr_allocator *a);

/*
 * All functions below are thread-safe and return HR_* statuses with hr_fail messages
 * (messages name the public call, e.g. "hr_alloc: ...").
 *
 * malloc: size 0 or > 2^60 is HR_E_INVALID; *ptr_out is 0 on failure. HR_E_OOM only after
 *   the cached segments of the default pool were released and the segment asked for again.
 * free: ptr 0 is a no-op (like free(NULL)); an unknown, interior or already freed pointer is
 *   HR_E_INVALID. The block goes back to the pool of its segment.
 * release_cached (empty_cache): releases the wholly free segments of the default pool.
 *   Private pools keep theirs until pool_destroy (a captured graph may still use them).
 * get_stats: HR_STATS_* layout of headroom.h, min(n, HR_STATS_COUNT) values. allocated_bytes
 *   counts block sizes: a large block may keep an unsplit remainder of up to 1 MiB.
 * get_snapshot: HR_SNAP_ROW rows, segments by address, each followed by its blocks; a
 *   segment row's "allocated" is 1 iff it holds a live block.
 * pool_begin: pool must exist and be != 0; HR_E_STATE if another pool is active; begins of
 *   the active pool nest (each needs its pool_end).
 *   pool_end: HR_E_STATE if no private pool is active. pool_destroy: HR_E_STATE while the
 *   pool has live blocks or is active. pool_reserved: pool 0 = the default pool.
 */
int hr_allocator_malloc(hr_allocator *a, uint64_t size, uint64_t *ptr_out);
int hr_allocator_free(hr_allocator *a, uint64_t ptr);
int hr_allocator_limit(hr_allocator *a, uint64_t limit_bytes);
int hr_allocator_release_cached(hr_allocator *a); /* empty_cache */
/* Graph capture on/off: while on, no segment goes back to the device (see allocator.c). */
void hr_allocator_set_capturing(hr_allocator *a, int on);
int hr_allocator_peak_reset(hr_allocator *a);
int hr_allocator_get_stats(hr_allocator *a, int64_t *out, int64_t n);
int hr_allocator_get_snapshot(hr_allocator *a, int64_t *out, int64_t max_rows, int64_t *rows_out);
int hr_allocator_pool_create(hr_allocator *a, uint64_t *pool_out);
int hr_allocator_pool_begin(hr_allocator *a, uint64_t pool);
int hr_allocator_pool_end(hr_allocator *a);
int hr_allocator_pool_destroy(hr_allocator *a, uint64_t pool);
int hr_allocator_pool_reserved(hr_allocator *a, uint64_t pool, uint64_t *bytes_out);
/* 1 if [ptr, ptr + bytes) lies inside one allocated block of this allocator, else 0
 * (O(log n); bytes 0: 1 iff ptr lies inside one). */
int hr_allocator_owns_range(hr_allocator *a, uint64_t ptr, uint64_t bytes);

#endif
