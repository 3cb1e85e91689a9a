/*
 * Internal: what a backend (csrc/cpu or csrc/cuda) provides to the core. Exactly one
 * backend is linked into each library build. A backend "device" is the physical device
 * (shared by every instance opened on its ordinal in this process); instances, handles
 * and allocators live in core/device.c.
 */
#ifndef HR_BACKEND_H
#define HR_BACKEND_H

#include <stdint.h>

typedef struct hrb_device hrb_device;

const char *hrb_name(void);
int hrb_device_count(int64_t *count_out);
/* Reference-counted: every acquire is paired with a release. */
int hrb_device_acquire(int64_t ordinal, uint64_t cpu_capacity_bytes, hrb_device **out);
void hrb_device_release(hrb_device *d);

int hrb_raw_alloc(hrb_device *d, uint64_t size, uint64_t *ptr_out);
int hrb_raw_free(hrb_device *d, uint64_t ptr, uint64_t size);
int hrb_mem_info(hrb_device *d, uint64_t *free_out, uint64_t *total_out);
/* Fills out[0 .. HR_INFO_COUNT). */
int hrb_device_info(hrb_device *d, int64_t *out);
int hrb_device_name(hrb_device *d, char *buf, int64_t len);
/* Test hook: change simulated usage of `kind` from old_bytes to new_bytes. */
int hrb_simulate_usage(hrb_device *d, int64_t kind, uint64_t old_bytes, uint64_t new_bytes);

/*
 * Reserve-then-map ranges (hr_vmm_*): `num_slices` slices of `slice_stride` bytes (a multiple
 * of the granularity the backend reports first through hrb_vmm_granularity). The backend keeps
 * its own per-range state in *state.
 */
int hrb_vmm_granularity(hrb_device *d, uint64_t *granularity_out);
int hrb_vmm_reserve(hrb_device *d, uint64_t slice_stride, int64_t num_slices, uint64_t *base_out, void **state_out);
/* Grows or shrinks the mapped prefix of every slice from old_mapped to new_mapped bytes.
 * *mapped_out is what is really mapped afterwards, success or not (a failed re-grow after a
 * partial shrink can leave less than old_mapped), so the core's bookkeeping stays true. */
int hrb_vmm_set_mapped(hrb_device *d, void *state, uint64_t base, uint64_t slice_stride, int64_t num_slices,
                       uint64_t old_mapped, uint64_t new_mapped, uint64_t *mapped_out);
/* 1 when the backend's kernels bound KV block ids by a device-side word holding the mapped
 * bytes per slice (CUDA: graphs replay after the KV cache is resized); 0 when executors read
 * the host bookkeeping (CPU). */
int hrb_vmm_wants_device_word(void);
int hrb_vmm_release(hrb_device *d, void *state, uint64_t base, uint64_t slice_stride, int64_t num_slices,
                    uint64_t mapped);

#define HRB_H2D 0
#define HRB_D2H 1
#define HRB_D2D 2
/* Synchronous copies/memsets ordered after the instance's queued work (CUDA: on its stream,
 * then a wait; the stream is non-blocking, so the legacy stream would not order them). */
struct hr_instance;
int hrb_memcpy(struct hr_instance *inst, int kind, void *dst, const void *src, uint64_t bytes);
int hrb_memset(struct hr_instance *inst, uint64_t dst, int value, uint64_t bytes);
/* hr_memcpy_h2d_async: src is copied before the call returns; the device copy is queued on the
 * instance's work (CUDA: through a pinned staging ring, h2d_stage.cu; CPU: a plain copy). */
int hrb_memcpy_h2d_staged(struct hr_instance *inst, void *dst, const void *src, uint64_t bytes);
int hrb_synchronize(hrb_device *d);

/*
 * Graph capture hooks (core/graph.c drives them; see "graphs" in headroom.h).
 * capture_begin: prepare and start capturing the instance's work; *records_ops_out = 1 asks
 *   the core to record ops into an op list itself (CPU), 0 means the backend captures what the
 *   executors enqueue (CUDA stream capture). Called before the set's pool becomes active.
 * capture_end: stop capturing and build the executable (*exec_out, may be NULL for op lists),
 *   its device bytes and node count. On failure nothing is left capturing.
 * capture_abort: stop capturing and drop whatever was captured (never fails visibly).
 * launch: run an executable on the instance's stream. exec_destroy: free it.
 */
struct hr_instance;
int hrb_graph_capture_begin(struct hr_instance *inst, const char *call, int *records_ops_out);
int hrb_graph_capture_end(struct hr_instance *inst, const char *call, void **exec_out, uint64_t *exec_bytes_out,
                          int64_t *num_nodes_out);
void hrb_graph_capture_abort(struct hr_instance *inst);
int hrb_graph_launch(struct hr_instance *inst, const char *call, void *exec);
void hrb_graph_exec_destroy(struct hr_instance *inst, void *exec);
/* Instance close, after its graphs and copy engines are gone and before its allocator is
 * destroyed: waits for the instance's queued work and frees backend objects it owns (CUDA:
 * events, cuBLAS handle, stream). Never fails visibly. */
void hrb_instance_close(struct hr_instance *inst);
/* 1 if this backend's graphs are core-recorded op lists (CPU), 0 if backend graphs (CUDA). */
int hrb_graph_records_ops(void);
/* Replay of an op list (records_ops backends): may run the recorded op `kind` (args a) and the
 * one after it (next_kind, args b) as one fused step with exactly the results of running them
 * one after the other; *fused = 1 if it did (the status is then both ops'), 0 to run `kind`
 * alone. Only called for op lists, so backend graphs (CUDA) just answer 0. */
int hrb_graph_exec_pair(struct hr_instance *inst, int64_t kind, const int64_t *a, int64_t next_kind, const int64_t *b,
                        int *fused);

#endif
