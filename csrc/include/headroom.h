/*
 * headroom.h — the whole C ABI of libheadroom_{cpu,cuda}.so.
 *
 * Conventions (see DESIGN.md, "The C ABI"):
 *  - Every function returns an int status (HR_OK = 0, negative on failure) unless it
 *    is a pure query documented otherwise (hr_abi_version, hr_last_error, names).
 *  - On failure, hr_last_error() returns a thread-local message naming the call and the
 *    values involved. Nothing here aborts, exits or prints.
 *  - Only scalars and pointers cross the boundary. Handles are opaque uint64_t (< 2^52, so a
 *    JS number holds them) from one table that records each handle's kind and generation: a
 *    closed, destroyed, forged or wrong-kind handle (a graph set passed as a device, ...) is
 *    HR_E_INVALID naming the kinds, never a crash.
 *    Device pointers are uint64_t addresses (on the CPU backend they are host addresses).
 *  - Out-values are written through pointers to int64_t/uint64_t/double.
 */
#ifndef HEADROOM_H
#define HEADROOM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HR_API __attribute__((visibility("default")))
#else
#define HR_API
#endif

/* Bumped whenever a signature or a documented array layout changes. */
#define HR_ABI_VERSION 4

/* ---- status codes ------------------------------------------------------------------ */
#define HR_OK 0
#define HR_E_INVALID (-1)     /* bad argument: null pointer, zero/oversized size, bad handle */
#define HR_E_OOM (-2)         /* out of device memory (after releasing cached blocks) */
#define HR_E_STATE (-3)       /* call not valid in the current state */
#define HR_E_BACKEND (-4)     /* the backend (CUDA, OS) reported an error */
#define HR_E_IO (-5)          /* file or I/O error */
#define HR_E_UNSUPPORTED (-6) /* not supported by this backend or build */
#define HR_E_NODEVICE (-7)    /* no usable device (e.g. no CUDA driver) */

HR_API int hr_abi_version(void);
/* Thread-local message for the last failing call on this thread ("" if none). */
HR_API const char *hr_last_error(void);
/* "HR_OK", "HR_E_OOM", ... ; "HR_E_UNKNOWN" for other values. */
HR_API const char *hr_status_name(int status);
/* "cpu" or "cuda". */
HR_API const char *hr_backend_name(void);

/* ---- host ------------------------------------------------------------------------- */
/* Total host memory in bytes (sysconf), and currently available (/proc/meminfo MemAvailable). */
HR_API int hr_get_cpu_memory(uint64_t *total_out, uint64_t *available_out);

/* ---- devices ----------------------------------------------------------------------- */
HR_API int hr_device_count(int64_t *count_out);

/*
 * Opens an *instance* on device `ordinal` and returns its handle. Several instances may be
 * open on one device (e.g. two servers sharing a GPU); each has its own caching allocator.
 * CPU backend: the device is a capacity-limited region of host memory shared by every
 * instance of this process on that ordinal. `cpu_capacity_bytes` sets the capacity when the
 * device is first opened (0 = default: half of host memory); later opens must pass 0 or the
 * same value. CUDA backend: `cpu_capacity_bytes` must be 0.
 */
HR_API int hr_device_open(int64_t ordinal, uint64_t cpu_capacity_bytes, uint64_t *dev_out);
/* Closes an instance and releases everything created on it, in this order: its graph sets (an
 * open capture is aborted; then the device is waited for), copy engines (pending copies
 * waited for, CPU copy threads joined), host buffers, backend objects (CUDA events, cuBLAS
 * handle, stream), reserved ranges, and its allocator's memory. Their handles become invalid. */
HR_API int hr_device_close(uint64_t dev);

/* Like cudaMemGetInfo: free and total bytes of the whole device (all instances, all users). */
HR_API int hr_device_mem_info(uint64_t dev, uint64_t *free_out, uint64_t *total_out);

/* Layout of hr_device_info's out array (int64_t each). */
#define HR_INFO_TOTAL_BYTES 0
#define HR_INFO_FREE_BYTES 1
#define HR_INFO_CC_MAJOR 2 /* compute capability; 0 on CPU */
#define HR_INFO_CC_MINOR 3
#define HR_INFO_MAX_SHARED_PER_BLOCK 4 /* bytes (opt-in max on CUDA); 0 on CPU */
#define HR_INFO_MULTIPROCESSORS 5      /* SMs on CUDA; online cores on CPU */
#define HR_INFO_UNIFIED_MEMORY 6       /* 1 if device memory is host memory (CPU, GH200-class) */
#define HR_INFO_CPU_FEATURES 7         /* bit set of HR_CPU_* on CPU; 0 on CUDA */
#define HR_INFO_ORDINAL 8
#define HR_INFO_COUNT 9
#define HR_CPU_SSE4_2 (1 << 0)
#define HR_CPU_AVX (1 << 1)
#define HR_CPU_AVX2 (1 << 2)
#define HR_CPU_FMA (1 << 3)
#define HR_CPU_AVX512F (1 << 4)
#define HR_CPU_NEON (1 << 5)
/* Writes min(n, HR_INFO_COUNT) values into out. */
HR_API int hr_device_info(uint64_t dev, int64_t *out, int64_t n);
/* Device name into buf (NUL-terminated, truncated to len). */
HR_API int hr_device_name(uint64_t dev, char *buf, int64_t len);

/*
 * Test hooks for the memory model (CPU backend only; HR_E_UNSUPPORTED on CUDA).
 * HR_SIM_OTHER_PROCESS: bytes of the device used by "another process" (category 1).
 * HR_SIM_NON_ALLOCATOR: bytes this instance uses outside its allocator (category 3,
 *   like a CUDA context or cuBLAS workspace).
 * Setting replaces the previous value; fails with HR_E_OOM if the device has no room.
 */
#define HR_SIM_OTHER_PROCESS 0
#define HR_SIM_NON_ALLOCATOR 1
HR_API int hr_device_simulate_usage(uint64_t dev, int64_t kind, uint64_t bytes);

/* ---- caching allocator (csrc/core/allocator.c) --------------------------------------- */
/*
 * Every device allocation the project makes goes through the instance's caching allocator.
 * Sizes are rounded up to 512 B. Requests <= 1 MiB come from the small pool (2 MiB segments),
 * larger from the large pool (20 MiB segments for < 10 MiB, else rounded up to 2 MiB).
 */
