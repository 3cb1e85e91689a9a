/*
 * CPU executor of hr_op_gelu_tanh_mul (Gemma's GeGLU MLP): out = gelu_tanh(gate) * up, fp32,
 * rows split over the thread pool when large. Same argument record as silu_mul.
 */
#include <math.h>

#include "../core/ops_dispatch.h"
#include "../core/status.h"
#include "ops_cpu.h"
#include "threadpool.h"

#define GELU_ROWS_PER_TASK 16

static void gelu_task(void *v, int64_t task, int thread, void *scratch) {
  (void)thread;
  (void)scratch;
  const int64_t *a = v;
  float *out = HR_PTR(a, HR_A_SILU_OUT, float);
  const float *gate = HR_PTR(a, HR_A_SILU_GATE, const float), *up = HR_PTR(a, HR_A_SILU_UP, const float);
  int64_t n = a[HR_A_SILU_I], s = a[HR_A_SILU_STRIDE], rows = a[HR_A_SILU_ROWS];
  int64_t r0 = task * GELU_ROWS_PER_TASK, r1 = r0 + GELU_ROWS_PER_TASK < rows ? r0 + GELU_ROWS_PER_TASK : rows;
  const float k0 = 0.7978845608028654f; /* sqrt(2 / pi) */
  for (int64_t r = r0; r < r1; r++) {
    const float *g = gate + r * s, *u = up + r * s;
    float *o = out + r * n;
    for (int64_t i = 0; i < n; i++) {
      float x = g[i];
      o[i] = 0.5f * x * (1.0f + tanhf(k0 * (x + 0.044715f * x * x * x))) * u[i];
    }
  }
}

int hr_cpu_exec_gelu_mul(hr_instance *inst, const int64_t *a) {
  (void)inst;
  if (a[HR_A_SILU_DTYPE] != HR_DTYPE_F32)
    return hr_fail(HR_E_UNSUPPORTED, "hr_op_gelu_tanh_mul: the CPU backend computes in float32 only (dtype %lld)",
                   (long long)a[HR_A_SILU_DTYPE]);
  int64_t rows = a[HR_A_SILU_ROWS];
  return hrt_parallel((rows + GELU_ROWS_PER_TASK - 1) / GELU_ROWS_PER_TASK, 0, gelu_task, (void *)a);
}
