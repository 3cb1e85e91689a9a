// GET /v1/memory's `breakdown`: the device's total memory split into the categories of the
// memory model (DESIGN.md), from a snapshot taken now and the start-up profile. They add up to
// the total: other processes + this instance (allocator reserved + mapped KV + its own
// non-allocator increase) + free.
import type { MemoryBreakdown } from "./report-schema.ts";
import type { MemoryProfilingResult } from "./profiling.ts";
import type { MemorySnapshot } from "./snapshot.ts";

export function memoryBreakdown(snap: MemorySnapshot, profile: MemoryProfilingResult, kvUsedBytes: number): MemoryBreakdown {
  // Memory outside the allocator that appeared since the instance's first snapshot is ours.
  const ownNonAllocator = Math.max(0, snap.nonAllocatorBytes - profile.baseline.nonAllocatorBytes);
  const instance = snap.reservedBytes + snap.kvMappedBytes + ownNonAllocator;
  return {
    other_processes: snap.usedBytes - instance,
    weights: profile.weightsBytes,
    activations: profile.peakActivationBytes,
    non_allocator: profile.nonAllocatorIncreaseBytes,
    graphs: profile.graphBytes,
    allocator_slack: Math.max(0, snap.reservedBytes - snap.allocatedBytes),
    kv_used: kvUsedBytes,
    kv_free: snap.kvMappedBytes - kvUsedBytes,
    free: snap.freeBytes,
  };
}
