// The FFI symbol table: one entry per function of csrc/include/headroom.h.
// Keep sections in the header's order; every function returns an i32 status unless noted.
import { FFIType, type FFIFunction } from "bun:ffi";

const { i32, i64, u64, ptr, cstring, f64 } = FFIType;

export const symbols = {
  // ---- status, version, host
  hr_abi_version: { args: [], returns: i32 },
  hr_last_error: { args: [], returns: cstring },
  hr_status_name: { args: [i32], returns: cstring },
  hr_backend_name: { args: [], returns: cstring },
  hr_get_cpu_memory: { args: [ptr, ptr], returns: i32 },

  // ---- devices
  hr_device_count: { args: [ptr], returns: i32 },
  hr_device_open: { args: [i64, u64, ptr], returns: i32 },
  hr_device_close: { args: [u64], returns: i32 },
  hr_device_mem_info: { args: [u64, ptr, ptr], returns: i32 },
  hr_device_info: { args: [u64, ptr, i64], returns: i32 },
  hr_device_name: { args: [u64, ptr, i64], returns: i32 },
  hr_device_simulate_usage: { args: [u64, i64, u64], returns: i32 },

  // ---- caching allocator
  hr_alloc: { args: [u64, u64, ptr], returns: i32 },
  hr_free: { args: [u64, u64], returns: i32 },
  hr_allocator_set_limit: { args: [u64, u64], returns: i32 },
  hr_allocator_empty_cache: { args: [u64], returns: i32 },
  hr_allocator_reset_peak: { args: [u64], returns: i32 },
  hr_allocator_stats: { args: [u64, ptr, i64], returns: i32 },
  hr_allocator_snapshot: { args: [u64, ptr, i64, ptr], returns: i32 },
  hr_pool_create: { args: [u64, ptr], returns: i32 },
  hr_pool_begin: { args: [u64, u64], returns: i32 },
  hr_pool_end: { args: [u64], returns: i32 },
  hr_pool_destroy: { args: [u64, u64], returns: i32 },
  hr_pool_reserved: { args: [u64, u64, ptr], returns: i32 },

  // ---- reserve-then-map regions (KV cache)
  hr_vmm_reserve: { args: [u64, u64, i64, ptr, ptr, ptr], returns: i32 },
  hr_vmm_map: { args: [u64, u64, u64], returns: i32 },
  hr_vmm_release: { args: [u64, u64], returns: i32 },
  hr_vmm_mapped_bytes: { args: [u64, ptr], returns: i32 },

  // ---- transfers
  hr_memcpy_h2d: { args: [u64, u64, ptr, u64], returns: i32 },
  hr_memcpy_h2d_async: { args: [u64, u64, ptr, u64], returns: i32 },
  hr_memcpy_d2h: { args: [u64, ptr, u64, u64], returns: i32 },
  hr_memcpy_d2d: { args: [u64, u64, u64, u64], returns: i32 },
  hr_memset: { args: [u64, u64, i64, u64], returns: i32 },
  hr_synchronize: { args: [u64], returns: i32 },

  // ---- ops (see the "ops" section of headroom.h)
  hr_set_num_threads: { args: [u64, i64], returns: i32 },
  hr_get_num_threads: { args: [u64, ptr], returns: i32 },
  hr_op_embedding: { args: [u64, i64, u64, u64, u64, i64, i64, i64], returns: i32 },
  hr_op_rms_norm: { args: [u64, i64, u64, u64, u64, u64, i64, i64, f64], returns: i32 },
  hr_op_rms_norm_strided: { args: [u64, i64, u64, u64, u64, i64, i64, i64, i64, f64], returns: i32 },
  hr_op_rope: { args: [u64, i64, u64, u64, u64, u64, i64, i64, i64, i64, i64, i64, i64, i64], returns: i32 },
  hr_op_matmul: { args: [u64, i64, u64, u64, u64, u64, i64, i64, i64], returns: i32 },
  hr_op_matmul_q: { args: [u64, i64, i64, u64, u64, u64, u64, i64, i64, i64], returns: i32 },
  hr_op_logits_q: { args: [u64, i64, i64, u64, u64, u64, i64, i64, u64, i64, i64], returns: i32 },
  hr_op_matmul_q_ws: { args: [u64, i64, i64, u64, u64, u64, u64, i64, i64, i64, u64, u64], returns: i32 },
  hr_op_logits_q_ws: { args: [u64, i64, i64, u64, u64, u64, i64, i64, u64, i64, i64, u64, u64], returns: i32 },
  hr_op_embedding_q: { args: [u64, i64, i64, u64, u64, u64, i64, i64, i64], returns: i32 },
  hr_quant_block_info: { args: [i64, ptr, ptr], returns: i32 },
  hr_dequantize: { args: [i64, ptr, ptr, i64], returns: i32 },
  hr_op_logits: { args: [u64, i64, u64, u64, u64, i64, i64, u64, i64, i64], returns: i32 },
  hr_op_silu_mul: { args: [u64, i64, u64, u64, u64, i64, i64, i64], returns: i32 },
  hr_op_gelu_tanh_mul: { args: [u64, i64, u64, u64, u64, i64, i64, i64], returns: i32 },
  hr_op_scale: { args: [u64, i64, u64, i64, f64], returns: i32 },
  hr_op_softcap: { args: [u64, i64, u64, i64, f64], returns: i32 },
  hr_op_kv_write: { args: [u64, i64, u64, u64, u64, u64, u64, i64, i64, i64, i64, i64, i64, i64, f64, f64], returns: i32 },
  hr_paged_attention_workspace_bytes: { args: [i64, i64, i64, i64, i64, i64, i64, ptr], returns: i32 },
  hr_attention_decode_workspace_bytes: { args: [i64, i64, i64, i64, i64, i64, ptr], returns: i32 },
  hr_attention_decode_plan: { args: [u64, ptr, i64, i64, i64, i64, i64, i64, i64, i64, i64, u64, u64, ptr], returns: i32 },
  hr_op_attention_decode: {
    args: [u64, i64, u64, u64, u64, u64, u64, u64, u64, u64, i64, i64, i64, i64, i64, i64, i64, i64, f64, i64, i64, f64, i64, f64, f64],
    returns: i32,
  },
  hr_op_attention_prefill: {
    args: [u64, i64, u64, u64, u64, u64, u64, u64, u64, i64, i64, i64, i64, i64, i64, i64, i64, f64, i64, i64, f64, i64, f64, f64],
    returns: i32,
  },
  hr_op_argmax: { args: [u64, u64, u64, i64, i64], returns: i32 },
  hr_op_sample: { args: [u64, u64, u64, u64, u64, u64, u64, i64, i64], returns: i32 },
  hr_op_apply_token_bitmask: { args: [u64, u64, i64, u64, u64, i64, i64], returns: i32 },
  hr_op_add_logit_bias: { args: [u64, u64, i64, u64, i64, i64], returns: i32 },

  // ---- offload / copy engine (both backends)
  hr_host_alloc: { args: [u64, u64, ptr], returns: i32 },
  hr_host_free: { args: [u64, u64], returns: i32 },
  hr_host_bytes: { args: [u64, ptr], returns: i32 },
  hr_copy_engine_create: { args: [u64, i64, ptr], returns: i32 },
  hr_copy_engine_destroy: { args: [u64, u64], returns: i32 },
  hr_copy_begin: { args: [u64, u64], returns: i32 },
  hr_copy_async: { args: [u64, u64, i64, u64, u64, u64, i64], returns: i32 },
  hr_copy_wait: { args: [u64, u64, i64], returns: i32 },
  hr_copy_release: { args: [u64, u64, i64], returns: i32 },
  hr_copy_query: { args: [u64, u64, i64, ptr], returns: i32 },
  hr_copy_synchronize: { args: [u64, u64], returns: i32 },
  hr_copy_engine_stats: { args: [u64, u64, ptr, i64], returns: i32 },
  hr_copy_engine_set_delay_us: { args: [u64, u64, i64], returns: i32 },

  // ---- graphs (both backends; see the "graphs" section of headroom.h)
  hr_graph_set_create: { args: [u64, ptr, i64, ptr], returns: i32 },
  hr_graph_set_destroy: { args: [u64, u64], returns: i32 },
  hr_graph_capture_begin: { args: [u64, u64, i64], returns: i32 },
  hr_graph_capture_end: { args: [u64, u64], returns: i32 },
  hr_graph_capture_abort: { args: [u64, u64], returns: i32 },
  hr_graph_replay: { args: [u64, u64, i64], returns: i32 },
  hr_graph_select: { args: [u64, u64, i64, ptr], returns: i32 },
  hr_graph_info: { args: [u64, u64, i64, ptr, i64], returns: i32 },
  hr_graph_set_info: { args: [u64, u64, ptr, i64], returns: i32 },
} as const satisfies Record<string, FFIFunction>;