HR_API int hr_alloc(uint64_t dev, uint64_t size, uint64_t *ptr_out);
HR_API int hr_free(uint64_t dev, uint64_t ptr);
/* Upper bound on reserved bytes for this instance (0 = no limit but the device's). */
HR_API int hr_allocator_set_limit(uint64_t dev, uint64_t limit_bytes);
/* Releases every cached (wholly free) segment back to the device. */
HR_API int hr_allocator_empty_cache(uint64_t dev);
HR_API int hr_allocator_reset_peak(uint64_t dev);

/*
 * Stats layout: four stat groups, each with HR_STAT_* (current, peak, allocated, freed),
 * followed by counters.
 */
#define HR_STAT_CURRENT 0
#define HR_STAT_PEAK 1
#define HR_STAT_ALLOCATED 2        /* cumulative */
#define HR_STAT_FREED 3            /* cumulative */
#define HR_STATS_ALLOCATED_BYTES 0 /* bytes handed out to callers (rounded sizes) */
#define HR_STATS_RESERVED_BYTES 4  /* bytes of segments held from the device */
#define HR_STATS_ACTIVE_BYTES 8    /* allocated + blocks pending free (same as allocated here) */
#define HR_STATS_SEGMENT 12        /* number of segments */
#define HR_STATS_NUM_ALLOC_RETRIES 16
#define HR_STATS_NUM_OOMS 17
#define HR_STATS_NUM_ALLOCS 18 /* live blocks in use (count) */
#define HR_STATS_LIMIT 19      /* the current limit, 0 = none */
#define HR_STATS_COUNT 20
HR_API int hr_allocator_stats(uint64_t dev, int64_t *out, int64_t n);

/*
 * Snapshot of segments and blocks, as rows of HR_SNAP_ROW int64 values:
 *   [kind (0 = segment, 1 = block), address, size, allocated (0/1), pool id, segment address]
 * Segments are followed by their blocks in address order. `rows_out` receives the number of
 * rows needed; if it exceeds `max_rows`, only `max_rows` rows are written and HR_OK is still
 * returned (call again with a bigger buffer).
 */
#define HR_SNAP_ROW 6
HR_API int hr_allocator_snapshot(uint64_t dev, int64_t *out, int64_t max_rows, int64_t *rows_out);

/*
 * Private pools (graph capture): while a pool is active on this instance, allocations are
 * served from segments belonging to that pool only; frees go back to the block's own pool.
 * A pool's segments are released when the pool is destroyed and none of its blocks is live.
 */
HR_API int hr_pool_create(uint64_t dev, uint64_t *pool_out);
HR_API int hr_pool_begin(uint64_t dev, uint64_t pool); /* route allocations to pool */
HR_API int hr_pool_end(uint64_t dev);                  /* back to the default pool */
HR_API int hr_pool_destroy(uint64_t dev, uint64_t pool);
/* Bytes reserved by a pool's segments. */
HR_API int hr_pool_reserved(uint64_t dev, uint64_t pool, uint64_t *bytes_out);

/* ---- reserve-then-map regions (the KV cache: "capture first, size last") ------------- */
/*
 * Reserves a virtual address range of `num_slices` equal slices of `slice_bytes` each (rounded
 * up to the granularity; `slice_stride_out` is the rounded size) without physical memory
 * (CUDA: cuMemAddressReserve; CPU: mmap(PROT_NONE)). Addresses are stable, so graphs can be
 * captured against them before the size is known. The KV cache uses one slice per layer and
 * K/V (2 x layers slices), so every layer's cache has a fixed address whatever its final size.
 * Bounded: all slices are mapped alike, so no slice can ever hold more than the device's total
 * bytes / num_slices; the stride is min(slice_bytes, that share), rounded up to the
 * granularity (use slice_stride_out, not slice_bytes). Asking for the whole device per slice
 * thus reserves about one device of address space for the whole range, and several
 * instances fit. A failed reservation is HR_E_BACKEND ("virtual address space"), not HR_E_OOM.
 * Kernels and executors bound paged-KV block ids by the blocks *mapped* when they run (also in
 * replayed graphs, which were captured against the reserved count): CPU executors fail with
 * HR_E_INVALID, CUDA kernels treat such a block like any bad index (NaN / skipped write).
 * hr_vmm_reserve, hr_vmm_map and hr_vmm_release are HR_E_STATE while the instance captures.
 */
HR_API int hr_vmm_reserve(uint64_t dev, uint64_t slice_bytes, int64_t num_slices, uint64_t *base_out,
                          uint64_t *granularity_out, uint64_t *slice_stride_out);
/*
 * Makes exactly the first `bytes_per_slice` bytes of every slice usable (a multiple of the
 * granularity, at most the slice size), mapping or unmapping physical memory as needed (CUDA:
 * cuMemCreate + cuMemMap + cuMemSetAccess; CPU: commit against the device capacity). What
 * stays mapped keeps its contents, on a grow and on a shrink (CUDA: a physical chunk the new
 * end cuts through is replaced by a smaller one holding the same bytes, copied on the device,
 * or through host memory when the device has no room for the copy).
 * HR_E_OOM if the device has no room; the previous mapping is then unchanged, except when a
 * shrink had to replace a cut chunk and that failed: every slice then keeps only the bytes
 * before that chunk (contents kept), the message says how many bytes per slice are mapped,
 * and hr_vmm_mapped_bytes reports it.
 */
HR_API int hr_vmm_map(uint64_t dev, uint64_t base, uint64_t bytes_per_slice);
/* Unmaps and frees the whole range. */
HR_API int hr_vmm_release(uint64_t dev, uint64_t base);
/* Total bytes currently mapped by this instance over all its ranges and slices. */
HR_API int hr_vmm_mapped_bytes(uint64_t dev, uint64_t *bytes_out);

/* ---- memory transfer --------------------------------------------------------------- */
/* Synchronous copies between host memory and device memory of this instance. */
HR_API int hr_memcpy_h2d(uint64_t dev, uint64_t dst, const void *src, uint64_t bytes);
HR_API int hr_memcpy_d2h(uint64_t dev, void *dst, uint64_t src, uint64_t bytes);
HR_API int hr_memcpy_d2d(uint64_t dev, uint64_t dst, uint64_t src, uint64_t bytes);
HR_API int hr_memset(uint64_t dev, uint64_t dst, int64_t byte_value, uint64_t bytes);
/*
 * Host-to-device copy that does not wait for the device: `src` (any host memory) is copied into
 * a pinned staging ring owned by the instance before the call returns, so the caller may reuse
 * `src` at once; the device copy is queued on the instance's stream, ordered with its ops, and
 * the host never waits for queued work unless the ring is full of copies still in flight (then
 * it waits for the oldest ones). This is how per-step inputs (token ids, positions, block tables,
 * sampling parameters, the decode plan) reach the device. CPU: a plain copy. The ring is pinned
 * host memory (1 MiB, grown to the largest single copy), freed when the instance closes; it is
 * not part of hr_host_bytes. Refused during graph capture, like the synchronous copies.
 */
