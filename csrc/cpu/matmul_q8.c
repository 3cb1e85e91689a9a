/*
 * Quantized-weight matmul y[M, N] = x[M, K] . W[N, K]^T (+ bias), W in GGUF blocks, the way
 * llama.cpp does it: the activation rows are quantized once per call to int8 blocks (32
 * elements per scale for the 32-block types, 256 for K-quants, as q8_0 / q8_K), and the
 * products are integer dot products (AVX512-VNNI vpdpbusd, AVX-VNNI, AVX-512BW / AVX2
 * vpmaddubsw, portable C) scaled in fp32 per 16 weights.
 *
 * Activations are rounded exactly as ggml's CPU backend rounds them for the weight type
 * (quant_act.c), so the int8 operands equal llama.cpp's on the same file.
 *
 * M <= hr_cpu_q8_gemv_max_m (decode, a few sequences): the direct kernels of gemv_q8.c read each
 * weight row's blocks once per 4 activation rows, unpack in registers and apply sub-block scales
 * as integers per block (no scratch). Larger M (prefill): weights are unpacked (quant_unpack.c)
 * a panel of a few rows at a time into per-thread scratch, one byte per weight, and reused by
 * every activation tile of an M block: decoded once per (panel, M block), not once per output.
 * The portable C path (no AVX2) always takes the panel loop.
 *
 * Accuracy: the result is exact up to fp32 rounding for the quantized activations; against
 * fp32 activations the error is bounded by the activation rounding (half a step per element,
 * test_quant.c checks both).
 */
#include <stdlib.h>
#include <string.h>

#include "../core/quant.h"
#include "../core/status.h"
#include "ops_cpu.h"
#include "gemv_q8.h"
#include "quant_act.h"
#include "quant_unpack.h"
#include "threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#define HR_X86 1
#include <immintrin.h>
#endif

/* One tile's operands: activation rows (int8, per-16 scale dx and dx*sum16), unpacked weights. */
typedef struct {
  const int8_t *xq[4];
  const float *xd[4], *xs[4];
  const uint8_t *wq;
  const float *sw, *mw; /* mw NULL: no offsets */
  int64_t k, ldq, ldg;  /* weight row pitch (bytes), scale row pitch (floats) */
} q8_tile;
typedef void (*q8_tile_fn)(const q8_tile *t, float *out);

enum { PATH_SCALAR, PATH_AVX2, PATH_AVXVNNI, PATH_AVX512, PATH_AVX512VNNI };
static const char *const PATH_NAMES[] = {"scalar", "avx2", "avx-vnni", "avx512bw", "avx512-vnni"};
#define Q8_RN256 4
#define MCQ 64 /* activation rows per M block (their int8 rows stay in L2 while a panel is reused) */

/* ---- portable: 1 x 1 tiles ---- */
static void qtile_c(const q8_tile *t, float *out, int signed_q) {
  const int64_t G = t->k / 16;
  double acc = 0; /* a pair's sum in double: the portable path doubles as a readable reference */
  for (int64_t g = 0; g < G; g++) {
    int32_t s = 0;
    for (int l = 0; l < 16; l++) {
      int wv = signed_q ? (int)(int8_t)t->wq[16 * g + l] : (int)t->wq[16 * g + l];
      s += wv * (int)t->xq[0][16 * g + l];
    }
    acc += (double)((float)s * (t->sw[g] * t->xd[0][g]));
    if (t->mw) acc += (double)(t->mw[g] * t->xs[0][g]);
  }
  out[0] = (float)acc;
}

#ifdef HR_X86
#define QK_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))
#define QK_SFX _vnni
#define QK_VNNI 1
#include "matmul_q8_k512.h"
#undef QK_ATTR
#undef QK_SFX
#undef QK_VNNI
#define QK_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define QK_SFX _bw
#define QK_VNNI 0
#include "matmul_q8_k512.h"
#undef QK_ATTR
#undef QK_SFX
#undef QK_VNNI
#define QK_ATTR __attribute__((target("avxvnni,avx2,fma")))
#define QK_SFX _avxvnni
#define QK_VNNI 1
#include "matmul_q8_k256.h"
#undef QK_ATTR
#undef QK_SFX
#undef QK_VNNI
#define QK_ATTR __attribute__((target("avx2,fma")))
#define QK_SFX _avx2
#define QK_VNNI 0
#include "matmul_q8_k256.h"
#undef QK_ATTR
#undef QK_SFX
#undef QK_VNNI
#endif

