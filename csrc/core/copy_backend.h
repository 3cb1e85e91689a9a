/*
 * Internal: what a backend provides for the offload copy engine (csrc/core/copy_engine.c
 * validates and keeps the handle tables; csrc/cpu/copy_engine.c and csrc/cuda/copy_engine.cu
 * implement). Slots are validated by core (0 <= slot < num_slots).
 */
#ifndef HR_COPY_BACKEND_H
#define HR_COPY_BACKEND_H

#include <stdint.h>

#include "device.h"

typedef struct hrb_copy hrb_copy;

/* Host buffers for offloaded weights (pinned on CUDA, page-aligned mmap on CPU). */
int hrb_host_alloc(int64_t ordinal, uint64_t bytes, void **out);
int hrb_host_free(int64_t ordinal, void *p, uint64_t bytes);

int hrb_copy_create(hr_instance *inst, int64_t num_slots, hrb_copy **out);
/* Waits for pending copies, then frees everything (never fails). */
void hrb_copy_destroy(hrb_copy *c);
int hrb_copy_begin(hrb_copy *c, hr_instance *inst);
int hrb_copy_submit(hrb_copy *c, int64_t slot, void *dst, const void *src, uint64_t bytes, int after_release);
int hrb_copy_wait(hrb_copy *c, hr_instance *inst, int64_t slot);
int hrb_copy_release(hrb_copy *c, hr_instance *inst, int64_t slot);
/* Host view of copies, including those replayed inside graphs on the instance's stream. */
int hrb_copy_query(hrb_copy *c, hr_instance *inst, int64_t slot, int *done_out);
int hrb_copy_sync(hrb_copy *c, hr_instance *inst);
/* Fills out[0 .. HR_COPY_STAT_COUNT). */
void hrb_copy_stats(hrb_copy *c, double *out);
int hrb_copy_set_delay_us(hrb_copy *c, int64_t delay_us);

#endif
