/*
 * CPU backend graph hooks: the core records ops into op lists and replays them through the
 * executor table (core/graph.c), so there is nothing to capture or launch here.
 */
#include <stddef.h>

#include "../core/backend.h"
#include "../core/status.h"

int hrb_graph_records_ops(void) { return 1; }

int hrb_graph_capture_begin(struct hr_instance *inst, const char *call, int *records_ops_out) {
  (void)inst;
  (void)call;
  *records_ops_out = 1;
  return HR_OK;
}

int hrb_graph_capture_end(struct hr_instance *inst, const char *call, void **exec_out, uint64_t *exec_bytes_out,
                          int64_t *num_nodes_out) {
  (void)inst;
  (void)call;
  *exec_out = NULL;
  *exec_bytes_out = 0;
  *num_nodes_out = 0;
  return HR_OK;
}

void hrb_graph_capture_abort(struct hr_instance *inst) { (void)inst; }

int hrb_graph_launch(struct hr_instance *inst, const char *call, void *exec) {
  (void)inst;
  (void)exec;
  return hr_fail(HR_E_UNSUPPORTED, "%s: the CPU backend replays op lists; it has no graph executables", call);
}

void hrb_graph_exec_destroy(struct hr_instance *inst, void *exec) {
  (void)inst;
  (void)exec;
}
