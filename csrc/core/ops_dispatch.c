/*
 * Public hr_op_* calls: backend-independent validation, packing into an args record and
 * one dispatcher (hr_ops_submit) that executes through the backend's executor table.
 * Graph capture will make hr_ops_submit record (kind, args) instead; nothing else here
 * needs to change for that.
 */
#include "ops_dispatch.h"

#include <math.h>
#include <stdio.h>

#include "checked.h"
#include "graph.h"
#include "quant.h"
#include "sample_rule.h"
#include "status.h"

const int hr_op_nargs[HR_OPK_COUNT] = {
    [HR_OPK_NONE] = 0,
    [HR_OPK_EMBEDDING] = HR_A_EMB_N,
    [HR_OPK_RMS_NORM] = HR_A_RMS_N,
    [HR_OPK_ROPE] = HR_A_ROPE_N,
    [HR_OPK_MATMUL] = HR_A_MM_N_,
    [HR_OPK_SILU_MUL] = HR_A_SILU_N,
    [HR_OPK_KV_WRITE] = HR_A_KVW_N,
    [HR_OPK_ATTN_DECODE] = HR_A_DEC_N,
    [HR_OPK_ATTN_PREFILL] = HR_A_PRE_N,
    [HR_OPK_SAMPLE] = HR_A_SMP_N,
    [HR_OPK_GELU_MUL] = HR_A_SILU_N,
    [HR_OPK_SCALE] = HR_A_SCL_N,
    [HR_OPK_TOKEN_BITMASK] = HR_A_TBM_N,
    [HR_OPK_LOGIT_BIAS] = HR_A_LB_N,
};

const char *hr_op_kind_name(int kind) {
  static const char *names[HR_OPK_COUNT] = {"none",
                                            "embedding",
                                            "rms_norm",
                                            "rope",
                                            "matmul",
                                            "silu_mul",
                                            "kv_write",
                                            "attention_decode",
                                            "attention_prefill",
                                            "sample",
                                            "gelu_tanh_mul",
                                            "scale",
                                            "apply_token_bitmask",
                                            "add_logit_bias"};
  static const char *copy_names[HR_OPK_COPY_END - HR_OPK_COPY_FIRST] = {"copy_begin", "copy_async", "copy_wait",
                                                                        "copy_release"};
  if (hr_op_is_copy(kind)) return copy_names[kind - HR_OPK_COPY_FIRST];
  return (kind >= 0 && kind < HR_OPK_COUNT) ? names[kind] : "unknown";
}

hr_op_exec_fn hr_copy_op_executor(int kind); /* copy_engine.c */

hr_op_exec_fn hr_ops_executor(int kind) {
  if (hr_op_is_copy(kind)) return hr_copy_op_executor(kind);
  if (kind <= HR_OPK_NONE || kind >= HR_OPK_COUNT) return NULL;
  return hrb_op_executors[kind];
}

int hr_op_nargs_of(int kind) {
  if (hr_op_is_copy(kind)) return HR_A_CP_N;
  return (kind > HR_OPK_NONE && kind < HR_OPK_COUNT) ? hr_op_nargs[kind] : 0;
}

int hr_ops_submit(hr_instance *inst, int kind, const int64_t *args) {
  if (!hr_op_is_copy(kind) && (kind <= HR_OPK_NONE || kind >= HR_OPK_COUNT))
    return hr_fail(HR_E_INVALID, "hr_ops_submit: unknown op kind %d", kind);
  hr_op_exec_fn fn = hr_ops_executor(kind);
  if (!fn)
    return hr_fail(HR_E_UNSUPPORTED, "hr_op_%s: not implemented by the %s backend", hr_op_kind_name(kind),
                   hr_backend_name());
  if (inst->graph_capture) { /* graph capture (core/graph.c): CPU records the op instead of running it */
    int recorded = 0;
    int st = hr_graph_submit(inst, kind, args, &recorded);
    if (st != HR_OK || recorded) return st;
  }
  return fn(inst, args);
}

/* ---- validation helpers: each returns HR_OK or an hr_fail status ---- */

#define BEGIN(call)                               \
  static const char *const CALL = call;           \
  hr_clear_error();                               \
  hr_instance *inst = hr_instance_get(dev, CALL); \
  if (!inst) return HR_E_INVALID;                 \
  int st_ = HR_OK;                                \
  (void)st_

#define TRY(expr)                 \
  do {                            \
    st_ = (expr);                 \
    if (st_ != HR_OK) return st_; \
  } while (0)

static int need_ptr(const char *call, const char *name, uint64_t p) {
  if (p == 0) return hr_fail(HR_E_INVALID, "%s: %s must not be 0 (NULL device pointer)", call, name);
  return HR_OK;
}

static int need_stride(const char *call, const char *name, int64_t stride, int64_t min) {
  if (stride != 0 && stride < min)
    return hr_fail(HR_E_INVALID, "%s: %s must be 0 (dense) or >= %lld (got %lld)", call, name, (long long)min,
                   (long long)stride);
  if (stride < 0) return hr_fail(HR_E_INVALID, "%s: %s must be >= 0 (got %lld)", call, name, (long long)stride);
  return HR_OK;
}

static int need_dtype(const char *call, int64_t dtype) {
  if (dtype != HR_DTYPE_F32 && dtype != HR_DTYPE_F16 && dtype != HR_DTYPE_BF16)
    return hr_fail(HR_E_INVALID, "%s: unknown dtype %lld (0 = f32, 1 = f16, 2 = bf16)", call, (long long)dtype);
  return HR_OK;
}

/* The KV cache's element type and its per-layer dequantization scales (headroom.h "KV cache dtype"). */
static int need_kv_dtype(const char *call, int64_t kv_dtype, double k_scale, double v_scale) {
  if (kv_dtype < HR_DTYPE_F32 || kv_dtype > HR_DTYPE_FP8_E5M2)
    return hr_fail(HR_E_INVALID, "%s: unknown kv_dtype %lld (0 = f32, 1 = f16, 2 = bf16, 3 = fp8_e4m3, 4 = fp8_e5m2)",
                   call, (long long)kv_dtype);
  if (!(k_scale > 0.0) || !(v_scale > 0.0) || k_scale > 1e30 || v_scale > 1e30)
    return hr_fail(HR_E_INVALID, "%s: k_scale and v_scale must be finite and > 0 (got %g, %g)", call, k_scale, v_scale);
  return HR_OK;
}

