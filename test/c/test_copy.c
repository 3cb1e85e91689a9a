/*
 * Offload copy engine tests (csrc/core/copy_engine.c + csrc/cpu/copy_engine.c) through the
 * public ABI on a CPU device, run under ASan/UBSan by `make test-c`: ordering with a slow
 * copy thread (query says "not done" until the copy lands, wait blocks until it has), FIFO
 * order of copies into one slot, host-buffer accounting, stats, and argument errors.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "headroom.h"

#define MiB (1ull << 20)

#include "check.h"
#define OK(expr) CHECK((expr) == HR_OK)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t open_dev(void) {
  uint64_t dev = 0;
  OK(hr_device_open(11, 64 * MiB, &dev));
  return dev;
}

static void test_slow_copy_ordering(void) {
  cur_test = "slow_copy_ordering";
  uint64_t dev = open_dev(), eng = 0, host = 0, slot = 0, bytes = 0;
  const uint64_t n = 1 * MiB;
  OK(hr_host_alloc(dev, 2 * n, &host));
  OK(hr_host_bytes(dev, &bytes));
  CHECK(bytes == 2 * n);
  uint64_t free0 = 0, total = 0, free1 = 0;
  OK(hr_device_mem_info(dev, &free0, &total));
  CHECK(free0 == total); /* host buffers are not device memory */
  OK(hr_alloc(dev, n, &slot));
  memset((void *)(uintptr_t)slot, 0, n);
  memset((void *)(uintptr_t)host, 0xAB, n);
  memset((void *)(uintptr_t)(host + n), 0xCD, n);
  OK(hr_copy_engine_create(dev, 2, &eng));
  OK(hr_copy_engine_set_delay_us(dev, eng, 50000));
  int64_t done = -1;
  OK(hr_copy_query(dev, eng, 0, &done));
  CHECK(done == 1); /* nothing issued yet */
  OK(hr_copy_begin(dev, eng));
  double t0 = now_s();
  OK(hr_copy_async(dev, eng, 0, slot, host, n, 0));
  CHECK(now_s() - t0 < 0.04); /* returns at once */
  OK(hr_copy_query(dev, eng, 0, &done));
  CHECK(done == 0);
  CHECK(((unsigned char *)(uintptr_t)slot)[n - 1] == 0); /* not copied yet */
  OK(hr_copy_wait(dev, eng, 0));
  CHECK(now_s() - t0 >= 0.045);
  OK(hr_copy_query(dev, eng, 0, &done));
  CHECK(done == 1);
  for (uint64_t i = 0; i < n; i += 4093) CHECK(((unsigned char *)(uintptr_t)slot)[i] == 0xAB);
  OK(hr_copy_release(dev, eng, 0));
  /* two copies into one slot: FIFO, the wait covers the last one */
  OK(hr_copy_async(dev, eng, 0, slot, host + n, n, 1));
  OK(hr_copy_async(dev, eng, 0, slot, host, n / 2, 1));
  OK(hr_copy_wait(dev, eng, 0));
  CHECK(((unsigned char *)(uintptr_t)slot)[0] == 0xAB);
  CHECK(((unsigned char *)(uintptr_t)slot)[n - 1] == 0xCD);
  /* slot 1 unaffected by waits on slot 0; synchronize drains everything */
  OK(hr_copy_engine_set_delay_us(dev, eng, 0));
  OK(hr_copy_async(dev, eng, 1, slot, host + n, n, 0));
  OK(hr_copy_synchronize(dev, eng));
  OK(hr_copy_query(dev, eng, 1, &done));
  CHECK(done == 1);
  double st[HR_COPY_STAT_COUNT] = {0};
  OK(hr_copy_engine_stats(dev, eng, st, HR_COPY_STAT_COUNT));
  CHECK(st[HR_COPY_STAT_COPIES] == 4);
  CHECK(st[HR_COPY_STAT_BYTES] == (double)(3 * n + n / 2));
  CHECK(st[HR_COPY_STAT_WAITS] == 2);
  CHECK(st[HR_COPY_STAT_WAITS_BLOCKED] == 2);
  CHECK(st[HR_COPY_STAT_WAIT_S] > 0.04);
  CHECK(st[HR_COPY_STAT_BUSY_S] > 0);
  OK(hr_device_mem_info(dev, &free1, &total));
  OK(hr_copy_engine_destroy(dev, eng));
  OK(hr_free(dev, slot));
  OK(hr_host_free(dev, host));
  OK(hr_host_bytes(dev, &bytes));
  CHECK(bytes == 0);
  OK(hr_device_close(dev));
  printf("ok %s\n", cur_test);
}

