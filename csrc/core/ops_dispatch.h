/*
 * Internal: the op seam between the public hr_op_* calls (validation, in core) and the
 * backend executors (csrc/cpu/ops_*.c, csrc/cuda/...).
 *
 * Every public op validates its arguments, packs them into a fixed int64_t record laid out
 * by the HR_A_* indices below (pointers as uint64 bit patterns, doubles via hr_f64_bits)
 * and calls hr_ops_submit(inst, kind, args). Today the dispatcher executes immediately
 * through the backend's table; graph capture (CPU op lists) will copy the record
 * (hr_op_nargs[kind] values) instead and replay it later through the same table, so an
 * executor must depend on nothing but (inst, args).
 */
#ifndef HR_OPS_DISPATCH_H
#define HR_OPS_DISPATCH_H

#include <stdint.h>
#include <string.h>

#include "../include/headroom.h"
#include "device.h"
#include "status.h"

enum hr_op_kind {
  HR_OPK_NONE = 0,
  HR_OPK_EMBEDDING,
  HR_OPK_RMS_NORM,
  HR_OPK_ROPE,
  HR_OPK_MATMUL, /* also hr_op_logits (row_ids != 0) */
  HR_OPK_SILU_MUL,
  HR_OPK_KV_WRITE,
  HR_OPK_ATTN_DECODE,
  HR_OPK_ATTN_PREFILL,
  HR_OPK_SAMPLE,        /* hr_op_sample, and hr_op_argmax (temperature == 0: every row greedy) */
  HR_OPK_GELU_MUL,      /* hr_op_gelu_tanh_mul: args as silu_mul (HR_A_SILU_*) */
  HR_OPK_SCALE,         /* hr_op_scale and hr_op_softcap */
  HR_OPK_TOKEN_BITMASK, /* hr_op_apply_token_bitmask (structured outputs) */
  HR_OPK_LOGIT_BIAS,    /* hr_op_add_logit_bias (sparse bias entries, device sampling) */
  HR_OPK_COUNT
};

#define HR_OP_MAX_ARGS 28

/*
 * Copy-engine ops (offload, csrc/core/copy_engine.c): a separate range so backend executor
 * tables (sized HR_OPK_COUNT) stay as they are; their executors are backend-independent and
 * found through hr_ops_executor(). A graph recorder should store (kind, hr_op_nargs_of(kind)
 * values) and replay through hr_ops_executor(kind) so these are recorded too.
 */
enum hr_copy_op_kind {
  HR_OPK_COPY_FIRST = 64,
  HR_OPK_COPY_BEGIN = HR_OPK_COPY_FIRST, /* args: engine */
  HR_OPK_COPY_ASYNC,                     /* args: engine, slot, dst, src_host, bytes, after_release */
  HR_OPK_COPY_WAIT,                      /* args: engine, slot */
  HR_OPK_COPY_RELEASE,                   /* args: engine, slot */
  HR_OPK_COPY_END
};
enum { HR_A_CP_ENGINE, HR_A_CP_SLOT, HR_A_CP_DST, HR_A_CP_SRC, HR_A_CP_BYTES, HR_A_CP_AFTER_RELEASE, HR_A_CP_N };
static inline int hr_op_is_copy(int kind) { return kind >= HR_OPK_COPY_FIRST && kind < HR_OPK_COPY_END; }

