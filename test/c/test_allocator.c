/*
 * Caching allocator tests (csrc/core/allocator.c), run under ASan/UBSan by `make test-c`.
 * Most tests drive allocator.h directly with a fake backend that hands out address space
 * only (nothing is touched, so 30 MiB requests are free); the public-ABI tests use a CPU
 * device. One line per test; exit 1 on the first failure.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../csrc/core/allocator.h"
#include "../../csrc/core/status.h"
#include "headroom.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)

#include "check.h"

/* ---- fake backend: address space only; segments are adjacent (bump, no gaps) ---------- */

#define FAKE_MAX_SEGS 4096
typedef struct {
  pthread_mutex_t lock;
  uint64_t next, used, cap;
  uint64_t seg_ptr[FAKE_MAX_SEGS], seg_size[FAKE_MAX_SEGS];
  int nsegs;
  int64_t allocs, frees, bad_frees;
} fake_dev;

static int fake_alloc(void *ctx, uint64_t size, uint64_t *ptr_out) {
  fake_dev *d = ctx;
  pthread_mutex_lock(&d->lock);
  if (d->used + size > d->cap || d->nsegs == FAKE_MAX_SEGS) {
    uint64_t fr = d->cap - d->used;
    pthread_mutex_unlock(&d->lock);
    return hr_fail(HR_E_OOM, "fake device: cannot reserve %llu bytes (free %llu)", (unsigned long long)size,
                   (unsigned long long)fr);
  }
  *ptr_out = d->next;
  d->seg_ptr[d->nsegs] = d->next;
  d->seg_size[d->nsegs] = size;
  d->nsegs++;
  d->next += size;
  d->used += size;
  d->allocs++;
  pthread_mutex_unlock(&d->lock);
  return HR_OK;
}
static int fake_free(void *ctx, uint64_t ptr, uint64_t size) {
  fake_dev *d = ctx;
  pthread_mutex_lock(&d->lock);
  for (int i = 0; i < d->nsegs; i++)
    if (d->seg_ptr[i] == ptr) {
      if (d->seg_size[i] != size) d->bad_frees++;
      d->seg_ptr[i] = d->seg_ptr[d->nsegs - 1];
      d->seg_size[i] = d->seg_size[d->nsegs - 1];
      d->nsegs--;
      d->used -= size;
      d->frees++;
      pthread_mutex_unlock(&d->lock);
      return HR_OK;
    }
  d->bad_frees++;
  pthread_mutex_unlock(&d->lock);
  return hr_fail(HR_E_BACKEND, "fake device: free of unknown segment 0x%llx", (unsigned long long)ptr);
}
static int fake_info(void *ctx, uint64_t *free_out, uint64_t *total_out) {
  fake_dev *d = ctx;
  pthread_mutex_lock(&d->lock);
  *total_out = d->cap;
  *free_out = d->cap - d->used;
  pthread_mutex_unlock(&d->lock);
  return HR_OK;
}

static fake_dev *fake_new(uint64_t cap) {
  fake_dev *d = calloc(1, sizeof *d);
  pthread_mutex_init(&d->lock, NULL);
  d->next = 1ull << 40;
  d->cap = cap;
  return d;
}
static hr_allocator *alloc_new(fake_dev *d) {
  hr_raw_ops ops = {.ctx = d, .alloc = fake_alloc, .free = fake_free, .mem_info = fake_info};
  hr_allocator *a = hr_allocator_create(ops);
  CHECK(a != NULL, "hr_allocator_create returned NULL");
  return a;
}
static void alloc_done(hr_allocator *a, fake_dev *d) {
  hr_allocator_destroy(a);
  CHECK_EQ(d->nsegs, 0);
  CHECK_EQ(d->used, 0);
  CHECK_EQ(d->bad_frees, 0);
  pthread_mutex_destroy(&d->lock);
  free(d);
}

/* ---- helpers ------------------------------------------------------------------------ */

static int64_t stat(hr_allocator *a, int idx) {
  int64_t s[HR_STATS_COUNT];
  CHECK_OK(hr_allocator_get_stats(a, s, HR_STATS_COUNT));
  return s[idx];
}
#define CUR(group) ((group) + HR_STAT_CURRENT)

typedef struct {
  int64_t *rows;
  int64_t n;
} snap_t;

static snap_t snap(hr_allocator *a) {
  snap_t s = {0};
  int64_t need = 0;
  CHECK_OK(hr_allocator_get_snapshot(a, NULL, 0, &need));
  s.rows = malloc(sizeof(int64_t) * HR_SNAP_ROW * (size_t)(need + 1));
  CHECK_OK(hr_allocator_get_snapshot(a, s.rows, need, &s.n));
  CHECK_EQ(s.n, need);
  return s;
}
#define ROW(s, i, c) ((s).rows[(i)*HR_SNAP_ROW + (c)])

/* Finds the snapshot block row starting at ptr; -1 if none. */
static int64_t find_block(snap_t s, uint64_t ptr) {
  for (int64_t i = 0; i < s.n; i++)
    if (ROW(s, i, 0) == 1 && (uint64_t)ROW(s, i, 1) == ptr) return i;
  return -1;
}

typedef struct {
  uint64_t ptr, req;
  uint64_t pool;
} live_t;

/*
 * The structural invariants: segments don't overlap, blocks tile their segment in address
 * order, no two adjacent free blocks, stats == sums over the snapshot, every shadow live
 * allocation is an allocated block of the right size and pool (and nothing else is).
 */