/* Sizes beyond 2^40 elements per dimension are surely a bug (and keep products in range). */
#define HR_DIM_MAX (1LL << 40)
static int need_dim(const char *call, const char *name, int64_t v) {
  if (v <= 0 || v > HR_DIM_MAX)
    return hr_fail(HR_E_INVALID, "%s: %s must be in 1..2^40 (got %lld)", call, name, (long long)v);
  return HR_OK;
}

static int need_heads(const char *call, int64_t hq, int64_t hk) {
  int st = need_dim(call, "num_q_heads", hq);
  if (st == HR_OK) st = need_dim(call, "num_kv_heads", hk);
  if (st == HR_OK && hq % hk != 0)
    return hr_fail(HR_E_INVALID, "%s: num_q_heads (%lld) must be a multiple of num_kv_heads (%lld)", call,
                   (long long)hq, (long long)hk);
  return st;
}

/* Largest element count of one tensor (2^46: beyond any device, and products stay exact). */
#define HR_ELEMS_MAX (1LL << 46)
static int need_product(const char *call, int64_t a, int64_t b, int64_t c) {
  int64_t p = 0;
  if (hr_mul3_i64(a, b, c, &p) || p > HR_ELEMS_MAX)
    return hr_fail(HR_E_INVALID, "%s: tensor of %lld x %lld x %lld elements is too large (max 2^46)", call,
                   (long long)a, (long long)b, (long long)c);
  return HR_OK;
}

/* ---- threads ---- */

int hr_set_num_threads(uint64_t dev, int64_t n) {
  BEGIN("hr_set_num_threads");
  if (n > 4096) return hr_fail(HR_E_INVALID, "%s: n must be <= 4096 (got %lld)", CALL, (long long)n);
  return hrb_ops_set_num_threads(n);
}

int hr_get_num_threads(uint64_t dev, int64_t *n_out) {
  BEGIN("hr_get_num_threads");
  HR_CHECK_PTR(n_out, "hr_get_num_threads");
  *n_out = hrb_ops_get_num_threads();
  return HR_OK;
}

/* ---- ops ---- */

/* wtype is the op's dtype (plain weights), a quantized type whose block size divides k, or
 * 16-bit (bf16/f16) weights under fp32 activations (backends without it say HR_E_UNSUPPORTED). */
static int need_wtype(const char *call, int64_t dtype, int64_t wtype, int64_t k) {
  if (wtype == dtype) return HR_OK;
  if (dtype == HR_DTYPE_F32 && (wtype == HR_DTYPE_BF16 || wtype == HR_DTYPE_F16)) return HR_OK;
  const hr_quant_info *qi = hr_quant_lookup(wtype);
  if (!qi)
    return hr_fail(HR_E_INVALID, "%s: weight type %lld is neither the dtype (%lld) nor a supported HR_QTYPE_*", call,
                   (long long)wtype, (long long)dtype);
  if (k % qi->block_elems != 0)
    return hr_fail(HR_E_INVALID, "%s: %s weights need k (%lld) to be a multiple of %lld", call, qi->name, (long long)k,
                   (long long)qi->block_elems);
  return HR_OK;
}

static int embedding_common(const char *CALL, hr_instance *inst, int64_t dtype, int64_t wtype, uint64_t out,
                            uint64_t table, uint64_t ids, int64_t num_tokens, int64_t num_rows, int64_t dim) {
  int st_;
  TRY(need_dtype(CALL, dtype));
  TRY(need_ptr(CALL, "out", out));
  TRY(need_ptr(CALL, "table", table));
  TRY(need_ptr(CALL, "ids", ids));
  TRY(need_dim(CALL, "num_tokens", num_tokens));
  TRY(need_dim(CALL, "num_rows", num_rows));
  TRY(need_dim(CALL, "dim", dim));
  TRY(need_product(CALL, num_rows, dim, 1));
  TRY(need_product(CALL, num_tokens, dim, 1));
  int64_t a[HR_OP_MAX_ARGS] = {0};
  a[HR_A_EMB_DTYPE] = dtype;
  a[HR_A_EMB_OUT] = (int64_t)out;
  a[HR_A_EMB_TABLE] = (int64_t)table;
  a[HR_A_EMB_IDS] = (int64_t)ids;
  a[HR_A_EMB_T] = num_tokens;
  a[HR_A_EMB_ROWS] = num_rows;
  a[HR_A_EMB_DIM] = dim;
  a[HR_A_EMB_WTYPE] = wtype;
  return hr_ops_submit(inst, HR_OPK_EMBEDDING, a);
}

int hr_op_embedding(uint64_t dev, int64_t dtype, uint64_t out, uint64_t table, uint64_t ids, int64_t num_tokens,
                    int64_t num_rows, int64_t dim) {
  BEGIN("hr_op_embedding");
  return embedding_common(CALL, inst, dtype, dtype, out, table, ids, num_tokens, num_rows, dim);
}

int hr_op_embedding_q(uint64_t dev, int64_t dtype, int64_t wtype, uint64_t out, uint64_t table, uint64_t ids,
                      int64_t num_tokens, int64_t num_rows, int64_t dim) {
  BEGIN("hr_op_embedding_q");
  TRY(need_dtype(CALL, dtype));
  TRY(need_wtype(CALL, dtype, wtype, dim));
  return embedding_common(CALL, inst, dtype, wtype, out, table, ids, num_tokens, num_rows, dim);
}

int hr_op_rms_norm(uint64_t dev, int64_t dtype, uint64_t out, uint64_t x, uint64_t residual, uint64_t weight,
                   int64_t rows, int64_t dim, double eps) {
  BEGIN("hr_op_rms_norm");
  TRY(need_dtype(CALL, dtype));
  TRY(need_ptr(CALL, "out", out));
  TRY(need_ptr(CALL, "x", x));
  TRY(need_ptr(CALL, "weight", weight));
  TRY(need_dim(CALL, "rows", rows));
  TRY(need_dim(CALL, "dim", dim));
  TRY(need_product(CALL, rows, dim, 1));
  if (!(eps >= 0.0) || eps > 1.0) return hr_fail(HR_E_INVALID, "%s: eps must be in [0, 1] (got %g)", CALL, eps);
  if (residual != 0 && (residual == x || residual == out))
    return hr_fail(HR_E_INVALID, "%s: residual must not alias x or out", CALL);
  int64_t a[HR_OP_MAX_ARGS] = {0};
  a[HR_A_RMS_DTYPE] = dtype;
  a[HR_A_RMS_OUT] = (int64_t)out;
  a[HR_A_RMS_X] = (int64_t)x;
  a[HR_A_RMS_RES] = (int64_t)residual;
  a[HR_A_RMS_W] = (int64_t)weight;
  a[HR_A_RMS_ROWS] = rows;
  a[HR_A_RMS_DIM] = dim;
  a[HR_A_RMS_EPS] = hr_f64_bits(eps);
  a[HR_A_RMS_GROUP] = rows;
  a[HR_A_RMS_GSTRIDE] = rows * dim;
  return hr_ops_submit(inst, HR_OPK_RMS_NORM, a);
}

