/*
 * CPU matmul entry: picks the kernel family by weight type.
 *   fp32 weights            matmul_f32.c  (fp32 FMA tiles)
 *   bf16 / f16 weights      matmul_16bit.c (weights stay 16-bit; fp32 activations and output)
 *   GGUF quantized weights  matmul_q8.c   (int8 activations, integer dot products);
 *                           HEADROOM_CPU_QMATMUL=dequant selects the older fp32-dequantizing
 *                           path (matmul_f32.c) instead, for comparisons.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/quant.h"
#include "../core/status.h"
#include "ops_cpu.h"

/* Read per quantized call (not cached), so a test can switch paths within one process; a
 * getenv costs ~0.1 us next to a quantized matmul's >= 10 us. */
static int use_dequant_path(void) {
  const char *e = getenv("HEADROOM_CPU_QMATMUL");
  return e && !strcmp(e, "dequant");
}

int hr_cpu_matmul(float *y, const float *x, const void *w, int64_t wtype, const float *bias, const int32_t *rows,
                  int64_t m, int64_t n, int64_t k) {
  if (wtype == HR_DTYPE_F32) return hr_cpu_matmul_f32(y, x, w, bias, rows, m, n, k);
  if (wtype == HR_DTYPE_BF16 || wtype == HR_DTYPE_F16) return hr_cpu_matmul_16(y, x, w, wtype, bias, rows, m, n, k);
  if (!hr_quant_lookup(wtype))
    return hr_fail(HR_E_UNSUPPORTED, "matmul: weight type %lld is not supported by the CPU backend", (long long)wtype);
  if (use_dequant_path()) return hr_cpu_matmul_dequant(y, x, w, wtype, bias, rows, m, n, k);
  return hr_cpu_matmul_q8(y, x, w, wtype, bias, rows, m, n, k);
}