/* ---- argument records (indices into int64_t args[]) ---- */
enum {
  HR_A_EMB_DTYPE,
  HR_A_EMB_OUT,
  HR_A_EMB_TABLE,
  HR_A_EMB_IDS,
  HR_A_EMB_T,
  HR_A_EMB_ROWS,
  HR_A_EMB_DIM,
  HR_A_EMB_WTYPE, /* table type: the dtype or an HR_QTYPE_* */
  HR_A_EMB_N
};
enum {
  HR_A_RMS_DTYPE,
  HR_A_RMS_OUT,
  HR_A_RMS_X,
  HR_A_RMS_RES,
  HR_A_RMS_W,
  HR_A_RMS_ROWS,
  HR_A_RMS_DIM,
  HR_A_RMS_EPS,
  HR_A_RMS_GROUP,   /* rows per group (hr_op_rms_norm: all rows, one group) */
  HR_A_RMS_GSTRIDE, /* elements between groups; row r starts at (r / group) * gstride + (r % group) * dim */
  HR_A_RMS_N
};
enum {
  HR_A_ROPE_DTYPE,
  HR_A_ROPE_Q,
  HR_A_ROPE_K,
  HR_A_ROPE_POS,
  HR_A_ROPE_INVF,
  HR_A_ROPE_T,
  HR_A_ROPE_HQ,
  HR_A_ROPE_HK,
  HR_A_ROPE_D,
  HR_A_ROPE_ROT,
  HR_A_ROPE_LAYOUT,
  HR_A_ROPE_QSTRIDE,
  HR_A_ROPE_KSTRIDE,
  HR_A_ROPE_N
};
/* matmul: y[m, n] = x[row(m), :] . w[n, :] (+ bias); row(m) = rows ? rows[m] : m */
enum {
  HR_A_MM_DTYPE,
  HR_A_MM_Y,
  HR_A_MM_X,
  HR_A_MM_W,
  HR_A_MM_BIAS,
  HR_A_MM_M,
  HR_A_MM_N,
  HR_A_MM_K,
  HR_A_MM_ROWS,  /* int32 row ids or 0 */
  HR_A_MM_XROWS, /* rows of x (bound for row ids) */
  HR_A_MM_WTYPE, /* weight type: the dtype or an HR_QTYPE_* */
  HR_A_MM_WS,    /* quantized weights: dequantization workspace (hr_op_matmul_q_ws) or 0 */
  HR_A_MM_WSBYTES,
  HR_A_MM_N_
};
enum {
  HR_A_SILU_DTYPE,
  HR_A_SILU_OUT,
  HR_A_SILU_GATE,
  HR_A_SILU_UP,
  HR_A_SILU_ROWS,
  HR_A_SILU_I,
  HR_A_SILU_STRIDE,
  HR_A_SILU_N
};
enum {
  HR_A_KVW_DTYPE,
  HR_A_KVW_KC,
  HR_A_KVW_VC,
  HR_A_KVW_K,
  HR_A_KVW_V,
  HR_A_KVW_SLOTS,
  HR_A_KVW_T,
  HR_A_KVW_HK,
  HR_A_KVW_D,
  HR_A_KVW_NBLOCKS,
  HR_A_KVW_BS,
  HR_A_KVW_STRIDE,
  HR_A_KVW_KVDTYPE, /* cache element type (headroom.h "KV cache dtype") */
  HR_A_KVW_KSCALE,  /* f64 bits */
  HR_A_KVW_VSCALE,  /* f64 bits */
  HR_A_KVW_N
};
enum {
  HR_A_DEC_DTYPE,
  HR_A_DEC_OUT,
  HR_A_DEC_Q,
  HR_A_DEC_KC,
  HR_A_DEC_VC,
  HR_A_DEC_BT,
  HR_A_DEC_SEQLENS,
  HR_A_DEC_WS,
  HR_A_DEC_WSBYTES,
  HR_A_DEC_B,
  HR_A_DEC_HQ,
  HR_A_DEC_HK,
  HR_A_DEC_D,
  HR_A_DEC_NBLOCKS,
  HR_A_DEC_BS,
  HR_A_DEC_MAXBLOCKS,
  HR_A_DEC_PART,
  HR_A_DEC_SCALE,
  HR_A_DEC_QSTRIDE,
  HR_A_DEC_WINDOW,
  HR_A_DEC_SOFTCAP,
  HR_A_DEC_KVDTYPE,
  HR_A_DEC_KSCALE,
  HR_A_DEC_VSCALE,
  HR_A_DEC_PLANNED, /* 1: partitions from the plan at the head of the workspace (core/attn_plan.h);
                       HR_A_DEC_PART is then the whole context (backends that ignore the plan) */
  HR_A_DEC_N
};
enum {
  HR_A_PRE_DTYPE,
  HR_A_PRE_OUT,
  HR_A_PRE_Q,
  HR_A_PRE_KC,
  HR_A_PRE_VC,
  HR_A_PRE_BT,
  HR_A_PRE_SEQLENS,
  HR_A_PRE_QSL,
  HR_A_PRE_B,
  HR_A_PRE_T,
  HR_A_PRE_HQ,
  HR_A_PRE_HK,
  HR_A_PRE_D,
  HR_A_PRE_NBLOCKS,
  HR_A_PRE_BS,
  HR_A_PRE_MAXBLOCKS,
  HR_A_PRE_SCALE,
  HR_A_PRE_QSTRIDE,
  HR_A_PRE_WINDOW,
  HR_A_PRE_SOFTCAP,
  HR_A_PRE_KVDTYPE,
  HR_A_PRE_KSCALE,
  HR_A_PRE_VSCALE,
  HR_A_PRE_N
};
/* scale: x = softcap > 0 ? softcap * tanh(x * scale / softcap) : x * scale (in place) */
enum { HR_A_SCL_DTYPE, HR_A_SCL_X, HR_A_SCL_N_ELEMS, HR_A_SCL_SCALE, HR_A_SCL_CAP, HR_A_SCL_N };
/* sample: temperature/top_k/top_p/uniform are device arrays [rows]; temperature 0 = argmax */
enum {
  HR_A_SMP_OUT,
  HR_A_SMP_LOGITS,
  HR_A_SMP_TEMP,
  HR_A_SMP_TOPK,
  HR_A_SMP_TOPP,
  HR_A_SMP_U,
  HR_A_SMP_ROWS,
  HR_A_SMP_V,
  HR_A_SMP_N
};