HR_API int hr_memcpy_h2d_async(uint64_t dev, uint64_t dst, const void *src, uint64_t bytes);
/* Waits for all work queued on this instance. */
HR_API int hr_synchronize(uint64_t dev);

/* ---- ops ------------------------------------------------------------------------- */
/*
 * Compute ops on device buffers (csrc/core/ops_dispatch.c validates, backends execute).
 * Every op takes the instance handle first, then a dtype, then device pointers (uint64_t,
 * host addresses on the CPU backend), then shapes (int64_t, element counts). Tensors are
 * dense row-major unless a *_stride argument (in elements, 0 = dense) says otherwise.
 * Index arrays (ids, positions, slot_mapping, block_tables, seq_lens, query_start_loc,
 * row_ids) are int32 device buffers. The CPU backend computes in fp32 only and returns
 * HR_E_UNSUPPORTED for other dtypes. Values inside index arrays are checked by the
 * executor (HR_E_INVALID naming the offending index) where the backend can read them.
 * Ops run synchronously on the CPU backend (queued on the instance's stream on CUDA).
 */
#define HR_DTYPE_F32 0
#define HR_DTYPE_F16 1
#define HR_DTYPE_BF16 2
/* 8-bit floats, KV cache only (kv_dtype below): OCP FP8 E4M3 (max 448, no inf) and E5M2 (max 57344). */
#define HR_DTYPE_FP8_E4M3 3
#define HR_DTYPE_FP8_E5M2 4

/*
 * Worker threads used by CPU ops (process-wide pool; `dev` is validated only).
 * n <= 0 restores the default: env HEADROOM_NUM_THREADS, else the CPUs this process may
 * run on. No-op (HR_OK) on CUDA.
 */
HR_API int hr_set_num_threads(uint64_t dev, int64_t n);
HR_API int hr_get_num_threads(uint64_t dev, int64_t *n_out);

/* out[t, :] = table[ids[t], :] for t < num_tokens; ids in [0, num_rows). Also gathers
 * hidden-state rows (e.g. the last token of each sequence) when table is activations. */
HR_API int hr_op_embedding(uint64_t dev, int64_t dtype, uint64_t out, uint64_t table, uint64_t ids, int64_t num_tokens,
                           int64_t num_rows, int64_t dim);

/*
 * RMSNorm over rows of length dim. If residual != 0 (fused add, like vLLM's
 * fused_add_rms_norm): x = x + residual is written back into x first. Then
 * out = x * rsqrt(mean(x^2) + eps) * weight. out may equal x.
 */
HR_API int hr_op_rms_norm(uint64_t dev, int64_t dtype, uint64_t out, uint64_t x, uint64_t residual, uint64_t weight,
                          int64_t rows, int64_t dim, double eps);

/*
 * RMSNorm (no residual) of rows laid out in groups: row j of group g starts group_stride * g +
 * dim * j elements into x and into out (out may equal x). For the per-head q/k norms (Qwen3,
 * Gemma 3) read inside a fused QKV output [T, q + 2 kv]: groups = tokens, rows_per_group =
 * heads, dim = head_dim, group_stride = q + 2 kv. group_stride >= rows_per_group * dim.
 */
HR_API int hr_op_rms_norm_strided(uint64_t dev, int64_t dtype, uint64_t out, uint64_t x, uint64_t weight,
                                  int64_t groups, int64_t rows_per_group, int64_t dim, int64_t group_stride,
                                  double eps);

/*
 * Rotary embedding in place on q [T, Hq, head_dim] and k [T, Hk, head_dim] (k may be 0)
 * at positions[T]. The first rotary_dim (even, <= head_dim; 0 = head_dim) dims of each
 * head are rotated with angle positions[t] * inv_freq[i], inv_freq a float32 device
 * array of rotary_dim/2 values (scaling such as linear/llama3 is folded in by the caller).
 * q_stride/k_stride: elements between tokens (0 = H*head_dim), e.g. slices of a fused QKV.
 */
#define HR_ROPE_NEOX 0 /* rotate-half (HF Llama): pairs (i, i + rotary_dim/2) */
#define HR_ROPE_GPTJ 1 /* interleaved (Meta Llama, GGUF): pairs (2i, 2i + 1) */
HR_API int hr_op_rope(uint64_t dev, int64_t dtype, uint64_t q, uint64_t k, uint64_t positions, uint64_t inv_freq,
                      int64_t num_tokens, int64_t num_q_heads, int64_t num_kv_heads, int64_t head_dim,
                      int64_t rotary_dim, int64_t layout, int64_t q_stride, int64_t k_stride);

/* y[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n] if bias != 0). w is [n, k] row-major
 * (HF/GGUF [out, in]). y must not overlap x or w. */
HR_API int hr_op_matmul(uint64_t dev, int64_t dtype, uint64_t y, uint64_t x, uint64_t w, uint64_t bias, int64_t m,
                        int64_t n, int64_t k);

/*
 * Quantized weights: GGUF (ggml) block formats kept on the device exactly as the file stores
 * them (weight bytes on the device == the file's tensor bytes). A weight type `wtype` is either
 * the op's dtype (plain weights) or an HR_QTYPE_* value (100 + the ggml type id). Rows are
 * quantized along k, so k must be a multiple of the type's block size (32, or 256 for K-quants).
 * x, y, bias and embedding outputs stay in the op's dtype. The CPU backend quantizes x to int8
 * blocks once per call (32 elements per scale, 256 for K-quants, as llama.cpp's q8_0/q8_K) and
 * uses integer dot products, so results differ from an fp32 product of the dequantized weights
 * by that rounding (at most half a step, amax/254, per element of x).
 *
 * 16-bit weights: with dtype HR_DTYPE_F32, wtype may also be HR_DTYPE_BF16 or HR_DTYPE_F16
 * (CPU backend): the weights (or embedding table) stay 16-bit in memory, x, y and bias are
 * float32. bf16 weights on a CPU with AVX512-BF16 round x to bf16 once per call (vdpbf16ps,
 * relative error <= 2^-8 per element of x); otherwise products are fp32 of the widened weights.
 * The CUDA backend answers HR_E_UNSUPPORTED for this combination.
 */
