/*
 * The backend-independent caching allocator (PyTorch's CUDACachingAllocator is the anchor).
 * One allocator per device instance; it obtains whole segments from the backend through
 * hr_raw_ops and carves blocks out of them.
 *
 * Note [Sizes and pools]
 * ~~~~~~~~~~~~~~~~~~~~~~
 * Every request is rounded up to a multiple of 512 B (HR_MIN_BLOCK). A rounded request of
 * at most 1 MiB (HR_SMALL_SIZE) is served by the *small* free set of the current pool, whose
 * segments are 2 MiB (HR_SMALL_BUFFER); a larger one by the *large* free set, whose segments
 * are 20 MiB (HR_LARGE_BUFFER) for requests below 10 MiB (HR_MIN_LARGE_ALLOC) and the
 * request rounded up to 2 MiB (HR_ROUND_LARGE) otherwise. Small and large blocks never mix:
 * a segment is small or large for its whole life, and its blocks only ever go back to the
 * free set of its own kind and pool.
 *
 * One exception to the segment sizes, which PyTorch does not have: when a 20 MiB segment for
 * a large request below 10 MiB cannot be obtained even after the retry (see Note [Out of
 * memory]), the allocator tries once more with a segment of just the request rounded up to
 * 2 MiB. With an exact memory budget (a limit, or a nearly full device) this avoids an OOM
 * for a request that fits.
 *
 * Note [Best fit]
 * ~~~~~~~~~~~~~~~
 * Free blocks of one (pool, kind) live in an AVL tree ordered by (size, address). A request
 * takes the smallest free block whose size is >= the rounded request, ties broken by the
 * lowest address (the leftmost node with size >= request). This is what PyTorch's
 * std::set<Block*, BlockComparatorSize> + lower_bound does. Every tree operation is
 * O(log n); nothing on the alloc/free path scans all blocks.
 *
 * Note [Splitting and merging]
 * ~~~~~~~~~~~~~~~~~~~~~~~~~~~~
 * The chosen block is split when the remainder is worth keeping: in a small segment when
 * the remainder is >= 512 B (always, since sizes are multiples of 512 B), in a large segment
 * only when the remainder is > 1 MiB. An unsplit remainder stays inside the allocated block,
 * so a large block may be up to 1 MiB bigger than the rounded request; allocated_bytes counts
 * block sizes (as PyTorch does), so stats always equal sums over the blocks.
 * The blocks of a segment form a doubly linked list in address order that tiles the segment
 * exactly (no gaps, no overlap). On free, a block is merged with its free neighbours in that
 * list, so two adjacent free blocks never exist, and a segment without live blocks is one
 * whole free block. Neighbours are only ever linked within a segment: a block never merges
 * across segments, even when the backend returns adjacent segments.
 *
 * Note [Live blocks]
 * ~~~~~~~~~~~~~~~~~~
 * Allocated blocks live in a second AVL tree ordered by address (a block is in exactly one
 * tree: its free tree while free, the live tree while allocated, so one set of links serves
 * both). hr_allocator_free looks the pointer up there (O(log n)): an unknown pointer, an
 * interior pointer or a double free is HR_E_INVALID, never a crash. owns_range finds the
 * live block with the greatest start <= ptr and checks that the range ends inside it.
 *
 * Note [Private pools]
 * ~~~~~~~~~~~~~~~~~~~~
 * Pool 0 is the default pool. hr_allocator_pool_create makes a private pool (ids 1, 2, ...,
 * never reused); between pool_begin and pool_end every allocation of this allocator (from
 * any thread) is served from that pool's own segments (it gets new ones as needed). Begins
 * of the active pool nest (each needs its end); beginning another pool while one is active
 * is HR_E_STATE. A block is freed into
 * the pool of its segment, whatever pool is active then. Memory of a private pool is never
 * released by empty_cache or by the OOM retry: a captured graph may still use the addresses
 * of blocks freed during capture (PyTorch keeps a private pool's memory until its use count
 * drops to zero). Only pool_destroy releases it, and only when none of its blocks is live
 * and the pool is not active.
 *
 * Note [Out of memory]
 * ~~~~~~~~~~~~~~~~~~~~
 * A new segment is refused when reserved + segment size would exceed the limit (0 = none)
 * or when ops.alloc fails with HR_E_OOM. Then every wholly free segment of the default pool
 * is released (ops.free), num_alloc_retries is incremented and the segment is asked for
 * once more (plus the smaller fallback of Note [Sizes and pools]). If that fails too,
 * num_ooms is incremented and HR_E_OOM is returned with a message naming the requested and
 * rounded bytes, the device's free/total (ops.mem_info), and this allocator's reserved,
 * allocated and limit. Nothing is left half done: the allocator stays fully usable.
 * While a graph is being captured (hr_allocator_set_capturing) no segment is released, by the
 * retry or by empty_cache: freeing device memory (cudaFree) is not allowed during stream
 * capture, as in PyTorch, which skips release_cached_blocks while captures are underway.
 * Backend errors other than HR_E_OOM are returned as they are, without a retry.
 *
 * Note [Stats]
 * ~~~~~~~~~~~~
 * Four stat groups in the HR_STATS_* layout of headroom.h, each current/peak/allocated
 * (cumulative)/freed (cumulative): allocated_bytes (sum of allocated block sizes),
 * reserved_bytes (sum of segment sizes, all pools), active_bytes (equal to allocated_bytes:
 * there are no blocks pending free here), segment (number of segments). Counters: retries,
 * OOMs, number of live blocks, the limit. Every change to a block or a segment updates the
 * stats in the same critical section, so at any time the stats equal sums over a snapshot.
 * peak_reset sets each peak to its current value.
 *
 * Note [Locking]
 * ~~~~~~~~~~~~~~
 * One mutex per allocator guards everything, ops calls included (the backends take their
 * own lock and never call back into the allocator). The block structs are recycled through
 * a spare list, so the hot path does no host malloc.
 */
