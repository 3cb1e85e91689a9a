// What the two CUDA prefill attention kernels share: their launch parameters and the
// tensor-core kernel's entry. ops_attention_prefill.cu decodes the op's arguments, and
// launches the tensor-core kernel (ops_attention_prefill_tc.cu) when it takes the shape, else
// its own CUDA-core kernel (fp32 activations, other head dims, unaligned buffers, or
// HEADROOM_CUDA_PREFILL=simt).
#ifndef HR_CUDA_ATTENTION_PREFILL_CUH
#define HR_CUDA_ATTENTION_PREFILL_CUH

#include "cuda_common.cuh"

struct HrcPrefillParams {
  void *out;
  const void *q, *kc, *vc;
  const int32_t *bt, *seq_lens, *qsl;
  int64_t B, T, hq, hk, d, num_blocks, bs, maxb, qs, max_ctx;
  int64_t g;
  int64_t window;       // sliding window (0 = full): row at pos sees keys pos - window < t <= pos
  float scale, softcap; // softcap 0 = off; scale includes k_scale
  float v_scale;
  HrcKvBound bound; // block ids >= the mapped blocks are bad (read at run time)
};

// True when the tensor-core kernel handles this call: 16-bit activations, head_dim 64, 128 or
// 256, and q / out / caches aligned for 16-byte vector access (q_stride a multiple of 8).
bool hrc_prefill_tc_takes(const HrcPrefillParams &p, int64_t dtype);

// Queues the tensor-core kernel on st's stream (hrc_prefill_tc_takes must hold).
int hrc_prefill_tc_launch(hrc_state *st, const char *call, const HrcPrefillParams &p, int64_t dtype, int64_t kv_dtype);

#endif
