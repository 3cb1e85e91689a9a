/*
 * Graph sets: one graph per capture size, all sharing one private allocator pool and the
 * caller's static buffers (see "graphs" in headroom.h).
 *
 * Note [Recording]
 * hr_graph_capture_begin sets inst->graph_capture. From then on hr_ops_submit (ops_dispatch.c)
 * hands every validated, packed op to hr_graph_submit. On a backend that records (CPU) the
 * record (kind + HR_OP_MAX_ARGS int64 values, exactly what the executor would have received)
 * is appended to the graph's op list and nothing runs. Replay walks the list and calls the
 * same executors, so a replayed step is the eager step without the FFI crossings and the
 * validation. On CUDA the executors run and enqueue kernels into the capturing stream.
 *
 * Note [Memory]
 * Each capture runs with the set's pool active on the instance's allocator, so whatever the
 * step allocates comes from the pool, and a block freed during one capture is reused by the
 * next (largest first: the first capture grows the pool, the others fit in it). A graph's
 * pool bytes are the pool's reserved growth during its capture; on CUDA its executable bytes
 * are the free-memory drop of instantiate + upload.
 */
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allocator.h"
#include "handles.h"
#include "ops_dispatch.h"
#include "status.h"

typedef struct hr_graph_op {
  int64_t kind;
  int64_t a[HR_OP_MAX_ARGS];
} hr_graph_op;

typedef struct hr_graph {
  int64_t size;
  int captured;
  hr_graph_op *ops;
  int64_t num_ops, cap_ops;
  void *exec; /* backend executable (CUDA), NULL for op lists */
  int64_t num_nodes;
  uint64_t pool_bytes, exec_bytes;
  int64_t capture_ns;
  int64_t replays;
} hr_graph;

typedef struct hr_graph_set {
  uint64_t dev; /* handle of the instance (checked on every call) */
  hr_instance *inst;
  uint64_t pool;
  int64_t n;
  hr_graph *g; /* ascending sizes */
  hr_graph *capturing;
  int records; /* backend lets the core record ops */
  uint64_t pool_before;
  int64_t t0;
  int op_error; /* recording failed (host OOM): end fails */
} hr_graph_set;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Resolves (dev, set) to the instance and the set, or fails naming `call`. */
static int lookup(uint64_t dev, uint64_t handle, const char *call, hr_instance **inst_out, hr_graph_set **set_out) {
  hr_instance *inst = hr_instance_get(dev, call);
  if (!inst) return HR_E_INVALID;
  hr_graph_set *s = (hr_graph_set *)hr_handle_get(handle, HR_H_GRAPH_SET, inst, call);
  if (!s) return HR_E_INVALID;
  *inst_out = inst;
  *set_out = s;
  return HR_OK;
}

static int pool_allocated(hr_instance *inst, uint64_t pool, uint64_t *bytes_out);

