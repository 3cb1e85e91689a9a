/*
 * Reserve-then-map ranges and capture safety (csrc/core/vmm.c, graph.c, allocator.c) on the
 * CPU backend, under ASan/UBSan: reservations bounded by the device size (several instances
 * fit), block ids between the mapped and the reserved count rejected by the executors (also
 * in replayed graphs, after the cache grew), synchronizing calls refused during capture, and
 * no cached segment released by the OOM retry while capturing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headroom.h"

#include "check.h"

#define MiB (1ull << 20)
#define BEGIN(name) (cur_test = (name), printf("test %s\n", name))

static uint64_t open_dev(int64_t ordinal, uint64_t cap) {
  uint64_t dev = 0;
  CHECK_OK(hr_device_open(ordinal, cap, &dev));
  return dev;
}

static void test_reservation_bounded(void) {
  BEGIN("a reservation never exceeds what the device could map (several instances fit)");
  uint64_t devs[4];
  for (int i = 0; i < 4; i++) devs[i] = open_dev(31, 64 * MiB);
  for (int i = 0; i < 4; i++) {
    uint64_t base = 0, gran = 0, stride = 0;
    /* "the whole device per slice" for 2 x 32 layers: 64 x 64 MiB asked, 64 MiB reserved */
    CHECK_OK(hr_vmm_reserve(devs[i], 64 * MiB, 64, &base, &gran, &stride));
    CHECK_EQ(stride, 1 * MiB);
    /* absurd requests are clamped too: 2^20 slices of 1 TiB would be 2^60 bytes */
    CHECK_OK(hr_vmm_reserve(devs[i], 1ull << 40, 1 << 20, &base, &gran, &stride));
    CHECK_EQ(stride, gran); /* 64 MiB / 2^20 rounds up to one page */
    CHECK_OK(hr_vmm_reserve(devs[i], 3 * MiB, 4, &base, &gran, &stride));
    CHECK_EQ(stride, 3 * MiB); /* below the share: as asked */
    CHECK_ERR(hr_vmm_map(devs[i], base, 4 * MiB), HR_E_INVALID, "cannot map");
  }
  for (int i = 0; i < 4; i++) CHECK_OK(hr_device_close(devs[i]));
}

enum { BS = 4, HK = 2, D = 8, NB = 64 };
#define BLOCK_BYTES ((uint64_t)BS * HK * D * sizeof(float))

/* K and V caches in two slices of one range with only `mapped_blocks` blocks mapped. */
typedef struct {
  uint64_t dev, base, stride, kc, vc, key, val, slots, q, out, bt, lens;
} kv_t;

static kv_t make_kv(uint64_t mapped_blocks) {
  kv_t k = {.dev = open_dev(32, 64 * MiB)};
  uint64_t gran = 0;
  CHECK_OK(hr_vmm_reserve(k.dev, NB * BLOCK_BYTES, 2, &k.base, &gran, &k.stride));
  CHECK_EQ(gran, 4096);
  CHECK_EQ(k.stride, NB * BLOCK_BYTES); /* 16 KiB: a multiple of the page */
  CHECK_OK(hr_vmm_map(k.dev, k.base, mapped_blocks * BLOCK_BYTES));
  k.kc = k.base;
  k.vc = k.base + k.stride;
  CHECK_OK(hr_alloc(k.dev, HK * D * sizeof(float), &k.key));
  CHECK_OK(hr_alloc(k.dev, HK * D * sizeof(float), &k.val));
  CHECK_OK(hr_alloc(k.dev, sizeof(int32_t), &k.slots));
  CHECK_OK(hr_alloc(k.dev, 4 * HK * D * sizeof(float), &k.q));
  CHECK_OK(hr_alloc(k.dev, 4 * HK * D * sizeof(float), &k.out));
  CHECK_OK(hr_alloc(k.dev, 2 * sizeof(int32_t), &k.bt));
  CHECK_OK(hr_alloc(k.dev, sizeof(int32_t), &k.lens));
  float ones[4 * HK * D];
  for (int i = 0; i < 4 * HK * D; i++) ones[i] = 0.25f;
  CHECK_OK(hr_memcpy_h2d(k.dev, k.key, ones, HK * D * sizeof(float)));
  CHECK_OK(hr_memcpy_h2d(k.dev, k.val, ones, HK * D * sizeof(float)));
  CHECK_OK(hr_memcpy_h2d(k.dev, k.q, ones, sizeof ones));
  return k;
}

