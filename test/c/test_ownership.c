/*
 * Ownership and handle checks of the C library (csrc/core/handles.c, device.c): one handle
 * table for every kind, an instance releasing what was created on it, stale / wrong-kind /
 * forged handles rejected, and overflow-checked size arithmetic in ops_dispatch.c. Run under
 * ASan/UBSan + LeakSanitizer by `make test-c`: a leak on instance close fails the run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headroom.h"

#include "check.h"

#define MiB (1ull << 20)
#define BEGIN(name) (cur_test = (name), printf("test %s\n", name))

static uint64_t open_dev(void) {
  uint64_t dev = 0;
  CHECK_OK(hr_device_open(21, 64 * MiB, &dev));
  return dev;
}

/* Close with a captured graph set (+ a live block from its pool), an uncaptured set, copy
 * engines with copies still queued behind a slow copy thread, and host buffers: everything is
 * released (LeakSanitizer checks the host side; the device's free bytes the device side). */
static void test_close_releases_children(void) {
  BEGIN("close releases graph sets, copy engines (threads joined) and host buffers");
  uint64_t dev = open_dev(), probe = open_dev();
  uint64_t free0 = 0, total = 0;
  CHECK_OK(hr_device_mem_info(probe, &free0, &total));
  int64_t sizes[] = {4, 2};
  uint64_t set = 0, set2 = 0;
  CHECK_OK(hr_graph_set_create(dev, sizes, 2, &set));
  CHECK_OK(hr_graph_set_create(dev, sizes, 1, &set2));
  uint64_t x = 0, y = 0, live = 0;
  CHECK_OK(hr_alloc(dev, 4096, &x));
  CHECK_OK(hr_alloc(dev, 4096, &y));
  CHECK_OK(hr_graph_capture_begin(dev, set, 4));
  CHECK_OK(hr_alloc(dev, 3 * MiB, &live)); /* from the set's pool, left live */
  CHECK_OK(hr_op_rms_norm(dev, HR_DTYPE_F32, y, x, 0, x, 4, 256, 1e-5));
  CHECK_OK(hr_graph_capture_end(dev, set));
  uint64_t eng = 0, eng2 = 0, host = 0, host2 = 0;
  CHECK_OK(hr_copy_engine_create(dev, 2, &eng));
  CHECK_OK(hr_copy_engine_create(dev, 4, &eng2));
  CHECK_OK(hr_copy_engine_set_delay_us(dev, eng, 2000));
  CHECK_OK(hr_host_alloc(dev, 4096, &host));
  CHECK_OK(hr_host_alloc(dev, 1 * MiB, &host2));
  for (int i = 0; i < 8; i++) CHECK_OK(hr_copy_async(dev, eng, i % 2, y, host, 4096, 0));
  uint64_t used = 0;
  CHECK_OK(hr_device_mem_info(probe, &used, &total));
  CHECK(used < free0, "the instance holds device memory before close");
  CHECK_OK(hr_device_close(dev));
  uint64_t after = 0;
  CHECK_OK(hr_device_mem_info(probe, &after, &total));
  CHECK_EQ(after, free0);
  /* every child handle is stale now, whichever device handle is passed */
  uint64_t dev2 = open_dev();
  int64_t info[HR_GSET_INFO_COUNT];
  CHECK_ERR(hr_graph_set_info(dev2, set, info, HR_GSET_INFO_COUNT), HR_E_INVALID, "invalid or destroyed graph set");
  CHECK_ERR(hr_graph_replay(dev2, set, 4), HR_E_INVALID, "graph set handle");
  CHECK_ERR(hr_copy_synchronize(dev2, eng2), HR_E_INVALID, "invalid or destroyed copy engine");
  CHECK_ERR(hr_host_free(dev2, host), HR_E_INVALID, "not a live host buffer");
  uint64_t hb = 1;
  CHECK_OK(hr_host_bytes(dev2, &hb));
  CHECK_EQ(hb, 0);
  CHECK_ERR(hr_device_close(dev), HR_E_INVALID, "invalid or closed device handle");
  CHECK_OK(hr_device_close(dev2));
  CHECK_OK(hr_device_close(probe));
}