static hr_graph *find(hr_graph_set *s, int64_t size) {
  int64_t lo = 0, hi = s->n - 1;
  while (lo <= hi) {
    int64_t mid = (lo + hi) / 2;
    if (s->g[mid].size == size) return &s->g[mid];
    if (s->g[mid].size < size)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return NULL;
}

static void graph_clear(hr_graph_set *s, hr_graph *g) {
  if (g->exec) hrb_graph_exec_destroy(s->inst, g->exec);
  free(g->ops);
  int64_t size = g->size;
  memset(g, 0, sizeof *g);
  g->size = size;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int hr_graph_set_create(uint64_t dev, const int64_t *sizes, int64_t num_sizes, uint64_t *set_out) {
  static const char *const CALL = "hr_graph_set_create";
  hr_clear_error();
  hr_instance *inst = hr_instance_get(dev, CALL);
  if (!inst) return HR_E_INVALID;
  HR_CHECK_PTR(set_out, CALL);
  *set_out = 0;
  HR_CHECK_PTR(sizes, CALL);
  if (num_sizes <= 0 || num_sizes > HR_GRAPH_MAX_SIZES)
    return hr_fail(HR_E_INVALID, "%s: num_sizes must be in 1..%d (got %lld)", CALL, HR_GRAPH_MAX_SIZES,
                   (long long)num_sizes);
  int64_t *sorted = malloc(sizeof(int64_t) * (size_t)num_sizes);
  if (!sorted) return hr_fail(HR_E_OOM, "%s: host allocation failed", CALL);
  memcpy(sorted, sizes, sizeof(int64_t) * (size_t)num_sizes);
  qsort(sorted, (size_t)num_sizes, sizeof(int64_t), cmp_i64);
  for (int64_t i = 0; i < num_sizes; i++) {
    if (sorted[i] < 1 || sorted[i] > (1 << 20) || (i > 0 && sorted[i] == sorted[i - 1])) {
      int64_t bad = sorted[i];
      free(sorted);
      return hr_fail(HR_E_INVALID, "%s: sizes must be distinct and in 1..%d (got %lld%s)", CALL, 1 << 20,
                     (long long)bad, bad >= 1 && bad <= (1 << 20) ? ", twice" : "");
    }
  }
  hr_graph_set *s = calloc(1, sizeof *s);
  hr_graph *g = calloc((size_t)num_sizes, sizeof *g);
  if (!s || !g) {
    free(s);
    free(g);
    free(sorted);
    return hr_fail(HR_E_OOM, "%s: host allocation failed", CALL);
  }
  for (int64_t i = 0; i < num_sizes; i++) g[i].size = sorted[i];
  free(sorted);
  s->dev = dev;
  s->inst = inst;
  s->n = num_sizes;
  s->g = g;
  int st = hr_allocator_pool_create(inst->alloc, &s->pool);
  if (st != HR_OK) {
    free(g);
    free(s);
    return st;
  }
  st = hr_handle_new(HR_H_GRAPH_SET, s, inst, CALL, set_out);
  if (st != HR_OK) {
    hr_allocator_pool_destroy(inst->alloc, s->pool);
    free(g);
    free(s);
    return st;
  }
  return HR_OK;
}

int hr_graph_set_destroy(uint64_t dev, uint64_t handle) {
  static const char *const CALL = "hr_graph_set_destroy";
  hr_clear_error();
  hr_instance *inst = NULL;
  hr_graph_set *s = NULL;
  int st = lookup(dev, handle, CALL, &inst, &s);
  if (st != HR_OK) return st;
  if (s->capturing)
    return hr_fail(HR_E_STATE, "%s: size %lld is being captured; end or abort the capture first", CALL,
                   (long long)s->capturing->size);
  if (inst->graph_capture)
    return hr_graph_refuse(inst, CALL); /* freeing the pool would free device memory mid-capture */
  uint64_t live = 0;
  st = pool_allocated(inst, s->pool, &live);
  if (st != HR_OK) return st;
  if (live > 0)
    return hr_fail(HR_E_STATE,
                   "%s: the set's pool %llu cannot be released (%llu bytes of blocks allocated during capture are "
                   "still live); free the blocks allocated during capture first",
                   CALL, (hr_ull)s->pool, (hr_ull)live);
  hr_handle_take(handle, HR_H_GRAPH_SET);
  /* Executables first (a launch still in flight is freed when it completes), then wait for
   * the device, and only then give the pool's memory back: a replay may still be using it. */
  for (int64_t i = 0; i < s->n; i++) graph_clear(s, &s->g[i]);
  int sst = hrb_synchronize(inst->dev);
  st = hr_allocator_pool_destroy(inst->alloc, s->pool);
  free(s->g);
  free(s);
  return st != HR_OK ? st : sst;
}

int hr_graph_capture_begin(uint64_t dev, uint64_t handle, int64_t size) {
  static const char *const CALL = "hr_graph_capture_begin";
  hr_clear_error();
  hr_instance *inst = NULL;
  hr_graph_set *s = NULL;
  int st = lookup(dev, handle, CALL, &inst, &s);
  if (st != HR_OK) return st;
  hr_graph *g = find(s, size);
  if (!g)
    return hr_fail(HR_E_INVALID, "%s: size %lld is not a size of graph set 0x%llx", CALL, (long long)size,
                   (hr_ull)handle);
  if (inst->graph_capture)
    return hr_fail(HR_E_STATE, "%s: the instance is already capturing (size %lld of another or this set); end it first",
                   CALL, (long long)inst->graph_capture->capturing->size);
  if (g->captured) return hr_fail(HR_E_STATE, "%s: size %lld is already captured", CALL, (long long)size);
  for (hr_graph *h = g + 1; h < s->g + s->n; h++)
    if (!h->captured)
      return hr_fail(HR_E_STATE, "%s: capture sizes largest first: size %lld is not captured yet (capturing %lld)",
                     CALL, (long long)h->size, (long long)size);
  uint64_t before = 0;
  st = hr_allocator_pool_reserved(inst->alloc, s->pool, &before);
  if (st != HR_OK) return st;
  int records = 0;
  int64_t t0 = now_ns();
  st = hrb_graph_capture_begin(inst, CALL, &records);
  if (st != HR_OK) return st;
  st = hr_allocator_pool_begin(inst->alloc, s->pool);
  if (st != HR_OK) {
    hrb_graph_capture_abort(inst);
    return st;
  }
  hr_allocator_set_capturing(inst->alloc, 1);
  s->records = records;
  s->pool_before = before;
  s->t0 = t0;
  s->op_error = 0;
  s->capturing = g;
  g->num_ops = 0;
  inst->graph_capture = s;
  return HR_OK;
}

/* Leaves capture mode on the instance; returns the pool_end status. */
static int leave(hr_instance *inst, hr_graph_set *s) {
  hr_allocator_set_capturing(inst->alloc, 0);
  inst->graph_capture = NULL;
  s->capturing = NULL;
  return hr_allocator_pool_end(inst->alloc);
}

int hr_graph_capture_end(uint64_t dev, uint64_t handle) {
  static const char *const CALL = "hr_graph_capture_end";
  hr_clear_error();
  hr_instance *inst = NULL;
  hr_graph_set *s = NULL;
  int st = lookup(dev, handle, CALL, &inst, &s);
  if (st != HR_OK) return st;
  hr_graph *g = s->capturing;
  if (!g || inst->graph_capture != s)
    return hr_fail(HR_E_STATE, "%s: graph set 0x%llx is not capturing", CALL, (hr_ull)handle);
  int op_error = s->op_error;
  int pst = leave(inst, s);
  void *exec = NULL;
  uint64_t exec_bytes = 0;
  int64_t nodes = 0;
  if (op_error) {
    hrb_graph_capture_abort(inst);
    graph_clear(s, g);
    return hr_fail(HR_E_OOM, "%s: recording size %lld ran out of host memory; the capture was discarded", CALL,
                   (long long)g->size);
  }
  st = hrb_graph_capture_end(inst, CALL, &exec, &exec_bytes, &nodes);
  if (st != HR_OK) {
    graph_clear(s, g);
    return st;
  }
  if (pst != HR_OK) {
    if (exec) hrb_graph_exec_destroy(inst, exec);
    graph_clear(s, g);
    return pst;
  }
  uint64_t after = 0;
  hr_allocator_pool_reserved(inst->alloc, s->pool, &after);
  g->exec = exec;
  g->exec_bytes = exec_bytes;
  g->num_nodes = s->records ? g->num_ops : nodes;
  g->pool_bytes = after > s->pool_before ? after - s->pool_before : 0;
  g->capture_ns = now_ns() - s->t0;
  g->captured = 1;
  g->replays = 0;
  return HR_OK;
}

int hr_graph_capture_abort(uint64_t dev, uint64_t handle) {
  static const char *const CALL = "hr_graph_capture_abort";
  hr_clear_error();
  hr_instance *inst = NULL;
  hr_graph_set *s = NULL;
  int st = lookup(dev, handle, CALL, &inst, &s);
  if (st != HR_OK) return st;
  hr_graph *g = s->capturing;
  if (!g || inst->graph_capture != s)
    return hr_fail(HR_E_STATE, "%s: graph set 0x%llx is not capturing", CALL, (hr_ull)handle);
  int pst = leave(inst, s);
  hrb_graph_capture_abort(inst);
  graph_clear(s, g);
  return pst;
}

int hr_graph_submit(hr_instance *inst, int kind, const int64_t *args, int *recorded) {
  hr_graph_set *s = inst->graph_capture;
  *recorded = 0;
  if (!s || !s->records) return HR_OK;
  hr_graph *g = s->capturing;
  *recorded = 1;
  if (g->num_ops == g->cap_ops) {
    int64_t cap = g->cap_ops ? g->cap_ops * 2 : 64;
    hr_graph_op *p = realloc(g->ops, sizeof *p * (size_t)cap);
    if (!p) {
      s->op_error = 1;
      return hr_fail(HR_E_OOM, "hr_op_%s: recording into graph size %lld: host allocation of %lld ops failed",
                     hr_op_kind_name(kind), (long long)g->size, (long long)cap);
    }
    g->ops = p;
    g->cap_ops = cap;
  }
  hr_graph_op *op = &g->ops[g->num_ops++];
  op->kind = kind;
  memset(op->a, 0, sizeof op->a);
  memcpy(op->a, args, sizeof(int64_t) * (size_t)hr_op_nargs_of(kind));
  return HR_OK;
}

int hr_graph_refuse(hr_instance *inst, const char *call) {
  hr_graph_set *s = inst->graph_capture;
  return hr_fail(
      HR_E_STATE,
      "%s: the instance is capturing graph size %lld; only hr_op_* calls can be part of a graph (stage inputs "
      "before hr_graph_capture_begin / hr_graph_replay)",
      call, s && s->capturing ? (long long)s->capturing->size : -1LL);
}

int hr_graph_replay(uint64_t dev, uint64_t handle, int64_t size) {
  static const char *const CALL = "hr_graph_replay";
  hr_clear_error();
  hr_instance *inst = NULL;
  hr_graph_set *s = NULL;
  int st = lookup(dev, handle, CALL, &inst, &s);
  if (st != HR_OK) return st;
  if (inst->graph_capture) return hr_graph_refuse(inst, CALL);
  hr_graph *g = find(s, size);
  if (!g || !g->captured)
    return hr_fail(HR_E_INVALID, "%s: size %lld is not a captured size of graph set 0x%llx", CALL, (long long)size,
                   (hr_ull)handle);
  g->replays++;
  if (!s->records) return hrb_graph_launch(inst, CALL, g->exec);
  for (int64_t i = 0; i < g->num_ops; i++) {
    const hr_graph_op *op = &g->ops[i];
    int fused = 0;
    if (i + 1 < g->num_ops) st = hrb_graph_exec_pair(inst, op->kind, op->a, op[1].kind, op[1].a, &fused);
    if (!fused && st == HR_OK) st = hr_ops_executor((int)op->kind)(inst, op->a);
    if (st != HR_OK) {
      char msg[700];
      snprintf(msg, sizeof msg, "%s", hr_last_error());
      return hr_fail(st, "%s: size %lld, op %lld of %lld (%s%s): %s", CALL, (long long)size, (long long)i,
                     (long long)g->num_ops, hr_op_kind_name((int)op->kind), fused ? " fused with the next op" : "",
                     msg);
    }
    i += fused; /* the next op ran inside this one */
  }
  return HR_OK;
}

int hr_graph_select(uint64_t dev, uint64_t handle, int64_t batch, int64_t *size_out) {
  static const char *const CALL = "hr_graph_select";
  hr_clear_error();
  hr_instance *inst = NULL;
  hr_graph_set *s = NULL;
  int st = lookup(dev, handle, CALL, &inst, &s);
  if (st != HR_OK) return st;
  HR_CHECK_PTR(size_out, CALL);
  *size_out = 0;
  if (batch < 1) return hr_fail(HR_E_INVALID, "%s: batch must be >= 1 (got %lld)", CALL, (long long)batch);
  for (int64_t i = 0; i < s->n; i++)
    if (s->g[i].captured && s->g[i].size >= batch) {
      *size_out = s->g[i].size;
      break;
    }
  return HR_OK;
}

int hr_graph_info(uint64_t dev, uint64_t handle, int64_t size, int64_t *out, int64_t n) {
  static const char *const CALL = "hr_graph_info";
  hr_clear_error();
  hr_instance *inst = NULL;
  hr_graph_set *s = NULL;
  int st = lookup(dev, handle, CALL, &inst, &s);
  if (st != HR_OK) return st;
  HR_CHECK_PTR(out, CALL);
  if (n <= 0) return hr_fail(HR_E_INVALID, "%s: n must be > 0 (got %lld)", CALL, (long long)n);
  hr_graph *g = find(s, size);
  if (!g)
    return hr_fail(HR_E_INVALID, "%s: size %lld is not a size of graph set 0x%llx", CALL, (long long)size,
                   (hr_ull)handle);
  int64_t v[HR_GRAPH_INFO_COUNT] = {0};
  v[HR_GRAPH_SIZE] = g->size;
  v[HR_GRAPH_CAPTURED] = g->captured;
  v[HR_GRAPH_NUM_OPS] = g->captured ? g->num_nodes : g->num_ops;
  v[HR_GRAPH_POOL_BYTES] = (int64_t)g->pool_bytes;
  v[HR_GRAPH_EXEC_BYTES] = (int64_t)g->exec_bytes;
  v[HR_GRAPH_BYTES] = (int64_t)(g->pool_bytes + g->exec_bytes);
  v[HR_GRAPH_HOST_BYTES] = (int64_t)(sizeof(hr_graph_op) * (size_t)g->cap_ops);
  v[HR_GRAPH_CAPTURE_NS] = g->capture_ns;
  v[HR_GRAPH_REPLAYS] = g->replays;
  memcpy(out, v, sizeof(int64_t) * (size_t)(n < HR_GRAPH_INFO_COUNT ? n : HR_GRAPH_INFO_COUNT));
  return HR_OK;
}

/* Bytes of live blocks in `pool` (from the allocator snapshot). */
static int pool_allocated(hr_instance *inst, uint64_t pool, uint64_t *bytes_out) {
  int64_t rows = 0;
  *bytes_out = 0;
  int st = hr_allocator_get_snapshot(inst->alloc, NULL, 0, &rows);
  for (int attempt = 0; st == HR_OK && attempt < 4; attempt++) {
    int64_t cap = rows + 16;
    int64_t *buf = malloc(sizeof(int64_t) * HR_SNAP_ROW * (size_t)cap);
    if (!buf) return hr_fail(HR_E_OOM, "hr_graph_set_info: host allocation of the snapshot failed");
    int64_t got = 0;
    st = hr_allocator_get_snapshot(inst->alloc, buf, cap, &got);
    if (st == HR_OK && got <= cap) {
      uint64_t sum = 0;
      for (int64_t r = 0; r < got; r++) {
        const int64_t *row = buf + r * HR_SNAP_ROW;
        if (row[0] == 1 && row[3] == 1 && (uint64_t)row[4] == pool) sum += (uint64_t)row[2];
      }
      free(buf);
      *bytes_out = sum;
      return HR_OK;
    }
    free(buf);
    rows = got;
  }
  return st != HR_OK ? st : hr_fail(HR_E_STATE, "hr_graph_set_info: the allocator kept changing during the snapshot");
}

int hr_graph_set_info(uint64_t dev, uint64_t handle, int64_t *out, int64_t n) {
  static const char *const CALL = "hr_graph_set_info";
  hr_clear_error();
  hr_instance *inst = NULL;
  hr_graph_set *s = NULL;
  int st = lookup(dev, handle, CALL, &inst, &s);
  if (st != HR_OK) return st;
  HR_CHECK_PTR(out, CALL);
  if (n <= 0) return hr_fail(HR_E_INVALID, "%s: n must be > 0 (got %lld)", CALL, (long long)n);
  int64_t v[HR_GSET_INFO_COUNT] = {0};
  uint64_t reserved = 0, allocated = 0;
  st = hr_allocator_pool_reserved(inst->alloc, s->pool, &reserved);
  if (st == HR_OK) st = pool_allocated(inst, s->pool, &allocated);
  if (st != HR_OK) return st;
  v[HR_GSET_NUM_SIZES] = s->n;
  v[HR_GSET_POOL] = (int64_t)s->pool;
  v[HR_GSET_POOL_RESERVED] = (int64_t)reserved;
  v[HR_GSET_POOL_ALLOCATED] = (int64_t)allocated;
  v[HR_GSET_RECORDS_OPS] = hrb_graph_records_ops();
  for (int64_t i = 0; i < s->n; i++) {
    const hr_graph *g = &s->g[i];
    if (!g->captured) continue;
    v[HR_GSET_NUM_CAPTURED]++;
    v[HR_GSET_EXEC_BYTES] += (int64_t)g->exec_bytes;
    v[HR_GSET_HOST_BYTES] += (int64_t)(sizeof(hr_graph_op) * (size_t)g->cap_ops);
    v[HR_GSET_CAPTURE_NS] += g->capture_ns;
  }
  v[HR_GSET_TOTAL_BYTES] = v[HR_GSET_POOL_RESERVED] + v[HR_GSET_EXEC_BYTES];
  memcpy(out, v, sizeof(int64_t) * (size_t)(n < HR_GSET_INFO_COUNT ? n : HR_GSET_INFO_COUNT));
  return HR_OK;
}

void hr_graph_release_instance(hr_instance *inst) {
  hr_graph_set *s;
  while ((s = (hr_graph_set *)hr_handle_take_owned(HR_H_GRAPH_SET, inst, NULL)) != NULL) {
    if (s->capturing) {
      leave(inst, s);
      hrb_graph_capture_abort(inst);
    }
    for (int64_t i = 0; i < s->n; i++) graph_clear(s, &s->g[i]);
    free(s->g);
    free(s);
  }
  inst->graph_capture = NULL;
  hrb_synchronize(inst->dev); /* replays done before the allocator (and the pools) go */
}
