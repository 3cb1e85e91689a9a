/* Internal to the CUDA backend: the per-ordinal device state shared by its source files. */
#ifndef HR_CUDA_DEVICE_H
#define HR_CUDA_DEVICE_H
#include <stdint.h>

struct hrb_device {
  int64_t ordinal;
  int refs;
};
#endif