export type Symbols = typeof symbols;

// ---- CUDA extras (the "CUDA extras" section at the end of headroom.h) ----
// Exported by libheadroom_cuda.so only, so they are NOT part of `symbols` (the CPU library
// would fail to load). Open them next to the common table:
//   dlopen(libraryPath("cuda"), cudaExtraSymbols)
export const cudaExtraSymbols = {
  hr_memcpy_async: { args: [u64, i64, u64, u64, u64], returns: i32 },
  hr_stream_synchronize: { args: [u64], returns: i32 },
  hr_cuda_stream: { args: [u64, ptr], returns: i32 },
  hr_event_create: { args: [u64, ptr], returns: i32 },
  hr_event_destroy: { args: [u64, u64], returns: i32 },
  hr_event_record: { args: [u64, u64], returns: i32 },
  hr_event_synchronize: { args: [u64, u64], returns: i32 },
  hr_event_elapsed_ms: { args: [u64, u64, u64, ptr], returns: i32 },
  hr_blas_init: { args: [u64, u64], returns: i32 },
  hr_blas_info: { args: [u64, ptr, i64], returns: i32 },
} as const satisfies Record<string, FFIFunction>;

export type CudaExtraSymbols = typeof cudaExtraSymbols;
// ---- end of CUDA extras
