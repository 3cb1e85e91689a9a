/*
 * Internal: the inner loop of CPU paged attention (decode and prefill alike): the query heads of
 * one KV group against a span of keys of one sequence, as an online-softmax update of a running
 * state. Keys are taken in chunks of 16: one pass over the chunk's K rows computes every head's
 * scores (each K row converted from its stored dtype once per head pair, dots of 4 keys at a
 * time to hide FMA latency), the chunk's max and exps are taken as one vector per head, then
 * one pass over the V rows accumulates the weighted values with the accumulators in registers
 * (loaded and stored once per chunk, not once per key). K/V are read in their stored dtype:
 * f32, f16 (F16C), bf16 (shift), fp8 E5M2 (top byte of an f16), fp8 E4M3 (exact as an f16 of
 * 1/256 the value, NaN restored). AVX-512 or AVX2 kernels for head_dim 64 and 128 (unrolled)
 * and any multiple of the vector width; a scalar kernel for everything else.
 */
#ifndef HR_CPU_ATTN_SPAN_H
#define HR_CPU_ATTN_SPAN_H

#include <stdint.h>

typedef struct {
  const float *q;         /* [nh][d] query vectors of the group's heads */
  float *m, *l, *acc;     /* state per head: running max, exp-sum, unnormalized output [nh][d] */
  int64_t nh, d;          /* heads in the group (<= 256), head_dim */
  const uint8_t *kc, *vc; /* cache bases */
  const int32_t *bt;      /* the sequence's block table */
  int64_t bs;             /* block size (tokens) */
  int64_t row_bytes;      /* bytes of one token's row (num_kv_heads * d * element size) */
  int64_t head_bytes;     /* byte offset of this KV head in a row */
  int64_t head_row_bytes; /* bytes of one head's K (or V) of one token: d * element size */
  float qk_scale;         /* score = softcap(qk_scale * q.k) (k as stored, times the kernel's unit) */
  float softcap;          /* 0 = off */
} hr_attn_span;

/* Updates the state with keys t0 .. t1-1 (t0 < t1). */
typedef void (*hr_attn_span_fn)(const hr_attn_span *s, int64_t t0, int64_t t1);

typedef struct {
  hr_attn_span_fn fn;
  /* The kernel reads K and V as value / unit (E4M3 via f16: unit 256): scores need qk_scale
   * times unit, and the accumulated output is in units of 1/unit. */
  float unit;
  const char *name; /* "avx512 f16 d128" (benchmarks, tests) */
} hr_attn_kernel;

/* The kernel for this ISA (hr_cpu_isa()), KV dtype (HR_DTYPE_*) and head_dim. */
hr_attn_kernel hr_attn_pick(int64_t kv_dtype, int64_t d);
/* The portable scalar kernel (tests compare it with the SIMD ones). */
hr_attn_kernel hr_attn_pick_scalar(int64_t kv_dtype);

#endif