static void check_invariants(hr_allocator *a, const live_t *live, int nlive) {
  snap_t s = snap(a);
  int64_t st[HR_STATS_COUNT];
  CHECK_OK(hr_allocator_get_stats(a, st, HR_STATS_COUNT));
  int64_t reserved = 0, nseg = 0, allocated = 0, nalloc = 0;
  uint64_t prev_seg_end = 0;
  for (int64_t i = 0; i < s.n;) {
    CHECK_EQ(ROW(s, i, 0), 0);
    uint64_t sp = (uint64_t)ROW(s, i, 1), ssz = (uint64_t)ROW(s, i, 2);
    int64_t pool = ROW(s, i, 4), seg_row = i;
    CHECK(sp >= prev_seg_end, "segment 0x%llx overlaps the previous one", (unsigned long long)sp);
    CHECK_EQ(ROW(s, i, 5), sp);
    prev_seg_end = sp + ssz;
    reserved += (int64_t)ssz;
    nseg++;
    uint64_t cursor = sp;
    int prev_free = 0, any_live = 0;
    for (i++; i < s.n && ROW(s, i, 0) == 1; i++) {
      uint64_t bp = (uint64_t)ROW(s, i, 1), bsz = (uint64_t)ROW(s, i, 2);
      int al = (int)ROW(s, i, 3);
      CHECK(bp == cursor, "block 0x%llx leaves a gap or overlaps in segment 0x%llx", (unsigned long long)bp,
            (unsigned long long)sp);
      CHECK(bsz > 0 && bsz % 512 == 0, "block size %llu", (unsigned long long)bsz);
      CHECK_EQ(ROW(s, i, 4), pool);
      CHECK_EQ(ROW(s, i, 5), sp);
      CHECK(!(prev_free && !al), "two adjacent free blocks at 0x%llx (missed merge)", (unsigned long long)bp);
      prev_free = !al;
      if (al) {
        allocated += (int64_t)bsz;
        nalloc++;
        any_live = 1;
      }
      cursor += bsz;
    }
    CHECK(cursor == sp + ssz, "blocks of segment 0x%llx end at 0x%llx, not at its end", (unsigned long long)sp,
          (unsigned long long)cursor);
    CHECK_EQ(ROW(s, seg_row, 3), any_live); /* a segment row's allocated column: 1 iff it has a live block */
  }
  CHECK_EQ(st[CUR(HR_STATS_RESERVED_BYTES)], reserved);
  CHECK_EQ(st[CUR(HR_STATS_SEGMENT)], nseg);
  CHECK_EQ(st[CUR(HR_STATS_ALLOCATED_BYTES)], allocated);
  CHECK_EQ(st[CUR(HR_STATS_ACTIVE_BYTES)], allocated);
  CHECK_EQ(st[HR_STATS_NUM_ALLOCS], nalloc);
  int groups[4] = {HR_STATS_ALLOCATED_BYTES, HR_STATS_RESERVED_BYTES, HR_STATS_ACTIVE_BYTES, HR_STATS_SEGMENT};
  for (int g = 0; g < 4; g++) {
    int b = groups[g];
    CHECK(st[b + HR_STAT_PEAK] >= st[b + HR_STAT_CURRENT], "peak < current in group %d", b);
    CHECK_EQ(st[b + HR_STAT_ALLOCATED] - st[b + HR_STAT_FREED], st[b + HR_STAT_CURRENT]);
  }
  if (live) {
    CHECK_EQ(nalloc, nlive);
    for (int k = 0; k < nlive; k++) {
      int64_t r = find_block(s, live[k].ptr);
      CHECK(r >= 0, "live allocation 0x%llx is not a block", (unsigned long long)live[k].ptr);
      CHECK_EQ(ROW(s, r, 3), 1);
      CHECK_EQ(ROW(s, r, 4), live[k].pool);
      uint64_t rounded = (live[k].req + 511) & ~511ull, bsz = (uint64_t)ROW(s, r, 2);
      if (rounded <= MiB)
        CHECK_EQ(bsz, rounded);
      else
        CHECK(bsz >= rounded && bsz <= rounded + MiB, "large block %llu for request %llu", (unsigned long long)bsz,
              (unsigned long long)live[k].req);
      CHECK_EQ(hr_allocator_owns_range(a, live[k].ptr, live[k].req), 1);
      CHECK_EQ(hr_allocator_owns_range(a, live[k].ptr + bsz - 1, 1), 1);
      CHECK_EQ(hr_allocator_owns_range(a, live[k].ptr, bsz + 1), 0);
    }
  }
  free(s.rows);
}

/* Every segment is one whole free block; then empty_cache brings reserved to 0. */
static void check_all_free_then_empty(hr_allocator *a) {
  snap_t s = snap(a);
  for (int64_t i = 0; i < s.n; i++) {
    CHECK_EQ(ROW(s, i, 0), 0);
    CHECK(i + 1 < s.n && ROW(s, i + 1, 0) == 1, "segment without blocks");
    CHECK_EQ(ROW(s, i + 1, 1), ROW(s, i, 1));
    CHECK_EQ(ROW(s, i + 1, 2), ROW(s, i, 2));
    CHECK_EQ(ROW(s, i + 1, 3), 0);
    CHECK(i + 2 >= s.n || ROW(s, i + 2, 0) == 0, "segment 0x%llx is not one whole free block after freeing all",
          (unsigned long long)ROW(s, i, 1));
    i++;
  }
  free(s.rows);
  CHECK_EQ(stat(a, CUR(HR_STATS_ALLOCATED_BYTES)), 0);
  CHECK_OK(hr_allocator_release_cached(a));
  CHECK_EQ(stat(a, CUR(HR_STATS_RESERVED_BYTES)), 0);
  CHECK_EQ(stat(a, CUR(HR_STATS_SEGMENT)), 0);
}

static uint64_t xs;
static uint64_t rnd(void) {
  xs ^= xs << 13;
  xs ^= xs >> 7;
  xs ^= xs << 17;
  return xs;
}