/* A handle of one kind passed where another is expected is named as such, never cast. */
static void test_wrong_kind_and_forged(void) {
  BEGIN("wrong-kind, forged and stale handles are HR_E_INVALID");
  uint64_t dev = open_dev();
  int64_t sizes[] = {1};
  uint64_t set = 0, eng = 0;
  CHECK_OK(hr_graph_set_create(dev, sizes, 1, &set));
  CHECK_OK(hr_copy_engine_create(dev, 1, &eng));
  uint64_t p = 0;
  CHECK_ERR(hr_alloc(set, 512, &p), HR_E_INVALID, "is a graph set handle, not a device handle");
  CHECK_ERR(hr_alloc(eng, 512, &p), HR_E_INVALID, "is a copy engine handle, not a device handle");
  CHECK_ERR(hr_graph_replay(dev, eng, 1), HR_E_INVALID, "is a copy engine handle, not a graph set handle");
  CHECK_ERR(hr_copy_synchronize(dev, set), HR_E_INVALID, "is a graph set handle, not a copy engine handle");
  CHECK_ERR(hr_copy_synchronize(dev, dev), HR_E_INVALID, "is a device handle, not a copy engine handle");
  uint64_t forged[] = {0, 1, 0xffff, 12345, UINT64_MAX, (uint64_t)1 << 63, dev + (1ull << 20), dev ^ 1};
  for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
    CHECK_ST(hr_alloc(forged[i], 512, &p), HR_E_INVALID);
    CHECK_ST(hr_graph_replay(dev, forged[i] == dev ? 0 : forged[i], 1), HR_E_INVALID);
    CHECK_ST(hr_copy_synchronize(dev, forged[i]), HR_E_INVALID);
  }
  CHECK_OK(hr_copy_engine_destroy(dev, eng));
  CHECK_ERR(hr_copy_engine_destroy(dev, eng), HR_E_INVALID, "invalid or destroyed copy engine");
  CHECK_OK(hr_graph_set_destroy(dev, set));
  CHECK_ERR(hr_graph_set_destroy(dev, set), HR_E_INVALID, "invalid or destroyed graph set");
  /* a slot reused by a new object does not revive the old handle */
  uint64_t set2 = 0;
  CHECK_OK(hr_graph_set_create(dev, sizes, 1, &set2));
  CHECK(set2 != set, "a new handle differs from the destroyed one");
  CHECK_ST(hr_graph_replay(dev, set, 1), HR_E_INVALID);
  CHECK_OK(hr_device_close(dev));
}

/* Products of caller sizes are checked before use: no wrap to a small (or zero) size. */
static void test_size_overflow(void) {
  BEGIN("overflowing sizes are rejected with a message");
  uint64_t dev = open_dev();
  uint64_t ws = 7;
  const int64_t big = 1LL << 40;
  /* 2^40 x 2^40 x ... wrapped to 0 bytes before: now refused, naming the values */
  CHECK_ERR(hr_paged_attention_workspace_bytes(HR_DTYPE_F32, 1LL << 20, 1LL << 20, 1LL << 6, 1LL << 20, 16, 16, &ws),
            HR_E_INVALID, "overflows 64 bits");
  CHECK_EQ(ws, 0);
  CHECK_ERR(hr_paged_attention_workspace_bytes(HR_DTYPE_F32, 1LL << 26, 1LL << 20, big, 1, 16, 16, &ws), HR_E_INVALID,
            "too large");
  CHECK_ERR(hr_paged_attention_workspace_bytes(HR_DTYPE_F32, 1LL << 10, 1LL << 10, 1LL << 14, 1LL << 20, 16, 16, &ws),
            HR_E_INVALID, "num_seqs=1024 num_q_heads=1024 head_dim=16384");
  /* a sane request still works */
  CHECK_OK(hr_paged_attention_workspace_bytes(HR_DTYPE_F32, 2, 4, 8, 4, 16, 16, &ws));
  CHECK_EQ(ws, 2 * 4 * 4 * (8 + 2) * 4);
  /* num_kv_heads * head_dim = 2^80 was multiplied before being bounded */
  uint64_t a = 0x1000, b = 0x2000;
  CHECK_ERR(hr_op_kv_write(dev, HR_DTYPE_F32, a, b, a, b, a, 1, big, big, 1, 1, 0, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "too large");
  CHECK_ERR(hr_op_kv_write(dev, HR_DTYPE_F32, a, b, a, b, a, 1, 1LL << 24, 1LL << 24, 1, 1, 0, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "too large");
  CHECK_ERR(hr_op_attention_decode(dev, HR_DTYPE_F32, a, a, a, b, a, a, 0, 0, 1, big, big, big, 1, 1, 1, 0, 1.0, 0, 0,
                                   0.0, HR_DTYPE_F32, 1.0, 1.0),
            HR_E_INVALID, "too large");
  CHECK_ERR(hr_op_rope(dev, HR_DTYPE_F32, a, b, a, a, big, big, big, 2, 0, HR_ROPE_NEOX, 0, 0), HR_E_INVALID,
            "too large");
  CHECK_OK(hr_device_close(dev));
}

int main(void) {
  test_close_releases_children();
  test_wrong_kind_and_forged();
  test_size_overflow();
  printf("ok\n");
  return 0;
}