#define HR_QTYPE_BASE 100
#define HR_QTYPE_Q4_0 102
#define HR_QTYPE_Q4_1 103
#define HR_QTYPE_Q5_0 106
#define HR_QTYPE_Q5_1 107
#define HR_QTYPE_Q8_0 108
#define HR_QTYPE_Q4_K 112
#define HR_QTYPE_Q5_K 113
#define HR_QTYPE_Q6_K 114
/* Elements and bytes per block of a quantized type (host-side helper; no instance). */
HR_API int hr_quant_block_info(int64_t qtype, int64_t *block_elems_out, int64_t *block_bytes_out);
/* Dequantizes `count` elements (a multiple of the block size) from host memory: the reference rule. */
HR_API int hr_dequantize(int64_t qtype, const void *src, float *dst, int64_t count);
/* hr_op_matmul / hr_op_logits / hr_op_embedding with a weight (table) of type wtype. */
HR_API int hr_op_matmul_q(uint64_t dev, int64_t dtype, int64_t wtype, uint64_t y, uint64_t x, uint64_t w, uint64_t bias,
                          int64_t m, int64_t n, int64_t k);
HR_API int hr_op_logits_q(uint64_t dev, int64_t dtype, int64_t wtype, uint64_t logits, uint64_t hidden,
                          uint64_t row_ids, int64_t num_rows, int64_t num_hidden_rows, uint64_t w, int64_t vocab,
                          int64_t dim);
HR_API int hr_op_embedding_q(uint64_t dev, int64_t dtype, int64_t wtype, uint64_t out, uint64_t table, uint64_t ids,
                             int64_t num_tokens, int64_t num_rows, int64_t dim);

/*
 * hr_op_matmul_q / hr_op_logits_q with a dequantization workspace (device memory, scratch):
 * the CUDA backend runs m > HR_MATMUL_Q_GEMM_MIN_M as prefill does best — chunks of weight rows
 * dequantized into `workspace` (elements of dtype) and multiplied on the tensor cores (cuBLAS,
 * fp32 accumulation); m at or below it (decode) keeps the dequantizing GEMV kernel. Any size
 * holding at least one row (k elements of dtype) works: fewer bytes, more chunks. workspace 0
 * (and workspace_bytes 0) = no workspace: the GEMV kernel for every m. The CPU backend ignores
 * the workspace (it dequantizes panels in cache).
 */
#define HR_MATMUL_Q_GEMM_MIN_M 32
HR_API int hr_op_matmul_q_ws(uint64_t dev, int64_t dtype, int64_t wtype, uint64_t y, uint64_t x, uint64_t w,
                             uint64_t bias, int64_t m, int64_t n, int64_t k, uint64_t workspace,
                             uint64_t workspace_bytes);
HR_API int hr_op_logits_q_ws(uint64_t dev, int64_t dtype, int64_t wtype, uint64_t logits, uint64_t hidden,
                             uint64_t row_ids, int64_t num_rows, int64_t num_hidden_rows, uint64_t w, int64_t vocab,
                             int64_t dim, uint64_t workspace, uint64_t workspace_bytes);

/* Logits for selected rows: logits[r, :] = hidden[row_ids[r], :] . w^T, r < num_rows,
 * row_ids in [0, num_hidden_rows); logits are always float32 [num_rows, vocab]. */
HR_API int hr_op_logits(uint64_t dev, int64_t dtype, uint64_t logits, uint64_t hidden, uint64_t row_ids,
                        int64_t num_rows, int64_t num_hidden_rows, uint64_t w, int64_t vocab, int64_t dim);

/* out[t, i] = silu(gate[t, i]) * up[t, i]; in_stride: elements between rows of gate/up
 * (0 = inter). For a merged gate_up [T, 2I]: gate = base, up = base + I elements,
 * in_stride = 2I. out is dense [T, inter]. */
HR_API int hr_op_silu_mul(uint64_t dev, int64_t dtype, uint64_t out, uint64_t gate, uint64_t up, int64_t rows,
                          int64_t inter, int64_t in_stride);

/* out[t, i] = gelu_tanh(gate[t, i]) * up[t, i] (Gemma's GeGLU, HF "gelu_pytorch_tanh"):
 * gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))). Arguments as hr_op_silu_mul. */
HR_API int hr_op_gelu_tanh_mul(uint64_t dev, int64_t dtype, uint64_t out, uint64_t gate, uint64_t up, int64_t rows,
                               int64_t inter, int64_t in_stride);

/* In place on n elements of x: x = x * scale (Gemma's embedding scale sqrt(hidden)). */
HR_API int hr_op_scale(uint64_t dev, int64_t dtype, uint64_t x, int64_t n, double scale);
/* In place on n elements of x: x = cap * tanh(x / cap), cap > 0 (Gemma 2 final logit
 * soft-capping; call with HR_DTYPE_F32 on the float32 logits). */
HR_API int hr_op_softcap(uint64_t dev, int64_t dtype, uint64_t x, int64_t n, double cap);

/*
 * Paged KV cache, per layer k_cache/v_cache [num_blocks, block_size, num_kv_heads, head_dim].
 * Writes key/value [T, Hk, head_dim] (kv_stride elements between tokens, 0 = Hk*head_dim)
 * into slots slot_mapping[t] = block * block_size + offset; slot -1 = padding (skipped).
 *
 * KV cache dtype (the last three arguments of kv_write and both attention ops): the cache
 * elements are of kv_dtype, which may differ from the activations' dtype: HR_DTYPE_F32/F16/BF16
 * or HR_DTYPE_FP8_E4M3/E5M2. Stored values are key / k_scale and value / v_scale (per layer,
 * like vLLM's k_scale/v_scale), rounded to nearest even in kv_dtype (fp8: saturated to the
 * format's finite max, NaN stays NaN); attention reads cache * scale. k_scale and v_scale must
 * be finite and > 0; use 1.0 for 16/32-bit caches. A backend returns HR_E_UNSUPPORTED for a
 * kv_dtype it does not implement.
 */
HR_API int hr_op_kv_write(uint64_t dev, int64_t dtype, uint64_t k_cache, uint64_t v_cache, uint64_t key, uint64_t value,
                          uint64_t slot_mapping, int64_t num_tokens, int64_t num_kv_heads, int64_t head_dim,
                          int64_t num_blocks, int64_t block_size, int64_t kv_stride, int64_t kv_dtype, double k_scale,
                          double v_scale);