static void test_destroy_drains(void) {
  cur_test = "destroy_drains";
  uint64_t dev = open_dev(), eng = 0, host = 0, slot = 0;
  OK(hr_host_alloc(dev, 4096, &host));
  OK(hr_alloc(dev, 4096, &slot));
  memset((void *)(uintptr_t)host, 7, 4096);
  OK(hr_copy_engine_create(dev, 1, &eng));
  OK(hr_copy_engine_set_delay_us(dev, eng, 10000));
  for (int i = 0; i < 100; i++) OK(hr_copy_async(dev, eng, 0, slot, host, 4096, 1)); /* grows the queue */
  OK(hr_copy_engine_destroy(dev, eng));                                              /* waits for all 100 (about 1 s) */
  CHECK(((unsigned char *)(uintptr_t)slot)[4095] == 7);
  OK(hr_free(dev, slot));
  OK(hr_host_free(dev, host));
  OK(hr_device_close(dev));
  printf("ok %s\n", cur_test);
}

static void test_errors(void) {
  cur_test = "errors";
  uint64_t dev = open_dev(), dev2 = 0, eng = 0, host = 0, slot = 0, x = 0;
  OK(hr_device_open(12, 16 * MiB, &dev2));
  OK(hr_host_alloc(dev, 8192, &host));
  OK(hr_alloc(dev, 4096, &slot));
  CHECK(hr_copy_engine_create(dev, 0, &eng) == HR_E_INVALID);
  CHECK(hr_copy_engine_create(dev, 65, &eng) == HR_E_INVALID);
  CHECK(hr_copy_engine_create(dev, 2, NULL) == HR_E_INVALID);
  CHECK(hr_copy_engine_create(999, 2, &eng) == HR_E_INVALID);
  OK(hr_copy_engine_create(dev, 2, &eng));
  CHECK(hr_copy_async(dev, eng, 2, slot, host, 4096, 0) == HR_E_INVALID); /* slot */
  CHECK(strstr(hr_last_error(), "slot 2") != NULL);
  CHECK(hr_copy_async(dev, eng, -1, slot, host, 4096, 0) == HR_E_INVALID);
  CHECK(hr_copy_async(dev, eng, 0, slot, host, 8192, 0) == HR_E_INVALID); /* dst too small */
  CHECK(strstr(hr_last_error(), "dst range") != NULL);
  CHECK(hr_copy_async(dev, eng, 0, slot, host + 8000, 4096, 0) == HR_E_INVALID); /* past the host buffer */
  CHECK(strstr(hr_last_error(), "src range") != NULL);
  CHECK(hr_copy_async(dev, eng, 0, slot, slot, 4096, 0) == HR_E_INVALID); /* device memory is not a host buffer */
  CHECK(hr_copy_async(dev, eng, 0, slot, host, 0, 0) == HR_E_INVALID);
  CHECK(hr_copy_async(dev, eng, 0, slot, host, 4096, 2) == HR_E_INVALID);
  CHECK(hr_copy_async(dev2, eng, 0, slot, host, 4096, 0) == HR_E_INVALID); /* engine of another instance */
  CHECK(strstr(hr_last_error(), "another device instance") != NULL);
  CHECK(hr_copy_wait(dev, eng, 5) == HR_E_INVALID);
  CHECK(hr_copy_release(dev, eng, 5) == HR_E_INVALID);
  CHECK(hr_copy_query(dev, eng, 0, NULL) == HR_E_INVALID);
  CHECK(hr_copy_engine_set_delay_us(dev, eng, -1) == HR_E_INVALID);
  CHECK(hr_copy_engine_stats(dev, eng, NULL, 6) == HR_E_INVALID);
  CHECK(hr_host_alloc(dev, 0, &x) == HR_E_INVALID);
  CHECK(hr_host_free(dev, host + 16) == HR_E_INVALID);
  CHECK(hr_host_free(dev2, host) == HR_E_INVALID); /* another instance's buffer */
  OK(hr_host_free(dev, 0));
  OK(hr_copy_engine_destroy(dev, eng));
  CHECK(hr_copy_engine_destroy(dev, eng) == HR_E_INVALID);
  CHECK(strstr(hr_last_error(), "destroyed") != NULL);
  CHECK(hr_copy_wait(dev, eng, 0) == HR_E_INVALID);
  OK(hr_free(dev, slot));
  OK(hr_host_free(dev, host));
  OK(hr_device_close(dev2));
  OK(hr_device_close(dev));
  printf("ok %s\n", cur_test);
}

int main(void) {
  test_slow_copy_ordering();
  test_destroy_drains();
  test_errors();
  return 0;
}
