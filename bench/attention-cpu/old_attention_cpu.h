/* The pre-span-kernel CPU decode attention (fp32 cache), the baseline of bench_attention_cpu. */
#ifndef HR_BENCH_OLD_ATTENTION_CPU_H
#define HR_BENCH_OLD_ATTENTION_CPU_H
#include <stdint.h>
int old_attention_decode(float *out, const float *q, const float *kc, const float *vc, const int32_t *bt,
                         const int32_t *seq_lens, float *ws, int64_t b, int64_t hq, int64_t hk, int64_t d, int64_t bs,
                         int64_t maxb, int64_t part, float scale);
int old_attention_prefill(float *out, const float *q, const float *kc, const float *vc, const int32_t *bt,
                          const int32_t *seq_lens, const int32_t *qsl, int64_t b, int64_t hq, int64_t hk, int64_t d,
                          int64_t bs, int64_t maxb, float scale);
#endif
