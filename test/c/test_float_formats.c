/*
 * KV cache float formats (csrc/core/float_formats.c) against an independent reference built
 * here from the formats' definitions, not from bit tricks:
 *   - decode: every one of the 2^16 (f16, bf16) / 2^8 (E4M3, E5M2) codes against
 *     (-1)^s * 2^(E - bias) * (1 + M / 2^m) (E = 0: 2^(1 - bias) * M / 2^m) computed in double
 *     with pow(), and the format's specials (inf, NaN; E4M3 has only S.1111.111 = NaN);
 *   - encode: the nearest finite value by binary search over the sorted decoded values, a tie
 *     to the code with an even mantissa, then the overflow rule (f16/bf16: a value that rounds
 *     past the max is inf; fp8: anything beyond the max, inf included, saturates to the max).
 *     Inputs: every code's value, every midpoint between neighbours and one f32 ulp either side
 *     (the rounding boundaries of every code), f32 subnormals, signed zeros, inf, NaN, and
 *     ~4M f32 bit patterns spread over the whole range;
 *   - fixed values from the OCP FP8 spec and IEEE 754 (max, min subnormal, NaN codes);
 *   - the CPU backend's vectorized row store (csrc/cpu/kv_store.c, what kv_write uses) on every
 *     ISA over all of the inputs above, rows of varying length (vector bodies and tails), with
 *     and without a scale: bit-identical to the scalar encoder just checked against the reference.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../csrc/core/float_formats.h"
#include "../../csrc/cpu/ops_cpu.h"
#include "check.h"

typedef struct {
  const char *name;
  int bits, ebits, mbits, bias;
  int ieee_specials;  /* E all ones = inf/NaN (f16, bf16, e5m2) */
  int saturate;       /* fp8: overflow -> max finite */
  double *val;        /* [2^bits] decoded (NaN for NaN codes) */
  double *pos;        /* sorted finite non-negative values */
  uint32_t *pos_code; /* their codes */
  int npos;
  double maxv;
} fmt_t;

static double spec_decode(const fmt_t *f, uint32_t c) {
  uint32_t s = c >> (f->bits - 1), E = (c >> f->mbits) & ((1u << f->ebits) - 1), M = c & ((1u << f->mbits) - 1);
  double sign = s ? -1.0 : 1.0;
  uint32_t Emax = (1u << f->ebits) - 1;
  if (f->ieee_specials && E == Emax) return M ? NAN : sign * INFINITY;
  if (!f->ieee_specials && E == Emax && M == (1u << f->mbits) - 1) return NAN; /* E4M3: only S.1111.111 */
  if (E == 0) return sign * pow(2.0, 1 - f->bias) * ((double)M / pow(2.0, f->mbits));
  return sign * pow(2.0, (double)E - f->bias) * (1.0 + (double)M / pow(2.0, f->mbits));
}

static void fmt_init(fmt_t *f) {
  uint32_t n = 1u << f->bits;
  f->val = malloc(sizeof(double) * n);
  f->pos = malloc(sizeof(double) * n);
  f->pos_code = malloc(sizeof(uint32_t) * n);
  f->npos = 0;
  for (uint32_t c = 0; c < n; c++) {
    f->val[c] = spec_decode(f, c);
    if (c >> (f->bits - 1)) continue; /* positive codes are already sorted by value */
    if (isfinite(f->val[c])) {
      f->pos[f->npos] = f->val[c];
      f->pos_code[f->npos++] = c;
    }
  }
  f->maxv = f->pos[f->npos - 1];
  for (int i = 1; i < f->npos; i++) CHECK(f->pos[i] > f->pos[i - 1], "%s codes not monotonic", f->name);
}