int hr_op_rms_norm_strided(uint64_t dev, int64_t dtype, uint64_t out, uint64_t x, uint64_t weight, int64_t groups,
                           int64_t rows_per_group, int64_t dim, int64_t group_stride, double eps) {
  BEGIN("hr_op_rms_norm_strided");
  TRY(need_dtype(CALL, dtype));
  TRY(need_ptr(CALL, "out", out));
  TRY(need_ptr(CALL, "x", x));
  TRY(need_ptr(CALL, "weight", weight));
  TRY(need_dim(CALL, "groups", groups));
  TRY(need_dim(CALL, "rows_per_group", rows_per_group));
  TRY(need_dim(CALL, "dim", dim));
  TRY(need_product(CALL, rows_per_group, dim, 1));
  if (group_stride < rows_per_group * dim || group_stride > HR_DIM_MAX)
    return hr_fail(HR_E_INVALID, "%s: group_stride must be in %lld..2^40 (rows_per_group * dim; got %lld)", CALL,
                   (long long)(rows_per_group * dim), (long long)group_stride);
  TRY(need_product(CALL, groups, group_stride, 1));
  TRY(need_product(CALL, groups, rows_per_group, 1));
  if (!(eps >= 0.0) || eps > 1.0) return hr_fail(HR_E_INVALID, "%s: eps must be in [0, 1] (got %g)", CALL, eps);
  int64_t a[HR_OP_MAX_ARGS] = {0};
  a[HR_A_RMS_DTYPE] = dtype;
  a[HR_A_RMS_OUT] = (int64_t)out;
  a[HR_A_RMS_X] = (int64_t)x;
  a[HR_A_RMS_RES] = 0;
  a[HR_A_RMS_W] = (int64_t)weight;
  a[HR_A_RMS_ROWS] = groups * rows_per_group;
  a[HR_A_RMS_DIM] = dim;
  a[HR_A_RMS_EPS] = hr_f64_bits(eps);
  a[HR_A_RMS_GROUP] = rows_per_group;
  a[HR_A_RMS_GSTRIDE] = group_stride;
  return hr_ops_submit(inst, HR_OPK_RMS_NORM, a);
}

int hr_op_rope(uint64_t dev, int64_t dtype, uint64_t q, uint64_t k, uint64_t positions, uint64_t inv_freq,
               int64_t num_tokens, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim, int64_t rotary_dim,
               int64_t layout, int64_t q_stride, int64_t k_stride) {
  BEGIN("hr_op_rope");
  TRY(need_dtype(CALL, dtype));
  TRY(need_ptr(CALL, "q", q));
  TRY(need_ptr(CALL, "positions", positions));
  TRY(need_ptr(CALL, "inv_freq", inv_freq));
  TRY(need_dim(CALL, "num_tokens", num_tokens));
  TRY(need_dim(CALL, "num_q_heads", num_q_heads));
  if (k != 0) TRY(need_dim(CALL, "num_kv_heads", num_kv_heads));
  TRY(need_dim(CALL, "head_dim", head_dim));
  if (rotary_dim == 0) rotary_dim = head_dim;
  if (rotary_dim < 2 || rotary_dim > head_dim || rotary_dim % 2 != 0)
    return hr_fail(HR_E_INVALID, "%s: rotary_dim must be even and in 2..head_dim=%lld, or 0 (got %lld)", CALL,
                   (long long)head_dim, (long long)rotary_dim);
  if (layout != HR_ROPE_NEOX && layout != HR_ROPE_GPTJ)
    return hr_fail(HR_E_INVALID, "%s: layout must be HR_ROPE_NEOX (0) or HR_ROPE_GPTJ (1) (got %lld)", CALL,
                   (long long)layout);
  TRY(need_product(CALL, num_tokens, num_q_heads, head_dim));
  TRY(need_stride(CALL, "q_stride", q_stride, num_q_heads * head_dim));
  if (k != 0) {
    TRY(need_product(CALL, num_tokens, num_kv_heads, head_dim));
    TRY(need_stride(CALL, "k_stride", k_stride, num_kv_heads * head_dim));
  }
  int64_t a[HR_OP_MAX_ARGS] = {0};
  a[HR_A_ROPE_DTYPE] = dtype;
  a[HR_A_ROPE_Q] = (int64_t)q;
  a[HR_A_ROPE_K] = (int64_t)k;
  a[HR_A_ROPE_POS] = (int64_t)positions;
  a[HR_A_ROPE_INVF] = (int64_t)inv_freq;
  a[HR_A_ROPE_T] = num_tokens;
  a[HR_A_ROPE_HQ] = num_q_heads;
  a[HR_A_ROPE_HK] = k ? num_kv_heads : 0;
  a[HR_A_ROPE_D] = head_dim;
  a[HR_A_ROPE_ROT] = rotary_dim;
  a[HR_A_ROPE_LAYOUT] = layout;
  a[HR_A_ROPE_QSTRIDE] = q_stride ? q_stride : num_q_heads * head_dim;
  a[HR_A_ROPE_KSTRIDE] = k ? (k_stride ? k_stride : num_kv_heads * head_dim) : 0;
  return hr_ops_submit(inst, HR_OPK_ROPE, a);
}