static void set_i32(kv_t *k, uint64_t dst, const int32_t *v, int n) {
  CHECK_OK(hr_memcpy_h2d(k->dev, dst, v, sizeof(int32_t) * (uint64_t)n));
}

static int kv_write(kv_t *k) {
  return hr_op_kv_write(k->dev, HR_DTYPE_F32, k->kc, k->vc, k->key, k->val, k->slots, 1, HK, D, NB, BS, 0, HR_DTYPE_F32,
                        1.0, 1.0);
}
static int decode(kv_t *k) {
  return hr_op_attention_decode(k->dev, HR_DTYPE_F32, k->out, k->q, k->kc, k->vc, k->bt, k->lens, 0, 0, 1, 4, HK, D, NB,
                                BS, 2, 0, 0.5, 0, 0, 0.0, HR_DTYPE_F32, 1.0, 1.0);
}

static void test_block_ids_bounded_by_mapped(void) {
  BEGIN("block ids between the mapped and the reserved count are errors, not reads of unmapped memory");
  kv_t k = make_kv(16);
  int32_t slot = 16 * BS - 1; /* last slot of the last mapped block */
  set_i32(&k, k.slots, &slot, 1);
  CHECK_OK(kv_write(&k));
  slot = 16 * BS; /* first slot of block 16: reserved, not mapped (used to touch PROT_NONE memory) */
  set_i32(&k, k.slots, &slot, 1);
  CHECK_ERR(kv_write(&k), HR_E_INVALID, "beyond the 16 mapped blocks");
  int32_t bt[2] = {15, 0}, len = 3;
  set_i32(&k, k.bt, bt, 2);
  set_i32(&k, k.lens, &len, 1);
  CHECK_OK(decode(&k));
  bt[0] = 40;
  set_i32(&k, k.bt, bt, 2);
  CHECK_ERR(decode(&k), HR_E_INVALID, "block_tables[0][0] = 40 is beyond the 16 mapped blocks");
  uint64_t qsl = 0;
  int32_t qsl_v[2] = {0, 1};
  CHECK_OK(hr_alloc(k.dev, sizeof qsl_v, &qsl));
  set_i32(&k, qsl, qsl_v, 2);
  CHECK_ERR(hr_op_attention_prefill(k.dev, HR_DTYPE_F32, k.out, k.q, k.kc, k.vc, k.bt, k.lens, qsl, 1, 1, 4, HK, D, NB,
                                    BS, 2, 0.5, 0, 0, 0.0, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "beyond the 16 mapped blocks");
  /* a graph recorded against the reserved count reads the mapping at replay: block 40 is an
   * error while unmapped, and fine once the cache grew past it */
  int64_t size = 1;
  uint64_t set = 0;
  CHECK_OK(hr_graph_set_create(k.dev, &size, 1, &set));
  CHECK_OK(hr_graph_capture_begin(k.dev, set, 1));
  CHECK_OK(decode(&k));
  CHECK_OK(hr_graph_capture_end(k.dev, set));
  CHECK_ERR(hr_graph_replay(k.dev, set, 1), HR_E_INVALID, "beyond the 16 mapped blocks");
  CHECK_OK(hr_vmm_map(k.dev, k.base, NB * BLOCK_BYTES));
  CHECK_OK(hr_graph_replay(k.dev, set, 1));
  CHECK_OK(hr_graph_set_destroy(k.dev, set));
  CHECK_OK(hr_device_close(k.dev));
}

static void test_refused_during_capture(void) {
  BEGIN("synchronizing calls are HR_E_STATE during capture");
  kv_t k = make_kv(16);
  int64_t size = 1;
  uint64_t set = 0, eng = 0, host = 0, base = 0, gran = 0, stride = 0;
  CHECK_OK(hr_copy_engine_create(k.dev, 1, &eng));
  CHECK_OK(hr_graph_set_create(k.dev, &size, 1, &set));
  CHECK_OK(hr_graph_capture_begin(k.dev, set, 1));
  CHECK_ERR(hr_vmm_map(k.dev, k.base, 32 * BLOCK_BYTES), HR_E_STATE, "hr_vmm_map: the instance is capturing");
  CHECK_ERR(hr_vmm_reserve(k.dev, MiB, 1, &base, &gran, &stride), HR_E_STATE, "hr_vmm_reserve");
  CHECK_ERR(hr_vmm_release(k.dev, k.base), HR_E_STATE, "hr_vmm_release");
  CHECK_ERR(hr_allocator_empty_cache(k.dev), HR_E_STATE, "graph is being captured");
  CHECK_ERR(hr_host_alloc(k.dev, 4096, &host), HR_E_STATE, "hr_host_alloc");
  int64_t done = 0;
  CHECK_ERR(hr_copy_query(k.dev, eng, 0, &done), HR_E_STATE, "hr_copy_query");
  CHECK_ERR(hr_copy_synchronize(k.dev, eng), HR_E_STATE, "hr_copy_synchronize");
  CHECK_ERR(hr_copy_engine_destroy(k.dev, eng), HR_E_STATE, "hr_copy_engine_destroy");
  CHECK_OK(hr_graph_capture_end(k.dev, set));
  uint64_t mapped = 0;
  CHECK_OK(hr_vmm_mapped_bytes(k.dev, &mapped));
  CHECK_EQ(mapped, 2 * 16 * BLOCK_BYTES); /* unchanged by the refused map */
  CHECK_OK(hr_vmm_map(k.dev, k.base, 32 * BLOCK_BYTES));
  CHECK_OK(hr_allocator_empty_cache(k.dev));
  CHECK_OK(hr_device_close(k.dev)); /* set and engine go with it */
}

static void test_no_release_during_capture(void) {
  BEGIN("the OOM retry releases no cached segment while a graph is captured");
  uint64_t dev = open_dev(33, 64 * MiB), p = 0;
  CHECK_OK(hr_alloc(dev, 20 * MiB, &p));
  CHECK_OK(hr_free(dev, p)); /* a cached 20 MiB segment of the default pool */
  CHECK_OK(hr_allocator_set_limit(dev, 30 * MiB));
  int64_t size = 1, stats[HR_STATS_COUNT];
  uint64_t set = 0;
  CHECK_OK(hr_graph_set_create(dev, &size, 1, &set));
  CHECK_OK(hr_graph_capture_begin(dev, set, 1));
  CHECK_ERR(hr_alloc(dev, 15 * MiB, &p), HR_E_OOM, "no cached segment released: a graph is being captured");
  CHECK_OK(hr_allocator_stats(dev, stats, HR_STATS_COUNT));
  CHECK_EQ(stats[HR_STATS_RESERVED_BYTES + HR_STAT_CURRENT], 20 * MiB); /* still cached */
  CHECK_OK(hr_graph_capture_abort(dev, set));
  CHECK_OK(hr_alloc(dev, 15 * MiB, &p)); /* eagerly the default pool serves it */
  CHECK_OK(hr_free(dev, p));
  /* outside capture a private pool's OOM does release the default pool's cache */
  uint64_t pool = 0;
  CHECK_OK(hr_pool_create(dev, &pool));
  CHECK_OK(hr_pool_begin(dev, pool));
  CHECK_OK(hr_alloc(dev, 15 * MiB, &p));
  CHECK_OK(hr_pool_end(dev));
  CHECK_OK(hr_allocator_stats(dev, stats, HR_STATS_COUNT));
  CHECK_EQ(stats[HR_STATS_RESERVED_BYTES + HR_STAT_CURRENT], 16 * MiB);
  CHECK_OK(hr_free(dev, p));
  CHECK_OK(hr_device_close(dev));
}

int main(void) {
  test_reservation_bounded();
  test_block_ids_bounded_by_mapped();
  test_refused_during_capture();
  test_no_release_during_capture();
  printf("ok\n");
  return 0;
}
