// The memory API's payloads as TypeBox schemas: GET /v1/memory (MemoryReport), GET
// /v1/memory/allocator (AllocatorReport) and POST /v1/memory/plan (PlanResponse). The engine
// builds them (typed by Static<>), the server validates them, and the OpenAPI document (and the
// clients generated from it) get every field. All numbers are bytes unless the name says
// otherwise (_ms, _s, counts).
import { Type, type Static, type TProperties } from "@sinclair/typebox";

const Obj = <P extends TProperties>(props: P, description?: string) =>
  Type.Object(props, { additionalProperties: false, ...(description ? { description } : {}) });
const Num = (description?: string) => Type.Number(description ? { description } : {});
export type { Static };
const Nums = () => Type.Array(Type.Number());

export const MemorySnapshotReport = Obj({
  timestamp: Num("ms since the epoch"),
  total: Num(),
  free: Num(),
  used: Num("total − free: every user of the device"),
  allocator_reserved: Num(),
  allocator_allocated: Num(),
  allocator_peak: Num(),
  kv_mapped: Num("KV cache bytes mapped into the reserved range"),
  non_allocator: Num("used − reserved − kv_mapped: other users and this instance's memory outside the allocator"),
});

export const ProfileReport = Obj({
  weights: Num(),
  peak_activation: Num(),
  non_allocator_increase: Num(),
  cuda_graph: Num(),
  allocator_slack: Num(),
  non_kv_total: Num(),
  requested: Num("total × gpu_memory_utilization"),
  kv_budget: Num(),
  profile_time_ms: Num(),
  profile_skipped: Type.Boolean({ description: "true when --kv-cache-memory-bytes skipped the profile run" }),
  baseline_used: Num(),
  baseline_free: Num(),
});

export const MemoryBreakdown = Obj(
  {
    other_processes: Num(),
    weights: Num(),
    activations: Num(),
    non_allocator: Num(),
    graphs: Num(),
    allocator_slack: Num(),
    kv_used: Num(),
    kv_free: Num(),
    free: Num(),
  },
  "The device's total memory by category; the categories add up to the total",
);
export type MemoryBreakdown = Static<typeof MemoryBreakdown>;

const OffloadOff = Obj({
  enabled: Type.Literal(false),
  layers_on_device: Num(),
  layers_in_host_memory: Num(),
  reason: Type.String(),
});
const OffloadMode = Type.Union([
  Type.Literal("auto"),
  Type.Literal("cpu-offload-gb"),
  Type.Literal("trigger-percent"),
  Type.Literal("layers"),
]);
const OffloadOn = Obj({
  enabled: Type.Literal(true),
  mode: OffloadMode,
  reason: Type.String(),
  layers_on_device: Num(),
  layers_in_host_memory: Num(),
  first_offloaded_layer: Num(),
  host_bytes: Num(),
  slots: Num(),
  slot_bytes: Num(),
  bytes_per_step: Num(),
  measured_bandwidth_bytes_per_s: Num(),
  compute_step_ms: Num(),
  copy_step_ms: Num(),
  predicted_step_ms: Num(),
  measured_step_ms: Num(),
  copied_bytes: Num(),
  copies: Num(),
  achieved_bandwidth_bytes_per_s: Type.Union([Type.Number(), Type.Null()], { description: "null until copies were timed" }),
  overlap: Type.Union([Type.Number(), Type.Null()], { description: "fraction of copy time hidden behind compute; null until measured" }),
  wait_seconds: Num(),
  copy_busy_seconds: Num(),
});
export const OffloadReport = Type.Union([OffloadOff, OffloadOn]);
export type OffloadReport = Static<typeof OffloadReport>;

const GraphsOff = Obj({
  enabled: Type.Literal(false),
  reason: Type.String(),
  sizes: Nums(),
  per_graph_bytes: Nums(),
  total_bytes: Num(),
  pool_reserved: Num(),
  capture_ms: Num(),
});
const GraphsOn = Obj({
  enabled: Type.Literal(true),
  kind: Type.Union([Type.Literal("op-list"), Type.Literal("cuda-graph")]),
  sizes: Nums(),
  per_graph_bytes: Nums(),
  total_bytes: Num(),
  pool_reserved: Num(),
  pool_allocated: Num(),
  exec_bytes: Num(),
  host_bytes: Num(),
  capture_ms: Num(),
  largest_ops: Num(),
  dropped_sizes: Nums(),
});
export const GraphsReportSchema = Type.Union([GraphsOff, GraphsOn]);
export type GraphsReportPayload = Static<typeof GraphsReportSchema>;

const Backend = Type.Union([Type.Literal("cpu"), Type.Literal("cuda")]);