#include "allocator.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

#define HR_MIN_BLOCK 512ull
#define HR_SMALL_SIZE (1ull << 20)
#define HR_SMALL_BUFFER (2ull << 20)
#define HR_LARGE_BUFFER (20ull << 20)
#define HR_MIN_LARGE_ALLOC (10ull << 20)
#define HR_ROUND_LARGE (2ull << 20)
/* Requests above this are refused as invalid (no device has 2^60 bytes; avoids overflow). */
#define HR_MAX_REQUEST (1ull << 60)

enum { KIND_SMALL = 0, KIND_LARGE = 1 };

typedef struct hr_block hr_block;
typedef struct hr_segment hr_segment;
typedef struct hr_pool hr_pool;

struct hr_block {
  hr_block *l, *r, *up; /* AVL links: free tree of (pool, kind) when free, live tree when allocated */
  uint64_t ptr, size;
  int32_t h; /* AVL height */
  int32_t allocated;
  hr_block *prev, *next; /* neighbours within the segment, address order (next: spare list link) */
  hr_segment *seg;
};

struct hr_segment {
  uint64_t ptr, size;
  hr_pool *pool;
  int kind;
  int64_t n_live;          /* allocated blocks in this segment */
  hr_block *first;         /* lowest block */
  hr_segment *prev, *next; /* the pool's segment list */
};

struct hr_pool {
  uint64_t id;
  hr_block *free_root[2]; /* by kind */
  hr_segment *segs;
  uint64_t reserved;
  int64_t n_live;
  hr_pool *next; /* private pools list */
};

typedef struct {
  int64_t v[4]; /* current, peak, allocated, freed */
} hr_stat;

struct hr_allocator {
  pthread_mutex_t lock;
  hr_raw_ops ops;
  hr_pool def;
  hr_pool *privates;
  hr_pool *cur;
  int64_t cur_depth; /* nested pool_begin of the active pool */
  uint64_t next_pool_id;
  hr_block *live_root;
  hr_block *spare;
  struct hr_slab *slabs;
  uint64_t limit;
  hr_stat st_alloc, st_reserved, st_active, st_segment;
  int64_t num_retries, num_ooms, num_allocs;
  int capturing; /* a graph is being captured: never give segments back (Note [Out of memory]) */
};

/* ---- stats -------------------------------------------------------------------------- */

static inline void stat_add(hr_stat *s, int64_t d) {
  s->v[HR_STAT_CURRENT] += d;
  s->v[HR_STAT_ALLOCATED] += d;
  if (s->v[HR_STAT_CURRENT] > s->v[HR_STAT_PEAK]) s->v[HR_STAT_PEAK] = s->v[HR_STAT_CURRENT];
}
static inline void stat_sub(hr_stat *s, int64_t d) {
  s->v[HR_STAT_CURRENT] -= d;
  s->v[HR_STAT_FREED] += d;
}

/* ---- AVL trees (intrusive, iterative, parent links; height <= 1.44 log2 n) ------------ */

