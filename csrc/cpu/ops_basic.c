/*
 * CPU executors for the elementwise/row ops: embedding gather, RMSNorm (fused residual
 * add), RoPE (NeoX and GPT-J layouts, partial rotary), SiLU-and-mul, and the paged K/V
 * write. fp32 only. Large inputs are split over rows on the thread pool.
 */
#include <math.h>
#include <string.h>

#include "../core/float_formats.h"
#include "../core/ops_dispatch.h"
#include "../core/quant.h"
#include "../core/status.h"
#include "ops_cpu.h"
#include "threadpool.h"

#define PAR_MIN_ELEMS 32768 /* below this, one thread: a parallel region costs microseconds */

static int need_f32(const char *op, int64_t dtype) {
  if (dtype != HR_DTYPE_F32)
    return hr_fail(HR_E_UNSUPPORTED, "hr_op_%s: the CPU backend computes in float32 only (dtype %lld requested)", op,
                   (long long)dtype);
  return HR_OK;
}

/* Runs fn over `rows` rows in chunks (parallel when rows * row_elems is large). */
typedef struct {
  void (*fn)(const int64_t *args, int64_t r0, int64_t r1);
  const int64_t *args;
  int64_t rows, chunk;
} rows_ctx;

static void rows_task(void *v, int64_t t, int thread, void *scratch) {
  (void)thread;
  (void)scratch;
  rows_ctx *c = v;
  int64_t r0 = t * c->chunk, r1 = r0 + c->chunk < c->rows ? r0 + c->chunk : c->rows;
  c->fn(c->args, r0, r1);
}

static int run_rows(void (*fn)(const int64_t *, int64_t, int64_t), const int64_t *args, int64_t rows,
                    int64_t row_elems) {
  if (rows * row_elems < PAR_MIN_ELEMS || rows == 1) {
    fn(args, 0, rows);
    return HR_OK;
  }
  int64_t threads = hrt_num_threads();
  int64_t ntasks = threads * 4 < rows ? threads * 4 : rows;
  rows_ctx c = {.fn = fn, .args = args, .rows = rows, .chunk = (rows + ntasks - 1) / ntasks};
  return hrt_parallel((rows + c.chunk - 1) / c.chunk, 0, rows_task, &c);
}

/* ---- embedding / row gather ---- */
static void emb_rows(const int64_t *a, int64_t r0, int64_t r1) {
  float *out = HR_PTR(a, HR_A_EMB_OUT, float);
  const float *table = HR_PTR(a, HR_A_EMB_TABLE, const float);
  const int32_t *ids = HR_PTR(a, HR_A_EMB_IDS, const int32_t);
  int64_t d = a[HR_A_EMB_DIM];
  for (int64_t t = r0; t < r1; t++) memcpy(out + t * d, table + (int64_t)ids[t] * d, (size_t)d * sizeof(float));
}

/* Quantized table (GGUF blocks): each gathered row is dequantized. */
static void emb_rows_q(const int64_t *a, int64_t r0, int64_t r1) {
  float *out = HR_PTR(a, HR_A_EMB_OUT, float);
  const uint8_t *table = HR_PTR(a, HR_A_EMB_TABLE, const uint8_t);
  const int32_t *ids = HR_PTR(a, HR_A_EMB_IDS, const int32_t);
  int64_t d = a[HR_A_EMB_DIM], qt = a[HR_A_EMB_WTYPE];
  const hr_quant_info *qi = hr_quant_lookup(qt);
  int64_t row_bytes = d / qi->block_elems * qi->block_bytes;
  for (int64_t t = r0; t < r1; t++) hr_quant_dequantize_row(qt, table + (int64_t)ids[t] * row_bytes, out + t * d, d);
}

/* 16-bit table (bf16/f16) into fp32 rows. */
static void emb_rows_16(const int64_t *a, int64_t r0, int64_t r1) {
  float *out = HR_PTR(a, HR_A_EMB_OUT, float);
  const uint16_t *table = HR_PTR(a, HR_A_EMB_TABLE, const uint16_t);
  const int32_t *ids = HR_PTR(a, HR_A_EMB_IDS, const int32_t);
  int64_t d = a[HR_A_EMB_DIM];
  int f16 = a[HR_A_EMB_WTYPE] == HR_DTYPE_F16;
  for (int64_t t = r0; t < r1; t++) {
    const uint16_t *row = table + (int64_t)ids[t] * d;
    float *o = out + t * d;
    for (int64_t i = 0; i < d; i++) {
      if (f16) {
        o[i] = hr_half_to_float(row[i]);
      } else {
        uint32_t u = (uint32_t)row[i] << 16;
        memcpy(o + i, &u, 4);
      }
    }
  }
}

