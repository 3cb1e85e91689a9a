/* Internal: overflow-checked size arithmetic (sizes from the ABI are caller-controlled, so
 * every product that sizes memory is checked instead of trusted). */
#ifndef HR_CHECKED_H
#define HR_CHECKED_H

#include <stdint.h>

/* *out = a * b; returns 1 if it overflowed uint64 (then *out is UINT64_MAX). */
static inline int hr_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
  if (__builtin_mul_overflow(a, b, out)) {
    *out = UINT64_MAX;
    return 1;
  }
  return 0;
}

/* *out = a * b * c for non-negative int64 factors; returns 1 on overflow of int64. */
static inline int hr_mul3_i64(int64_t a, int64_t b, int64_t c, int64_t *out) {
  int64_t ab;
  if (a < 0 || b < 0 || c < 0 || __builtin_mul_overflow(a, b, &ab) || __builtin_mul_overflow(ab, c, out)) {
    *out = INT64_MAX;
    return 1;
  }
  return 0;
}

/* *out = a + b; returns 1 if it overflowed uint64. */
static inline int hr_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
  if (__builtin_add_overflow(a, b, out)) {
    *out = UINT64_MAX;
    return 1;
  }
  return 0;
}

#endif