/* by_addr: live tree keyed by address; otherwise free tree keyed by (size, address). */
static inline int key_less(const hr_block *a, const hr_block *b, int by_addr) {
  if (!by_addr && a->size != b->size) return a->size < b->size;
  return a->ptr < b->ptr;
}
static inline int32_t ht(const hr_block *n) { return n ? n->h : 0; }
static inline void fix_h(hr_block *n) {
  int32_t hl = ht(n->l), hr = ht(n->r);
  n->h = (hl > hr ? hl : hr) + 1;
}
static inline void replace_child(hr_block **root, hr_block *parent, hr_block *old, hr_block *repl) {
  if (!parent)
    *root = repl;
  else if (parent->l == old)
    parent->l = repl;
  else
    parent->r = repl;
}
static hr_block *rot_left(hr_block **root, hr_block *n) {
  hr_block *x = n->r, *p = n->up;
  n->r = x->l;
  if (x->l) x->l->up = n;
  x->l = n;
  n->up = x;
  x->up = p;
  replace_child(root, p, n, x);
  fix_h(n);
  fix_h(x);
  return x;
}
static hr_block *rot_right(hr_block **root, hr_block *n) {
  hr_block *x = n->l, *p = n->up;
  n->l = x->r;
  if (x->r) x->r->up = n;
  x->r = n;
  n->up = x;
  x->up = p;
  replace_child(root, p, n, x);
  fix_h(n);
  fix_h(x);
  return x;
}
/* Restores the AVL property at n (children already balanced); returns the subtree root. */
static hr_block *rebalance_at(hr_block **root, hr_block *n) {
  int32_t bf = ht(n->l) - ht(n->r);
  if (bf > 1) {
    if (ht(n->l->l) < ht(n->l->r)) rot_left(root, n->l);
    return rot_right(root, n);
  }
  if (bf < -1) {
    if (ht(n->r->r) < ht(n->r->l)) rot_right(root, n->r);
    return rot_left(root, n);
  }
  fix_h(n);
  return n;
}
/* Walks up from n fixing heights; stops as soon as a subtree keeps its old height. */
static void retrace(hr_block **root, hr_block *n) {
  while (n) {
    int32_t old = n->h;
    hr_block *x = rebalance_at(root, n);
    if (x->h == old) break;
    n = x->up;
  }
}
static void tree_insert(hr_block **root, hr_block *b, int by_addr) {
  hr_block *p = NULL, **link = root;
  while (*link) {
    p = *link;
    link = key_less(b, p, by_addr) ? &p->l : &p->r;
  }
  b->l = b->r = NULL;
  b->h = 1;
  b->up = p;
  *link = b;
  retrace(root, p);
}
/* Unlinks b (which must be in the tree) without any search. */
static void tree_remove(hr_block **root, hr_block *b) {
  if (b->l && b->r) {
    hr_block *s = b->r, *start;
    while (s->l) s = s->l; /* successor: no left child */
    if (s->up != b) {
      start = s->up;
      start->l = s->r;
      if (s->r) s->r->up = start;
      s->r = b->r;
      b->r->up = s;
    } else {
      start = s;
    }
    s->l = b->l;
    b->l->up = s;
    s->up = b->up;
    replace_child(root, b->up, b, s);
    s->h = b->h;
    retrace(root, start);
  } else {
    hr_block *c = b->l ? b->l : b->r, *p = b->up;
    if (c) c->up = p;
    replace_child(root, p, b, c);
    retrace(root, p);
  }
}
/* Smallest (size, address) with size >= want. */
static inline hr_block *best_fit(hr_block *n, uint64_t want) {
  hr_block *best = NULL;
  while (n) {
    if (n->size >= want) {
      best = n;
      n = n->l;
    } else {
      n = n->r;
    }
  }
  return best;
}
/* Live block with the greatest start <= ptr. */
static inline hr_block *live_floor(hr_block *n, uint64_t ptr) {
  hr_block *best = NULL;
  while (n) {
    if (n->ptr <= ptr) {
      best = n;
      if (n->ptr == ptr) break;
      n = n->r;
    } else {
      n = n->l;
    }
  }
  return best;
}

/* ---- block structs ------------------------------------------------------------------ */

/* Block structs come from slabs of HR_SLAB_BLOCKS (locality, no malloc per split); freed at destroy. */
#define HR_SLAB_BLOCKS 127
typedef struct hr_slab {
  struct hr_slab *next;
  hr_block b[HR_SLAB_BLOCKS];
} hr_slab;

static hr_block *block_new(hr_allocator *a) {
  hr_block *b = a->spare;
  if (!b) {
    hr_slab *sl = malloc(sizeof *sl);
    if (!sl) return NULL;
    sl->next = a->slabs;
    a->slabs = sl;
    for (int i = HR_SLAB_BLOCKS - 1; i >= 0; i--) {
      sl->b[i].next = b;
      b = &sl->b[i];
    }
  }
  a->spare = b->next;
  return b;
}
static void block_recycle(hr_allocator *a, hr_block *b) {
  b->next = a->spare;
  a->spare = b;
}

/* ---- segments ----------------------------------------------------------------------- */

static uint64_t round_request(uint64_t size) { return (size + HR_MIN_BLOCK - 1) & ~(HR_MIN_BLOCK - 1); }
static int kind_of(uint64_t rounded) { return rounded <= HR_SMALL_SIZE ? KIND_SMALL : KIND_LARGE; }
static uint64_t segment_size_for(uint64_t rounded) {
  if (rounded <= HR_SMALL_SIZE) return HR_SMALL_BUFFER;
  if (rounded < HR_MIN_LARGE_ALLOC) return HR_LARGE_BUFFER;
  return (rounded + HR_ROUND_LARGE - 1) & ~(HR_ROUND_LARGE - 1);
}

