// CUDA backend graph hooks (core/graph.c drives them; see "graphs" in headroom.h).
//
// Capture is stream capture of the instance's stream (hrc_state::stream from instance.cu,
// the stream every op executor enqueues on): the core's hr_ops_submit keeps calling the
// executors, whose kernels and cuBLAS calls are recorded instead of run.
//
//  - cuBLAS must exist before capture (cublasCreate and its workspace allocation cannot be
//    captured): hrc_blas_ready() runs first, outside the capture and outside the set's pool,
//    so the workspace stays in the default pool. No cuBLAS (not loadable) is not an error
//    here: a graph without matmuls can still be captured, and a matmul reports it.
//  - The instance's stream is non-blocking (instance.cu): legacy-stream work of other threads
//    cannot join or invalidate the capture. cudaStreamCaptureModeThreadLocal: captures on
//    other threads (other instances) do not interfere; begin and end must run on the same
//    thread. The core refuses synchronizing calls of the instance while it captures
//    (hr_vmm_map/reserve/release, hr_synchronize, copies, host buffers, empty_cache, ...) and
//    the allocator never frees a segment then (its OOM retry skips the release).
//  - Warm-up: lazy initialisation that cannot be captured is done here (the cuBLAS handle and
//    its workspace). Running each size once eagerly before capturing it is the caller's job
//    (the engine's profile run at the largest batch does it for the shapes it shares).
//  - During capture the calling thread's interaction mode is relaxed (as PyTorch's caching
//    allocator does around cudaMalloc while capturing), so the allocator may grow the set's
//    private pool with cudaMalloc. The core refuses the synchronous copy/memset/synchronize
//    calls while capturing, so nothing else "unsafe" is issued by this library.
//  - End: cudaStreamEndCapture, cudaGraphInstantiate, cudaGraphUpload (so the executable's
//    device memory is allocated now, at start-up, not at the first replay); the free-memory
//    drop around instantiate + upload is reported as the executable's bytes (device-wide
//    cudaMemGetInfo: another process allocating at that moment would be counted).
//  - Replay: cudaGraphLaunch on the instance's stream (ordered with staging copies, which run
//    on the same stream: hr_memcpy_* and hr_memcpy_async).
#include "cuda_common.cuh"

extern "C" {
#include "../core/backend.h"
#include "../core/device.h"
}

// The mode this thread had before hrb_graph_capture_begin relaxed it; restored at end/abort.
static thread_local cudaStreamCaptureMode tl_saved_mode = cudaStreamCaptureModeGlobal;
static thread_local int tl_mode_saved = 0;

static void restore_mode(void) {
  if (!tl_mode_saved) return;
  cudaStreamCaptureMode m = tl_saved_mode;
  cudaThreadExchangeStreamCaptureMode(&m);
  tl_mode_saved = 0;
}