static int matmul_common(const char *CALL, hr_instance *inst, int64_t dtype, int64_t wtype, uint64_t y, uint64_t x,
                         uint64_t w, uint64_t bias, int64_t m, int64_t n, int64_t k, uint64_t rows, int64_t xrows,
                         uint64_t ws, uint64_t ws_bytes) {
  int st_;
  TRY(need_dtype(CALL, dtype));
  TRY(need_ptr(CALL, "y", y));
  TRY(need_ptr(CALL, "x", x));
  TRY(need_ptr(CALL, "w", w));
  TRY(need_dim(CALL, "m", m));
  TRY(need_dim(CALL, "n", n));
  TRY(need_dim(CALL, "k", k));
  TRY(need_product(CALL, m, n, 1));
  TRY(need_product(CALL, n, k, 1));
  TRY(need_product(CALL, xrows, k, 1));
  if (y == x || y == w) return hr_fail(HR_E_INVALID, "%s: y must not alias x or w", CALL);
  if ((ws == 0) != (ws_bytes == 0))
    return hr_fail(HR_E_INVALID, "%s: workspace and workspace_bytes must both be 0 or both be set", CALL);
  if (ws != 0 && ws_bytes < (uint64_t)(k * (dtype == HR_DTYPE_F32 ? 4 : 2)))
    return hr_fail(HR_E_INVALID, "%s: workspace_bytes %llu cannot hold one weight row (k = %lld elements)", CALL,
                   (unsigned long long)ws_bytes, (long long)k);
  if (ws != 0 && (ws == y || ws == x || ws == w))
    return hr_fail(HR_E_INVALID, "%s: the workspace must not alias y, x or w", CALL);
  int64_t a[HR_OP_MAX_ARGS] = {0};
  a[HR_A_MM_DTYPE] = dtype;
  a[HR_A_MM_Y] = (int64_t)y;
  a[HR_A_MM_X] = (int64_t)x;
  a[HR_A_MM_W] = (int64_t)w;
  a[HR_A_MM_BIAS] = (int64_t)bias;
  a[HR_A_MM_M] = m;
  a[HR_A_MM_N] = n;
  a[HR_A_MM_K] = k;
  a[HR_A_MM_ROWS] = (int64_t)rows;
  a[HR_A_MM_XROWS] = xrows;
  a[HR_A_MM_WTYPE] = wtype;
  a[HR_A_MM_WS] = (int64_t)ws;
  a[HR_A_MM_WSBYTES] = (int64_t)ws_bytes;
  return hr_ops_submit(inst, HR_OPK_MATMUL, a);
}

int hr_op_matmul(uint64_t dev, int64_t dtype, uint64_t y, uint64_t x, uint64_t w, uint64_t bias, int64_t m, int64_t n,
                 int64_t k) {
  BEGIN("hr_op_matmul");
  return matmul_common(CALL, inst, dtype, dtype, y, x, w, bias, m, n, k, 0, m, 0, 0);
}

int hr_op_matmul_q(uint64_t dev, int64_t dtype, int64_t wtype, uint64_t y, uint64_t x, uint64_t w, uint64_t bias,
                   int64_t m, int64_t n, int64_t k) {
  BEGIN("hr_op_matmul_q");
  TRY(need_dtype(CALL, dtype));
  TRY(need_wtype(CALL, dtype, wtype, k));
  return matmul_common(CALL, inst, dtype, wtype, y, x, w, bias, m, n, k, 0, m, 0, 0);
}

int hr_op_matmul_q_ws(uint64_t dev, int64_t dtype, int64_t wtype, uint64_t y, uint64_t x, uint64_t w, uint64_t bias,
                      int64_t m, int64_t n, int64_t k, uint64_t workspace, uint64_t workspace_bytes) {
  BEGIN("hr_op_matmul_q_ws");
  TRY(need_dtype(CALL, dtype));
  TRY(need_wtype(CALL, dtype, wtype, k));
  return matmul_common(CALL, inst, dtype, wtype, y, x, w, bias, m, n, k, 0, m, workspace, workspace_bytes);
}

int hr_op_logits(uint64_t dev, int64_t dtype, uint64_t logits, uint64_t hidden, uint64_t row_ids, int64_t num_rows,
                 int64_t num_hidden_rows, uint64_t w, int64_t vocab, int64_t dim) {
  BEGIN("hr_op_logits");
  TRY(need_ptr(CALL, "row_ids", row_ids));
  TRY(need_dim(CALL, "num_hidden_rows", num_hidden_rows));
  return matmul_common(CALL, inst, dtype, dtype, logits, hidden, w, 0, num_rows, vocab, dim, row_ids, num_hidden_rows,
                       0, 0);
}

int hr_op_logits_q(uint64_t dev, int64_t dtype, int64_t wtype, uint64_t logits, uint64_t hidden, uint64_t row_ids,
                   int64_t num_rows, int64_t num_hidden_rows, uint64_t w, int64_t vocab, int64_t dim) {
  BEGIN("hr_op_logits_q");
  TRY(need_ptr(CALL, "row_ids", row_ids));
  TRY(need_dim(CALL, "num_hidden_rows", num_hidden_rows));
  TRY(need_dtype(CALL, dtype));
  TRY(need_wtype(CALL, dtype, wtype, dim));
  return matmul_common(CALL, inst, dtype, wtype, logits, hidden, w, 0, num_rows, vocab, dim, row_ids, num_hidden_rows,
                       0, 0);
}

int hr_op_logits_q_ws(uint64_t dev, int64_t dtype, int64_t wtype, uint64_t logits, uint64_t hidden, uint64_t row_ids,
                      int64_t num_rows, int64_t num_hidden_rows, uint64_t w, int64_t vocab, int64_t dim,
                      uint64_t workspace, uint64_t workspace_bytes) {
  BEGIN("hr_op_logits_q_ws");
  TRY(need_ptr(CALL, "row_ids", row_ids));
  TRY(need_dim(CALL, "num_hidden_rows", num_hidden_rows));
  TRY(need_dtype(CALL, dtype));
  TRY(need_wtype(CALL, dtype, wtype, dim));
  return matmul_common(CALL, inst, dtype, wtype, logits, hidden, w, 0, num_rows, vocab, dim, row_ids, num_hidden_rows,
                       workspace, workspace_bytes);
}

static int gated_common(const char *CALL, hr_instance *inst, int kind, int64_t dtype, uint64_t out, uint64_t gate,
                        uint64_t up, int64_t rows, int64_t inter, int64_t in_stride);

int hr_op_silu_mul(uint64_t dev, int64_t dtype, uint64_t out, uint64_t gate, uint64_t up, int64_t rows, int64_t inter,
                   int64_t in_stride) {
  BEGIN("hr_op_silu_mul");
  return gated_common(CALL, inst, HR_OPK_SILU_MUL, dtype, out, gate, up, rows, inter, in_stride);
}

int hr_op_gelu_tanh_mul(uint64_t dev, int64_t dtype, uint64_t out, uint64_t gate, uint64_t up, int64_t rows,
                        int64_t inter, int64_t in_stride) {
  BEGIN("hr_op_gelu_tanh_mul");
  return gated_common(CALL, inst, HR_OPK_GELU_MUL, dtype, out, gate, up, rows, inter, in_stride);
}

