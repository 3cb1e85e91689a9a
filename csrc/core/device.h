/* Internal: device instances (one per hr_device_open) and handle lookup. */
#ifndef HR_DEVICE_H
#define HR_DEVICE_H

#include <stdint.h>

#include "allocator.h"
#include "backend.h"

typedef struct hr_instance {
  hrb_device *dev;
  hr_allocator *alloc;
  int64_t ordinal;
  uint64_t sim_non_allocator; /* HR_SIM_NON_ALLOCATOR bytes held by this instance */
} hr_instance;

/* Resolves a handle; on failure sets an error naming `call` and returns NULL. */
hr_instance *hr_instance_get(uint64_t handle, const char *call);

#endif