int hr_cpu_exec_embedding(hr_instance *inst, const int64_t *a) {
  (void)inst;
  int st = need_f32("embedding", a[HR_A_EMB_DTYPE]);
  if (st != HR_OK) return st;
  const int32_t *ids = HR_PTR(a, HR_A_EMB_IDS, const int32_t);
  for (int64_t t = 0; t < a[HR_A_EMB_T]; t++)
    if (ids[t] < 0 || ids[t] >= a[HR_A_EMB_ROWS])
      return hr_fail(HR_E_INVALID, "hr_op_embedding: ids[%lld] = %d is out of range [0, %lld)", (long long)t, ids[t],
                     (long long)a[HR_A_EMB_ROWS]);
  if (a[HR_A_EMB_WTYPE] == HR_DTYPE_BF16 || a[HR_A_EMB_WTYPE] == HR_DTYPE_F16)
    return run_rows(emb_rows_16, a, a[HR_A_EMB_T], a[HR_A_EMB_DIM]);
  if (a[HR_A_EMB_WTYPE] != a[HR_A_EMB_DTYPE]) {
    if (!hr_quant_lookup(a[HR_A_EMB_WTYPE]))
      return hr_fail(HR_E_UNSUPPORTED, "hr_op_embedding_q: table type %lld is not supported by the CPU backend",
                     (long long)a[HR_A_EMB_WTYPE]);
    return run_rows(emb_rows_q, a, a[HR_A_EMB_T], a[HR_A_EMB_DIM]);
  }
  return run_rows(emb_rows, a, a[HR_A_EMB_T], a[HR_A_EMB_DIM]);
}

/* ---- RMSNorm ---- */
static void rms_rows(const int64_t *a, int64_t r0, int64_t r1) {
  float *out = HR_PTR(a, HR_A_RMS_OUT, float);
  float *x = HR_PTR(a, HR_A_RMS_X, float);
  const float *res = HR_PTR(a, HR_A_RMS_RES, const float);
  const float *w = HR_PTR(a, HR_A_RMS_W, const float);
  int64_t d = a[HR_A_RMS_DIM];
  float eps = (float)hr_bits_f64(a[HR_A_RMS_EPS]);
  for (int64_t r = r0; r < r1; r++) {
    const int64_t at = hr_rms_row_offset(a, r); /* r * d unless rows are grouped (strided) */
    float *xr = x + at, *o = out + at;
    if (res) {
      const float *rr = res + at;
      for (int64_t i = 0; i < d; i++) xr[i] += rr[i];
    }
    float ss = hr_vdot(xr, xr, d);
    float inv = 1.0f / sqrtf(ss / (float)d + eps);
    for (int64_t i = 0; i < d; i++) o[i] = xr[i] * inv * w[i];
  }
}

int hr_cpu_exec_rms_norm(hr_instance *inst, const int64_t *a) {
  (void)inst;
  int st = need_f32("rms_norm", a[HR_A_RMS_DTYPE]);
  if (st != HR_OK) return st;
  return run_rows(rms_rows, a, a[HR_A_RMS_ROWS], a[HR_A_RMS_DIM]);
}

/* ---- RoPE ---- */
static void rope_head(float *h, const float *cs, const float *sn, int64_t half, int gptj) {
  if (gptj) {
    for (int64_t i = 0; i < half; i++) {
      float x0 = h[2 * i], x1 = h[2 * i + 1];
      h[2 * i] = x0 * cs[i] - x1 * sn[i];
      h[2 * i + 1] = x1 * cs[i] + x0 * sn[i];
    }
  } else {
    for (int64_t i = 0; i < half; i++) {
      float x0 = h[i], x1 = h[i + half];
      h[i] = x0 * cs[i] - x1 * sn[i];
      h[i + half] = x1 * cs[i] + x0 * sn[i];
    }
  }
}

