/*
 * Replay-time fusion of adjacent recorded ops (hrb_graph_exec_pair, core/graph.c asks before
 * each op of a replayed op list). Every fused op would otherwise be its own parallel region:
 * a fork/join of the thread pool whose join waits for the slowest thread.
 *
 *   matmul (fp32 weights, [gate | up] output) + silu_mul reading it -> one region: each task
 *   computes a chunk of gate columns and the same up columns, then silu(gate) * up on them
 *   (matmul_f32.c, hr_cpu_matmul_f32_swiglu). The gate|up output is still written, and the
 *   panels and silu vectors are the ones the separate ops compute, so results are identical.
 *
 * A pair that does not match exactly (types, shapes, strides, aliasing) runs unfused.
 * HEADROOM_CPU_FUSE=0 turns fusion off (for comparisons).
 */
#include <stdlib.h>
#include <string.h>

#include "../core/backend.h"
#include "../core/ops_dispatch.h"
#include "ops_cpu.h"

int64_t hr_cpu_fused_pairs;

static int fuse_enabled(void) {
  static int v = -1;
  if (v < 0) {
    const char *e = getenv("HEADROOM_CPU_FUSE");
    v = !(e && !strcmp(e, "0"));
  }
  return v;
}

/* [p, p + n) and [q, q + m) (bytes) are disjoint. */
static int disjoint(uint64_t p, uint64_t n, uint64_t q, uint64_t m) { return p + n <= q || q + m <= p; }

static int swiglu_pair(const int64_t *a, const int64_t *b) {
  int64_t m = a[HR_A_MM_M], n = a[HR_A_MM_N], k = a[HR_A_MM_K], half = b[HR_A_SILU_I];
  if (a[HR_A_MM_DTYPE] != HR_DTYPE_F32 || a[HR_A_MM_WTYPE] != HR_DTYPE_F32 || b[HR_A_SILU_DTYPE] != HR_DTYPE_F32)
    return 0;
  if (a[HR_A_MM_ROWS] || m < 1 || m > hr_cpu_f32_nopack_max_m || b[HR_A_SILU_ROWS] != m) return 0;
  if (half < 16 || half % 16 || n != 2 * half || b[HR_A_SILU_STRIDE] != n) return 0;
  uint64_t y = (uint64_t)a[HR_A_MM_Y];
  if ((uint64_t)b[HR_A_SILU_GATE] != y || (uint64_t)b[HR_A_SILU_UP] != y + (uint64_t)half * 4u) return 0;
  /* the activation is written while other tasks still read x, W, bias and write y */
  uint64_t out = (uint64_t)b[HR_A_SILU_OUT], out_bytes = (uint64_t)(m * half) * 4u;
  if (!disjoint(out, out_bytes, y, (uint64_t)(m * n) * 4u)) return 0;
  if (!disjoint(out, out_bytes, (uint64_t)a[HR_A_MM_X], (uint64_t)(m * k) * 4u)) return 0;
  if (!disjoint(out, out_bytes, (uint64_t)a[HR_A_MM_W], (uint64_t)(n * k) * 4u)) return 0;
  if (a[HR_A_MM_BIAS] && !disjoint(out, out_bytes, (uint64_t)a[HR_A_MM_BIAS], (uint64_t)n * 4u)) return 0;
  return 1;
}

int hrb_graph_exec_pair(struct hr_instance *inst, int64_t kind, const int64_t *a, int64_t next_kind, const int64_t *b,
                        int *fused) {
  (void)inst;
  *fused = 0;
  if (!fuse_enabled()) return HR_OK;
  if (kind == HR_OPK_MATMUL && next_kind == HR_OPK_SILU_MUL && swiglu_pair(a, b)) {
    *fused = 1;
    hr_cpu_fused_pairs++;
    return hr_cpu_matmul_f32_swiglu(HR_PTR(a, HR_A_MM_Y, float), HR_PTR(b, HR_A_SILU_OUT, float),
                                    HR_PTR(a, HR_A_MM_X, const float), HR_PTR(a, HR_A_MM_W, const float),
                                    HR_PTR(a, HR_A_MM_BIAS, const float), NULL, a[HR_A_MM_M], a[HR_A_MM_N],
                                    a[HR_A_MM_K]);
  }
  return HR_OK;
}