/* reference encoding of a double (exact for any f32 input) */
static uint32_t ref_encode(const fmt_t *f, double x) {
  uint32_t sign = signbit(x) ? 1u << (f->bits - 1) : 0;
  if (isnan(x)) return 0xffffffffu; /* any NaN code */
  double a = fabs(x);
  uint32_t maxc = f->pos_code[f->npos - 1];
  if (a > f->maxv) {
    if (f->saturate) return sign | maxc;
    /* IEEE: rounds to inf iff a >= max + half an ulp of max (the tie goes to inf: max is odd) */
    double ulp = f->maxv - f->pos[f->npos - 2];
    if (isinf(a) || a >= f->maxv + ulp / 2) return sign | ((((1u << f->ebits) - 1)) << f->mbits);
    return sign | maxc;
  }
  int lo = 0, hi = f->npos - 1; /* pos[lo] <= a <= pos[hi] */
  while (hi - lo > 1) {
    int mid = (lo + hi) / 2;
    if (f->pos[mid] <= a)
      lo = mid;
    else
      hi = mid;
  }
  double dl = a - f->pos[lo], dh = f->pos[hi] - a;
  uint32_t c;
  if (dl < dh)
    c = f->pos_code[lo];
  else if (dh < dl)
    c = f->pos_code[hi];
  else
    c = (f->pos_code[lo] & 1u) ? f->pos_code[hi] : f->pos_code[lo];
  return sign | c;
}

static uint32_t enc(const fmt_t *f, float x) {
  switch (f->bits == 8 ? f->mbits : f->mbits + 100) {
    case 3: return hr_f32_to_e4m3(x);
    case 2: return hr_f32_to_e5m2(x);
    case 110: return hr_f32_to_f16(x);
    default: return hr_f32_to_bf16(x);
  }
}
static float dec(const fmt_t *f, uint32_t c) {
  switch (f->bits == 8 ? f->mbits : f->mbits + 100) {
    case 3: return hr_e4m3_to_f32((uint8_t)c);
    case 2: return hr_e5m2_to_f32((uint8_t)c);
    case 110: return hr_f16_to_f32((uint16_t)c);
    default: return hr_bf16_to_f32((uint16_t)c);
  }
}

static float f32_of(uint32_t u) {
  float x;
  memcpy(&x, &u, 4);
  return x;
}
static uint32_t bits_of(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  return u;
}

static long long checked;
/* every input check_enc saw, for the vectorized row store */
static float *seen;
static size_t nseen, capseen;
static void check_enc(const fmt_t *f, float x) {
  uint32_t want = ref_encode(f, (double)x), got = enc(f, x);
  checked++;
  if (nseen == capseen) {
    capseen = capseen ? capseen * 2 : 1u << 20;
    seen = realloc(seen, capseen * sizeof *seen);
    CHECK(seen != NULL, "host allocation");
  }
  seen[nseen++] = x;
  if (want == 0xffffffffu) {
    CHECK(isnan(f->val[got]), "%s: NaN input %08x encoded as non-NaN code 0x%x", f->name, bits_of(x), got);
    CHECK((got >> (f->bits - 1)) == (uint32_t)(signbit(x) != 0), "%s: NaN sign lost", f->name);
    return;
  }
  if (got != want)
    failf(__FILE__, __LINE__, "%s: encode(%.10g = 0x%08x) = 0x%x (%.10g), reference 0x%x (%.10g)", f->name, (double)x,
          bits_of(x), got, f->val[got], want, f->val[want]);
}

static int64_t kv_dtype_of(const fmt_t *f) {
  switch (f->bits == 8 ? f->mbits : f->mbits + 100) {
    case 3: return HR_DTYPE_FP8_E4M3;
    case 2: return HR_DTYPE_FP8_E5M2;
    case 110: return HR_DTYPE_F16;
    default: return HR_DTYPE_BF16;
  }
}

/* hr_cpu_kv_store_row on every ISA over every input seen, in rows of 1..67 elements, scales 1,
 * 2.5 and 0.37: each code equal to the scalar encoder's of x / scale. */