/*
 * Obtains a new segment of `size` bytes for (pool, kind). Its single free block is NOT put
 * in the free tree (the caller takes it right away). On HR_E_OOM (limit or backend), `why`
 * receives the reason; other statuses are backend errors with their message in `why`.
 */
static int segment_obtain(hr_allocator *a, hr_pool *p, int kind, uint64_t size, hr_segment **out, char *why,
                          size_t why_len) {
  uint64_t reserved = (uint64_t)a->st_reserved.v[HR_STAT_CURRENT];
  if (a->limit && (size > a->limit || reserved > a->limit - size)) {
    snprintf(why, why_len, "a segment of %llu bytes would exceed the limit", (hr_ull)size);
    return HR_E_OOM;
  }
  hr_segment *s = malloc(sizeof *s);
  hr_block *b = block_new(a);
  if (!s || !b) {
    free(s);
    if (b) block_recycle(a, b);
    snprintf(why, why_len, "host malloc of the segment bookkeeping failed");
    return HR_E_OOM;
  }
  uint64_t ptr = 0;
  int st = a->ops.alloc(a->ops.ctx, size, &ptr);
  if (st != HR_OK || ptr == 0) {
    snprintf(why, why_len, "%s", st != HR_OK ? hr_last_error() : "backend returned a NULL segment");
    free(s);
    block_recycle(a, b);
    return st != HR_OK ? st : HR_E_BACKEND;
  }
  s->ptr = ptr;
  s->size = size;
  s->pool = p;
  s->kind = kind;
  s->n_live = 0;
  s->first = b;
  s->prev = NULL;
  s->next = p->segs;
  if (p->segs) p->segs->prev = s;
  p->segs = s;
  p->reserved += size;
  b->ptr = ptr;
  b->size = size;
  b->prev = b->next = NULL;
  b->seg = s;
  b->l = b->r = NULL;
  b->h = 1;
  b->allocated = 0;
  stat_add(&a->st_reserved, (int64_t)size);
  stat_add(&a->st_segment, 1);
  *out = s;
  return HR_OK;
}

/* Releases a wholly free segment whose block is in its free tree. */
static int segment_release(hr_allocator *a, hr_segment *s) {
  int st = a->ops.free(a->ops.ctx, s->ptr, s->size);
  if (st != HR_OK) return st;
  hr_pool *p = s->pool;
  hr_block *b = s->first;
  tree_remove(&p->free_root[s->kind], b);
  block_recycle(a, b);
  if (s->prev)
    s->prev->next = s->next;
  else
    p->segs = s->next;
  if (s->next) s->next->prev = s->prev;
  p->reserved -= s->size;
  stat_sub(&a->st_reserved, (int64_t)s->size);
  stat_sub(&a->st_segment, 1);
  free(s);
  return HR_OK;
}

/* Releases every wholly free segment of pool p. Returns the first error (others still tried). */
static int pool_release_free(hr_allocator *a, hr_pool *p, char *why, size_t why_len) {
  int first = HR_OK;
  hr_segment *s = p->segs;
  while (s) {
    hr_segment *nx = s->next;
    if (s->n_live == 0) {
      int st = segment_release(a, s);
      if (st != HR_OK && first == HR_OK) {
        first = st;
        if (why) snprintf(why, why_len, "%s", hr_last_error());
      }
    }
    s = nx;
  }
  return first;
}

/* ---- create / destroy --------------------------------------------------------------- */

hr_allocator *hr_allocator_create(hr_raw_ops ops) {
  hr_allocator *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  if (pthread_mutex_init(&a->lock, NULL) != 0) {
    free(a);
    return NULL;
  }
  a->ops = ops;
  a->def.id = 0;
  a->cur = &a->def;
  a->next_pool_id = 1;
  return a;
}

static void pool_free_all(hr_allocator *a, hr_pool *p) {
  hr_segment *s = p->segs;
  while (s) {
    hr_segment *nx = s->next;
    (void)a->ops.free(a->ops.ctx, s->ptr, s->size);
    free(s);
    s = nx;
  }
  p->segs = NULL;
}

void hr_allocator_destroy(hr_allocator *a) {
  if (!a) return;
  pthread_mutex_lock(&a->lock);
  pool_free_all(a, &a->def);
  hr_pool *p = a->privates;
  while (p) {
    hr_pool *nx = p->next;
    pool_free_all(a, p);
    free(p);
    p = nx;
  }
  struct hr_slab *sl = a->slabs;
  while (sl) {
    struct hr_slab *nx = sl->next;
    free(sl);
    sl = nx;
  }
  pthread_mutex_unlock(&a->lock);
  pthread_mutex_destroy(&a->lock);
  free(a);
}

