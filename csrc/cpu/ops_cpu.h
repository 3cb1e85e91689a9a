/*
 * Internal: CPU op kernels shared between csrc/cpu/ops_*.c (and the C tests/benchmarks).
 * Kernels are chosen at run time by ISA: AVX-512F, AVX2+FMA, or portable C, so the
 * library runs on any x86-64 (and non-x86) machine; no global -march is used.
 */
#ifndef HR_CPU_OPS_H
#define HR_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#define HR_ISA_SCALAR 0
#define HR_ISA_AVX2 1
#define HR_ISA_AVX512 2

/* The ISA in use (detected once; HEADROOM_CPU_ISA=scalar|avx2|avx512 caps it). */
int hr_cpu_isa(void);
/* Test/bench hook: use at most `isa` (clamped to what the CPU supports); returns the ISA now in use. */
int hr_cpu_force_isa(int isa);
const char *hr_cpu_isa_name(int isa);

/* Vector helpers (fp32, ISA-dispatched). */
float hr_vdot(const float *a, const float *b, int64_t n);
void hr_vaxpy(float *y, float a, const float *x, int64_t n); /* y += a * x */
void hr_vscale(float *y, float a, int64_t n);                /* y *= a */
/* x[i] = exp(x[i] - sub); returns the sum of the results. */
float hr_vexp_sub_sum(float *x, float sub, int64_t n);
void hr_vsilu_mul(float *out, const float *gate, const float *up, int64_t n);

/* y[m, n] = x[row(m)] . w[n]^T (+ bias); rows may be NULL. Multi-threaded. */
int hr_cpu_matmul_f32(float *y, const float *x, const float *w, const float *bias, const int32_t *rows, int64_t m,
                      int64_t n, int64_t k);
/* The same with w of type wtype: HR_DTYPE_F32 or an HR_QTYPE_* (GGUF blocks, dequantized in cache). */
int hr_cpu_matmul(float *y, const float *x, const void *w, int64_t wtype, const float *bias, const int32_t *rows,
                  int64_t m, int64_t n, int64_t k);

#endif
