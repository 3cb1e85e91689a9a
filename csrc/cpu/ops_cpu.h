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

/* Extensions on top of the base level (cpu_features.c); only those the base level allows
 * (AVX512* need HR_ISA_AVX512, all need at least HR_ISA_AVX2). HEADROOM_CPU_DISABLE caps them. */
#define HR_CPUX_AVX512BW 1   /* with AVX512VL */
#define HR_CPUX_AVX512VNNI 2 /* vpdpbusd on zmm */
#define HR_CPUX_AVXVNNI 4    /* vpdpbusd on ymm (VEX) */
#define HR_CPUX_AVX512BF16 8 /* vdpbf16ps */
#define HR_CPUX_F16C 16
#define HR_CPUX_ALL 31
int hr_cpu_features(void);
/* Test/bench hook: use only the extensions in mask (and supported); -1 = back to the default. */
int hr_cpu_force_features(int mask);

/* Vector helpers (fp32, ISA-dispatched). */
float hr_vdot(const float *a, const float *b, int64_t n);
void hr_vaxpy(float *y, float a, const float *x, int64_t n); /* y += a * x */
void hr_vscale(float *y, float a, int64_t n);                /* y *= a */
void hr_vsilu_mul(float *out, const float *gate, const float *up, int64_t n);
/* hr_kv_store_row (core/float_formats.h) vectorized, bit-identical to it (kv_store.c). */
void hr_cpu_kv_store_row(int64_t kv_dtype, void *dst, const float *src, int64_t n, float scale);

/* y[m, n] = x[row(m)] . w[n]^T (+ bias); rows may be NULL. Multi-threaded. */
int hr_cpu_matmul_f32(float *y, const float *x, const float *w, const float *bias, const int32_t *rows, int64_t m,
                      int64_t n, int64_t k);
/* The gate|up matmul and SwiGLU in one parallel region (fuse.c): y = x . w^T (+ bias) with
 * y = [gate | up] (n = 2 * half, half % 16 == 0, m <= hr_cpu_f32_nopack_max_m), and
 * act[m, half] = silu(gate) * up, bit-identical to hr_cpu_matmul_f32 then hr_vsilu_mul per row. */
int hr_cpu_matmul_f32_swiglu(float *y, float *act, const float *x, const float *w, const float *bias,
                             const int32_t *rows, int64_t m, int64_t n, int64_t k);
/* The same with w of type wtype: HR_DTYPE_F32, HR_DTYPE_BF16/F16 (16-bit weights, fp32 x and y) or an
 * HR_QTYPE_* (GGUF blocks: x quantized to int8 blocks, integer dot products; matmul_q8.c). */
int hr_cpu_matmul(float *y, const float *x, const void *w, int64_t wtype, const float *bias, const int32_t *rows,
                  int64_t m, int64_t n, int64_t k);
/* Quantized weights the old way: rows dequantized to fp32 in cache, then the fp32 kernel (the
 * reference the int8 path is benchmarked against; fp32 activations, so no activation rounding). */
int hr_cpu_matmul_dequant(float *y, const float *x, const void *w, int64_t wtype, const float *bias,
                          const int32_t *rows, int64_t m, int64_t n, int64_t k);
int hr_cpu_matmul_q8(float *y, const float *x, const void *w, int64_t wtype, const float *bias, const int32_t *rows,
                     int64_t m, int64_t n, int64_t k);
/* fp32 matmuls with M up to this read W in place (no panel copy); a tunable for the benchmark. */
extern int hr_cpu_f32_nopack_max_m;
/* Quantized matmuls with M up to this use the direct small-M kernels (gemv_q8.c); a tunable. */
extern int hr_cpu_q8_gemv_max_m;
/* Weight bytes per task of fp32 matmuls with M <= hr_cpu_f32_nopack_max_m (matmul_f32.c; 0 = ~4
 * tasks per thread, -1 = from HEADROOM_CPU_MM_TASK_KB on first use). Results do not depend on it. */
extern int64_t hr_cpu_mm_task_bytes;
/* Matmul + silu_mul pairs fused by graph replay so far (fuse.c; for tests). */
extern int64_t hr_cpu_fused_pairs;
/* The 16-bit weight kernel family for wtype ("avx512-bf16", "avx512", "avx2", "scalar"). */
const char *hr_cpu_16bit_path_name(int64_t wtype);
/* The int8 kernel family in use ("avx512-vnni", "avx2", ...), for tests and benchmarks. */
const char *hr_cpu_q8_path_name(void);
int hr_cpu_matmul_16(float *y, const float *x, const void *w, int64_t wtype, const float *bias, const int32_t *rows,
                     int64_t m, int64_t n, int64_t k);

#endif