/* ---- malloc / free ------------------------------------------------------------------ */

/* Slow path: a new segment for (p, kind), with the release-and-retry of Note [Out of memory]. */
static int grow(hr_allocator *a, hr_pool *p, int kind, uint64_t size, uint64_t rounded, hr_segment **out) {
  char why[512];
  uint64_t seg_size = segment_size_for(rounded);
  int st = segment_obtain(a, p, kind, seg_size, out, why, sizeof why);
  if (st == HR_E_OOM) {
    a->num_retries++;
    if (!a->capturing) {
      (void)pool_release_free(a, &a->def, NULL, 0);
      st = segment_obtain(a, p, kind, seg_size, out, why, sizeof why);
    }
    uint64_t min_seg = (rounded + HR_ROUND_LARGE - 1) & ~(HR_ROUND_LARGE - 1);
    if (st == HR_E_OOM && kind == KIND_LARGE && min_seg < seg_size) {
      char why2[512];
      int st2 = segment_obtain(a, p, kind, min_seg, out, why2, sizeof why2);
      if (st2 == HR_OK || st2 != HR_E_OOM) {
        st = st2;
        memcpy(why, why2, sizeof why);
      }
    }
  }
  if (st == HR_OK) return HR_OK;
  if (st != HR_E_OOM)
    return hr_fail(st, "hr_alloc: backend error obtaining a %llu-byte segment for a %llu-byte request: %s",
                   (hr_ull)seg_size, (hr_ull)size, why);
  a->num_ooms++;
  uint64_t dfree = 0, dtotal = 0;
  int mi = a->ops.mem_info ? a->ops.mem_info(a->ops.ctx, &dfree, &dtotal) : HR_E_UNSUPPORTED;
  char dev[128];
  if (mi == HR_OK)
    snprintf(dev, sizeof dev, "device free %llu of %llu bytes", (hr_ull)dfree, (hr_ull)dtotal);
  else
    snprintf(dev, sizeof dev, "device free/total unknown");
  char pool_desc[64] = "";
  if (p->id) snprintf(pool_desc, sizeof pool_desc, " in private pool %llu", (hr_ull)p->id);
  return hr_fail(HR_E_OOM,
                 "hr_alloc: out of memory: requested %llu bytes (rounded %llu, segment %llu)%s; %s; this allocator "
                 "reserved %lld, allocated %lld, limit %llu%s (%s): %s",
                 (hr_ull)size, (hr_ull)rounded, (hr_ull)seg_size, pool_desc, dev,
                 (long long)a->st_reserved.v[HR_STAT_CURRENT], (long long)a->st_alloc.v[HR_STAT_CURRENT],
                 (hr_ull)a->limit, a->limit ? "" : " (none)",
                 a->capturing ? "no cached segment released: a graph is being captured"
                              : "after releasing cached segments and retrying",
                 why);
}

int hr_allocator_malloc(hr_allocator *a, uint64_t size, uint64_t *ptr_out) {
  if (!a) return hr_fail(HR_E_INVALID, "hr_alloc: allocator is NULL");
  if (!ptr_out) return hr_fail(HR_E_INVALID, "hr_alloc: ptr_out must not be NULL");
  *ptr_out = 0;
  if (size == 0) return hr_fail(HR_E_INVALID, "hr_alloc: size must be > 0 (got 0)");
  if (size > HR_MAX_REQUEST)
    return hr_fail(HR_E_INVALID, "hr_alloc: size %llu is larger than any device (max %llu)", (hr_ull)size,
                   (hr_ull)HR_MAX_REQUEST);
  uint64_t rounded = round_request(size);
  int kind = kind_of(rounded);

  pthread_mutex_lock(&a->lock);
  hr_pool *p = a->cur;
  hr_block *b = best_fit(p->free_root[kind], rounded);
  if (b) {
    tree_remove(&p->free_root[kind], b);
  } else {
    hr_segment *s;
    int st = grow(a, p, kind, size, rounded, &s);
    if (st != HR_OK) {
      pthread_mutex_unlock(&a->lock);
      return st;
    }
    b = s->first;
  }
  uint64_t rem = b->size - rounded;
  if (kind == KIND_SMALL ? rem >= HR_MIN_BLOCK : rem > HR_SMALL_SIZE) {
    hr_block *r = block_new(a);
    if (r) { /* without it the block just stays unsplit */
      r->ptr = b->ptr + rounded;
      r->size = rem;
      r->seg = b->seg;
      r->allocated = 0;
      r->prev = b;
      r->next = b->next;
      if (b->next) b->next->prev = r;
      b->next = r;
      b->size = rounded;
      tree_insert(&p->free_root[kind], r, 0);
    }
  }
  b->allocated = 1;
  b->seg->n_live++;
  p->n_live++;
  tree_insert(&a->live_root, b, 1);
  a->num_allocs++;
  stat_add(&a->st_alloc, (int64_t)b->size);
  stat_add(&a->st_active, (int64_t)b->size);
  *ptr_out = b->ptr;
  pthread_mutex_unlock(&a->lock);
  return HR_OK;
}