static int choose_path(void) {
  int isa = hr_cpu_isa(), f = hr_cpu_features();
  if (isa == HR_ISA_AVX512 && (f & HR_CPUX_AVX512BW)) return f & HR_CPUX_AVX512VNNI ? PATH_AVX512VNNI : PATH_AVX512;
  if (isa >= HR_ISA_AVX2) return f & HR_CPUX_AVXVNNI ? PATH_AVXVNNI : PATH_AVX2;
  return PATH_SCALAR;
}

const char *hr_cpu_q8_path_name(void) { return PATH_NAMES[choose_path()]; }

typedef struct {
  const float *x;
  const int32_t *rows;
  int64_t m, k, ldq, ldg, per_task;
  int kind;
  int8_t *xq;
  float *xd, *xs;
  int16_t *xb;
} quant_ctx;

static void quant_task(void *vc, int64_t task, int thread, void *scratch) {
  (void)thread;
  (void)scratch;
  const quant_ctx *c = vc;
  int64_t r0 = task * c->per_task, r1 = r0 + c->per_task < c->m ? r0 + c->per_task : c->m;
  for (int64_t r = r0; r < r1; r++) {
    int64_t src = c->rows ? c->rows[r] : r;
    float *xd = c->xd + r * c->ldg, *xs = c->xs + r * c->ldg;
    int16_t *xb = c->xb + r * c->ldg;
    hr_act_quantize_row(c->kind, c->x + src * c->k, c->k, c->xq + r * c->ldq, xd, xs, xb);
    for (int64_t g = c->k / 16; g < c->ldg; g++) { /* kernels read whole vectors */
      xd[g] = xs[g] = 0.0f;
      xb[g] = 0;
    }
  }
}

/* The quantized activations live in a per-calling-thread buffer kept between calls. */
static _Thread_local void *act_buf;
static _Thread_local size_t act_cap;
static void *act_buffer(size_t bytes) {
  if (bytes > act_cap) {
    free(act_buf);
    act_buf = NULL;
    act_cap = 0;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    act_buf = p;
    act_cap = bytes;
  }
  return act_buf;
}

/* ---- driver ---- */

typedef struct {
  float *y;
  const float *bias;
  const uint8_t *w;
  int64_t w_row_bytes, w_blocks; /* per weight row */
  const hr_qunpack_info *ui;
  const int8_t *xq;
  const float *xd, *xs;
  const int16_t *xb;
  int64_t m, n, k, ldq, ldg;
  int64_t n_chunk, m_chunk, n_tasks_n;
  int path, rmx, rnx;
} q8_ctx;

static void q8_task(void *vctx, int64_t task, int thread, void *scratch) {
  (void)thread;
  const q8_ctx *c = vctx;
  const int64_t tn = task % c->n_tasks_n, tm = task / c->n_tasks_n;
  const int64_t nb = tn * c->n_chunk, ne = nb + c->n_chunk < c->n ? nb + c->n_chunk : c->n;
  const int64_t mb = tm * c->m_chunk, me = mb + c->m_chunk < c->m ? mb + c->m_chunk : c->m;
  if (nb >= ne || mb >= me) return;
  const int RMX = c->rmx, RNX = c->rnx, ws = c->ui->signed_q;
  const int64_t K = c->k, ldq = c->ldq, ldg = c->ldg, G = K / 16;
  /* scratch: RNX unpacked rows, then their scales and offsets (padding zeroed once) */
  uint8_t *pq = scratch;
  float *psw = (float *)(pq + RNX * ldq), *pmw = psw + RNX * ldg;
  for (int j = 0; j < RNX; j++)
    for (int64_t g = G; g < ldg; g++) psw[j * ldg + g] = pmw[j * ldg + g] = 0.0f;
  q8_tile t = {.wq = pq, .sw = psw, .mw = c->ui->has_offset ? pmw : NULL, .k = K, .ldq = ldq, .ldg = ldg};
  float out[16];
  for (int64_t mc0 = mb; mc0 < me; mc0 += MCQ) {
    const int64_t mc1 = mc0 + MCQ < me ? mc0 + MCQ : me;
    for (int64_t n0 = nb; n0 < ne; n0 += RNX) {
      const int rn = (int)(ne - n0 < RNX ? ne - n0 : RNX);
      for (int j = 0; j < RNX; j++) {
        if (j < rn) {
          c->ui->unpack(c->w + (n0 + j) * c->w_row_bytes, c->w_blocks, pq + j * ldq, psw + j * ldg, pmw + j * ldg);
        } else { /* past the last row: zeros (outputs discarded) */
          memset(pq + j * ldq, 0, (size_t)ldq);
          memset(psw + j * ldg, 0, (size_t)ldg * sizeof(float));
          memset(pmw + j * ldg, 0, (size_t)ldg * sizeof(float));
        }
      }
      for (int64_t m0 = mc0; m0 < mc1; m0 += RMX) {
        const int rm = (int)(mc1 - m0 < RMX ? mc1 - m0 : RMX);
        for (int i = 0; i < rm; i++) {
          t.xq[i] = c->xq + (m0 + i) * ldq;
          t.xd[i] = c->xd + (m0 + i) * ldg;
          t.xs[i] = c->xs + (m0 + i) * ldg;
        }
        switch (c->path) {
#ifdef HR_X86
          case PATH_AVX512VNNI: tiles512__vnni[ws][rm - 1](&t, out); break;
          case PATH_AVX512: tiles512__bw[ws][rm - 1](&t, out); break;
          case PATH_AVXVNNI: tiles256__avxvnni[ws][rm - 1](&t, out); break;
          case PATH_AVX2: tiles256__avx2[ws][rm - 1](&t, out); break;
#endif
          default: { /* portable: one pair at a time */
            q8_tile t1 = t;
            for (int i = 0; i < rm; i++)
              for (int j = 0; j < RNX; j++) {
                t1.xq[0] = t.xq[i];
                t1.xd[0] = t.xd[i];
                t1.xs[0] = t.xs[i];
                t1.wq = pq + j * ldq;
                t1.sw = psw + j * ldg;
                t1.mw = t.mw ? pmw + j * ldg : NULL;
                qtile_c(&t1, out + i * RNX + j, ws);
              }
          } break;
        }
        for (int i = 0; i < rm; i++) {
          float *yr = c->y + (m0 + i) * c->n + n0;
          for (int j = 0; j < rn; j++) yr[j] = out[i * RNX + j] + (c->bias ? c->bias[n0 + j] : 0.0f);
        }
      }
    }
  }
}

