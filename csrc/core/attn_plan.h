/*
 * Internal: the decode-attention plan's layout in the head of the workspace (headroom.h
 * "Decode-attention plan"), shared by core (which writes it), the CPU backend (which checks it)
 * and the CUDA kernels (which run it). All int32 words:
 *
 *   header [HR_DPLAN_HEADER]      magic, the shapes it was made for, partition, counts
 *   pair_seq  [pair_cap]          work pairs, longest first: sequence ...
 *   pair_part [pair_cap]          ... and partition index inside it
 *   seq_ws    [num_seqs]          first workspace pair of the sequence, -1 = one partition
 *                                 (the kernel writes its output directly)
 *   seq_nparts[num_seqs]          partitions of the sequence: ceil(seq_len / partition)
 *
 * The offsets depend on the op's own arguments (num_seqs, num_q_heads, num_kv_heads), never on
 * the header, so a stale or garbage plan can be detected but never sends a read out of bounds.
 * The split-K partials follow at hr_dplan_bytes(): max [rows], sum [rows], out [rows][head_dim]
 * (float32) with rows = hr_dplan_ws_pairs_cap(...) * num_q_heads, row (seq_ws[s] + p) * hq + h.
 */
#ifndef HR_ATTN_PLAN_H
#define HR_ATTN_PLAN_H

#include <stdint.h>

#include "../include/headroom.h"

#ifdef __CUDACC__
#define HR_PLAN_FN static __host__ __device__ __forceinline__
#else
#define HR_PLAN_FN static inline
#endif

#define HR_DPLAN_MAGIC 0x48524450 /* "HRDP" */
enum {
  HR_DPLAN_W_MAGIC,
  HR_DPLAN_W_B,
  HR_DPLAN_W_HQ,
  HR_DPLAN_W_HK,
  HR_DPLAN_W_D,
  HR_DPLAN_W_BS,
  HR_DPLAN_W_MAXB,
  HR_DPLAN_W_PART,
  HR_DPLAN_W_PAIRS,
  HR_DPLAN_W_WS_PAIRS,
  HR_DPLAN_HEADER = 16
};

/* Query heads one CTA serves at most; larger GQA groups take ceil(g / 8) head batches. */
#define HR_DPLAN_HEADS_PER_CTA 8
/* Shortest partition (tokens, rounded up to a multiple of block_size): the automatic plan
 * makes none shorter, and the workspace bound assumes none shorter. */
#define HR_DPLAN_MIN_PART 64

HR_PLAN_FN int64_t hr_dplan_head_batches(int64_t hq, int64_t hk) {
  const int64_t g = hq / hk;
  return (g + HR_DPLAN_HEADS_PER_CTA - 1) / HR_DPLAN_HEADS_PER_CTA;
}
/* Shortest partition in tokens for this block size. */
HR_PLAN_FN int64_t hr_dplan_min_part(int64_t bs) { return (HR_DPLAN_MIN_PART + bs - 1) / bs * bs; }
/* Pairs that may go through the workspace (the bound the workspace is sized by): at most
 * HR_DECODE_MAX_WORK CTAs' worth, and at most what b sequences of the longest context cut
 * into the shortest partitions make (0 when no context can split). */
HR_PLAN_FN int64_t hr_dplan_ws_pairs_cap(int64_t b, int64_t hq, int64_t hk, int64_t bs, int64_t maxb) {
  const int64_t per_pair = hk * hr_dplan_head_batches(hq, hk);
  const int64_t min_part = hr_dplan_min_part(bs);
  const int64_t parts = (maxb * bs + min_part - 1) / min_part;
  if (per_pair >= HR_DECODE_MAX_WORK || parts < 2) return 0;
  const int64_t c = HR_DECODE_MAX_WORK / per_pair;
  return b * parts < c ? b * parts : c;
}
/* Capacity of the pair arrays: one pair per unsplit sequence plus the bounded split pairs. */
#define HR_DPLAN_SHAPE int64_t b, int64_t hq, int64_t hk, int64_t bs, int64_t maxb
#define HR_DPLAN_ARGS b, hq, hk, bs, maxb
HR_PLAN_FN int64_t hr_dplan_pair_cap(HR_DPLAN_SHAPE) { return b + hr_dplan_ws_pairs_cap(HR_DPLAN_ARGS); }
HR_PLAN_FN int64_t hr_dplan_words(HR_DPLAN_SHAPE) {
  return HR_DPLAN_HEADER + 2 * hr_dplan_pair_cap(HR_DPLAN_ARGS) + 2 * b;
}
/* Bytes of the plan, rounded to 256 so the partials after it stay aligned. */
HR_PLAN_FN int64_t hr_dplan_bytes(HR_DPLAN_SHAPE) { return (hr_dplan_words(HR_DPLAN_ARGS) * 4 + 255) / 256 * 256; }
/* Word offsets of the arrays. */
HR_PLAN_FN int64_t hr_dplan_pair_seq_at(void) { return HR_DPLAN_HEADER; }
HR_PLAN_FN int64_t hr_dplan_pair_part_at(HR_DPLAN_SHAPE) { return HR_DPLAN_HEADER + hr_dplan_pair_cap(HR_DPLAN_ARGS); }
HR_PLAN_FN int64_t hr_dplan_seq_ws_at(HR_DPLAN_SHAPE) { return HR_DPLAN_HEADER + 2 * hr_dplan_pair_cap(HR_DPLAN_ARGS); }
HR_PLAN_FN int64_t hr_dplan_seq_nparts_at(HR_DPLAN_SHAPE) { return hr_dplan_seq_ws_at(HR_DPLAN_ARGS) + b; }

/* Backend hook: CTAs of the decode kernel one wave of the device holds for these shapes
 * (CUDA: occupancy x SMs; CPU: HR_DECODE_MAX_WORK). */
struct hr_instance;
int hrb_attn_decode_ctas(struct hr_instance *inst, int64_t dtype, int64_t kv_dtype, int64_t head_dim,
                         int64_t *ctas_out);

/* CPU executors check a plan against the op's arguments and the host-readable seq_lens:
 * HR_E_INVALID naming the mismatch (a stale plan is an engine bug worth a loud error). */
int hr_dplan_check(const char *call, const int32_t *plan, const int32_t *seq_lens, int64_t b, int64_t hq, int64_t hk,
                   int64_t d, int64_t bs, int64_t maxb);

#endif
