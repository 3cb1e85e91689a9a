/*
 * The small-M quantized kernels (gemv_q8.h), compiled once per x86 ISA from gemv_q8_kern.h; the
 * AVX-512 variants take the 512-bit Q8_0 / Q4_K / Q5_K / Q6_K kernels of gemv_q8_k512.h.
 */
#include "gemv_q8.h"

#include <string.h>

#include "../core/quant.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define QG_ATTR __attribute__((target("avx2,fma,f16c")))
#define QG_SFX _avx2
#define QG_VNNI 0
#include "gemv_q8_kern.h"
#undef QG_ATTR
#undef QG_SFX
#undef QG_VNNI
#define QG_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define QG_SFX _bw
#define QG_VNNI 0
#include "gemv_q8_kern.h"
#include "gemv_q8_k512.h"
#undef QG_ATTR
#undef QG_SFX
#undef QG_VNNI
#define QG_ATTR __attribute__((target("avxvnni,avx2,fma,f16c")))
#define QG_SFX _avxvnni
#define QG_VNNI 2
#include "gemv_q8_kern.h"
#undef QG_ATTR
#undef QG_SFX
#undef QG_VNNI
#define QG_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define QG_SFX _vnni
#define QG_VNNI 1
#include "gemv_q8_kern.h"
#include "gemv_q8_k512.h"
#undef QG_ATTR
#undef QG_SFX
#undef QG_VNNI
#endif

static const int64_t TYPE_ORDER[8] = {HR_QTYPE_Q4_0, HR_QTYPE_Q4_1, HR_QTYPE_Q5_0, HR_QTYPE_Q5_1,
                                      HR_QTYPE_Q8_0, HR_QTYPE_Q4_K, HR_QTYPE_Q5_K, HR_QTYPE_Q6_K};

hr_gemv_fn hr_gemv_q8_lookup(int64_t qtype, int variant, int rows) {
  if (rows < 1 || rows > 4) return NULL;
  for (int t = 0; t < 8; t++) {
    if (TYPE_ORDER[t] != qtype) continue;
#if defined(__x86_64__) || defined(__i386__)
    switch (variant) {
      case HR_GEMV_AVX2: return table__avx2[t][rows - 1];
      case HR_GEMV_AVX512BW: return table512__bw[t][rows - 1];
      case HR_GEMV_AVXVNNI: return table__avxvnni[t][rows - 1];
      case HR_GEMV_AVX512VNNI: return table512__vnni[t][rows - 1];
      default: return NULL;
    }
#else
    (void)variant;
    return NULL;
#endif
  }
  return NULL;
}
