/*
 * CPU executor of hr_op_scale / hr_op_softcap (one kind): in place x = x * scale, or
 * x = cap * tanh(x * scale / cap) when cap > 0 (Gemma embedding scale, Gemma 2 final logit
 * soft-capping). fp32; chunks on the thread pool.
 */
#include <math.h>

#include "../core/ops_dispatch.h"
#include "../core/status.h"
#include "ops_cpu.h"
#include "threadpool.h"

#define SCALE_CHUNK 16384

static void scale_task(void *v, int64_t task, int thread, void *scratch) {
  (void)thread;
  (void)scratch;
  const int64_t *a = v;
  float *x = HR_PTR(a, HR_A_SCL_X, float);
  int64_t n = a[HR_A_SCL_N_ELEMS], i0 = task * SCALE_CHUNK, i1 = i0 + SCALE_CHUNK < n ? i0 + SCALE_CHUNK : n;
  float scale = (float)hr_bits_f64(a[HR_A_SCL_SCALE]), cap = (float)hr_bits_f64(a[HR_A_SCL_CAP]);
  if (cap > 0.0f)
    for (int64_t i = i0; i < i1; i++) x[i] = cap * tanhf(x[i] * scale / cap);
  else
    for (int64_t i = i0; i < i1; i++) x[i] *= scale;
}

int hr_cpu_exec_scale(hr_instance *inst, const int64_t *a) {
  (void)inst;
  if (a[HR_A_SCL_DTYPE] != HR_DTYPE_F32)
    return hr_fail(HR_E_UNSUPPORTED, "hr_op_scale/hr_op_softcap: the CPU backend computes in float32 only (dtype %lld)",
                   (long long)a[HR_A_SCL_DTYPE]);
  int64_t n = a[HR_A_SCL_N_ELEMS];
  return hrt_parallel((n + SCALE_CHUNK - 1) / SCALE_CHUNK, 0, scale_task, (void *)a);
}