int hr_allocator_free(hr_allocator *a, uint64_t ptr) {
  if (!a) return hr_fail(HR_E_INVALID, "hr_free: allocator is NULL");
  if (ptr == 0) return HR_OK; /* like free(NULL) / cudaFree(0) */
  pthread_mutex_lock(&a->lock);
  hr_block *b = live_floor(a->live_root, ptr);
  if (!b || b->ptr != ptr) {
    int inside = b && ptr - b->ptr < b->size;
    uint64_t bptr = inside ? b->ptr : 0, bsize = inside ? b->size : 0;
    pthread_mutex_unlock(&a->lock);
    if (inside)
      return hr_fail(HR_E_INVALID,
                     "hr_free: 0x%llx points inside the live allocation [0x%llx, +%llu), not at its start", (hr_ull)ptr,
                     (hr_ull)bptr, (hr_ull)bsize);
    return hr_fail(HR_E_INVALID,
                   "hr_free: 0x%llx is not a live allocation of this allocator (never allocated here, or already "
                   "freed)",
                   (hr_ull)ptr);
  }
  tree_remove(&a->live_root, b);
  a->num_allocs--;
  stat_sub(&a->st_alloc, (int64_t)b->size);
  stat_sub(&a->st_active, (int64_t)b->size);
  hr_segment *s = b->seg;
  hr_pool *p = s->pool;
  int kind = s->kind;
  s->n_live--;
  p->n_live--;
  b->allocated = 0;
  hr_block *pv = b->prev, *nx = b->next;
  if (pv && !pv->allocated) {
    tree_remove(&p->free_root[kind], pv);
    pv->size += b->size;
    pv->next = nx;
    if (nx) nx->prev = pv;
    block_recycle(a, b);
    b = pv;
  }
  if (nx && !nx->allocated) {
    tree_remove(&p->free_root[kind], nx);
    b->size += nx->size;
    b->next = nx->next;
    if (nx->next) nx->next->prev = b;
    block_recycle(a, nx);
  }
  tree_insert(&p->free_root[kind], b, 0);
  pthread_mutex_unlock(&a->lock);
  return HR_OK;
}

int hr_allocator_owns_range(hr_allocator *a, uint64_t ptr, uint64_t bytes) {
  if (!a || ptr == 0) return 0;
  pthread_mutex_lock(&a->lock);
  hr_block *b = live_floor(a->live_root, ptr);
  int ok = 0;
  if (b) {
    uint64_t off = ptr - b->ptr;
    ok = off < b->size && bytes <= b->size - off;
  }
  pthread_mutex_unlock(&a->lock);
  return ok;
}

/* ---- limit, cache, stats ------------------------------------------------------------ */

int hr_allocator_limit(hr_allocator *a, uint64_t limit_bytes) {
  if (!a) return hr_fail(HR_E_INVALID, "hr_allocator_set_limit: allocator is NULL");
  pthread_mutex_lock(&a->lock);
  a->limit = limit_bytes;
  pthread_mutex_unlock(&a->lock);
  return HR_OK;
}

void hr_allocator_set_capturing(hr_allocator *a, int on) {
  pthread_mutex_lock(&a->lock);
  a->capturing = on;
  pthread_mutex_unlock(&a->lock);
}

int hr_allocator_release_cached(hr_allocator *a) {
  if (!a) return hr_fail(HR_E_INVALID, "hr_allocator_empty_cache: allocator is NULL");
  char why[512];
  pthread_mutex_lock(&a->lock);
  if (a->capturing) {
    pthread_mutex_unlock(&a->lock);
    return hr_fail(HR_E_STATE,
                   "hr_allocator_empty_cache: a graph is being captured (device memory cannot be freed "
                   "during capture); call it after hr_graph_capture_end");
  }
  int st = pool_release_free(a, &a->def, why, sizeof why);
  pthread_mutex_unlock(&a->lock);
  if (st != HR_OK) return hr_fail(st, "hr_allocator_empty_cache: releasing a segment failed: %s", why);
  return HR_OK;
}

int hr_allocator_peak_reset(hr_allocator *a) {
  if (!a) return hr_fail(HR_E_INVALID, "hr_allocator_reset_peak: allocator is NULL");
  pthread_mutex_lock(&a->lock);
  hr_stat *all[4] = {&a->st_alloc, &a->st_reserved, &a->st_active, &a->st_segment};
  for (int i = 0; i < 4; i++) all[i]->v[HR_STAT_PEAK] = all[i]->v[HR_STAT_CURRENT];
  pthread_mutex_unlock(&a->lock);
  return HR_OK;
}

