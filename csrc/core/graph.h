/* Internal: the core side of graph capture (graph.c) that ops_dispatch.c and device.c call. */
#ifndef HR_GRAPH_H
#define HR_GRAPH_H

#include <stdint.h>

#include "device.h"

/*
 * Called by hr_ops_submit while inst->graph_capture is set. Returns 1 in *recorded when the
 * op was appended to the op list (CPU), 0 when the caller must execute it (the backend
 * captures what executors enqueue, CUDA). Returns an HR_* status.
 */
int hr_graph_submit(hr_instance *inst, int kind, const int64_t *args, int *recorded);
/* HR_E_STATE naming `call` (a synchronous call that cannot be part of a graph). */
int hr_graph_refuse(hr_instance *inst, const char *call);
/* Instance close: drops every set of the instance (their pools go with the allocator). */
void hr_graph_release_instance(hr_instance *inst);

#endif
