/*
 * The CPU backend's side of the decode-attention plan (core/attn_plan.h): the plan aims at
 * HR_DECODE_MAX_WORK CTAs per "wave", and the executor checks a planned op's plan against its
 * arguments and seq_lens before computing without split (ops_attention.c: its thread pool
 * takes sequences x KV heads, so a split buys nothing there). The check makes an engine that
 * forgets to plan, or replays a graph over a stale plan, fail loudly in the CPU suites too.
 */
#include "../core/attn_plan.h"
#include "../core/ops_dispatch.h"

int hr_cpu_exec_attn_decode(hr_instance *inst, const int64_t *a); /* ops_attention.c */

int hrb_attn_decode_ctas(struct hr_instance *inst, int64_t dtype, int64_t kv_dtype, int64_t head_dim,
                         int64_t *ctas_out) {
  (void)inst;
  (void)dtype;
  (void)kv_dtype;
  (void)head_dim;
  *ctas_out = HR_DECODE_MAX_WORK;
  return HR_OK;
}

int hr_cpu_exec_attn_decode_planned(hr_instance *inst, const int64_t *a) {
  if (a[HR_A_DEC_PLANNED]) {
    int st = hr_dplan_check("hr_op_attention_decode", HR_PTR(a, HR_A_DEC_WS, const int32_t),
                            HR_PTR(a, HR_A_DEC_SEQLENS, const int32_t), a[HR_A_DEC_B], a[HR_A_DEC_HQ], a[HR_A_DEC_HK],
                            a[HR_A_DEC_D], a[HR_A_DEC_BS], a[HR_A_DEC_MAXBLOCKS]);
    if (st != HR_OK) return st;
  }
  return hr_cpu_exec_attn_decode(inst, a);
}