/* silu_mul and gelu_tanh_mul: same validation and record, different kind */
static int gated_common(const char *CALL, hr_instance *inst, int kind, int64_t dtype, uint64_t out, uint64_t gate,
                        uint64_t up, int64_t rows, int64_t inter, int64_t in_stride) {
  int st_;
  TRY(need_dtype(CALL, dtype));
  TRY(need_ptr(CALL, "out", out));
  TRY(need_ptr(CALL, "gate", gate));
  TRY(need_ptr(CALL, "up", up));
  TRY(need_dim(CALL, "rows", rows));
  TRY(need_dim(CALL, "inter", inter));
  TRY(need_product(CALL, rows, inter, 1));
  TRY(need_stride(CALL, "in_stride", in_stride, inter));
  int64_t a[HR_OP_MAX_ARGS] = {0};
  a[HR_A_SILU_DTYPE] = dtype;
  a[HR_A_SILU_OUT] = (int64_t)out;
  a[HR_A_SILU_GATE] = (int64_t)gate;
  a[HR_A_SILU_UP] = (int64_t)up;
  a[HR_A_SILU_ROWS] = rows;
  a[HR_A_SILU_I] = inter;
  a[HR_A_SILU_STRIDE] = in_stride ? in_stride : inter;
  return hr_ops_submit(inst, kind, a);
}

static int scale_common(const char *CALL, hr_instance *inst, int64_t dtype, uint64_t x, int64_t n, double scale,
                        double cap) {
  int st_;
  TRY(need_dtype(CALL, dtype));
  TRY(need_ptr(CALL, "x", x));
  TRY(need_dim(CALL, "n", n));
  if (!isfinite(scale)) return hr_fail(HR_E_INVALID, "%s: scale must be finite (got %g)", CALL, scale);
  int64_t a[HR_OP_MAX_ARGS] = {0};
  a[HR_A_SCL_DTYPE] = dtype;
  a[HR_A_SCL_X] = (int64_t)x;
  a[HR_A_SCL_N_ELEMS] = n;
  a[HR_A_SCL_SCALE] = hr_f64_bits(scale);
  a[HR_A_SCL_CAP] = hr_f64_bits(cap);
  return hr_ops_submit(inst, HR_OPK_SCALE, a);
}

int hr_op_scale(uint64_t dev, int64_t dtype, uint64_t x, int64_t n, double scale) {
  BEGIN("hr_op_scale");
  return scale_common(CALL, inst, dtype, x, n, scale, 0.0);
}

int hr_op_softcap(uint64_t dev, int64_t dtype, uint64_t x, int64_t n, double cap) {
  BEGIN("hr_op_softcap");
  if (!(cap > 0.0) || !isfinite(cap))
    return hr_fail(HR_E_INVALID, "%s: cap must be > 0 and finite (got %g)", CALL, cap);
  return scale_common(CALL, inst, dtype, x, n, 1.0, cap);
}

/* window >= 0 (0 = full causal), softcap >= 0 (0 = off) */
static int need_window_cap(const char *CALL, int64_t window, double softcap) {
  if (window < 0)
    return hr_fail(HR_E_INVALID, "%s: window must be >= 0 (0 = full attention, got %lld)", CALL, (long long)window);
  if (!(softcap >= 0.0) || !isfinite(softcap))
    return hr_fail(HR_E_INVALID, "%s: softcap must be >= 0 and finite (0 = off, got %g)", CALL, softcap);
  return HR_OK;
}

static int need_cache(const char *CALL, int64_t hk, int64_t d, int64_t num_blocks, int64_t block_size) {
  int st_;
  TRY(need_dim(CALL, "num_kv_heads", hk));
  TRY(need_dim(CALL, "head_dim", d));
  TRY(need_dim(CALL, "num_blocks", num_blocks));
  TRY(need_dim(CALL, "block_size", block_size));
  TRY(need_product(CALL, hk, d, 1)); /* bound hk * d before it is used as a factor */
  TRY(need_product(CALL, num_blocks, block_size, hk * d));
  return HR_OK;
}

int hr_op_kv_write(uint64_t dev, int64_t dtype, uint64_t k_cache, uint64_t v_cache, uint64_t key, uint64_t value,
                   uint64_t slot_mapping, int64_t num_tokens, int64_t num_kv_heads, int64_t head_dim,
                   int64_t num_blocks, int64_t block_size, int64_t kv_stride, int64_t kv_dtype, double k_scale,
                   double v_scale) {
  BEGIN("hr_op_kv_write");
  TRY(need_dtype(CALL, dtype));
  TRY(need_kv_dtype(CALL, kv_dtype, k_scale, v_scale));
  TRY(need_ptr(CALL, "k_cache", k_cache));
  TRY(need_ptr(CALL, "v_cache", v_cache));
  TRY(need_ptr(CALL, "key", key));
  TRY(need_ptr(CALL, "value", value));
  TRY(need_ptr(CALL, "slot_mapping", slot_mapping));
  TRY(need_dim(CALL, "num_tokens", num_tokens));
  TRY(need_dim(CALL, "num_kv_heads", num_kv_heads));
  TRY(need_cache(CALL, num_kv_heads, head_dim, num_blocks, block_size));
  TRY(need_stride(CALL, "kv_stride", kv_stride, num_kv_heads * head_dim));
  if (k_cache == v_cache) return hr_fail(HR_E_INVALID, "%s: k_cache and v_cache must differ", CALL);
  int64_t a[HR_OP_MAX_ARGS] = {0};
  a[HR_A_KVW_DTYPE] = dtype;
  a[HR_A_KVW_KC] = (int64_t)k_cache;
  a[HR_A_KVW_VC] = (int64_t)v_cache;
  a[HR_A_KVW_K] = (int64_t)key;
  a[HR_A_KVW_V] = (int64_t)value;
  a[HR_A_KVW_SLOTS] = (int64_t)slot_mapping;
  a[HR_A_KVW_T] = num_tokens;
  a[HR_A_KVW_HK] = num_kv_heads;
  a[HR_A_KVW_D] = head_dim;
  a[HR_A_KVW_NBLOCKS] = num_blocks;
  a[HR_A_KVW_BS] = block_size;
  a[HR_A_KVW_STRIDE] = kv_stride ? kv_stride : num_kv_heads * head_dim;
  a[HR_A_KVW_KVDTYPE] = kv_dtype;
  a[HR_A_KVW_KSCALE] = hr_f64_bits(k_scale);
  a[HR_A_KVW_VSCALE] = hr_f64_bits(v_scale);
  return hr_ops_submit(inst, HR_OPK_KV_WRITE, a);
}