int hr_allocator_get_stats(hr_allocator *a, int64_t *out, int64_t n) {
  if (!a) return hr_fail(HR_E_INVALID, "hr_allocator_stats: allocator is NULL");
  if (!out) return hr_fail(HR_E_INVALID, "hr_allocator_stats: out must not be NULL");
  if (n <= 0) return hr_fail(HR_E_INVALID, "hr_allocator_stats: n must be > 0 (got %lld)", (long long)n);
  int64_t all[HR_STATS_COUNT];
  pthread_mutex_lock(&a->lock);
  for (int i = 0; i < 4; i++) {
    all[HR_STATS_ALLOCATED_BYTES + i] = a->st_alloc.v[i];
    all[HR_STATS_RESERVED_BYTES + i] = a->st_reserved.v[i];
    all[HR_STATS_ACTIVE_BYTES + i] = a->st_active.v[i];
    all[HR_STATS_SEGMENT + i] = a->st_segment.v[i];
  }
  all[HR_STATS_NUM_ALLOC_RETRIES] = a->num_retries;
  all[HR_STATS_NUM_OOMS] = a->num_ooms;
  all[HR_STATS_NUM_ALLOCS] = a->num_allocs;
  all[HR_STATS_LIMIT] = (int64_t)a->limit;
  pthread_mutex_unlock(&a->lock);
  memcpy(out, all, sizeof(int64_t) * (size_t)(n < HR_STATS_COUNT ? n : HR_STATS_COUNT));
  return HR_OK;
}

static int seg_cmp(const void *x, const void *y) {
  const hr_segment *a = *(const hr_segment *const *)x, *b = *(const hr_segment *const *)y;
  return a->ptr < b->ptr ? -1 : a->ptr > b->ptr;
}

int hr_allocator_get_snapshot(hr_allocator *a, int64_t *out, int64_t max_rows, int64_t *rows_out) {
  if (!a) return hr_fail(HR_E_INVALID, "hr_allocator_snapshot: allocator is NULL");
  if (!rows_out) return hr_fail(HR_E_INVALID, "hr_allocator_snapshot: rows_out must not be NULL");
  if (max_rows < 0)
    return hr_fail(HR_E_INVALID, "hr_allocator_snapshot: max_rows must be >= 0 (got %lld)", (long long)max_rows);
  if (max_rows > 0 && !out)
    return hr_fail(HR_E_INVALID, "hr_allocator_snapshot: out must not be NULL when max_rows (%lld) > 0",
                   (long long)max_rows);
  pthread_mutex_lock(&a->lock);
  int64_t nseg = 0;
  for (hr_pool *p = &a->def; p; p = (p == &a->def) ? a->privates : p->next)
    for (hr_segment *s = p->segs; s; s = s->next) nseg++;
  hr_segment **segs = malloc(sizeof *segs * (size_t)(nseg ? nseg : 1));
  if (!segs) {
    pthread_mutex_unlock(&a->lock);
    return hr_fail(HR_E_OOM, "hr_allocator_snapshot: host malloc of %lld segment pointers failed", (long long)nseg);
  }
  int64_t i = 0;
  for (hr_pool *p = &a->def; p; p = (p == &a->def) ? a->privates : p->next)
    for (hr_segment *s = p->segs; s; s = s->next) segs[i++] = s;
  qsort(segs, (size_t)nseg, sizeof *segs, seg_cmp);
  int64_t row = 0;
#define EMIT(k, addr, sz, alloc, pid, sptr) \
  do {                                      \
    if (row < max_rows) {                   \
      int64_t *o = out + row * HR_SNAP_ROW; \
      o[0] = (k);                           \
      o[1] = (int64_t)(addr);               \
      o[2] = (int64_t)(sz);                 \
      o[3] = (alloc);                       \
      o[4] = (int64_t)(pid);                \
      o[5] = (int64_t)(sptr);               \
    }                                       \
    row++;                                  \
  } while (0)
  for (i = 0; i < nseg; i++) {
    hr_segment *s = segs[i];
    EMIT(0, s->ptr, s->size, s->n_live > 0, s->pool->id, s->ptr);
    for (hr_block *b = s->first; b; b = b->next) EMIT(1, b->ptr, b->size, b->allocated, s->pool->id, s->ptr);
  }
#undef EMIT
  pthread_mutex_unlock(&a->lock);
  free(segs);
  *rows_out = row;
  return HR_OK;
}

/* ---- private pools ------------------------------------------------------------------ */

static hr_pool *pool_find(hr_allocator *a, uint64_t id, hr_pool **prev_out) {
  hr_pool *prev = NULL;
  for (hr_pool *p = a->privates; p; prev = p, p = p->next)
    if (p->id == id) {
      if (prev_out) *prev_out = prev;
      return p;
    }
  return NULL;
}