static void check_rows(const fmt_t *f) {
  int64_t dt = kv_dtype_of(f), eb = f->bits / 8;
  uint8_t *out = malloc(nseen * (size_t)eb + 64);
  CHECK(out != NULL, "host allocation");
  static const float scales[] = {1.0f, 2.5f, 0.37f};
  int native = hr_cpu_isa();
  long long rows = 0;
  for (int isa = HR_ISA_SCALAR; isa <= native; isa++) {
    CHECK_EQ(hr_cpu_force_isa(isa), isa);
    for (size_t si = 0; si < sizeof scales / sizeof *scales; si++) {
      float sc = scales[si];
      uint64_t rng = 0x9e3779b97f4a7c15ull + (uint64_t)isa * 7 + si;
      for (size_t i = 0; i < nseen;) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        size_t n = 1 + (size_t)(rng % 67);
        if (n > nseen - i) n = nseen - i;
        hr_cpu_kv_store_row(dt, out + i * (size_t)eb, seen + i, (int64_t)n, sc);
        i += n;
        rows++;
      }
      for (size_t i = 0; i < nseen; i++) {
        uint32_t got = eb == 2 ? ((uint16_t *)out)[i] : out[i], want = enc(f, seen[i] / sc);
        if (got != want)
          failf(__FILE__, __LINE__, "%s row store (%s, scale %g): x = 0x%08x -> 0x%x, scalar 0x%x", f->name,
                hr_cpu_isa_name(isa), (double)sc, bits_of(seen[i]), got, want);
      }
    }
  }
  hr_cpu_force_isa(native);
  printf("ok   %s: vectorized row store == scalar on %zu inputs x 3 scales, %lld rows, ISAs up to %s\n", f->name, nseen,
         rows, hr_cpu_isa_name(native));
  free(out);
}

/* f32 KV with a scale: the division, vectorized, equals the scalar one bit for bit. */
static void test_f32_rows(void) {
  cur_test = "f32 row store with a scale";
  size_t n = 1u << 20;
  float *src = malloc(n * 4), *out = malloc(n * 4);
  CHECK(src && out, "host allocation");
  uint64_t rng = 0x243f6a8885a308d3ull;
  for (size_t i = 0; i < n; i++) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    src[i] = f32_of((uint32_t)rng);
  }
  int native = hr_cpu_isa();
  for (int isa = HR_ISA_SCALAR; isa <= native; isa++) {
    hr_cpu_force_isa(isa);
    for (size_t i = 0; i < n;) {
      size_t len = 1 + (i * 2654435761u) % 45;
      if (len > n - i) len = n - i;
      hr_cpu_kv_store_row(HR_DTYPE_F32, out + i, src + i, (int64_t)len, 0.37f);
      i += len;
    }
    for (size_t i = 0; i < n; i++) {
      float want = src[i] / 0.37f;
      CHECK(bits_of(out[i]) == bits_of(want), "%s: %08x / 0.37 -> %08x, want %08x", hr_cpu_isa_name(isa),
            bits_of(src[i]), bits_of(out[i]), bits_of(want));
    }
  }
  hr_cpu_force_isa(native);
  free(src);
  free(out);
  printf("ok   %s\n", cur_test);
}