/* token bitmask: logits [logits_rows, vocab] f32; bitmask int32 [rows, ceil(vocab/32)]; row_indices int32 [rows] or 0 */
enum { HR_A_TBM_LOGITS, HR_A_TBM_LROWS, HR_A_TBM_MASK, HR_A_TBM_IDX, HR_A_TBM_ROWS, HR_A_TBM_V, HR_A_TBM_N };

/* logit bias: logits [logits_rows, vocab] f32; entries hr_logit_bias_entry [n] */
enum { HR_A_LB_LOGITS, HR_A_LB_LROWS, HR_A_LB_ENTRIES, HR_A_LB_N_ENTRIES, HR_A_LB_V, HR_A_LB_N };

/* Number of meaningful values in each kind's record (for copying into an op list). */
extern const int hr_op_nargs[HR_OPK_COUNT];
const char *hr_op_kind_name(int kind);

typedef int (*hr_op_exec_fn)(hr_instance *inst, const int64_t *args);

/*
 * Provided by the linked backend: one executor per kind (NULL = HR_E_UNSUPPORTED).
 * Executors set hr_fail messages themselves and may assume core validation passed
 * (shapes positive, pointers non-null where required, divisibility, dtype in range).
 */
extern const hr_op_exec_fn hrb_op_executors[HR_OPK_COUNT];
/* Backend thread control behind hr_set_num_threads / hr_get_num_threads. */
int hrb_ops_set_num_threads(int64_t n);
int64_t hrb_ops_get_num_threads(void);

/* The executor of any kind (compute kinds: the backend table; copy kinds: core), NULL if none. */
hr_op_exec_fn hr_ops_executor(int kind);
/* Number of meaningful args of any kind (hr_op_nargs for compute kinds, HR_A_CP_N for copy kinds). */
int hr_op_nargs_of(int kind);

/* Runs (today) or records (during capture, later) one op. */
int hr_ops_submit(hr_instance *inst, int kind, const int64_t *args);

/* Workspace bytes for split-K decode attention; 0 when a single partition always suffices. */
uint64_t hr_attn_decode_workspace(int64_t num_seqs, int64_t num_q_heads, int64_t head_dim, int64_t max_blocks_per_seq,
                                  int64_t block_size, int64_t partition_size);
/* Effective partition size in tokens (partition_size 0 = the whole max context). */
static inline int64_t hr_attn_partition_tokens(int64_t max_blocks_per_seq, int64_t block_size, int64_t partition_size) {
  return partition_size > 0 ? partition_size : max_blocks_per_seq * block_size;
}

/* Element offset of row r of an rms_norm record (grouped rows, HR_A_RMS_GROUP / HR_A_RMS_GSTRIDE). */
static inline int64_t hr_rms_row_offset(const int64_t *a, int64_t r) {
  const int64_t g = a[HR_A_RMS_GROUP];
  return (r / g) * a[HR_A_RMS_GSTRIDE] + (r % g) * a[HR_A_RMS_DIM];
}

static inline int64_t hr_f64_bits(double d) {
  int64_t v;
  memcpy(&v, &d, sizeof v);
  return v;
}
static inline double hr_bits_f64(int64_t v) {
  double d;
  memcpy(&d, &v, sizeof d);
  return d;
}
#define HR_PTR(args, i, type) ((type *)(uintptr_t)(uint64_t)(args)[i])

/* Every record fits the fixed argument array (graph capture copies HR_OP_MAX_ARGS values). */
#ifdef __cplusplus
#define HR_ARGS_FIT(n) static_assert((n) <= HR_OP_MAX_ARGS, #n " exceeds HR_OP_MAX_ARGS")
#else
#define HR_ARGS_FIT(n) _Static_assert((n) <= HR_OP_MAX_ARGS, #n " exceeds HR_OP_MAX_ARGS")
#endif
HR_ARGS_FIT(HR_A_DEC_N);
HR_ARGS_FIT(HR_A_PRE_N);
HR_ARGS_FIT(HR_A_KVW_N);
HR_ARGS_FIT(HR_A_MM_N_);
HR_ARGS_FIT(HR_A_LB_N);

/* Backends that store the KV cache in the activations' dtype only: HR_E_UNSUPPORTED otherwise. */
static inline int hr_need_kv_dtype_eq(const char *call, int64_t dtype, int64_t kv_dtype) {
  if (kv_dtype != dtype)
    return hr_fail(HR_E_UNSUPPORTED, "%s: kv_dtype %lld with dtype %lld is not supported by this backend yet", call,
                   (long long)kv_dtype, (long long)dtype);
  return HR_OK;
}

#endif