extern "C" {

int hrb_graph_records_ops(void) { return 0; }

int hrb_graph_exec_pair(struct hr_instance *inst, int64_t kind, const int64_t *a, int64_t next_kind, const int64_t *b,
                        int *fused) {
  (void)inst, (void)kind, (void)a, (void)next_kind, (void)b;
  *fused = 0; /* CUDA graphs are stream captures: the core never replays an op list here */
  return HR_OK;
}

int hrb_graph_capture_begin(struct hr_instance *inst, const char *call, int *records_ops_out) {
  *records_ops_out = 0;
  hrc_state *st = NULL;
  int s = hrc_begin(inst, call, &st);
  if (s != HR_OK) return s;
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  HRC_TRY(call, cudaStreamIsCapturing(st->stream, &cs));
  if (cs != cudaStreamCaptureStatusNone)
    return hr_fail(HR_E_STATE, "%s: the instance's stream is already being captured", call);
  s = hrc_blas_ready(st, call, 0);
  if (s != HR_OK && s != HR_E_UNSUPPORTED) return s;
  hr_clear_error();
  // Work queued before the capture must not be mistaken for part of it (and must be done
  // before the first replay reads what it wrote).
  HRC_TRY(call, cudaStreamSynchronize(st->stream));
  HRC_TRY(call, cudaStreamBeginCapture(st->stream, cudaStreamCaptureModeThreadLocal));
  cudaStreamCaptureMode m = cudaStreamCaptureModeRelaxed;
  cudaError_t e = cudaThreadExchangeStreamCaptureMode(&m);
  if (e != cudaSuccess) {
    cudaGraph_t g = NULL;
    cudaStreamEndCapture(st->stream, &g);
    if (g) cudaGraphDestroy(g);
    return hrc_fail(e, call, "cudaThreadExchangeStreamCaptureMode(relaxed)");
  }
  tl_saved_mode = m;
  tl_mode_saved = 1;
  return HR_OK;
}

int hrb_graph_capture_end(struct hr_instance *inst, const char *call, void **exec_out, uint64_t *exec_bytes_out,
                          int64_t *num_nodes_out) {
  *exec_out = NULL;
  *exec_bytes_out = 0;
  *num_nodes_out = 0;
  restore_mode();
  hrc_state *st = NULL;
  int s = hrc_begin(inst, call, &st);
  if (s != HR_OK) return s;
  cudaGraph_t graph = NULL;
  cudaError_t e = cudaStreamEndCapture(st->stream, &graph);
  if (e != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    // cudaErrorStreamCaptureInvalidated: an op in the step did something capture forbids.
    return hrc_fail(e, call, "cudaStreamEndCapture (an op of the captured step was not capturable)");
  }
  size_t nodes = 0;
  e = cudaGraphGetNodes(graph, NULL, &nodes);
  if (e != cudaSuccess) {
    cudaGraphDestroy(graph);
    return hrc_fail(e, call, "cudaGraphGetNodes");
  }
  size_t free0 = 0, free1 = 0, total = 0;
  e = cudaMemGetInfo(&free0, &total);
  cudaGraphExec_t exec = NULL;
  if (e == cudaSuccess) e = cudaGraphInstantiate(&exec, graph, 0ULL);
  cudaGraphDestroy(graph); // the executable keeps what it needs
  if (e != cudaSuccess) return hrc_fail(e, call, "cudaGraphInstantiate");
  e = cudaGraphUpload(exec, st->stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(st->stream);
  if (e == cudaSuccess) e = cudaMemGetInfo(&free1, &total);
  if (e != cudaSuccess) {
    cudaGraphExecDestroy(exec);
    return hrc_fail(e, call, "cudaGraphUpload");
  }
  *exec_out = (void *)exec;
  *exec_bytes_out = free0 > free1 ? (uint64_t)(free0 - free1) : 0;
  *num_nodes_out = (int64_t)nodes;
  return HR_OK;
}

void hrb_graph_capture_abort(struct hr_instance *inst) {
  restore_mode();
  hrc_state *st = NULL;
  if (hrc_begin(inst, "hr_graph_capture_abort", &st) != HR_OK) return;
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(st->stream, &cs) == cudaSuccess && cs != cudaStreamCaptureStatusNone) {
    cudaGraph_t g = NULL;
    cudaStreamEndCapture(st->stream, &g);
    if (g) cudaGraphDestroy(g);
  }
  cudaGetLastError(); // an invalidated capture leaves a (non-sticky) error behind
}

int hrb_graph_launch(struct hr_instance *inst, const char *call, void *exec) {
  hrc_state *st = NULL;
  int s = hrc_begin(inst, call, &st);
  if (s != HR_OK) return s;
  HRC_TRY(call, cudaGraphLaunch((cudaGraphExec_t)exec, st->stream));
  return HR_OK;
}

void hrb_graph_exec_destroy(struct hr_instance *inst, void *exec) {
  if (!exec) return;
  cudaSetDevice((int)inst->ordinal);
  cudaGraphExecDestroy((cudaGraphExec_t)exec);
}

} // extern "C"