static double ms_since(struct timespec t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_rounding_and_pools(void) {
  fake_dev *d = fake_new(1ull << 40);
  hr_allocator *a = alloc_new(d);
  uint64_t p1, p2, p3, p4, p5, p6;
  CHECK_OK(hr_allocator_malloc(a, 1, &p1));
  CHECK_EQ(stat(a, CUR(HR_STATS_ALLOCATED_BYTES)), 512);
  CHECK_EQ(stat(a, CUR(HR_STATS_RESERVED_BYTES)), 2 * MiB); /* small segment */
  CHECK_OK(hr_allocator_malloc(a, 513, &p2));
  CHECK_EQ(p2, p1 + 512); /* same small segment, right after */
  CHECK_EQ(stat(a, CUR(HR_STATS_ALLOCATED_BYTES)), 512 + 1024);
  CHECK_OK(hr_allocator_malloc(a, MiB, &p3)); /* still small: 1 MiB exactly */
  CHECK_EQ(p3, p2 + 1024);
  CHECK_EQ(stat(a, CUR(HR_STATS_SEGMENT)), 1);
  CHECK_OK(hr_allocator_malloc(a, MiB + 1, &p4)); /* large: new 20 MiB segment, split */
  CHECK_EQ(stat(a, CUR(HR_STATS_RESERVED_BYTES)), 22 * MiB);
  CHECK_EQ(stat(a, CUR(HR_STATS_ALLOCATED_BYTES)), 512 + 1024 + MiB + MiB + 512);
  CHECK_OK(hr_allocator_malloc(a, 10 * MiB - 512, &p5)); /* < 10 MiB: from the same 20 MiB segment */
  CHECK_EQ(p5, p4 + MiB + 512);
  CHECK_EQ(stat(a, CUR(HR_STATS_SEGMENT)), 2);
  CHECK_OK(hr_allocator_malloc(a, 10 * MiB + 1, &p6)); /* >= 10 MiB: needs 10 MiB + 512; the 20 MiB
                                                          segment has 20 - 11 = 9 MiB - 512 left,
                                                          so a new segment rounded to 2 MiB: 12 MiB */
  CHECK_EQ(stat(a, CUR(HR_STATS_RESERVED_BYTES)), 34 * MiB);
  snap_t s = snap(a);
  int64_t r = find_block(s, p6);
  CHECK(r >= 0);
  CHECK_EQ(ROW(s, r, 2), 10 * MiB + 512); /* the 2 MiB - 512 remainder (> 1 MiB) is split off */
  CHECK_EQ(ROW(s, r + 1, 2), 2 * MiB - 512);
  CHECK_EQ(ROW(s, r + 1, 3), 0);
  free(s.rows);
  check_invariants(a, NULL, 0);
  (void)p6;
  alloc_done(a, d);

  /* Large-pool split rule: remainder <= 1 MiB stays in the block; > 1 MiB is split. */
  d = fake_new(1ull << 40);
  a = alloc_new(d);
  uint64_t q1, q2;
  CHECK_OK(hr_allocator_malloc(a, 19 * MiB + 512 * 1024, &q1)); /* 19.5 MiB: segment 20 MiB, rem 0.5 MiB */
  CHECK_EQ(stat(a, CUR(HR_STATS_RESERVED_BYTES)), 20 * MiB);
  CHECK_EQ(stat(a, CUR(HR_STATS_ALLOCATED_BYTES)), 20 * MiB); /* not split */
  CHECK_OK(hr_allocator_free(a, q1));
  CHECK_OK(hr_allocator_malloc(a, 18 * MiB + 512 * 1024, &q1)); /* reuses it, rem 1.5 MiB: split */
  CHECK_EQ(stat(a, CUR(HR_STATS_ALLOCATED_BYTES)), 18 * MiB + 512 * 1024);
  CHECK_OK(hr_allocator_malloc(a, MiB + 200 * 1024, &q2)); /* 1.2 MiB from the 1.5 MiB rest, no split */
  CHECK_EQ(q2, q1 + 18 * MiB + 512 * 1024);
  CHECK_EQ(stat(a, CUR(HR_STATS_ALLOCATED_BYTES)), 20 * MiB);
  CHECK_EQ(stat(a, CUR(HR_STATS_SEGMENT)), 1);
  /* small requests never come from a large segment */
  uint64_t q3;
  CHECK_OK(hr_allocator_free(a, q2));
  CHECK_OK(hr_allocator_malloc(a, 4096, &q3));
  CHECK_EQ(stat(a, CUR(HR_STATS_SEGMENT)), 2);
  CHECK(q3 >= q1 + 20 * MiB || q3 < q1, "a small block came from a large segment");
  check_invariants(a, NULL, 0);
  alloc_done(a, d);
}

static void test_split_merge(void) {
  fake_dev *d = fake_new(1ull << 40);
  hr_allocator *a = alloc_new(d);
  uint64_t x, y, z;
  CHECK_OK(hr_allocator_malloc(a, 1000, &x));
  CHECK_OK(hr_allocator_malloc(a, 3000, &y));
  CHECK_OK(hr_allocator_malloc(a, 5000, &z));
  snap_t s = snap(a);
  CHECK_EQ(s.n, 5); /* segment + x, y, z + the free rest */
  CHECK_EQ(ROW(s, 0, 0), 0);
  CHECK_EQ(ROW(s, 0, 3), 1); /* segment has live blocks */
  CHECK_EQ(ROW(s, 1, 2), 1024);
  CHECK_EQ(ROW(s, 2, 2), 3072);
  CHECK_EQ(ROW(s, 3, 2), 5120);
  CHECK_EQ(ROW(s, 4, 2), 2 * MiB - 1024 - 3072 - 5120);
  CHECK_EQ(ROW(s, 4, 3), 0);
  free(s.rows);
  CHECK_OK(hr_allocator_free(a, y)); /* hole in the middle, no merge (both neighbours live) */
  s = snap(a);
  CHECK_EQ(s.n, 5);
  CHECK_EQ(ROW(s, 2, 3), 0);
  free(s.rows);
  CHECK_OK(hr_allocator_free(a, x)); /* merges with the y hole */
  s = snap(a);
  CHECK_EQ(s.n, 4);
  CHECK_EQ(ROW(s, 1, 2), 4096);
  CHECK_EQ(ROW(s, 1, 3), 0);
  free(s.rows);
  CHECK_OK(hr_allocator_free(a, z)); /* merges both sides: one whole free block */
  s = snap(a);
  CHECK_EQ(s.n, 2);
  CHECK_EQ(ROW(s, 0, 3), 0);
  CHECK_EQ(ROW(s, 1, 2), 2 * MiB);
  free(s.rows);
  /* reuse: the cached segment serves the next request at its start, no new segment */
  uint64_t w;
  CHECK_OK(hr_allocator_malloc(a, MiB, &w));
  CHECK_EQ(w, x);
  CHECK_EQ(stat(a, HR_STATS_SEGMENT + HR_STAT_ALLOCATED), 1);
  CHECK_OK(hr_allocator_free(a, w));

  /* No merge across segments: the fake backend returns adjacent segments. */
  uint64_t big[3];
  /* three large blocks in one 20 MiB segment, which lies right after the cached small one */
  for (int i = 0; i < 3; i++) CHECK_OK(hr_allocator_malloc(a, 2 * MiB - 512 * (uint64_t)i, &big[i]));
  CHECK_EQ(big[0], x + 2 * MiB);
  uint64_t sm[2];
  CHECK_OK(hr_allocator_malloc(a, MiB, &sm[0])); /* fills the first small segment's half */
  CHECK_OK(hr_allocator_malloc(a, MiB, &sm[1])); /* second half */
  uint64_t sm3;
  CHECK_OK(hr_allocator_malloc(a, MiB, &sm3)); /* a new small segment */
  CHECK_OK(hr_allocator_free(a, sm[1]));
  CHECK_OK(hr_allocator_free(a, sm3));
  CHECK_OK(hr_allocator_free(a, sm[0]));
  for (int i = 0; i < 3; i++) CHECK_OK(hr_allocator_free(a, big[i]));
  check_invariants(a, NULL, 0);
  s = snap(a);
  int adjacent = 0;
  for (int64_t i = 0; i + 2 < s.n; i++)
    if (ROW(s, i, 0) == 0 && ROW(s, i + 2, 0) == 0 && ROW(s, i, 1) + ROW(s, i, 2) == ROW(s, i + 2, 1)) adjacent++;
  CHECK(adjacent >= 1, "expected adjacent segments from the fake backend");
  free(s.rows);
  check_all_free_then_empty(a);
  alloc_done(a, d);
}

static void test_best_fit(void) {
  fake_dev *d = fake_new(1ull << 40);
  hr_allocator *a = alloc_new(d);
  /* Layout in one small segment: [h0 2K][L][h1 4K][L][h2 3K][L][h3 2K][L][rest] */
  uint64_t h[4], l[4];
  uint64_t hs[4] = {2048, 4096, 3072, 2048};
  for (int i = 0; i < 4; i++) {
    CHECK_OK(hr_allocator_malloc(a, hs[i], &h[i]));
    CHECK_OK(hr_allocator_malloc(a, 512, &l[i]));
  }
  for (int i = 0; i < 4; i++) CHECK_OK(hr_allocator_free(a, h[i]));
  uint64_t p;
  CHECK_OK(hr_allocator_malloc(a, 1537, &p)); /* rounds to 2K: two 2K holes fit exactly, lowest address */
  CHECK_EQ(p, h[0]);
  CHECK_OK(hr_allocator_malloc(a, 2048, &p)); /* the other 2K hole */
  CHECK_EQ(p, h[3]);
  CHECK_OK(hr_allocator_malloc(a, 2600, &p)); /* 3K (exact after rounding) beats 4K and the big rest */
  CHECK_EQ(p, h[2]);
  CHECK_OK(hr_allocator_malloc(a, 512, &p)); /* only 4K hole and the rest left: 4K, split */
  CHECK_EQ(p, h[1]);
  uint64_t p2;
  CHECK_OK(hr_allocator_malloc(a, 3584, &p2)); /* the 3.5K rest of the 4K hole fits exactly */
  CHECK_EQ(p2, h[1] + 512);
  check_invariants(a, NULL, 0);
  alloc_done(a, d); /* destroy with live blocks releases everything */
}

static void random_run(uint64_t seed, int ops, int check_every, int use_pool) {
  fake_dev *d = fake_new(1ull << 40);
  hr_allocator *a = alloc_new(d);
  xs = seed;
  enum { MAXLIVE = 600 };
  live_t live[MAXLIVE];
  int nlive = 0;
  uint64_t pool = 0;
  if (use_pool) CHECK_OK(hr_allocator_pool_create(a, &pool));
  uint64_t active = 0;
  for (int op = 0; op < ops; op++) {
    uint64_t r = rnd();
    int do_alloc = nlive == 0 || (nlive < MAXLIVE && (r % 100) < (uint64_t)(nlive < 200 ? 60 : 45));
    if (do_alloc) {
      uint64_t sz, k = rnd() % 100;
      if (k < 50)
        sz = 1 + rnd() % 4096; /* tiny */
      else if (k < 80)
        sz = 1 + rnd() % MiB; /* small pool */
      else if (k < 85)
        sz = MiB - 511 + rnd() % 1024; /* around the small/large edge */
      else if (k < 97)
        sz = MiB + 1 + rnd() % (9 * MiB); /* large, 20 MiB segments */
      else
        sz = 10 * MiB - 1024 + rnd() % (20 * MiB); /* big, rounded segments up to 30 MiB */
      uint64_t ptr;
      CHECK_OK(hr_allocator_malloc(a, sz, &ptr));
      CHECK(ptr != 0);
      live[nlive++] = (live_t){ptr, sz, active};
    } else {
      int k = (int)(rnd() % (uint64_t)nlive);
      CHECK_OK(hr_allocator_free(a, live[k].ptr));
      CHECK_EQ(hr_allocator_owns_range(a, live[k].ptr, 1), 0);
      live[k] = live[--nlive];
    }
    uint64_t ev = rnd() % 1000;
    if (ev == 0) CHECK_OK(hr_allocator_release_cached(a));
    if (ev == 1) {
      CHECK_OK(hr_allocator_peak_reset(a));
      int64_t s[HR_STATS_COUNT];
      CHECK_OK(hr_allocator_get_stats(a, s, HR_STATS_COUNT));
      CHECK_EQ(s[HR_STATS_ALLOCATED_BYTES + HR_STAT_PEAK], s[HR_STATS_ALLOCATED_BYTES + HR_STAT_CURRENT]);
      CHECK_EQ(s[HR_STATS_RESERVED_BYTES + HR_STAT_PEAK], s[HR_STATS_RESERVED_BYTES + HR_STAT_CURRENT]);
    }
    if (use_pool && ev >= 2 && ev < 12) { /* toggle routing to the private pool */
      if (active) {
        CHECK_OK(hr_allocator_pool_end(a));
        active = 0;
      } else {
        CHECK_OK(hr_allocator_pool_begin(a, pool));
        active = pool;
      }
    }
    if (op % check_every == 0) check_invariants(a, live, nlive);
  }
  check_invariants(a, live, nlive);
  int64_t peak = stat(a, HR_STATS_ALLOCATED_BYTES + HR_STAT_PEAK);
  while (nlive) CHECK_OK(hr_allocator_free(a, live[--nlive].ptr));
  check_invariants(a, live, 0);
  CHECK_EQ(stat(a, HR_STATS_ALLOCATED_BYTES + HR_STAT_PEAK), peak);
  if (use_pool) {
    if (active) CHECK_OK(hr_allocator_pool_end(a));
    CHECK_OK(hr_allocator_pool_destroy(a, pool));
  }
  check_all_free_then_empty(a);
  CHECK_EQ(stat(a, HR_STATS_NUM_ALLOCS), 0);
  alloc_done(a, d);
}

static void test_random_sequences(void) {
  uint64_t seeds[] = {0x1234567ull, 0xdeadbeefull, 42, 0x9e3779b97f4a7c15ull};
  for (int i = 0; i < 4; i++) random_run(seeds[i], 20000, 8, i >= 2);
}

static void test_oom_limit(void) {
  fake_dev *d = fake_new(1ull << 40);
  hr_allocator *a = alloc_new(d);
  CHECK_OK(hr_allocator_limit(a, 4 * MiB));
  CHECK_EQ(stat(a, HR_STATS_LIMIT), 4 * MiB);
  uint64_t big, s1, s2;
  /* 1.5 MiB wants a 20 MiB segment; over the limit -> release+retry -> fall back to 2 MiB */
  CHECK_OK(hr_allocator_malloc(a, 1536 * KiB, &big));
  CHECK_EQ(stat(a, CUR(HR_STATS_RESERVED_BYTES)), 2 * MiB);
  CHECK_EQ(stat(a, HR_STATS_NUM_ALLOC_RETRIES), 1);
  CHECK_EQ(stat(a, HR_STATS_NUM_OOMS), 0);
  CHECK_OK(hr_allocator_malloc(a, 100, &s1)); /* small segment: reserved 4 MiB = limit */
  CHECK_EQ(stat(a, CUR(HR_STATS_RESERVED_BYTES)), 4 * MiB);
  uint64_t bad = 77;
  CHECK_ST(hr_allocator_malloc(a, 3 * MiB, &bad), HR_E_OOM);
  CHECK_EQ(bad, 0);
  CHECK_MSG("hr_alloc");
  CHECK_MSG("out of memory");
  CHECK_MSG("requested 3145728 bytes");
  CHECK_MSG("rounded 3145728");
  CHECK_MSG("reserved 4194304");
  CHECK_MSG("allocated 2097664"); /* 2 MiB (the 1.5 MiB block keeps its unsplit 0.5 MiB rest) + 512 */
  CHECK_MSG("limit 4194304");
  CHECK_MSG("device free");
  CHECK_EQ(stat(a, HR_STATS_NUM_ALLOC_RETRIES), 2);
  CHECK_EQ(stat(a, HR_STATS_NUM_OOMS), 1);
  check_invariants(a, NULL, 0);
  /* still usable: cached small blocks serve small requests without a new segment */
  CHECK_OK(hr_allocator_malloc(a, 4096, &s2));
  CHECK_OK(hr_allocator_free(a, s2));
  /* free the small one: the OOM retry releases its now-free segment and the 2 MiB fits */
  CHECK_OK(hr_allocator_free(a, s1));
  CHECK_OK(hr_allocator_malloc(a, 2 * MiB, &s2));
  CHECK_EQ(stat(a, CUR(HR_STATS_RESERVED_BYTES)), 4 * MiB);
  CHECK_EQ(stat(a, HR_STATS_NUM_ALLOC_RETRIES), 3);
  CHECK_EQ(stat(a, HR_STATS_NUM_OOMS), 1);
  check_invariants(a, NULL, 0);
  /* raising the limit makes room again; 0 = no limit */
  CHECK_OK(hr_allocator_limit(a, 0));
  CHECK_OK(hr_allocator_malloc(a, 25 * MiB, &s1));
  CHECK_OK(hr_allocator_free(a, s1));
  CHECK_OK(hr_allocator_free(a, s2));
  CHECK_OK(hr_allocator_free(a, big));
  check_all_free_then_empty(a);
  alloc_done(a, d);

  /* backend OOM (no limit): device capacity 30 MiB */
  d = fake_new(30 * MiB);
  a = alloc_new(d);
  uint64_t x, y, z;
  CHECK_OK(hr_allocator_malloc(a, 25 * MiB + 1, &x)); /* 26 MiB segment */
  CHECK_OK(hr_allocator_malloc(a, 3 * MiB, &y));      /* 20 MiB refused by the device -> 4 MiB fallback */
  CHECK_EQ(stat(a, CUR(HR_STATS_RESERVED_BYTES)), 30 * MiB);
  CHECK_ST(hr_allocator_malloc(a, 1, &z), HR_E_OOM);
  CHECK_MSG("requested 1 bytes (rounded 512, segment 2097152)");
  CHECK_MSG("device free 0 of 31457280");
  CHECK_MSG("fake device: cannot reserve");
  CHECK_EQ(stat(a, HR_STATS_NUM_OOMS), 1);
  CHECK_OK(hr_allocator_free(a, y));
  CHECK_OK(hr_allocator_malloc(a, 1, &z)); /* retry releases y's free 4 MiB segment */
  CHECK_OK(hr_allocator_free(a, z));
  CHECK_OK(hr_allocator_free(a, x));
  check_all_free_then_empty(a);
  alloc_done(a, d);

  /* public ABI: a CPU device of 64 MiB with a limit */
  uint64_t dev, p, q;
  CHECK_OK(hr_device_open(0, 64 * MiB, &dev));
  CHECK_OK(hr_allocator_set_limit(dev, 8 * MiB));
  CHECK_OK(hr_alloc(dev, 6 * MiB, &p));
  CHECK_ST(hr_alloc(dev, 6 * MiB, &q), HR_E_OOM);
  CHECK_MSG("hr_alloc: out of memory");
  CHECK_MSG("limit 8388608");
  CHECK_MSG("of 67108864 bytes"); /* device total */
  int64_t s[HR_STATS_COUNT];
  CHECK_OK(hr_allocator_stats(dev, s, HR_STATS_COUNT));
  CHECK_EQ(s[HR_STATS_NUM_OOMS], 1);
  CHECK_EQ(s[HR_STATS_LIMIT], 8 * MiB);
  CHECK_OK(hr_free(dev, p));
  CHECK_OK(hr_alloc(dev, 6 * MiB, &q)); /* reuses the cached segment */
  CHECK_OK(hr_free(dev, q));
  CHECK_OK(hr_allocator_empty_cache(dev));
  CHECK_OK(hr_allocator_stats(dev, s, HR_STATS_COUNT));
  CHECK_EQ(s[CUR(HR_STATS_RESERVED_BYTES)], 0);
  CHECK_OK(hr_device_close(dev));
}

static void test_private_pools(void) {
  fake_dev *d = fake_new(1ull << 40);
  hr_allocator *a = alloc_new(d);
  uint64_t p1, p2, x, y, z, w;
  CHECK_OK(hr_allocator_pool_create(a, &p1));
  CHECK_OK(hr_allocator_pool_create(a, &p2));
  CHECK(p1 != 0 && p2 != 0 && p1 != p2, "pool ids %llu %llu", (unsigned long long)p1, (unsigned long long)p2);
  CHECK_ST(hr_allocator_pool_end(a), HR_E_STATE); /* nothing active */
  CHECK_ST(hr_allocator_pool_begin(a, 999), HR_E_INVALID);
  CHECK_MSG("999");
  CHECK_ST(hr_allocator_pool_begin(a, 0), HR_E_INVALID);
  CHECK_OK(hr_allocator_malloc(a, 4096, &w)); /* default pool segment with free room */
  CHECK_OK(hr_allocator_pool_begin(a, p1));
  CHECK_ST(hr_allocator_pool_begin(a, p2), HR_E_STATE); /* one at a time */
  CHECK_OK(hr_allocator_pool_begin(a, p1));             /* nests */
  CHECK_OK(hr_allocator_pool_end(a));
  CHECK_OK(hr_allocator_malloc(a, 4096, &x)); /* must not come from the default segment */
  CHECK(x < w || x >= w + 2 * MiB, "pool block inside the default pool's segment");
  uint64_t r;
  CHECK_OK(hr_allocator_pool_reserved(a, p1, &r));
  CHECK_EQ(r, 2 * MiB);
  CHECK_OK(hr_allocator_pool_reserved(a, 0, &r));
  CHECK_EQ(r, 2 * MiB);
  CHECK_OK(hr_allocator_pool_end(a));
  CHECK_OK(hr_allocator_free(a, x)); /* goes back to p1, not to the default pool */
  CHECK_OK(hr_allocator_malloc(a, 4096, &y));
  CHECK_EQ(y, w + 4096); /* default pool */
  CHECK_OK(hr_allocator_pool_begin(a, p1));
  CHECK_OK(hr_allocator_malloc(a, 4096, &z));
  CHECK_EQ(z, x); /* the pool's own cached block */
  CHECK_OK(hr_allocator_pool_end(a));
  snap_t s = snap(a);
  CHECK_EQ(ROW(s, find_block(s, z), 4), p1);
  CHECK_EQ(ROW(s, find_block(s, y), 4), 0);
  free(s.rows);
  CHECK_ST(hr_allocator_pool_destroy(a, p1), HR_E_STATE); /* z is live */
  CHECK_MSG("live");
  CHECK_OK(hr_allocator_free(a, z));
  /* empty_cache leaves private pools alone (a graph may still use their addresses) */
  CHECK_OK(hr_allocator_free(a, y));
  CHECK_OK(hr_allocator_free(a, w));
  CHECK_OK(hr_allocator_release_cached(a));
  CHECK_OK(hr_allocator_pool_reserved(a, p1, &r));
  CHECK_EQ(r, 2 * MiB);
  CHECK_OK(hr_allocator_pool_reserved(a, 0, &r));
  CHECK_EQ(r, 0);
  CHECK_OK(hr_allocator_pool_begin(a, p1));
  CHECK_ST(hr_allocator_pool_destroy(a, p1), HR_E_STATE); /* active */
  CHECK_OK(hr_allocator_pool_end(a));
  CHECK_EQ(stat(a, CUR(HR_STATS_RESERVED_BYTES)), 2 * MiB);
  CHECK_OK(hr_allocator_pool_destroy(a, p1));
  CHECK_EQ(stat(a, CUR(HR_STATS_RESERVED_BYTES)), 0);
  CHECK_ST(hr_allocator_pool_reserved(a, p1, &r), HR_E_INVALID);
  CHECK_ST(hr_allocator_pool_begin(a, p1), HR_E_INVALID);
  CHECK_ST(hr_allocator_pool_destroy(a, p1), HR_E_INVALID);
  CHECK_ST(hr_allocator_pool_destroy(a, 0), HR_E_INVALID);
  /* a pool's large allocations also stay in the pool */
  CHECK_OK(hr_allocator_pool_begin(a, p2));
  CHECK_OK(hr_allocator_malloc(a, 5 * MiB, &x));
  CHECK_OK(hr_allocator_pool_end(a));
  CHECK_OK(hr_allocator_pool_reserved(a, p2, &r));
  CHECK_EQ(r, 20 * MiB);
  CHECK_OK(hr_allocator_malloc(a, 5 * MiB, &y));
  CHECK(y < x || y >= x + 20 * MiB);
  CHECK_OK(hr_allocator_free(a, x));
  CHECK_OK(hr_allocator_free(a, y));
  check_invariants(a, NULL, 0);
  alloc_done(a, d); /* destroy with a private pool still holding a segment */

  /* the same through the public ABI */
  uint64_t dev, pool, b;
  CHECK_OK(hr_device_open(0, 64 * MiB, &dev));
  CHECK_OK(hr_pool_create(dev, &pool));
  CHECK(pool != 0);
  CHECK_OK(hr_pool_begin(dev, pool));
  CHECK_OK(hr_alloc(dev, 1000, &b));
  CHECK_OK(hr_pool_end(dev));
  uint64_t pr;
  CHECK_OK(hr_pool_reserved(dev, pool, &pr));
  CHECK_EQ(pr, 2 * MiB);
  CHECK_ST(hr_pool_destroy(dev, pool), HR_E_STATE);
  CHECK_OK(hr_free(dev, b));
  CHECK_OK(hr_pool_destroy(dev, pool));
  CHECK_OK(hr_device_close(dev));
}

static void test_invalid_and_double_free(void) {
  fake_dev *d = fake_new(1ull << 40);
  hr_allocator *a = alloc_new(d);
  uint64_t p, q;
  CHECK_OK(hr_allocator_malloc(a, 4096, &p));
  CHECK_OK(hr_allocator_malloc(a, 4096, &q));
  CHECK_ST(hr_allocator_free(a, 0x1234), HR_E_INVALID);
  CHECK_MSG("hr_free");
  CHECK_MSG("0x1234");
  CHECK_ST(hr_allocator_free(a, p + 512), HR_E_INVALID); /* interior pointer */
  CHECK_MSG("inside");
  CHECK_OK(hr_allocator_free(a, p));
  CHECK_ST(hr_allocator_free(a, p), HR_E_INVALID); /* double free */
  CHECK_MSG("not a live allocation");
  CHECK_OK(hr_allocator_free(a, 0)); /* like free(NULL) */
  uint64_t out = 5;
  CHECK_ST(hr_allocator_malloc(a, 0, &out), HR_E_INVALID);
  CHECK_EQ(out, 0);
  CHECK_MSG("size must be > 0");
  CHECK_ST(hr_allocator_malloc(a, UINT64_MAX, &out), HR_E_INVALID);
  CHECK_ST(hr_allocator_malloc(a, UINT64_MAX - 100, &out), HR_E_INVALID);
  CHECK_ST(hr_allocator_malloc(a, 16, NULL), HR_E_INVALID);
  int64_t st[HR_STATS_COUNT + 4];
  CHECK_ST(hr_allocator_get_stats(a, st, 0), HR_E_INVALID);
  CHECK_ST(hr_allocator_get_stats(a, NULL, 4), HR_E_INVALID);
  /* n > COUNT writes only COUNT values */
  for (int i = 0; i < HR_STATS_COUNT + 4; i++) st[i] = -7;
  CHECK_OK(hr_allocator_get_stats(a, st, HR_STATS_COUNT + 4));
  CHECK_EQ(st[HR_STATS_COUNT], -7);
  CHECK_EQ(st[HR_STATS_NUM_ALLOCS], 1);
  /* n < COUNT writes a prefix */
  for (int i = 0; i < 8; i++) st[i] = -7;
  CHECK_OK(hr_allocator_get_stats(a, st, 2));
  CHECK_EQ(st[0], 4096);
  CHECK_EQ(st[2], -7);
  int64_t rows;
  CHECK_ST(hr_allocator_get_snapshot(a, NULL, -1, &rows), HR_E_INVALID);
  CHECK_ST(hr_allocator_get_snapshot(a, NULL, 3, &rows), HR_E_INVALID);
  CHECK_ST(hr_allocator_get_snapshot(a, st, 1, NULL), HR_E_INVALID);
  /* too small a buffer: rows needed are returned, only max_rows written */
  int64_t buf[HR_SNAP_ROW * 2 + 1];
  buf[HR_SNAP_ROW * 2] = -9;
  CHECK_OK(hr_allocator_get_snapshot(a, buf, 2, &rows));
  CHECK_EQ(rows, 4); /* segment, then blocks [free 4K][q][free rest] */
  CHECK_EQ(buf[HR_SNAP_ROW * 2], -9);
  CHECK_EQ(buf[0], 0);
  CHECK_EQ(buf[HR_SNAP_ROW + 0], 1);
  CHECK_EQ(buf[HR_SNAP_ROW + 3], 0);
  CHECK_EQ(hr_allocator_owns_range(a, q, 4096), 1);
  CHECK_EQ(hr_allocator_owns_range(a, q, 4097), 0);
  CHECK_EQ(hr_allocator_owns_range(a, p, 1), 0);
  CHECK_EQ(hr_allocator_owns_range(a, q + 4095, UINT64_MAX), 0); /* no overflow */
  CHECK_EQ(hr_allocator_owns_range(a, 0, 1), 0);
  check_invariants(a, NULL, 0);
  alloc_done(a, d);
  /* public ABI on a bad handle */
  CHECK_ST(hr_free(0xdead0001, 16), HR_E_INVALID);
}

static void test_stats_and_peak(void) {
  fake_dev *d = fake_new(1ull << 40);
  hr_allocator *a = alloc_new(d);
  uint64_t p[4];
  for (int i = 0; i < 4; i++) CHECK_OK(hr_allocator_malloc(a, 2 * MiB, &p[i])); /* 20 MiB seg, 2 MiB each */
  int64_t s[HR_STATS_COUNT];
  CHECK_OK(hr_allocator_get_stats(a, s, HR_STATS_COUNT));
  CHECK_EQ(s[HR_STATS_ALLOCATED_BYTES + HR_STAT_CURRENT], 8 * MiB);
  CHECK_EQ(s[HR_STATS_ALLOCATED_BYTES + HR_STAT_PEAK], 8 * MiB);
  CHECK_EQ(s[HR_STATS_ALLOCATED_BYTES + HR_STAT_ALLOCATED], 8 * MiB);
  CHECK_EQ(s[HR_STATS_ALLOCATED_BYTES + HR_STAT_FREED], 0);
  CHECK_EQ(s[HR_STATS_RESERVED_BYTES + HR_STAT_CURRENT], 20 * MiB);
  CHECK_EQ(s[HR_STATS_SEGMENT + HR_STAT_CURRENT], 1);
  CHECK_EQ(s[HR_STATS_NUM_ALLOCS], 4);
  for (int i = 0; i < 3; i++) CHECK_OK(hr_allocator_free(a, p[i]));
  CHECK_OK(hr_allocator_get_stats(a, s, HR_STATS_COUNT));
  CHECK_EQ(s[HR_STATS_ALLOCATED_BYTES + HR_STAT_CURRENT], 2 * MiB);
  CHECK_EQ(s[HR_STATS_ALLOCATED_BYTES + HR_STAT_PEAK], 8 * MiB);
  CHECK_EQ(s[HR_STATS_ALLOCATED_BYTES + HR_STAT_FREED], 6 * MiB);
  CHECK_EQ(s[HR_STATS_ACTIVE_BYTES + HR_STAT_PEAK], 8 * MiB);
  CHECK_OK(hr_allocator_peak_reset(a));
  CHECK_OK(hr_allocator_get_stats(a, s, HR_STATS_COUNT));
  CHECK_EQ(s[HR_STATS_ALLOCATED_BYTES + HR_STAT_PEAK], 2 * MiB);
  CHECK_EQ(s[HR_STATS_ACTIVE_BYTES + HR_STAT_PEAK], 2 * MiB);
  CHECK_EQ(s[HR_STATS_RESERVED_BYTES + HR_STAT_PEAK], 20 * MiB);
  CHECK_EQ(s[HR_STATS_ALLOCATED_BYTES + HR_STAT_ALLOCATED], 8 * MiB); /* cumulative stays */
  CHECK_OK(hr_allocator_free(a, p[3]));
  CHECK_OK(hr_allocator_release_cached(a));
  CHECK_OK(hr_allocator_get_stats(a, s, HR_STATS_COUNT));
  CHECK_EQ(s[HR_STATS_RESERVED_BYTES + HR_STAT_FREED], 20 * MiB);
  CHECK_EQ(s[HR_STATS_SEGMENT + HR_STAT_ALLOCATED], 1);
  CHECK_EQ(s[HR_STATS_SEGMENT + HR_STAT_FREED], 1);
  CHECK_EQ(s[HR_STATS_NUM_ALLOCS], 0);
  CHECK_EQ(d->frees, 1);
  alloc_done(a, d);
}

/* ---- threads: public ABI on a CPU device; each thread fills its blocks and verifies ---- */

typedef struct {
  uint64_t dev;
  int id;
  int ops;
  int failed;
  char msg[256];
} thr_arg;

static void *thr_main(void *vp) {
  thr_arg *t = vp;
  uint64_t st = 0x51ed270b27c1ull * (uint64_t)(t->id + 1);
  enum { N = 64 };
  uint64_t ptr[N] = {0}, sz[N] = {0};
  for (int op = 0; op < t->ops && !t->failed; op++) {
    st ^= st << 13;
    st ^= st >> 7;
    st ^= st << 17;
    int k = (int)(st % N);
    if (ptr[k]) {
      const unsigned char *m = (const unsigned char *)(uintptr_t)ptr[k];
      unsigned char want = (unsigned char)(t->id * 37 + k);
      if (m[0] != want || m[sz[k] - 1] != want || m[sz[k] / 2] != want) {
        snprintf(t->msg, sizeof t->msg, "thread %d: block 0x%llx was overwritten", t->id, (unsigned long long)ptr[k]);
        t->failed = 1;
      }
      if (hr_free(t->dev, ptr[k]) != HR_OK) {
        snprintf(t->msg, sizeof t->msg, "thread %d: hr_free: %s", t->id, hr_last_error());
        t->failed = 1;
      }
      ptr[k] = 0;
    } else {
      sz[k] = 1 + (st >> 20) % ((st & 7) == 0 ? 1536 * KiB : 16 * KiB);
      if (hr_alloc(t->dev, sz[k], &ptr[k]) != HR_OK) {
        snprintf(t->msg, sizeof t->msg, "thread %d: hr_alloc(%llu): %s", t->id, (unsigned long long)sz[k],
                 hr_last_error());
        t->failed = 1;
        ptr[k] = 0;
        break;
      }
      unsigned char *m = (unsigned char *)(uintptr_t)ptr[k];
      unsigned char want = (unsigned char)(t->id * 37 + k);
      m[0] = m[sz[k] / 2] = m[sz[k] - 1] = want;
    }
  }
  for (int k = 0; k < N; k++)
    if (ptr[k]) hr_free(t->dev, ptr[k]);
  return NULL;
}

typedef struct {
  hr_allocator *a;
  int id, ops, failed;
  char msg[256];
} direct_arg;

static void *direct_main(void *vp) {
  direct_arg *t = vp;
  uint64_t st = 0x2545f4914f6cdd1dull * (uint64_t)(t->id + 3);
  enum { N = 48 };
  uint64_t ptr[N] = {0};
  for (int op = 0; op < t->ops && !t->failed; op++) {
    st ^= st << 13;
    st ^= st >> 7;
    st ^= st << 17;
    int k = (int)(st % N);
    int rc;
    if (ptr[k]) {
      rc = hr_allocator_free(t->a, ptr[k]);
      ptr[k] = 0;
    } else {
      uint64_t sz = 1 + (st >> 24) % ((st & 15) == 0 ? 24 * MiB : 64 * KiB);
      rc = hr_allocator_malloc(t->a, sz, &ptr[k]);
      if (rc == HR_OK && !hr_allocator_owns_range(t->a, ptr[k], sz)) rc = HR_E_STATE;
    }
    if (rc != HR_OK) {
      snprintf(t->msg, sizeof t->msg, "thread %d op %d: %s: %s", t->id, op, hr_status_name(rc), hr_last_error());
      t->failed = 1;
    }
  }
  for (int k = 0; k < N; k++)
    if (ptr[k]) hr_allocator_free(t->a, ptr[k]);
  return NULL;
}

typedef struct {
  hr_allocator *a;
  volatile int *stop;
  int snapshots;
} reader_arg;

static void *reader_main(void *vp) {
  reader_arg *r = vp;
  static int64_t rows[HR_SNAP_ROW * 256];
  while (!*r->stop) {
    int64_t n, s[HR_STATS_COUNT];
    hr_allocator_get_snapshot(r->a, rows, 256, &n);
    hr_allocator_get_stats(r->a, s, HR_STATS_COUNT);
    hr_allocator_release_cached(r->a);
    r->snapshots++;
  }
  return NULL;
}

static void test_threads(void) {
  uint64_t dev;
  CHECK_OK(hr_device_open(0, 512 * MiB, &dev));
  enum { T = 4 };
  pthread_t th[T];
  thr_arg args[T];
  for (int i = 0; i < T; i++) {
    args[i] = (thr_arg){.dev = dev, .id = i, .ops = 20000};
    CHECK(pthread_create(&th[i], NULL, thr_main, &args[i]) == 0);
  }
  for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < T; i++) CHECK(!args[i].failed, "%s", args[i].msg);
  int64_t s[HR_STATS_COUNT];
  CHECK_OK(hr_allocator_stats(dev, s, HR_STATS_COUNT));
  CHECK_EQ(s[CUR(HR_STATS_ALLOCATED_BYTES)], 0);
  CHECK_EQ(s[HR_STATS_NUM_ALLOCS], 0);
  CHECK_EQ(s[HR_STATS_ALLOCATED_BYTES + HR_STAT_ALLOCATED], s[HR_STATS_ALLOCATED_BYTES + HR_STAT_FREED]);
  int64_t need;
  CHECK_OK(hr_allocator_snapshot(dev, NULL, 0, &need));
  CHECK_EQ(need, 2 * s[CUR(HR_STATS_SEGMENT)]); /* every segment whole again */
  CHECK_OK(hr_allocator_empty_cache(dev));
  CHECK_OK(hr_allocator_stats(dev, s, HR_STATS_COUNT));
  CHECK_EQ(s[CUR(HR_STATS_RESERVED_BYTES)], 0);
  CHECK_OK(hr_device_close(dev));

  /* one allocator directly (fake backend), a private pool toggled, and a thread reading
     snapshots/stats and calling empty_cache concurrently; invariants checked at the end */
  fake_dev *d = fake_new(1ull << 40);
  hr_allocator *a = alloc_new(d);
  direct_arg dargs[T];
  pthread_t reader;
  volatile int stop = 0;
  reader_arg ra = {a, &stop, 0};
  CHECK(pthread_create(&reader, NULL, reader_main, &ra) == 0);
  for (int i = 0; i < T - 1; i++) {
    dargs[i] = (direct_arg){.a = a, .id = i, .ops = 20000};
    CHECK(pthread_create(&th[i], NULL, direct_main, &dargs[i]) == 0);
  }
  for (int i = 0; i < T - 1; i++) pthread_join(th[i], NULL);
  stop = 1;
  pthread_join(reader, NULL);
  for (int i = 0; i < T - 1; i++) CHECK(!dargs[i].failed, "%s", dargs[i].msg);
  CHECK(ra.snapshots > 0);
  check_invariants(a, NULL, 0);
  check_all_free_then_empty(a);
  alloc_done(a, d);
}