uint64_t hr_attn_decode_workspace(int64_t num_seqs, int64_t num_q_heads, int64_t head_dim, int64_t max_blocks_per_seq,
                                  int64_t block_size, int64_t partition_size) {
  int64_t ctx = 0;
  if (hr_mul3_i64(max_blocks_per_seq, block_size, 1, &ctx)) return UINT64_MAX;
  int64_t part = partition_size > 0 ? partition_size : ctx;
  if (part <= 0) return UINT64_MAX;
  int64_t parts = ctx / part + (ctx % part != 0);
  if (parts <= 1) return 0;
  /* per (seq, q head, partition): max, exp-sum, head_dim partial outputs (float32);
   * saturates to UINT64_MAX instead of wrapping (callers reject it) */
  uint64_t v = 0;
  if (hr_mul_u64((uint64_t)num_seqs, (uint64_t)num_q_heads, &v) || hr_mul_u64(v, (uint64_t)parts, &v) ||
      hr_mul_u64(v, (uint64_t)head_dim + 2u, &v) || hr_mul_u64(v, 4u, &v))
    return UINT64_MAX;
  return v;
}

/* Workspaces beyond 2^48 bytes (256 TiB) cannot exist on any device: the inputs are wrong. */
#define HR_WORKSPACE_MAX (1ULL << 48)
static int need_workspace_size(const char *call, uint64_t need, int64_t b, int64_t hq, int64_t d, int64_t maxb,
                               int64_t bs, int64_t part) {
  if (need > HR_WORKSPACE_MAX)
    return hr_fail(HR_E_INVALID,
                   "%s: the split-K workspace for num_seqs=%lld num_q_heads=%lld head_dim=%lld max_blocks_per_seq=%lld "
                   "block_size=%lld partition_size=%lld would exceed 2^48 bytes%s",
                   call, (long long)b, (long long)hq, (long long)d, (long long)maxb, (long long)bs, (long long)part,
                   need == UINT64_MAX ? " (overflows 64 bits)" : "");
  return HR_OK;
}

static int check_attn_shapes(const char *CALL, int64_t b, int64_t hq, int64_t hk, int64_t d, int64_t num_blocks,
                             int64_t block_size, int64_t max_blocks, double scale) {
  int st_;
  TRY(need_dim(CALL, "num_seqs", b));
  TRY(need_heads(CALL, hq, hk));
  TRY(need_cache(CALL, hk, d, num_blocks, block_size));
  TRY(need_dim(CALL, "max_blocks_per_seq", max_blocks));
  TRY(need_product(CALL, b, max_blocks, block_size));
  TRY(need_product(CALL, b, hq, d));
  if (!(scale > 0.0) || scale > 1e6)
    return hr_fail(HR_E_INVALID, "%s: scale must be > 0 and finite (got %g)", CALL, scale);
  return HR_OK;
}

int hr_paged_attention_workspace_bytes(int64_t dtype, int64_t num_seqs, int64_t num_q_heads, int64_t head_dim,
                                       int64_t max_blocks_per_seq, int64_t block_size, int64_t partition_size,
                                       uint64_t *bytes_out) {
  static const char *const CALL = "hr_paged_attention_workspace_bytes";
  int st_;
  hr_clear_error();
  HR_CHECK_PTR(bytes_out, CALL);
  *bytes_out = 0;
  TRY(need_dtype(CALL, dtype));
  TRY(need_dim(CALL, "num_seqs", num_seqs));
  TRY(need_dim(CALL, "num_q_heads", num_q_heads));
  TRY(need_dim(CALL, "head_dim", head_dim));
  TRY(need_dim(CALL, "max_blocks_per_seq", max_blocks_per_seq));
  TRY(need_dim(CALL, "block_size", block_size));
  TRY(need_product(CALL, num_seqs, max_blocks_per_seq, block_size));
  TRY(need_product(CALL, num_seqs, num_q_heads, head_dim));
  if (partition_size < 0 || (partition_size > 0 && partition_size % block_size != 0))
    return hr_fail(HR_E_INVALID, "%s: partition_size must be 0 or a positive multiple of block_size=%lld (got %lld)",
                   CALL, (long long)block_size, (long long)partition_size);
  uint64_t need =
      hr_attn_decode_workspace(num_seqs, num_q_heads, head_dim, max_blocks_per_seq, block_size, partition_size);
  TRY(need_workspace_size(CALL, need, num_seqs, num_q_heads, head_dim, max_blocks_per_seq, block_size, partition_size));
  *bytes_out = need;
  return HR_OK;
}