/** src/memory/planner.ts MemoryPlan, field for field. */
export const MemoryPlanSchema = Obj({
  backend: Backend,
  computeDtype: Type.Union([Type.Literal("f32"), Type.Literal("f16"), Type.Literal("bf16")]),
  computeDtypeBytes: Num(),
  weightDtype: Type.Union([Type.Literal("f32"), Type.Literal("f16"), Type.Literal("bf16")]),
  kvCacheDtype: Type.Union([
    Type.Literal("f32"),
    Type.Literal("f16"),
    Type.Literal("bf16"),
    Type.Literal("fp8_e4m3"),
    Type.Literal("fp8_e5m2"),
  ]),
  kvCacheDtypeBytes: Num(),
  weightsBytes: Num(),
  weightsPerLayerBytes: Num(),
  weightsResidentBytes: Num(),
  activationArenaBytes: Num(),
  graphBuffersBytes: Num(),
  allocatorSlackBytes: Num(),
  nonAllocatorEstimateBytes: Num(),
  nonKvBytes: Num(),
  requestedBytes: Num(),
  safetyMarginBytes: Num(),
  kvBudgetBytes: Num(),
  kvBytesPerBlock: Num(),
  kvGranularityBytes: Num(),
  kvBlocks: Num(),
  kvTokens: Num(),
  kvMappedBytes: Num(),
  maxConcurrency: Num(),
  kvBytesForOneSequence: Num(),
  fits: Type.Boolean(),
  offloadBytes: Num(),
  offloadLayers: Num(),
  weightsStagingBytes: Num(),
  offload: Obj({
    mode: OffloadMode,
    layersOnDevice: Num(),
    layersOffloaded: Num(),
    firstOffloadedLayer: Num(),
    hostBytes: Num(),
    slots: Num(),
    slotBytes: Num(),
    reason: Type.String(),
  }),
  notes: Type.Array(Type.String()),
});

export const MemoryReport = Obj(
  {
    device: Obj({ name: Type.String(), backend: Type.String(), total_bytes: Num() }),
    snapshot: MemorySnapshotReport,
    profile: ProfileReport,
    breakdown: MemoryBreakdown,
    kv: Obj({
      blocks: Num(),
      block_size: Num(),
      bytes_per_block: Num(),
      tokens: Num(),
      mapped_bytes: Num(),
      max_concurrency: Num(),
      max_model_len: Num(),
    }),
    suggestions: Obj({
      kv_cache_memory_bytes_fits_request: Num("--kv-cache-memory-bytes that fits --gpu-memory-utilization"),
      kv_cache_memory_bytes_full_device: Num("--kv-cache-memory-bytes that uses the whole device (less the margin)"),
      safety_margin_bytes: Num(),
      text: Type.String(),
    }),
    offload: OffloadReport,
    graphs: GraphsReportSchema,
    plan: MemoryPlanSchema,
    plan_mismatches: Type.Array(Type.String(), { description: "planned vs measured differences (empty when the plan was exact)" }),
    startup_line: Type.String(),
  },
  "Device memory: snapshot, start-up profile, breakdown by category, KV cache, suggestions, offload, graphs and the start-up plan",
);
export type MemoryReport = Static<typeof MemoryReport>;

const StatGroup = Obj({ current: Num(), peak: Num(), allocated: Num(), freed: Num() });
export const AllocatorReport = Obj(
  {
    stats: Obj({
      allocatedBytes: StatGroup,
      reservedBytes: StatGroup,
      activeBytes: StatGroup,
      segment: StatGroup,
      numAllocRetries: Num(),
      numOoms: Num(),
      numAllocs: Num(),
      limit: Num(),
    }),
    segments: Type.Array(
      Obj({
        address: Type.String({ description: "hex" }),
        size: Num(),
        pool: Num(),
        blocks: Type.Array(Obj({ address: Type.String({ description: "hex" }), size: Num(), allocated: Type.Boolean() })),
      }),
    ),
  },
  "Caching-allocator stats (PyTorch-style: current/peak/allocated/freed) and its segments and blocks",
);
export type AllocatorReport = Static<typeof AllocatorReport>;

export const PlanResponseSchema = Obj({
  model: Obj({
    name: Type.String(),
    architecture: Type.String(),
    layers: Num(),
    hidden_size: Num(),
    heads: Num(),
    kv_heads: Num(),
    vocab_size: Num(),
  }),
  inputs: Obj({
    backend: Backend,
    device_memory_bytes: Num(),
    gpu_memory_utilization: Num(),
    max_model_len: Num(),
    max_num_seqs: Num(),
    max_num_batched_tokens: Num(),
    block_size: Num(),
    capture_sizes: Nums(),
  }),
  plan: MemoryPlanSchema,
});