static void rope_rows(const int64_t *a, int64_t r0, int64_t r1) {
  float *q = HR_PTR(a, HR_A_ROPE_Q, float);
  float *k = HR_PTR(a, HR_A_ROPE_K, float);
  const int32_t *pos = HR_PTR(a, HR_A_ROPE_POS, const int32_t);
  const float *invf = HR_PTR(a, HR_A_ROPE_INVF, const float);
  int64_t hq = a[HR_A_ROPE_HQ], hk = a[HR_A_ROPE_HK], d = a[HR_A_ROPE_D], rot = a[HR_A_ROPE_ROT];
  int64_t qs = a[HR_A_ROPE_QSTRIDE], ks = a[HR_A_ROPE_KSTRIDE];
  int gptj = a[HR_A_ROPE_LAYOUT] == HR_ROPE_GPTJ;
  int64_t half = rot / 2;
  float cs[512], sn[512]; /* rot <= head_dim; chunked below if larger */
  for (int64_t t = r0; t < r1; t++) {
    for (int64_t c0 = 0; c0 < half; c0 += 512) {
      int64_t cn = half - c0 < 512 ? half - c0 : 512;
      for (int64_t i = 0; i < cn; i++) {
        /* angle in double: positions up to millions keep full float accuracy */
        double ang = (double)pos[t] * (double)invf[c0 + i];
        cs[i] = (float)cos(ang);
        sn[i] = (float)sin(ang);
      }
      for (int64_t h = 0; h < hq; h++) {
        float *p = q + t * qs + h * d;
        if (gptj)
          rope_head(p + 2 * c0, cs, sn, cn, 1);
        else {
          for (int64_t i = 0; i < cn; i++) {
            float x0 = p[c0 + i], x1 = p[c0 + i + half];
            p[c0 + i] = x0 * cs[i] - x1 * sn[i];
            p[c0 + i + half] = x1 * cs[i] + x0 * sn[i];
          }
        }
      }
      for (int64_t h = 0; k && h < hk; h++) {
        float *p = k + t * ks + h * d;
        if (gptj)
          rope_head(p + 2 * c0, cs, sn, cn, 1);
        else {
          for (int64_t i = 0; i < cn; i++) {
            float x0 = p[c0 + i], x1 = p[c0 + i + half];
            p[c0 + i] = x0 * cs[i] - x1 * sn[i];
            p[c0 + i + half] = x1 * cs[i] + x0 * sn[i];
          }
        }
      }
    }
  }
}

int hr_cpu_exec_rope(hr_instance *inst, const int64_t *a) {
  (void)inst;
  int st = need_f32("rope", a[HR_A_ROPE_DTYPE]);
  if (st != HR_OK) return st;
  const int32_t *pos = HR_PTR(a, HR_A_ROPE_POS, const int32_t);
  for (int64_t t = 0; t < a[HR_A_ROPE_T]; t++)
    if (pos[t] < 0) return hr_fail(HR_E_INVALID, "hr_op_rope: positions[%lld] = %d is negative", (long long)t, pos[t]);
  return run_rows(rope_rows, a, a[HR_A_ROPE_T], (a[HR_A_ROPE_HQ] + a[HR_A_ROPE_HK]) * a[HR_A_ROPE_ROT]);
}

/* ---- SiLU and mul ---- */
static void silu_rows(const int64_t *a, int64_t r0, int64_t r1) {
  float *out = HR_PTR(a, HR_A_SILU_OUT, float);
  const float *g = HR_PTR(a, HR_A_SILU_GATE, const float);
  const float *u = HR_PTR(a, HR_A_SILU_UP, const float);
  int64_t n = a[HR_A_SILU_I], s = a[HR_A_SILU_STRIDE];
  for (int64_t r = r0; r < r1; r++) hr_vsilu_mul(out + r * n, g + r * s, u + r * s, n);
}

int hr_cpu_exec_silu_mul(hr_instance *inst, const int64_t *a) {
  (void)inst;
  int st = need_f32("silu_mul", a[HR_A_SILU_DTYPE]);
  if (st != HR_OK) return st;
  return run_rows(silu_rows, a, a[HR_A_SILU_ROWS], a[HR_A_SILU_I]);
}

/* ---- GELU(tanh) and mul (Gemma's GeGLU): the same argument record as silu_mul ---- */
static void gelu_rows(const int64_t *a, int64_t r0, int64_t r1) {
  float *out = HR_PTR(a, HR_A_SILU_OUT, float);
  const float *gate = HR_PTR(a, HR_A_SILU_GATE, const float), *up = HR_PTR(a, HR_A_SILU_UP, const float);
  int64_t n = a[HR_A_SILU_I], s = a[HR_A_SILU_STRIDE];
  const float k0 = 0.7978845608028654f; /* sqrt(2 / pi); HF's gelu_pytorch_tanh */
  for (int64_t r = r0; r < r1; r++) {
    const float *g = gate + r * s, *u = up + r * s;
    float *o = out + r * n;
    for (int64_t i = 0; i < n; i++) {
      float x = g[i];
      o[i] = 0.5f * x * (1.0f + tanhf(k0 * (x + 0.044715f * x * x * x))) * u[i];
    }
  }
}

int hr_cpu_exec_gelu_mul(hr_instance *inst, const int64_t *a) {
  (void)inst;
  int st = need_f32("gelu_tanh_mul", a[HR_A_SILU_DTYPE]);
  if (st != HR_OK) return st;
  return run_rows(gelu_rows, a, a[HR_A_SILU_ROWS], a[HR_A_SILU_I]);
}