int hr_op_attention_decode(uint64_t dev, int64_t dtype, uint64_t out, uint64_t q, uint64_t k_cache, uint64_t v_cache,
                           uint64_t block_tables, uint64_t seq_lens, uint64_t workspace, uint64_t workspace_bytes,
                           int64_t num_seqs, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                           int64_t num_blocks, int64_t block_size, int64_t max_blocks_per_seq, int64_t partition_size,
                           double scale, int64_t q_stride, int64_t window, double softcap, int64_t kv_dtype,
                           double k_scale, double v_scale) {
  BEGIN("hr_op_attention_decode");
  TRY(need_window_cap(CALL, window, softcap));
  TRY(need_kv_dtype(CALL, kv_dtype, k_scale, v_scale));
  TRY(need_dtype(CALL, dtype));
  TRY(need_ptr(CALL, "out", out));
  TRY(need_ptr(CALL, "q", q));
  TRY(need_ptr(CALL, "k_cache", k_cache));
  TRY(need_ptr(CALL, "v_cache", v_cache));
  TRY(need_ptr(CALL, "block_tables", block_tables));
  TRY(need_ptr(CALL, "seq_lens", seq_lens));
  TRY(check_attn_shapes(CALL, num_seqs, num_q_heads, num_kv_heads, head_dim, num_blocks, block_size, max_blocks_per_seq,
                        scale));
  const int planned = partition_size == HR_DECODE_PLANNED;
  if (!planned && (partition_size < 0 || (partition_size > 0 && partition_size % block_size != 0)))
    return hr_fail(HR_E_INVALID,
                   "%s: partition_size must be HR_DECODE_PLANNED (-1), 0 or a positive multiple of block_size=%lld "
                   "(got %lld)",
                   CALL, (long long)block_size, (long long)partition_size);
  TRY(need_stride(CALL, "q_stride", q_stride, num_q_heads * head_dim));
  uint64_t need = 0;
  if (planned) {
    TRY(hr_attention_decode_workspace_bytes(num_seqs, num_q_heads, num_kv_heads, head_dim, block_size,
                                            max_blocks_per_seq, &need));
    if (workspace == 0 || workspace_bytes < need)
      return hr_fail(HR_E_INVALID,
                     "%s: planned decode needs the plan's workspace: %llu bytes at 0x%llx, "
                     "hr_attention_decode_workspace_bytes gives %llu",
                     CALL, (hr_ull)workspace_bytes, (hr_ull)workspace, (hr_ull)need);
    need = 0; /* checked above */
  } else {
    need = hr_attn_decode_workspace(num_seqs, num_q_heads, head_dim, max_blocks_per_seq, block_size, partition_size);
    TRY(need_workspace_size(CALL, need, num_seqs, num_q_heads, head_dim, max_blocks_per_seq, block_size,
                            partition_size));
  }
  if (need > 0 && (workspace == 0 || workspace_bytes < need))
    return hr_fail(HR_E_INVALID,
                   "%s: workspace of %llu bytes at 0x%llx is too small: %llu bytes needed for num_seqs=%lld "
                   "num_q_heads=%lld head_dim=%lld max_blocks_per_seq=%lld block_size=%lld partition_size=%lld",
                   CALL, (hr_ull)workspace_bytes, (hr_ull)workspace, (hr_ull)need, (long long)num_seqs,
                   (long long)num_q_heads, (long long)head_dim, (long long)max_blocks_per_seq, (long long)block_size,
                   (long long)partition_size);
  int64_t a[HR_OP_MAX_ARGS] = {0};
  a[HR_A_DEC_DTYPE] = dtype;
  a[HR_A_DEC_OUT] = (int64_t)out;
  a[HR_A_DEC_Q] = (int64_t)q;
  a[HR_A_DEC_KC] = (int64_t)k_cache;
  a[HR_A_DEC_VC] = (int64_t)v_cache;
  a[HR_A_DEC_BT] = (int64_t)block_tables;
  a[HR_A_DEC_SEQLENS] = (int64_t)seq_lens;
  a[HR_A_DEC_WS] = (int64_t)workspace;
  a[HR_A_DEC_WSBYTES] = (int64_t)workspace_bytes;
  a[HR_A_DEC_B] = num_seqs;
  a[HR_A_DEC_HQ] = num_q_heads;
  a[HR_A_DEC_HK] = num_kv_heads;
  a[HR_A_DEC_D] = head_dim;
  a[HR_A_DEC_NBLOCKS] = num_blocks;
  a[HR_A_DEC_BS] = block_size;
  a[HR_A_DEC_MAXBLOCKS] = max_blocks_per_seq;
  a[HR_A_DEC_PART] = hr_attn_partition_tokens(max_blocks_per_seq, block_size, planned ? 0 : partition_size);
  a[HR_A_DEC_PLANNED] = planned;
  a[HR_A_DEC_SCALE] = hr_f64_bits(scale);
  a[HR_A_DEC_QSTRIDE] = q_stride ? q_stride : num_q_heads * head_dim;
  a[HR_A_DEC_WINDOW] = window;
  a[HR_A_DEC_SOFTCAP] = hr_f64_bits(softcap);
  a[HR_A_DEC_KVDTYPE] = kv_dtype;
  a[HR_A_DEC_KSCALE] = hr_f64_bits(k_scale);
  a[HR_A_DEC_VSCALE] = hr_f64_bits(v_scale);
  return hr_ops_submit(inst, HR_OPK_ATTN_DECODE, a);
}

int hr_op_attention_prefill(uint64_t dev, int64_t dtype, uint64_t out, uint64_t q, uint64_t k_cache, uint64_t v_cache,
                            uint64_t block_tables, uint64_t seq_lens, uint64_t query_start_loc, int64_t num_seqs,
                            int64_t num_tokens, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                            int64_t num_blocks, int64_t block_size, int64_t max_blocks_per_seq, double scale,
                            int64_t q_stride, int64_t window, double softcap, int64_t kv_dtype, double k_scale,
                            double v_scale) {
  BEGIN("hr_op_attention_prefill");
  TRY(need_window_cap(CALL, window, softcap));
  TRY(need_kv_dtype(CALL, kv_dtype, k_scale, v_scale));
  TRY(need_dtype(CALL, dtype));
  TRY(need_ptr(CALL, "out", out));
  TRY(need_ptr(CALL, "q", q));
  TRY(need_ptr(CALL, "k_cache", k_cache));
  TRY(need_ptr(CALL, "v_cache", v_cache));
  TRY(need_ptr(CALL, "block_tables", block_tables));
  TRY(need_ptr(CALL, "seq_lens", seq_lens));
  TRY(need_ptr(CALL, "query_start_loc", query_start_loc));
  TRY(need_dim(CALL, "num_tokens", num_tokens));
  TRY(check_attn_shapes(CALL, num_seqs, num_q_heads, num_kv_heads, head_dim, num_blocks, block_size, max_blocks_per_seq,
                        scale));
  TRY(need_product(CALL, num_tokens, num_q_heads, head_dim));
  TRY(need_stride(CALL, "q_stride", q_stride, num_q_heads * head_dim));
  int64_t a[HR_OP_MAX_ARGS] = {0};
  a[HR_A_PRE_DTYPE] = dtype;
  a[HR_A_PRE_OUT] = (int64_t)out;
  a[HR_A_PRE_Q] = (int64_t)q;
  a[HR_A_PRE_KC] = (int64_t)k_cache;
  a[HR_A_PRE_VC] = (int64_t)v_cache;
  a[HR_A_PRE_BT] = (int64_t)block_tables;
  a[HR_A_PRE_SEQLENS] = (int64_t)seq_lens;
  a[HR_A_PRE_QSL] = (int64_t)query_start_loc;
  a[HR_A_PRE_B] = num_seqs;
  a[HR_A_PRE_T] = num_tokens;
  a[HR_A_PRE_HQ] = num_q_heads;
  a[HR_A_PRE_HK] = num_kv_heads;
  a[HR_A_PRE_D] = head_dim;
  a[HR_A_PRE_NBLOCKS] = num_blocks;
  a[HR_A_PRE_BS] = block_size;
  a[HR_A_PRE_MAXBLOCKS] = max_blocks_per_seq;
  a[HR_A_PRE_SCALE] = hr_f64_bits(scale);
  a[HR_A_PRE_QSTRIDE] = q_stride ? q_stride : num_q_heads * head_dim;
  a[HR_A_PRE_WINDOW] = window;
  a[HR_A_PRE_SOFTCAP] = hr_f64_bits(softcap);
  a[HR_A_PRE_KVDTYPE] = kv_dtype;
  a[HR_A_PRE_KSCALE] = hr_f64_bits(k_scale);
  a[HR_A_PRE_VSCALE] = hr_f64_bits(v_scale);
  return hr_ops_submit(inst, HR_OPK_ATTN_PREFILL, a);
}

/* ---- sampling ---- */