int hr_allocator_pool_create(hr_allocator *a, uint64_t *pool_out) {
  if (!a) return hr_fail(HR_E_INVALID, "hr_pool_create: allocator is NULL");
  if (!pool_out) return hr_fail(HR_E_INVALID, "hr_pool_create: pool_out must not be NULL");
  *pool_out = 0;
  hr_pool *p = calloc(1, sizeof *p);
  if (!p) return hr_fail(HR_E_OOM, "hr_pool_create: host malloc of the pool failed");
  pthread_mutex_lock(&a->lock);
  p->id = a->next_pool_id++;
  p->next = a->privates;
  a->privates = p;
  *pool_out = p->id;
  pthread_mutex_unlock(&a->lock);
  return HR_OK;
}

int hr_allocator_pool_begin(hr_allocator *a, uint64_t pool) {
  if (!a) return hr_fail(HR_E_INVALID, "hr_pool_begin: allocator is NULL");
  if (pool == 0)
    return hr_fail(HR_E_INVALID, "hr_pool_begin: pool 0 is the default pool; use hr_pool_end to return to it");
  pthread_mutex_lock(&a->lock);
  int st = HR_OK;
  hr_pool *p = pool_find(a, pool, NULL);
  if (!p)
    st = hr_fail(HR_E_INVALID, "hr_pool_begin: unknown pool %llu (not created by hr_pool_create, or destroyed)",
                 (hr_ull)pool);
  else if (a->cur != &a->def && a->cur != p)
    st = hr_fail(HR_E_STATE, "hr_pool_begin: pool %llu is active; call hr_pool_end before beginning pool %llu",
                 (hr_ull)a->cur->id, (hr_ull)pool);
  else {
    a->cur = p;
    a->cur_depth++;
  }
  pthread_mutex_unlock(&a->lock);
  return st;
}

int hr_allocator_pool_end(hr_allocator *a) {
  if (!a) return hr_fail(HR_E_INVALID, "hr_pool_end: allocator is NULL");
  pthread_mutex_lock(&a->lock);
  int st = HR_OK;
  if (a->cur == &a->def)
    st = hr_fail(HR_E_STATE, "hr_pool_end: no private pool is active");
  else if (--a->cur_depth == 0)
    a->cur = &a->def;
  pthread_mutex_unlock(&a->lock);
  return st;
}

int hr_allocator_pool_destroy(hr_allocator *a, uint64_t pool) {
  if (!a) return hr_fail(HR_E_INVALID, "hr_pool_destroy: allocator is NULL");
  if (pool == 0) return hr_fail(HR_E_INVALID, "hr_pool_destroy: pool 0 is the default pool and cannot be destroyed");
  char why[512];
  pthread_mutex_lock(&a->lock);
  hr_pool *prev = NULL;
  hr_pool *p = pool_find(a, pool, &prev);
  int st = HR_OK;
  if (!p) {
    st = hr_fail(HR_E_INVALID, "hr_pool_destroy: unknown pool %llu (not created by hr_pool_create, or destroyed)",
                 (hr_ull)pool);
  } else if (p->n_live > 0) {
    st = hr_fail(HR_E_STATE, "hr_pool_destroy: pool %llu still has %lld live allocations (%llu bytes reserved)",
                 (hr_ull)pool, (long long)p->n_live, (hr_ull)p->reserved);
  } else if (a->cur == p) {
    st = hr_fail(HR_E_STATE, "hr_pool_destroy: pool %llu is active; call hr_pool_end first", (hr_ull)pool);
  } else {
    st = pool_release_free(a, p, why, sizeof why);
    if (st != HR_OK) {
      st = hr_fail(st, "hr_pool_destroy: releasing a segment of pool %llu failed: %s", (hr_ull)pool, why);
    } else {
      if (prev)
        prev->next = p->next;
      else
        a->privates = p->next;
      free(p);
    }
  }
  pthread_mutex_unlock(&a->lock);
  return st;
}

int hr_allocator_pool_reserved(hr_allocator *a, uint64_t pool, uint64_t *bytes_out) {
  if (!a) return hr_fail(HR_E_INVALID, "hr_pool_reserved: allocator is NULL");
  if (!bytes_out) return hr_fail(HR_E_INVALID, "hr_pool_reserved: bytes_out must not be NULL");
  pthread_mutex_lock(&a->lock);
  int st = HR_OK;
  hr_pool *p = pool == 0 ? &a->def : pool_find(a, pool, NULL);
  if (p)
    *bytes_out = p->reserved;
  else
    st = hr_fail(HR_E_INVALID, "hr_pool_reserved: unknown pool %llu (not created by hr_pool_create, or destroyed)",
                 (hr_ull)pool);
  pthread_mutex_unlock(&a->lock);
  return st;
}