/*
 * Paged decode attention: one query token per sequence. q [B, Hq, head_dim] (q_stride
 * elements between sequences, 0 = Hq*head_dim), out [B, Hq, head_dim] dense.
 * block_tables int32 [B, max_blocks_per_seq]; seq_lens int32 [B] (context incl. the current
 * token, whose K/V are already written; 1 <= seq_len <= max_blocks_per_seq*block_size).
 * Hq must be a multiple of Hk (GQA/MQA). Split-K: the context is cut in partitions of
 * partition_size tokens (a multiple of block_size; 0 = no split), processed in parallel,
 * then reduced. When more than one partition is possible, `workspace` must hold
 * hr_paged_attention_workspace_bytes(...) bytes (device memory; contents scratch).
 * partition_size = HR_DECODE_PLANNED: the partitions come from the plan at the head of
 * `workspace` (hr_attention_decode_plan above), which must hold
 * hr_attention_decode_workspace_bytes(...) bytes; this is what the engine uses.
 * window: sliding-window attention (Mistral v0.1, Qwen2, Gemma 2/3 local layers): the query
 * at position p sees keys p - window < t <= p; 0 = full causal attention. Blocks before the
 * window are not read (their block-table entries must still be valid ids).
 * softcap: attention logit soft-capping (Gemma 2): score = softcap * tanh(scale q.k / softcap);
 * 0 = off. Both apply to decode and prefill alike.
 */
/*
 * Decode-attention plan (FlashInfer's plan/run split). Once per step, on the host, before the
 * step's decode attention ops (and before replaying a captured graph that holds them):
 *
 *   hr_attention_decode_plan(dev, seq_lens_host, num_seqs, ..., workspace, workspace_bytes, info)
 *
 * reads the batch's real context lengths (a host int32 array with the values the device
 * seq_lens buffer holds), chooses split-K partitions for them and writes the plan into the
 * head of `workspace` (a synchronous copy: HR_E_STATE while the instance captures). The op then
 * runs with partition_size = HR_DECODE_PLANNED and the same workspace: every attention layer of
 * the step reads the plan, so a captured graph replays whatever plan was written last. The
 * workspace holds the plan and the split-K partials; its size,
 * hr_attention_decode_workspace_bytes, depends on the batch size and head shape only, not on
 * max_model_len: the plan never makes more than 4096 / (num_kv_heads * ceil(group / 8))
 * (sequence, partition) pairs that need the reduction (HR_DECODE_MAX_WORK), and it chooses a
 * partition length (a multiple of block_size) that balances the longest partition against
 * the backend's CTAs per wave (CUDA: occupancy x SMs of the kernel variant, queried once per
 * device; CPU: HR_DECODE_MAX_WORK). partition_size > 0 forces that length instead
 * (HR_E_INVALID if it would exceed the bound); 0 = choose. Sliding windows are not part of
 * the plan (one plan serves every layer): partitions wholly before a layer's window are
 * skipped by its kernel. A seq_len outside 1..max_blocks_per_seq*block_size is planned as one
 * partition (the op then writes NaN for it, as for any bad index).
 * The op checks the plan against its own arguments and the device seq_lens: a plan made for
 * other shapes or other lengths gives NaN outputs on CUDA and HR_E_INVALID on CPU. The CPU
 * backend checks the plan and computes without split (its threads take sequences x heads).
 * info_out (nullable): HR_DPLAN_INFO_COUNT values, see below.
 */
#define HR_DECODE_PLANNED (-1)
#define HR_DECODE_MAX_WORK 4096
#define HR_DPLAN_INFO_PARTITION 0 /* partition length in tokens */
#define HR_DPLAN_INFO_PAIRS 1     /* (sequence, partition) pairs */
#define HR_DPLAN_INFO_WS_PAIRS 2  /* pairs that go through the workspace (split sequences) */
#define HR_DPLAN_INFO_CTAS 3      /* the backend's CTAs per wave the plan aimed at */
#define HR_DPLAN_INFO_COUNT 4
HR_API int hr_attention_decode_workspace_bytes(int64_t num_seqs, int64_t num_q_heads, int64_t num_kv_heads,
                                               int64_t head_dim, int64_t block_size, int64_t max_blocks_per_seq,
                                               uint64_t *bytes_out);
HR_API int hr_attention_decode_plan(uint64_t dev, const int32_t *seq_lens, int64_t num_seqs, int64_t num_q_heads,
                                    int64_t num_kv_heads, int64_t head_dim, int64_t block_size,
                                    int64_t max_blocks_per_seq, int64_t dtype, int64_t kv_dtype, int64_t partition_size,
                                    uint64_t workspace, uint64_t workspace_bytes, int64_t *info_out);
HR_API int hr_paged_attention_workspace_bytes(int64_t dtype, int64_t num_seqs, int64_t num_q_heads, int64_t head_dim,
                                              int64_t max_blocks_per_seq, int64_t block_size, int64_t partition_size,
                                              uint64_t *bytes_out);
HR_API int hr_op_attention_decode(uint64_t dev, int64_t dtype, uint64_t out, uint64_t q, uint64_t k_cache,
                                  uint64_t v_cache, uint64_t block_tables, uint64_t seq_lens, uint64_t workspace,
                                  uint64_t workspace_bytes, int64_t num_seqs, int64_t num_q_heads, int64_t num_kv_heads,
                                  int64_t head_dim, int64_t num_blocks, int64_t block_size, int64_t max_blocks_per_seq,
                                  int64_t partition_size, double scale, int64_t q_stride, int64_t window,
                                  double softcap, int64_t kv_dtype, double k_scale, double v_scale);

/*
 * Paged prefill attention with causal mask and cached prefix (chunked prefill).
 * q [num_tokens, Hq, head_dim] (q_stride between tokens, 0 = dense), out dense likewise.
 * query_start_loc int32 [B + 1]: new tokens of sequence b are rows qsl[b] .. qsl[b+1]-1
 * (qsl[0] = 0, non-decreasing, qsl[B] <= num_tokens); seq_lens int32 [B] = cached + new
 * tokens, all already written to the cache. New token i of sequence b sits at position
 * seq_len - q_len + i and attends to keys 0 .. that position. Rows not covered by qsl are
 * left untouched.
 */
HR_API int hr_op_attention_prefill(uint64_t dev, int64_t dtype, uint64_t out, uint64_t q, uint64_t k_cache,
                                   uint64_t v_cache, uint64_t block_tables, uint64_t seq_lens, uint64_t query_start_loc,
                                   int64_t num_seqs, int64_t num_tokens, int64_t num_q_heads, int64_t num_kv_heads,
                                   int64_t head_dim, int64_t num_blocks, int64_t block_size, int64_t max_blocks_per_seq,
                                   double scale, int64_t q_stride, int64_t window, double softcap, int64_t kv_dtype,
                                   double k_scale, double v_scale);