static int sample_common(const char *CALL, hr_instance *inst, uint64_t out_ids, uint64_t logits, uint64_t temperature,
                         uint64_t top_k, uint64_t top_p, uint64_t uniform, int64_t rows, int64_t vocab) {
  int st_;
  TRY(need_ptr(CALL, "out_ids", out_ids));
  TRY(need_ptr(CALL, "logits", logits));
  TRY(need_dim(CALL, "rows", rows));
  if (vocab < 1 || vocab > HR_SAMPLE_MAX_VOCAB)
    return hr_fail(HR_E_INVALID, "%s: vocab must be in 1..2^23 (got %lld)", CALL, (long long)vocab);
  TRY(need_product(CALL, rows, vocab, 1));
  /* out_ids [rows] int32 must not overlap logits [rows, vocab] float32 */
  uint64_t lo = logits, hi = logits + (uint64_t)rows * (uint64_t)vocab * 4u;
  if (out_ids + (uint64_t)rows * 4u > lo && out_ids < hi)
    return hr_fail(HR_E_INVALID, "%s: out_ids (0x%llx) overlaps logits (0x%llx, %lld x %lld floats)", CALL,
                   (hr_ull)out_ids, (hr_ull)logits, (long long)rows, (long long)vocab);
  int64_t a[HR_OP_MAX_ARGS] = {0};
  a[HR_A_SMP_OUT] = (int64_t)out_ids;
  a[HR_A_SMP_LOGITS] = (int64_t)logits;
  a[HR_A_SMP_TEMP] = (int64_t)temperature;
  a[HR_A_SMP_TOPK] = (int64_t)top_k;
  a[HR_A_SMP_TOPP] = (int64_t)top_p;
  a[HR_A_SMP_U] = (int64_t)uniform;
  a[HR_A_SMP_ROWS] = rows;
  a[HR_A_SMP_V] = vocab;
  return hr_ops_submit(inst, HR_OPK_SAMPLE, a);
}

int hr_op_argmax(uint64_t dev, uint64_t out_ids, uint64_t logits, int64_t rows, int64_t vocab) {
  BEGIN("hr_op_argmax");
  return sample_common(CALL, inst, out_ids, logits, 0, 0, 0, 0, rows, vocab);
}

int hr_op_sample(uint64_t dev, uint64_t out_ids, uint64_t logits, uint64_t temperature, uint64_t top_k, uint64_t top_p,
                 uint64_t uniform, int64_t rows, int64_t vocab) {
  BEGIN("hr_op_sample");
  TRY(need_ptr(CALL, "temperature", temperature));
  TRY(need_ptr(CALL, "top_k", top_k));
  TRY(need_ptr(CALL, "top_p", top_p));
  TRY(need_ptr(CALL, "uniform", uniform));
  return sample_common(CALL, inst, out_ids, logits, temperature, top_k, top_p, uniform, rows, vocab);
}

/* ---- structured outputs: token bitmask ---- */

int hr_op_apply_token_bitmask(uint64_t dev, uint64_t logits, int64_t logits_rows, uint64_t bitmask,
                              uint64_t row_indices, int64_t rows, int64_t vocab) {
  BEGIN("hr_op_apply_token_bitmask");
  TRY(need_ptr(CALL, "logits", logits));
  TRY(need_ptr(CALL, "bitmask", bitmask));
  TRY(need_dim(CALL, "logits_rows", logits_rows));
  TRY(need_dim(CALL, "rows", rows));
  TRY(need_dim(CALL, "vocab", vocab));
  TRY(need_product(CALL, logits_rows, vocab, 1));
  if (row_indices == 0 && rows > logits_rows)
    return hr_fail(HR_E_INVALID, "%s: rows (%lld) > logits_rows (%lld) without row_indices", CALL, (long long)rows,
                   (long long)logits_rows);
  /* the mask [rows, ceil(vocab/32)] int32 must not overlap the logits it edits */
  const uint64_t words = (uint64_t)(vocab + 31) / 32u;
  const uint64_t lo = logits, hi = logits + (uint64_t)logits_rows * (uint64_t)vocab * 4u;
  if (bitmask + (uint64_t)rows * words * 4u > lo && bitmask < hi)
    return hr_fail(HR_E_INVALID, "%s: bitmask (0x%llx) overlaps logits (0x%llx)", CALL, (hr_ull)bitmask,
                   (hr_ull)logits);
  int64_t a[HR_OP_MAX_ARGS] = {0};
  a[HR_A_TBM_LOGITS] = (int64_t)logits;
  a[HR_A_TBM_LROWS] = logits_rows;
  a[HR_A_TBM_MASK] = (int64_t)bitmask;
  a[HR_A_TBM_IDX] = (int64_t)row_indices;
  a[HR_A_TBM_ROWS] = rows;
  a[HR_A_TBM_V] = vocab;
  return hr_ops_submit(inst, HR_OPK_TOKEN_BITMASK, a);
}

/* ---- logit bias ---- */

int hr_op_add_logit_bias(uint64_t dev, uint64_t logits, int64_t logits_rows, uint64_t entries, int64_t n,
                         int64_t vocab) {
  BEGIN("hr_op_add_logit_bias");
  TRY(need_ptr(CALL, "logits", logits));
  TRY(need_ptr(CALL, "entries", entries));
  TRY(need_dim(CALL, "logits_rows", logits_rows));
  TRY(need_dim(CALL, "n", n));
  TRY(need_dim(CALL, "vocab", vocab));
  TRY(need_product(CALL, logits_rows, vocab, 1));
  TRY(need_product(CALL, n, (int64_t)sizeof(hr_logit_bias_entry), 1));
  if (entries % 8u != 0)
    return hr_fail(HR_E_INVALID, "%s: entries (0x%llx) must be 8-byte aligned", CALL, (hr_ull)entries);
  /* the entries must not overlap the logits they edit */
  const uint64_t lo = logits, hi = logits + (uint64_t)logits_rows * (uint64_t)vocab * 4u;
  if (entries + (uint64_t)n * sizeof(hr_logit_bias_entry) > lo && entries < hi)
    return hr_fail(HR_E_INVALID, "%s: entries (0x%llx) overlap logits (0x%llx)", CALL, (hr_ull)entries, (hr_ull)logits);
  int64_t a[HR_OP_MAX_ARGS] = {0};
  a[HR_A_LB_LOGITS] = (int64_t)logits;
  a[HR_A_LB_LROWS] = logits_rows;
  a[HR_A_LB_ENTRIES] = (int64_t)entries;
  a[HR_A_LB_N_ENTRIES] = n;
  a[HR_A_LB_V] = vocab;
  return hr_ops_submit(inst, HR_OPK_LOGIT_BIAS, a);
}
