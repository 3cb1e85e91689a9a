/* Device buffers for the op tests: one CPU device instance (`dev`) and a list of live
 * allocations freed together. Include after check.h. */
#ifndef HR_TEST_DEVICE_BUFS_H
#define HR_TEST_DEVICE_BUFS_H

#include <stdint.h>

#include "check.h"

static uint64_t dev;

#define MAX_BUFS 64
static uint64_t bufs[MAX_BUFS];
static int nbufs;
static void *dalloc(size_t bytes) {
  uint64_t p = 0;
  CHECK_OK(hr_alloc(dev, bytes ? bytes : 4, &p));
  CHECK(nbufs < MAX_BUFS, "too many buffers");
  bufs[nbufs++] = p;
  return (void *)(uintptr_t)p;
}
static void free_all(void) {
  for (int i = 0; i < nbufs; i++) CHECK_OK(hr_free(dev, bufs[i]));
  nbufs = 0;
}
static uint64_t P(const void *p) { return (uint64_t)(uintptr_t)p; }

#endif