/* ---- sampling (part of the ops section) ---- */
/*
 * One token id per row of float32 logits [rows, vocab] (dense, as hr_op_logits writes them;
 * read only). out_ids: int32 [rows]. No dtype argument: logits are always float32.
 * vocab in 1..2^23. Per-row parameters are device arrays of `rows` values:
 * temperature float32, top_k int32, top_p float32, uniform float32 (the caller's random number
 * per row, e.g. the engine's seeded uniform, so sampling stays reproducible).
 *
 * The rule, per row (the CPU executor is the reference; the CUDA kernel uses the same integer
 * arithmetic so that it returns the same ids bit for bit, which test/gpu/sample.test.ts checks):
 *  - order: token i ranks before j when l_i > l_j, or l_i == l_j and i < j (NaN counts as
 *    -inf, -0 as +0). "Ties" are equal logits; they always go to the lowest ids.
 *  - argmax = the first token in that order (lowest id among the largest logits; 0 when every
 *    logit is NaN/-inf).
 *  - Greedy: temperature < 1e-5 or NaN, or the row's max is +inf or -inf -> argmax.
 *  - Otherwise, with m = max logit and T the temperature, each token gets the integer weight
 *        q_i = floor(e((l_i - m) * (1/T)) * 2^40)   (0 for l_i = -inf/NaN)
 *    where e() is a fixed float32 polynomial exp (rel. error ~1e-7, exact 1 at 0, 0 below -32;
 *    csrc/core/sample_rule.h). So q = 2^40 for the top token and softmax(l / T)_i =
 *    q_i / sum q up to that rounding; tokens below 2^-40 of the top token weigh 0.
 *  - top-k: k = top_k; k <= 0 or k >= vocab = off. Keep the first k tokens of the order.
 *    Q_k = sum of q over the kept tokens.
 *  - top-p: p = top_p; p >= 1 or NaN = off. target = max(1, ceil(p * Q_k)) (in float64).
 *    Keep the shortest prefix of the order (among the top-k survivors) whose q sum >= target
 *    (p <= 0 keeps the first token only).
 *  - draw: Q = sum of q over the survivors ("renormalize"), r = min(floor(u * Q), Q - 1) in
 *    float64 (u NaN or < 0 -> 0). Walk the survivors in ascending token id accumulating q; the
 *    result is the first token where the running sum exceeds r (a zero-weight token is
 *    never drawn). u = 0 gives the lowest-id survivor of positive weight.
 * Values inside the parameter arrays are not errors on either backend (clamped as above).
 * vLLM order (penalties -> temperature -> min-p -> top-k -> top-p) is the caller's: apply
 * penalties/min-p masking to the logits (-inf) before this op.
 */
HR_API int hr_op_argmax(uint64_t dev, uint64_t out_ids, uint64_t logits, int64_t rows, int64_t vocab);
HR_API int hr_op_sample(uint64_t dev, uint64_t out_ids, uint64_t logits, uint64_t temperature, uint64_t top_k,
                        uint64_t top_p, uint64_t uniform, int64_t rows, int64_t vocab);

/* ---- structured outputs (part of the ops section) ---- */
/*
 * Applies a grammar's token bitmask (xgrammar's layout) to float32 logits in place:
 * for bitmask row r (int32 words [rows, ceil(vocab/32)], bit j of word w = token 32*w + j
 * allowed), logits row i = row_indices ? row_indices[r] : r gets -inf at every disallowed
 * token and is otherwise unchanged. Rows of the logits with no bitmask row (free requests in
 * the same batch) are untouched; row_indices[r] < 0 or >= logits_rows skips that bitmask row
 * (padding, graph friendly: indices are device data, read at run time). Bits past vocab are
 * ignored. Usable in graph capture (CPU op lists, CUDA graphs): the mask and indices are
 * device buffers the caller stages before each replay.
 */
HR_API int hr_op_apply_token_bitmask(uint64_t dev, uint64_t logits, int64_t logits_rows, uint64_t bitmask,
                                     uint64_t row_indices, int64_t rows, int64_t vocab);

/* ---- logit bias (part of the ops section) ---- */
/*
 * Sparse additive bias on float32 logits [logits_rows, vocab], in place (OpenAI logit_bias,
 * and -inf bans such as vLLM's min_tokens): for each of the n entries,
 *   logits[row, token] = (float)((double)logits[row, token] + bias)
 * i.e. the sum rounded to double, then to float (what a JavaScript Float32Array store of
 * `l + b` gives, so the engine's host sampler and this op agree bit for bit). An entry whose
 * row is < 0 or >= logits_rows, or whose token is < 0 or >= vocab, is skipped (padding: a
 * fixed-size staging buffer can sit in a captured graph with unused entries at row -1).
 * The (row, token) pairs of the entries that are not skipped must be distinct (the CUDA
 * kernel updates them in parallel); the engine merges duplicates before staging.
 * entries: n packed records, 16 bytes each, in device memory (read at run time, so graphs
 * replay with restaged entries).
 */
typedef struct hr_logit_bias_entry {
  int32_t row;
  int32_t token;
  double bias;
} hr_logit_bias_entry;
HR_API int hr_op_add_logit_bias(uint64_t dev, uint64_t logits, int64_t logits_rows, uint64_t entries, int64_t n,
                                int64_t vocab);

/* ---- offload / copy engine ------------------------------------------------------- */
/*
 * Weight offload (DESIGN.md "Conditional weight offload"): layers that do not fit on the
 * device live in host buffers and are copied into a ring of device staging slots on a copy
 * engine while other layers compute. Both backends export this section.
 *
 * Host buffers: pinned (cudaHostAlloc, portable) on CUDA; page-aligned anonymous mmap on
 * CPU. They are host memory: never counted against the device or its allocator.
 * hr_host_bytes: bytes currently held through hr_host_alloc by this instance.
 */
HR_API int hr_host_alloc(uint64_t dev, uint64_t bytes, uint64_t *ptr_out);
HR_API int hr_host_free(uint64_t dev, uint64_t ptr);
HR_API int hr_host_bytes(uint64_t dev, uint64_t *bytes_out);