/* ---- small M (decode): direct kernels over the weight blocks (gemv_q8.c) ---- */

int hr_cpu_q8_gemv_max_m = 16;

typedef struct {
  const q8_ctx *c;
  hr_gemv_fn fn[4];
  int64_t rows_per_task, block_bytes;
} gemv_ctx;

static void gemv_task(void *vg, int64_t task, int thread, void *scratch) {
  (void)thread;
  (void)scratch;
  const gemv_ctx *g = vg;
  const q8_ctx *c = g->c;
  const int64_t n0 = task * g->rows_per_task, n1 = n0 + g->rows_per_task < c->n ? n0 + g->rows_per_task : c->n;
  const int64_t nb = c->w_blocks;
  for (int64_t m0 = 0; m0 < c->m; m0 += 4) {
    const int R = (int)(c->m - m0 < 4 ? c->m - m0 : 4);
    hr_gemv_rows xr;
    for (int r = 0; r < R; r++) {
      xr.q[r] = c->xq + (m0 + r) * c->ldq;
      xr.d[r] = c->xd + (m0 + r) * c->ldg;
      xr.s[r] = c->xs + (m0 + r) * c->ldg;
      xr.b[r] = c->xb + (m0 + r) * c->ldg;
    }
    float out[4];
    for (int64_t n = n0; n < n1; n++) {
      g->fn[R - 1](c->w + n * c->w_row_bytes, nb, &xr, out);
      for (int r = 0; r < R; r++) c->y[(m0 + r) * c->n + n] = out[r] + (c->bias ? c->bias[n] : 0.0f);
    }
  }
}

static int gemv_run(const q8_ctx *c, int64_t wtype, int64_t block_bytes, int64_t threads) {
  static const int VARIANT[] = {[PATH_AVX2] = HR_GEMV_AVX2,
                                [PATH_AVXVNNI] = HR_GEMV_AVXVNNI,
                                [PATH_AVX512] = HR_GEMV_AVX512BW,
                                [PATH_AVX512VNNI] = HR_GEMV_AVX512VNNI};
  gemv_ctx g = {.c = c, .block_bytes = block_bytes};
  for (int r = 0; r < 4; r++) {
    g.fn[r] = hr_gemv_q8_lookup(wtype, VARIANT[c->path], r + 1);
    if (!g.fn[r]) return hr_fail(HR_E_UNSUPPORTED, "matmul: no small-M kernel for weight type %lld", (long long)wtype);
  }
  /* rows in ~8 tasks per thread (claimed dynamically, so a busy core does not hold the step) */
  const double flops = 2.0 * (double)c->m * (double)c->n * (double)c->k;
  int64_t tasks = flops < 2e5 || threads == 1 ? 1 : threads * 8;
  if (tasks > c->n) tasks = c->n;
  g.rows_per_task = (c->n + tasks - 1) / tasks;
  return hrt_parallel((c->n + g.rows_per_task - 1) / g.rows_per_task, 0, gemv_task, &g);
}

