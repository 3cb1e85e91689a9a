/*
 * The CPU backend's executor table for the ops seam (csrc/core/ops_dispatch.h), kept apart
 * from the kernels like csrc/cuda/ops_table.cu: adding an op is one line here plus its file.
 * Core has validated shapes, pointers and dtypes; executors run synchronously.
 */
#include "../core/ops_dispatch.h"
#include "threadpool.h"

int hr_cpu_exec_embedding(hr_instance *inst, const int64_t *a);           /* ops_basic.c */
int hr_cpu_exec_rms_norm(hr_instance *inst, const int64_t *a);            /* ops_basic.c */
int hr_cpu_exec_rope(hr_instance *inst, const int64_t *a);                /* ops_basic.c */
int hr_cpu_exec_matmul(hr_instance *inst, const int64_t *a);              /* ops_basic.c */
int hr_cpu_exec_silu_mul(hr_instance *inst, const int64_t *a);            /* ops_basic.c */
int hr_cpu_exec_kv_write(hr_instance *inst, const int64_t *a);            /* ops_basic.c */
int hr_cpu_exec_attn_decode_planned(hr_instance *inst, const int64_t *a); /* attn_plan.c */
int hr_cpu_exec_attn_prefill(hr_instance *inst, const int64_t *a);        /* ops_attention.c */
int hr_cpu_exec_sample(hr_instance *inst, const int64_t *a);              /* ops_sample.c */
int hr_cpu_exec_gelu_mul(hr_instance *inst, const int64_t *a);            /* ops_basic.c */
int hr_cpu_exec_scale(hr_instance *inst, const int64_t *a);               /* ops_scale.c (scale, softcap) */
int hr_cpu_exec_token_bitmask(hr_instance *inst, const int64_t *a);       /* ops_bitmask.c */
int hr_cpu_exec_logit_bias(hr_instance *inst, const int64_t *a);          /* ops_logit_bias.c */

const hr_op_exec_fn hrb_op_executors[HR_OPK_COUNT] = {
    [HR_OPK_EMBEDDING] = hr_cpu_exec_embedding,
    [HR_OPK_RMS_NORM] = hr_cpu_exec_rms_norm,
    [HR_OPK_ROPE] = hr_cpu_exec_rope,
    [HR_OPK_MATMUL] = hr_cpu_exec_matmul,
    [HR_OPK_SILU_MUL] = hr_cpu_exec_silu_mul,
    [HR_OPK_KV_WRITE] = hr_cpu_exec_kv_write,
    [HR_OPK_ATTN_DECODE] = hr_cpu_exec_attn_decode_planned,
    [HR_OPK_ATTN_PREFILL] = hr_cpu_exec_attn_prefill,
    [HR_OPK_SAMPLE] = hr_cpu_exec_sample,
    [HR_OPK_GELU_MUL] = hr_cpu_exec_gelu_mul,
    [HR_OPK_SCALE] = hr_cpu_exec_scale,
    [HR_OPK_TOKEN_BITMASK] = hr_cpu_exec_token_bitmask,
    [HR_OPK_LOGIT_BIAS] = hr_cpu_exec_logit_bias,
};
_Static_assert(HR_OPK_COUNT == 14, "add the new op kind's executor to this table");

int hrb_ops_set_num_threads(int64_t n) { return hrt_set_num_threads(n); }
int64_t hrb_ops_get_num_threads(void) { return hrt_num_threads(); }