/*
 * A copy engine with `num_slots` slot events (one per staging slot; 1..64). CUDA: its own
 * non-blocking copy stream plus, per slot, a "copied" and a "released" event. CPU: a copy
 * thread serving a FIFO of memcpy requests, per slot a sequence number of the last copy
 * issued and the last copy done. Ordering (the compute side is the instance's stream on
 * CUDA, the calling thread on CPU):
 *   hr_copy_begin    copies issued after it start after the compute work queued before it
 *                    (CUDA: event on the compute stream, the copy stream waits on it; this is
 *                    also how a captured graph forks into the copy stream). CPU: no-op.
 *   hr_copy_async    copies `bytes` from host buffer `src_host` (inside one hr_host_alloc
 *                    block) to `dst` (inside a live allocation of this instance), tagged with
 *                    `slot`. after_release = 1: the copy also waits until the compute side
 *                    released the slot (hr_copy_release), so a slot is never overwritten
 *                    while the layer using it may still run. Returns at once.
 *   hr_copy_wait     compute work queued after it runs after the last copy tagged `slot`
 *                    (CUDA: cudaStreamWaitEvent on the compute stream, the host does not
 *                    block; CPU: blocks the calling thread until that copy is done).
 *   hr_copy_release  the compute work using `slot` has been queued (CUDA: event recorded on
 *                    the compute stream; CPU: ops have finished when they return: no-op).
 * These four go through the op dispatcher (csrc/core/ops_dispatch.c), so op-list graphs
 * (CPU) record them and CUDA stream capture turns them into memcpy nodes and cross-stream
 * event dependencies.
 * hr_copy_query: *done_out = 1 when the last copy tagged `slot` has completed (host view).
 * hr_copy_synchronize: the host waits for every copy issued so far.
 * Both include copies made by graph replays: on CUDA, once copies of the engine were captured,
 * they also require the instance's stream (where replays run) to be idle (conservative).
 * hr_copy_engine_destroy waits for pending copies first.
 */
HR_API int hr_copy_engine_create(uint64_t dev, int64_t num_slots, uint64_t *engine_out);
HR_API int hr_copy_engine_destroy(uint64_t dev, uint64_t engine);
HR_API int hr_copy_begin(uint64_t dev, uint64_t engine);
HR_API int hr_copy_async(uint64_t dev, uint64_t engine, int64_t slot, uint64_t dst, uint64_t src_host, uint64_t bytes,
                         int64_t after_release);
HR_API int hr_copy_wait(uint64_t dev, uint64_t engine, int64_t slot);
HR_API int hr_copy_release(uint64_t dev, uint64_t engine, int64_t slot);
HR_API int hr_copy_query(uint64_t dev, uint64_t engine, int64_t slot, int64_t *done_out);
HR_API int hr_copy_synchronize(uint64_t dev, uint64_t engine);

/* Layout of hr_copy_engine_stats's out array (double each; cumulative since create). */
#define HR_COPY_STAT_BYTES 0         /* bytes copied (CUDA: bytes issued eagerly, not graph replays) */
#define HR_COPY_STAT_COPIES 1        /* copies */
#define HR_COPY_STAT_BUSY_S 2        /* seconds the copy thread spent copying (CPU; 0 on CUDA) */
#define HR_COPY_STAT_WAIT_S 3        /* seconds the compute side was blocked in hr_copy_wait (CPU) */
#define HR_COPY_STAT_WAITS 4         /* hr_copy_wait calls */
#define HR_COPY_STAT_WAITS_BLOCKED 5 /* waits that found the copy not done yet (CPU) */
#define HR_COPY_STAT_COUNT 6
/* Writes min(n, HR_COPY_STAT_COUNT) values. */
HR_API int hr_copy_engine_stats(uint64_t dev, uint64_t engine, double *out, int64_t n);
/*
 * Test knob (CPU only; HR_E_UNSUPPORTED on CUDA): the copy thread sleeps delay_us before
 * every copy, so a missing wait shows up as wrong results. Env HEADROOM_COPY_DELAY_US sets the
 * initial value of every new CPU engine.
 */
HR_API int hr_copy_engine_set_delay_us(uint64_t dev, uint64_t engine, int64_t delay_us);

/* ---- graphs ------------------------------------------------------------------------- */
/*
 * Graph sets (csrc/core/graph.c; DESIGN.md "Graph capture with shared output buffers").
 * A set holds one graph per capture size (batch size) of one instance. Every graph of a set
 * reads and writes the same static buffers (the caller's activation arena: inputs sized for
 * the largest size, one output buffer), so N graphs cost MAX, not SUM. Allocations made while
 * a graph is being captured come from ONE private allocator pool owned by the set (shared by
 * all its graphs: memory freed during one capture is reused by the next).
 *
 * Capture: hr_graph_capture_begin(size) ... ops of one step ... hr_graph_capture_end. Sizes
 * are captured largest first (HR_E_STATE if a larger size of the set is still uncaptured), each
 * once. Between begin and end every hr_op_* of the instance is captured, not executed:
 *  - CPU: the op (kind + validated, packed arguments) is appended to the graph's op list;
 *    replay runs the list inside C through the executor table, no FFI crossing per op.
 *    Nothing is read or written during capture (so the KV range may still be unmapped).
 *    Index values (ids, slots, block tables, ...) are checked at replay, as in eager mode.
 *  - CUDA: stream capture on the instance's stream (cudaStreamCaptureModeThreadLocal; begin
 *    and end on the same thread), cudaGraphInstantiate + cudaGraphUpload at end; replay is
 *    one cudaGraphLaunch on the instance's stream.
 * While capturing, every call that would synchronize or free device memory fails with
 * HR_E_STATE: hr_vmm_reserve/map/release, hr_allocator_empty_cache, hr_host_alloc/free,
 * hr_copy_query/synchronize/engine_destroy, hr_graph_set_destroy and hr_graph_replay of any
 * set, and on CUDA hr_stream_synchronize, hr_event_synchronize, hr_blas_init; and the
 * allocator's OOM retry releases no cached segment (no cudaFree during capture). Warm-up:
 * capture_begin does the lazy set-up it can (cuBLAS handle and workspace); running each size
 * once eagerly before capturing it is the caller's choice. Also:
 * hr_memcpy_* / hr_memset / hr_synchronize on the instance fail with
 * HR_E_STATE (they would not be part of the graph; on CUDA they would break the capture).
 * An op whose validation fails is not captured (it returns its error; the capture stays
 * open). hr_graph_capture_abort discards the graph being captured.
 *
 * Pointers are captured by value: replay reuses exactly the buffers given during capture.
 *
 * Memory: a graph's bytes = growth of the set's pool reserved bytes during its capture +
 * its executable's device bytes (CUDA: the free-memory drop of instantiate + upload, which
 * cudaMemGetInfo sees device-wide; CPU: 0, the op list is host memory reported apart).
 * The set's total = pool reserved bytes + the executables' bytes.
 */