/* ---- K/V write into paged slots (converted to the cache's kv_dtype, divided by k/v_scale) ---- */
static void kvw_rows(const int64_t *a, int64_t r0, int64_t r1) {
  uint8_t *kc = HR_PTR(a, HR_A_KVW_KC, uint8_t), *vc = HR_PTR(a, HR_A_KVW_VC, uint8_t);
  const float *k = HR_PTR(a, HR_A_KVW_K, const float), *v = HR_PTR(a, HR_A_KVW_V, const float);
  const int32_t *slots = HR_PTR(a, HR_A_KVW_SLOTS, const int32_t);
  int64_t row = a[HR_A_KVW_HK] * a[HR_A_KVW_D], stride = a[HR_A_KVW_STRIDE], dt = a[HR_A_KVW_KVDTYPE];
  int64_t row_bytes = row * hr_kv_elem_bytes(dt);
  float ks = (float)hr_bits_f64(a[HR_A_KVW_KSCALE]), vs = (float)hr_bits_f64(a[HR_A_KVW_VSCALE]);
  for (int64_t t = r0; t < r1; t++) {
    int64_t s = slots[t];
    if (s < 0) continue;
    hr_cpu_kv_store_row(dt, kc + s * row_bytes, k + t * stride, row, ks);
    hr_cpu_kv_store_row(dt, vc + s * row_bytes, v + t * stride, row, vs);
  }
}

int hr_cpu_exec_kv_write(hr_instance *inst, const int64_t *a) {
  int st = need_f32("kv_write", a[HR_A_KVW_DTYPE]);
  if (st != HR_OK) return st;
  const int32_t *slots = HR_PTR(a, HR_A_KVW_SLOTS, const int32_t);
  int64_t nslots = a[HR_A_KVW_NBLOCKS] * a[HR_A_KVW_BS];
  /* a cache in a reserved range may have fewer mapped blocks than num_blocks (hr_vmm_block_limit) */
  uint64_t block_bytes = (uint64_t)a[HR_A_KVW_BS] * (uint64_t)a[HR_A_KVW_HK] * (uint64_t)a[HR_A_KVW_D] *
                         (uint64_t)hr_kv_elem_bytes(a[HR_A_KVW_KVDTYPE]);
  int64_t mapped = hr_vmm_block_limit(inst, (uint64_t)a[HR_A_KVW_KC], a[HR_A_KVW_NBLOCKS], block_bytes);
  mapped = hr_vmm_block_limit(inst, (uint64_t)a[HR_A_KVW_VC], mapped, block_bytes);
  for (int64_t t = 0; t < a[HR_A_KVW_T]; t++)
    if (slots[t] >= mapped * a[HR_A_KVW_BS] && slots[t] < nslots)
      return hr_fail(HR_E_INVALID,
                     "hr_op_kv_write: slot_mapping[%lld] = %d is beyond the %lld mapped blocks of the KV cache "
                     "(num_blocks %lld are reserved)",
                     (long long)t, slots[t], (long long)mapped, (long long)a[HR_A_KVW_NBLOCKS]);
    else if (slots[t] < -1 || slots[t] >= nslots)
      return hr_fail(HR_E_INVALID,
                     "hr_op_kv_write: slot_mapping[%lld] = %d is out of range (-1 = padding, else [0, %lld) = "
                     "num_blocks %lld x block_size %lld)",
                     (long long)t, slots[t], (long long)nslots, (long long)a[HR_A_KVW_NBLOCKS],
                     (long long)a[HR_A_KVW_BS]);
  return run_rows(kvw_rows, a, a[HR_A_KVW_T], 2 * a[HR_A_KVW_HK] * a[HR_A_KVW_D]);
}

/* ---- matmul / logits ---- */
int hr_cpu_exec_matmul(hr_instance *inst, const int64_t *a) {
  (void)inst;
  const char *op = a[HR_A_MM_ROWS] ? "logits" : "matmul";
  int st = need_f32(op, a[HR_A_MM_DTYPE]);
  if (st != HR_OK) return st;
  const int32_t *rows = HR_PTR(a, HR_A_MM_ROWS, const int32_t);
  if (rows)
    for (int64_t i = 0; i < a[HR_A_MM_M]; i++)
      if (rows[i] < 0 || rows[i] >= a[HR_A_MM_XROWS])
        return hr_fail(HR_E_INVALID, "hr_op_logits: row_ids[%lld] = %d is out of range [0, %lld)", (long long)i,
                       rows[i], (long long)a[HR_A_MM_XROWS]);
  return hr_cpu_matmul(HR_PTR(a, HR_A_MM_Y, float), HR_PTR(a, HR_A_MM_X, const float), HR_PTR(a, HR_A_MM_W, const void),
                       a[HR_A_MM_WTYPE], HR_PTR(a, HR_A_MM_BIAS, const float), rows, a[HR_A_MM_M], a[HR_A_MM_N],
                       a[HR_A_MM_K]);
}