int hr_cpu_matmul_q8(float *y, const float *x, const void *w, int64_t wtype, const float *bias, const int32_t *rows,
                     int64_t m, int64_t n, int64_t k) {
  const hr_quant_info *qi = hr_quant_lookup(wtype);
  const hr_qunpack_info *ui = hr_qunpack_lookup(wtype);
  if (!qi || !ui)
    return hr_fail(HR_E_UNSUPPORTED, "matmul: weight type %lld is not supported by the CPU backend", (long long)wtype);
  if (k % qi->block_elems != 0)
    return hr_fail(HR_E_INVALID, "matmul: %s weights need k (%lld) to be a multiple of %lld", qi->name, (long long)k,
                   (long long)qi->block_elems);
  q8_ctx c = {.y = y, .bias = bias, .w = w, .ui = ui, .m = m, .n = n, .k = k, .path = choose_path()};
  c.w_blocks = k / qi->block_elems;
  c.w_row_bytes = c.w_blocks * qi->block_bytes;
  c.ldq = (k + 63) & ~(int64_t)63;
  c.ldg = ((k / 16) + 15) & ~(int64_t)15;
  switch (c.path) {
    case PATH_AVX512VNNI:
    case PATH_AVX512:
      c.rmx = 4;
      c.rnx = 4;
      break;
    case PATH_AVXVNNI:
    case PATH_AVX2:
      c.rmx = 2;
      c.rnx = Q8_RN256;
      break;
    default:
      c.rmx = 1;
      c.rnx = 4;
      break;
  }
  /* activations: int8 rows, then per-16 scales, per-16 offset operands, per-16 integer sums */
  size_t qbytes = (size_t)(m * c.ldq), fbytes = (size_t)(m * c.ldg) * sizeof(float);
  size_t total = qbytes + 2 * fbytes + fbytes / 2;
  uint8_t *buf = act_buffer(total);
  if (!buf) return hr_fail(HR_E_OOM, "matmul: cannot allocate %zu bytes for quantized activations", total);
  c.xq = (const int8_t *)buf;
  c.xd = (const float *)(buf + qbytes);
  c.xs = (const float *)(buf + qbytes + fbytes);
  c.xb = (const int16_t *)(buf + qbytes + 2 * fbytes);
  int64_t threads = hrt_num_threads();
  quant_ctx qc = {.x = x,
                  .rows = rows,
                  .m = m,
                  .k = k,
                  .kind = hr_act_kind(wtype),
                  .ldq = c.ldq,
                  .ldg = c.ldg,
                  .xq = (int8_t *)c.xq,
                  .xd = (float *)c.xd,
                  .xs = (float *)c.xs,
                  .xb = (int16_t *)c.xb};
  if (m * k >= (1 << 16) && threads > 1) { /* big prefill: quantize rows in parallel */
    qc.per_task = (m + threads * 4 - 1) / (threads * 4);
    int st = hrt_parallel((m + qc.per_task - 1) / qc.per_task, 0, quant_task, &qc);
    if (st != HR_OK) return st;
  } else {
    qc.per_task = m;
    quant_task(&qc, 0, 0, NULL);
  }
  if (m <= hr_cpu_q8_gemv_max_m && c.path != PATH_SCALAR) return gemv_run(&c, wtype, qi->block_bytes, threads);
  /* task grid as the fp32 matmul: ~4 N chunks per thread, M split only when N cannot feed them */
  const int64_t rn = c.rnx, panels = (n + rn - 1) / rn;
  if (2.0 * (double)m * (double)n * (double)k < 2e5) threads = 1;
  int64_t want_n = threads == 1 ? 1 : threads * 4;
  if (want_n > panels) want_n = panels;
  c.n_chunk = (panels + want_n - 1) / want_n * rn;
  c.n_tasks_n = (n + c.n_chunk - 1) / c.n_chunk;
  int64_t tasks_m = 1;
  if (c.n_tasks_n < threads * 2 && m >= 2 * MCQ) {
    tasks_m = (threads * 2 + c.n_tasks_n - 1) / c.n_tasks_n;
    if (tasks_m > (m + MCQ - 1) / MCQ) tasks_m = (m + MCQ - 1) / MCQ;
  }
  c.m_chunk = (m + tasks_m - 1) / tasks_m;
  size_t scratch = (size_t)(c.rnx * c.ldq) + 2 * (size_t)(c.rnx * c.ldg) * sizeof(float);
  return hrt_parallel(c.n_tasks_n * tasks_m, scratch, q8_task, &c);
}
