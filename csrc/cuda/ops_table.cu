// The CUDA backend's executor table for the ops seam (csrc/core/ops_dispatch.h). Core has
// validated shapes, pointers and dtypes; each executor queues its kernels on the instance's
// stream (csrc/cuda/instance.cu) and returns without waiting.
#include "cuda_common.cuh"

int hrc_exec_embedding(hr_instance *inst, const int64_t *a);
int hrc_exec_rms_norm(hr_instance *inst, const int64_t *a);
int hrc_exec_rope(hr_instance *inst, const int64_t *a);
int hrc_exec_matmul(hr_instance *inst, const int64_t *a);
int hrc_exec_silu_mul(hr_instance *inst, const int64_t *a);
int hrc_exec_kv_write(hr_instance *inst, const int64_t *a);
int hrc_exec_attn_decode(hr_instance *inst, const int64_t *a);
int hrc_exec_attn_prefill(hr_instance *inst, const int64_t *a);
int hrc_exec_sample(hr_instance *inst, const int64_t *a);
int hrc_exec_gelu_mul(hr_instance *inst, const int64_t *a);
int hrc_exec_scale(hr_instance *inst, const int64_t *a);
int hrc_exec_token_bitmask(hr_instance *inst, const int64_t *a);
int hrc_exec_logit_bias(hr_instance *inst, const int64_t *a);

extern "C" {

const hr_op_exec_fn hrb_op_executors[HR_OPK_COUNT] = {
    nullptr,                // HR_OPK_NONE
    hrc_exec_embedding,     // HR_OPK_EMBEDDING
    hrc_exec_rms_norm,      // HR_OPK_RMS_NORM
    hrc_exec_rope,          // HR_OPK_ROPE
    hrc_exec_matmul,        // HR_OPK_MATMUL (and logits)
    hrc_exec_silu_mul,      // HR_OPK_SILU_MUL
    hrc_exec_kv_write,      // HR_OPK_KV_WRITE
    hrc_exec_attn_decode,   // HR_OPK_ATTN_DECODE
    hrc_exec_attn_prefill,  // HR_OPK_ATTN_PREFILL
    hrc_exec_sample,        // HR_OPK_SAMPLE (and argmax)
    hrc_exec_gelu_mul,      // HR_OPK_GELU_MUL
    hrc_exec_scale,         // HR_OPK_SCALE (scale and softcap)
    hrc_exec_token_bitmask, // HR_OPK_TOKEN_BITMASK
    hrc_exec_logit_bias,    // HR_OPK_LOGIT_BIAS
};
static_assert(HR_OPK_COUNT == 14, "update the executor table when op kinds change");
static_assert(HR_OPK_ATTN_PREFILL == 8 && HR_OPK_EMBEDDING == 1 && HR_OPK_SAMPLE == 9,
              "table order follows enum hr_op_kind");

// CPU worker threads do not apply to the CUDA backend.
int hrb_ops_set_num_threads(int64_t n) {
  (void)n;
  return HR_OK;
}
int64_t hrb_ops_get_num_threads(void) { return 1; }
}
