/*
 * Run-time CPU feature detection for the CPU backend. The library is built without -march,
 * so every kernel is compiled for a target with __attribute__((target(...))) and chosen
 * here: a base level (scalar, AVX2+FMA, AVX-512F) used by every op, plus extensions the
 * matmul kernels use (AVX512-BW/VNNI/BF16, AVX-VNNI, F16C).
 *
 * Caps, so tests and benchmarks can exercise every path on one machine:
 *   HEADROOM_CPU_ISA=scalar|avx2|avx512      the base level at most (extensions follow it)
 *   HEADROOM_CPU_DISABLE=vnni,bf16,f16c,bw   extensions not to use (comma separated)
 *   hr_cpu_force_isa / hr_cpu_force_features the same from C.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ops_cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#define HR_X86 1
#endif

static atomic_int isa_cached = -1;
static atomic_int feat_cached = -1;
static atomic_int feat_allowed = -1; /* the mask hr_cpu_force_features set (-1 = env/all) */

static int detect_isa(void) {
#ifdef HR_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return HR_ISA_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return HR_ISA_AVX2;
#endif
  return HR_ISA_SCALAR;
}

#ifdef HR_X86
/* cpuid leaf 7 / subleaf 1 (AVX-VNNI, EAX bit 4): __builtin_cpu_supports has no name for it in GCC 12. */
static int has_avxvnni(void) {
  unsigned a, b, c, d;
  __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0), "c"(0));
  if (a < 7) return 0;
  __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(1));
  return (a >> 4) & 1;
}
#endif

static int detect_features(void) {
  int f = 0;
#ifdef HR_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) f |= HR_CPUX_AVX512BW;
  if ((f & HR_CPUX_AVX512BW) && __builtin_cpu_supports("avx512vnni")) f |= HR_CPUX_AVX512VNNI;
  if ((f & HR_CPUX_AVX512BW) && __builtin_cpu_supports("avx512bf16")) f |= HR_CPUX_AVX512BF16;
  if (has_avxvnni()) f |= HR_CPUX_AVXVNNI;
  /* F16C: the GCC 12 builtin knows no "f16c"; cpuid leaf 1 ECX bit 29 */
  {
    unsigned a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if ((c >> 29) & 1) f |= HR_CPUX_F16C;
  }
#endif
  return f;
}

static int env_isa_cap(void) {
  const char *e = getenv("HEADROOM_CPU_ISA");
  if (!e) return HR_ISA_AVX512;
  if (!strcmp(e, "scalar")) return HR_ISA_SCALAR;
  if (!strcmp(e, "avx2")) return HR_ISA_AVX2;
  return HR_ISA_AVX512;
}

static int env_feature_mask(void) {
  const char *e = getenv("HEADROOM_CPU_DISABLE");
  int m = HR_CPUX_ALL;
  if (!e) return m;
  if (strstr(e, "vnni")) m &= ~(HR_CPUX_AVX512VNNI | HR_CPUX_AVXVNNI);
  if (strstr(e, "bf16")) m &= ~HR_CPUX_AVX512BF16;
  if (strstr(e, "f16c")) m &= ~HR_CPUX_F16C;
  if (strstr(e, "bw")) m &= ~(HR_CPUX_AVX512BW | HR_CPUX_AVX512VNNI | HR_CPUX_AVX512BF16);
  return m;
}

/* Extensions only count on top of the base level they extend. */
static int features_for(int isa, int allowed) {
  int f = detect_features() & allowed;
  if (isa < HR_ISA_AVX512) f &= ~(HR_CPUX_AVX512BW | HR_CPUX_AVX512VNNI | HR_CPUX_AVX512BF16);
  if (isa < HR_ISA_AVX2) f = 0;
  return f;
}

int hr_cpu_isa(void) {
  int v = atomic_load_explicit(&isa_cached, memory_order_relaxed);
  if (v >= 0) return v;
  int d = detect_isa(), cap = env_isa_cap();
  v = d < cap ? d : cap;
  atomic_store(&isa_cached, v);
  return v;
}

int hr_cpu_features(void) {
  int f = atomic_load_explicit(&feat_cached, memory_order_relaxed);
  if (f >= 0) return f;
  int allowed = atomic_load(&feat_allowed);
  f = features_for(hr_cpu_isa(), allowed >= 0 ? allowed : env_feature_mask());
  atomic_store(&feat_cached, f);
  return f;
}

int hr_cpu_force_isa(int isa) {
  int d = detect_isa();
  int v = isa < d ? isa : d;
  if (v < 0) v = 0;
  atomic_store(&isa_cached, v);
  atomic_store(&feat_cached, -1); /* recomputed for the new level */
  return v;
}

int hr_cpu_force_features(int mask) {
  atomic_store(&feat_allowed, mask < 0 ? -1 : mask & HR_CPUX_ALL);
  atomic_store(&feat_cached, -1);
  return hr_cpu_features();
}

const char *hr_cpu_isa_name(int isa) {
  return isa == HR_ISA_AVX512 ? "avx512" : isa == HR_ISA_AVX2 ? "avx2" : "scalar";
}