static void test_format(fmt_t *f) {
  fmt_init(f);
  uint32_t n = 1u << f->bits;
  /* decode: every code */
  for (uint32_t c = 0; c < n; c++) {
    float got = dec(f, c);
    double want = f->val[c];
    if (isnan(want))
      CHECK(isnan(got), "%s: decode(0x%x) = %g, want NaN", f->name, c, (double)got);
    else
      CHECK((double)got == want && !!signbit(got) == !!signbit(want), "%s: decode(0x%x) = %.10g, want %.10g", f->name,
            c, (double)got, want);
  }
  /* encode: every value, every midpoint, +-1 ulp around each, both signs */
  for (int i = 0; i < f->npos; i++) {
    float v = (float)f->pos[i];
    CHECK((double)v == f->pos[i], "%s value not an f32", f->name);
    float pts[5] = {v, nextafterf(v, INFINITY), nextafterf(v, 0.0f), 0, 0};
    int np = 3;
    if (i + 1 < f->npos) {
      double mid = (f->pos[i] + f->pos[i + 1]) / 2;
      float m = (float)mid;
      CHECK((double)m == mid, "%s midpoint not an f32", f->name);
      pts[np++] = m;
      pts[np++] = nextafterf(m, INFINITY);
      check_enc(f, nextafterf(m, 0.0f));
    } else {
      double ulp = f->pos[i] - f->pos[i - 1];
      pts[np++] = (float)(f->pos[i] + ulp / 2);
      pts[np++] = (float)(f->pos[i] + ulp);
      check_enc(f, nextafterf((float)(f->pos[i] + ulp / 2), 0.0f));
      check_enc(f, nextafterf((float)(f->pos[i] + ulp / 2), INFINITY));
    }
    for (int k = 0; k < np; k++) {
      check_enc(f, pts[k]);
      check_enc(f, -pts[k]);
    }
    /* round trip of the code itself */
    CHECK(enc(f, v) == f->pos_code[i], "%s: encode(decode(0x%x)) != 0x%x", f->name, f->pos_code[i], f->pos_code[i]);
  }
  /* specials */
  static const uint32_t specials[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x80000001u, 0x007fffffu, 0x00800000u,
                                      0x7f7fffffu, 0xff7fffffu, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00000u,
                                      0x7f800001u, 0xffbfffffu, 0x7fa00000u, 0x3f800000u, 0xbf800000u};
  for (size_t i = 0; i < sizeof specials / sizeof *specials; i++) check_enc(f, f32_of(specials[i]));
  /* f32 bit patterns over the whole range: stride 2^10 with varying low bits */
  uint64_t rng = 0x243f6a8885a308d3ull;
  for (uint64_t u = 0; u < (1ull << 32); u += 1u << 10) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    check_enc(f, f32_of((uint32_t)u | (uint32_t)(rng & 0x3ffu)));
  }
  printf("ok   %s: %u codes decoded, %lld encodings vs the nearest-value reference\n", f->name, n, checked);
  checked = 0;
  check_rows(f);
  nseen = 0;
  free(f->val);
  free(f->pos);
  free(f->pos_code);
}