/* hr_graph_info out layout (per captured size) */
#define HR_GRAPH_SIZE 0
#define HR_GRAPH_CAPTURED 1   /* 1 once captured */
#define HR_GRAPH_NUM_OPS 2    /* CPU: recorded ops; CUDA: nodes of the captured graph */
#define HR_GRAPH_POOL_BYTES 3 /* pool reserved growth during its capture */
#define HR_GRAPH_EXEC_BYTES 4 /* device bytes of the executable (CUDA), 0 on CPU */
#define HR_GRAPH_BYTES 5      /* POOL_BYTES + EXEC_BYTES */
#define HR_GRAPH_HOST_BYTES 6 /* host bytes of the op list (CPU), 0 on CUDA */
#define HR_GRAPH_CAPTURE_NS 7 /* wall time from begin to end (instantiate included) */
#define HR_GRAPH_REPLAYS 8
#define HR_GRAPH_INFO_COUNT 9
/* hr_graph_set_info out layout */
#define HR_GSET_NUM_SIZES 0
#define HR_GSET_NUM_CAPTURED 1
#define HR_GSET_POOL 2           /* the private pool id (hr_pool_* calls accept it) */
#define HR_GSET_POOL_RESERVED 3  /* bytes of the pool's segments */
#define HR_GSET_POOL_ALLOCATED 4 /* bytes of live blocks in the pool */
#define HR_GSET_EXEC_BYTES 5     /* sum of HR_GRAPH_EXEC_BYTES */
#define HR_GSET_TOTAL_BYTES 6    /* POOL_RESERVED + EXEC_BYTES */
#define HR_GSET_HOST_BYTES 7     /* sum of HR_GRAPH_HOST_BYTES */
#define HR_GSET_CAPTURE_NS 8     /* sum of HR_GRAPH_CAPTURE_NS */
#define HR_GSET_RECORDS_OPS 9    /* 1: op-list graphs (CPU); 0: backend graphs (CUDA) */
#define HR_GSET_INFO_COUNT 10
#define HR_GRAPH_MAX_SIZES 1024

/* A set for `num_sizes` distinct sizes in 1..2^20 (any order; at most HR_GRAPH_MAX_SIZES).
 * Creates the set's private pool. */
HR_API int hr_graph_set_create(uint64_t dev, const int64_t *sizes, int64_t num_sizes, uint64_t *set_out);
/* Destroys the executables, waits for the device (a replay may still be running), then frees
 * the pool. HR_E_STATE while the instance captures, or while blocks allocated
 * during capture are still live (free them first; the set then stays usable). */
HR_API int hr_graph_set_destroy(uint64_t dev, uint64_t set);
HR_API int hr_graph_capture_begin(uint64_t dev, uint64_t set, int64_t size);
HR_API int hr_graph_capture_end(uint64_t dev, uint64_t set);
HR_API int hr_graph_capture_abort(uint64_t dev, uint64_t set);
/* Runs the graph captured for exactly `size` (stage inputs first; pad to the size). */
HR_API int hr_graph_replay(uint64_t dev, uint64_t set, int64_t size);
/* Smallest captured size >= batch, or 0 when none (run eagerly). */
HR_API int hr_graph_select(uint64_t dev, uint64_t set, int64_t batch, int64_t *size_out);
/* min(n, HR_GRAPH_INFO_COUNT) values for `size`; min(n, HR_GSET_INFO_COUNT) for the set. */
HR_API int hr_graph_info(uint64_t dev, uint64_t set, int64_t size, int64_t *out, int64_t n);
HR_API int hr_graph_set_info(uint64_t dev, uint64_t set, int64_t *out, int64_t n);

/* ---- CUDA extras ------------------------------------------------------------------ */
/*
 * Exported by libheadroom_cuda.so only: the CPU library does not have these symbols (the
 * binding opens them through `cudaExtraSymbols` in src/native/symbols.ts, never through the
 * common table). Same conventions as above: int status, hr_last_error() on failure, and
 * every CUDA error becomes HR_E_BACKEND carrying the CUDA error name and text.
 *
 * Streams: each instance has one CUDA stream (created on first use, cudaStreamNonBlocking, so
 * other threads' legacy-stream work neither waits for it nor disturbs a capture on it); the
 * synchronous hr_memcpy_* / hr_memset calls above run on it and wait, so they stay ordered
 * with its ops. Every op of the
 * instance is queued on it; ops return before the GPU has finished. On CUDA, values inside
 * index arrays are not checked by the host (they live in device memory): an out-of-range
 * index never causes an out-of-bounds access, the outputs it affects are written as NaN
 * (kv_write: the token is skipped). Pinned host memory is hr_host_alloc (offload section).
 */
/*
 * Copy queued on the instance's stream (returns at once). kind: HRC_COPY_H2D (src is a host
 * address, ideally from hr_host_alloc), HRC_COPY_D2H (dst host), HRC_COPY_D2D. Device ranges must lie in
 * a live allocation (or mapped vmm range) of this instance.
 */
#define HRC_COPY_H2D 0
#define HRC_COPY_D2H 1
#define HRC_COPY_D2D 2
HR_API int hr_memcpy_async(uint64_t dev, int64_t kind, uint64_t dst, uint64_t src, uint64_t bytes);
/* Waits for the instance's stream only. */
HR_API int hr_stream_synchronize(uint64_t dev);
/* The instance's cudaStream_t as an integer (for CUDA graph capture by the caller). */
HR_API int hr_cuda_stream(uint64_t dev, uint64_t *stream_out);

/* Events for timing work on the instance's stream (handles are checked, not raw pointers). */
HR_API int hr_event_create(uint64_t dev, uint64_t *event_out);
HR_API int hr_event_destroy(uint64_t dev, uint64_t event);
HR_API int hr_event_record(uint64_t dev, uint64_t event);
HR_API int hr_event_synchronize(uint64_t dev, uint64_t event);
/* Milliseconds between two recorded, completed events. */
HR_API int hr_event_elapsed_ms(uint64_t dev, uint64_t start, uint64_t end, double *ms_out);

/*
 * cuBLAS, loaded at run time with dlopen: $HEADROOM_CUBLAS if set, else libcublas.so.13,
 * .so.12, .so.11, libcublas.so. hr_blas_init loads it (once per process), creates this
 * instance's handle on its stream and allocates the workspace (workspace_bytes, 0 = 32 MiB on
 * compute capability >= 9, else 4 MiB) through the instance's caching allocator, so it shows
 * in hr_allocator_stats. Matmul/logits do this on first use; call it before graph capture.
 * HR_E_UNSUPPORTED with the search list when cuBLAS cannot be loaded.
 */
HR_API int hr_blas_init(uint64_t dev, uint64_t workspace_bytes);
/* "path (version N)" of the loaded cuBLAS into buf; HR_E_UNSUPPORTED if not loadable. */
HR_API int hr_blas_info(uint64_t dev, char *buf, int64_t len);

#ifdef __cplusplus
}
#endif
#endif /* HEADROOM_H */