static void test_memcpy_ranges(void) {
  uint64_t dev, p, q;
  CHECK_OK(hr_device_open(0, 64 * MiB, &dev));
  CHECK_OK(hr_alloc(dev, 4096, &p));
  CHECK_OK(hr_alloc(dev, 8192, &q));
  CHECK_EQ(q, p + 4096); /* adjacent blocks */
  unsigned char src[8192], dst[8192];
  for (int i = 0; i < 8192; i++) src[i] = (unsigned char)(i * 7 + 1);
  CHECK_OK(hr_memcpy_h2d(dev, p, src, 4096));
  CHECK_OK(hr_memcpy_d2h(dev, dst, p, 4096));
  CHECK(memcmp(src, dst, 4096) == 0, "round trip differs");
  CHECK_OK(hr_memcpy_h2d(dev, p + 4000, src, 96));               /* interior, ends exactly at the block end */
  CHECK_ST(hr_memcpy_h2d(dev, p + 4000, src, 97), HR_E_INVALID); /* runs into the next block */
  CHECK_MSG("hr_memcpy_h2d");
  CHECK_ST(hr_memcpy_h2d(dev, p, src, 4096 + 8192), HR_E_INVALID); /* spans two live blocks */
  CHECK_ST(hr_memcpy_d2h(dev, dst, p + 4096 - 1, 2), HR_E_INVALID);
  unsigned char want[4096];
  CHECK_OK(hr_memcpy_d2h(dev, want, p, 4096));
  CHECK(memcmp(want, src, 4000) == 0 && memcmp(want + 4000, src, 96) == 0, "interior h2d wrote the wrong bytes");
  CHECK_OK(hr_memcpy_d2d(dev, q + 100, p, 4096));
  CHECK_OK(hr_memcpy_d2h(dev, dst, q + 100, 4096));
  CHECK(memcmp(want, dst, 4096) == 0, "d2d copy differs");
  CHECK_ST(hr_memcpy_d2d(dev, q + 8000, p, 4096), HR_E_INVALID);
  /* the queued copy: same ranges and checks; the source may be reused as soon as it returns */
  unsigned char staged[4096];
  for (int i = 0; i < 4096; i++) staged[i] = (unsigned char)(i * 13 + 5);
  CHECK_OK(hr_memcpy_h2d_async(dev, q + 8, staged, 4000));
  memset(staged, 0, sizeof staged);
  CHECK_OK(hr_memcpy_d2h(dev, dst, q + 8, 4000));
  for (int i = 0; i < 4000; i++) CHECK(dst[i] == (unsigned char)(i * 13 + 5), "h2d_async wrote the wrong bytes");
  CHECK_OK(hr_memcpy_h2d_async(dev, q, staged, 0));                        /* nothing to do */
  CHECK_ST(hr_memcpy_h2d_async(dev, q + 8000, staged, 193), HR_E_INVALID); /* past the block */
  CHECK_MSG("hr_memcpy_h2d_async");
  CHECK_ST(hr_memcpy_h2d_async(dev, q, NULL, 16), HR_E_INVALID);
  CHECK_ST(hr_memcpy_h2d_async(dev, 0x1000, staged, 16), HR_E_INVALID); /* not ours */
  CHECK_OK(hr_memset(dev, q, 0xab, 8192));
  CHECK_ST(hr_memset(dev, q, 0xab, 8193), HR_E_INVALID);
  CHECK_ST(hr_memcpy_h2d(dev, 0x1000, src, 16), HR_E_INVALID);   /* not ours */
  CHECK_ST(hr_memcpy_h2d(dev, q + 8192, src, 16), HR_E_INVALID); /* free rest of the segment */
  CHECK_OK(hr_free(dev, p));
  CHECK_ST(hr_memcpy_h2d(dev, p, src, 16), HR_E_INVALID); /* freed */
  CHECK_ST(hr_memcpy_d2h(dev, dst, p, 16), HR_E_INVALID);
  /* another instance's block is not ours either */
  uint64_t dev2, r;
  CHECK_OK(hr_device_open(0, 0, &dev2));
  CHECK_OK(hr_alloc(dev2, 4096, &r));
  CHECK_ST(hr_memcpy_h2d(dev, r, src, 16), HR_E_INVALID);
  CHECK_OK(hr_memcpy_h2d(dev2, r, src, 16));
  CHECK_OK(hr_device_close(dev2)); /* closes with r live: released with the instance */
  CHECK_OK(hr_free(dev, q));
  CHECK_OK(hr_device_close(dev));
}