static void test_fixed_values(void) {
  cur_test = "fixed values (OCP FP8 spec, IEEE 754)";
  /* E4M3: max 448 = 0x7e, min normal 2^-6 = 0x08, min subnormal 2^-9 = 0x01, NaN 0x7f/0xff, no inf */
  CHECK_EQ(hr_f32_to_e4m3(448.0f), 0x7e);
  CHECK_EQ(hr_f32_to_e4m3(1e9f), 0x7e);
  CHECK_EQ(hr_f32_to_e4m3(-INFINITY), 0xfe);
  CHECK_EQ(hr_f32_to_e4m3(464.0f), 0x7e); /* tie between 448 and (non-existent) 480: even = 448 */
  CHECK_EQ(hr_f32_to_e4m3(0.015625f), 0x08);
  CHECK_EQ(hr_f32_to_e4m3(0.001953125f), 0x01);
  CHECK_EQ(hr_f32_to_e4m3(0.0009765625f), 0x00); /* half the min subnormal: tie to even 0 */
  CHECK_EQ(hr_f32_to_e4m3(0.0029296875f), 0x02); /* 1.5 min subnormals: tie to even 2 */
  CHECK_EQ(hr_f32_to_e4m3(-1.0f), 0xb8);
  CHECK(isnan(hr_e4m3_to_f32(0x7f)) && isnan(hr_e4m3_to_f32(0xff)), "e4m3 NaN");
  CHECK(hr_e4m3_to_f32(0x7e) == 448.0f && hr_e4m3_to_f32(0x01) == 0x1p-9f, "e4m3 max/min");
  /* E5M2: max 57344 = 0x7b, inf 0x7c, min subnormal 2^-16 */
  CHECK_EQ(hr_f32_to_e5m2(57344.0f), 0x7b);
  CHECK_EQ(hr_f32_to_e5m2(INFINITY), 0x7b);
  CHECK_EQ(hr_f32_to_e5m2(1e30f), 0x7b);
  CHECK_EQ(hr_f32_to_e5m2(0x1p-16f), 0x01);
  CHECK_EQ(hr_f32_to_e5m2(-2.0f), 0xc0);
  CHECK(isinf(hr_e5m2_to_f32(0x7c)) && isnan(hr_e5m2_to_f32(0x7e)), "e5m2 specials");
  /* f16: 65504 max, 65520 rounds to inf, 2^-24 min subnormal */
  CHECK_EQ(hr_f32_to_f16(65504.0f), 0x7bff);
  CHECK_EQ(hr_f32_to_f16(65519.996f), 0x7bff);
  CHECK_EQ(hr_f32_to_f16(65520.0f), 0x7c00);
  CHECK_EQ(hr_f32_to_f16(0x1p-24f), 0x0001);
  CHECK_EQ(hr_f32_to_f16(0x1p-25f), 0x0000);
  CHECK_EQ(hr_f32_to_f16(-0.0f), 0x8000);
  CHECK_EQ(hr_f32_to_f16(f32_of(0x7fc00000u)), 0x7e00);
  /* bf16: 1 + 2^-8 ties to 1 (even), 1 + 3*2^-8 to 1 + 2^-6 */
  CHECK_EQ(hr_f32_to_bf16(1.00390625f), 0x3f80);
  CHECK_EQ(hr_f32_to_bf16(1.01171875f), 0x3f82);
  CHECK_EQ(hr_f32_to_bf16(f32_of(0x7f7fffffu)), 0x7f80); /* f32 max rounds to inf */
  CHECK_EQ(hr_f32_to_bf16(f32_of(0xff800001u)) & 0xffc0, 0xffc0);
  CHECK_EQ(bits_of(hr_bf16_to_f32(0x3f80)), 0x3f800000u);
  /* row helpers with a scale: x / scale */
  float src[4] = {1.0f, -3.0f, 448.0f * 2.5f, 2000.0f};
  uint8_t q[4];
  hr_kv_store_row(HR_DTYPE_FP8_E4M3, q, src, 4, 2.5f);
  CHECK(q[0] == hr_f32_to_e4m3(0.4f) && q[1] == hr_f32_to_e4m3(-1.2f) && q[2] == 0x7e && q[3] == 0x7e, "scaled row");
  float back[4];
  hr_kv_load_row(HR_DTYPE_FP8_E4M3, back, q, 4);
  CHECK(back[2] == 448.0f && back[0] == hr_e4m3_to_f32(q[0]), "load row");
  CHECK_EQ(hr_kv_elem_bytes(HR_DTYPE_FP8_E5M2), 1);
  CHECK_EQ(hr_kv_elem_bytes(HR_DTYPE_BF16), 2);
  CHECK_EQ(hr_kv_elem_bytes(7), 0);
  printf("ok   %s\n", cur_test);
}

int main(void) {
  fmt_t fmts[] = {
      {"fp8 e4m3", 8, 4, 3, 7, 0, 1, 0, 0, 0, 0, 0},
      {"fp8 e5m2", 8, 5, 2, 15, 1, 1, 0, 0, 0, 0, 0},
      {"f16", 16, 5, 10, 15, 1, 0, 0, 0, 0, 0, 0},
      {"bf16", 16, 8, 7, 127, 1, 0, 0, 0, 0, 0, 0},
  };
  test_fixed_values();
  for (size_t i = 0; i < sizeof fmts / sizeof *fmts; i++) {
    cur_test = fmts[i].name;
    test_format(&fmts[i]);
  }
  test_f32_rows();
  free(seen);
  return 0;
}