/* owns_range on many live blocks: interior pointers anywhere, O(log n) lookup */
static void test_owns_range_many(void) {
  fake_dev *d = fake_new(1ull << 40);
  hr_allocator *a = alloc_new(d);
  enum { N = 3000 };
  static uint64_t p[N], s[N];
  xs = 77;
  for (int i = 0; i < N; i++) {
    s[i] = 1 + rnd() % (64 * KiB);
    CHECK_OK(hr_allocator_malloc(a, s[i], &p[i]));
  }
  for (int i = 0; i < N; i += 2) CHECK_OK(hr_allocator_free(a, p[i]));
  for (int i = 0; i < N; i++) {
    uint64_t off = rnd() % s[i];
    int want = i % 2 == 1;
    CHECK_EQ(hr_allocator_owns_range(a, p[i] + off, s[i] - off), want);
    CHECK_EQ(hr_allocator_owns_range(a, p[i] + off, ((s[i] + 511) & ~511ull) - off + 1), 0);
  }
  for (int i = 1; i < N; i += 2) CHECK_OK(hr_allocator_free(a, p[i]));
  check_all_free_then_empty(a);
  alloc_done(a, d);
}

typedef struct {
  const char *name;
  void (*fn)(void);
} test_t;

int main(void) {
  test_t tests[] = {
      {"rounding_and_pools", test_rounding_and_pools},
      {"split_merge", test_split_merge},
      {"best_fit", test_best_fit},
      {"random_sequences", test_random_sequences},
      {"oom_limit", test_oom_limit},
      {"private_pools", test_private_pools},
      {"invalid_and_double_free", test_invalid_and_double_free},
      {"stats_and_peak", test_stats_and_peak},
      {"threads", test_threads},
      {"memcpy_ranges", test_memcpy_ranges},
      {"owns_range_many", test_owns_range_many},
  };
  int n = (int)(sizeof tests / sizeof tests[0]);
  for (int i = 0; i < n; i++) {
    cur_test = tests[i].name;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tests[i].fn();
    printf("ok   allocator/%s (%.0f ms)\n", tests[i].name, ms_since(t0));
    fflush(stdout);
  }
  printf("allocator: %d passed, 0 failed\n", n);
  return 0;
}
