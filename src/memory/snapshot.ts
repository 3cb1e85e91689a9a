// MemorySnapshot: one reading of device memory in the three-category model (DESIGN.md).
import type { Device } from "../native/index.ts";

export interface MemorySnapshot {
  /** ms since the epoch. */
  timestamp: number;
  totalBytes: number;
  freeBytes: number;
  /** total − free: every user of the device. */
  usedBytes: number;
  /** Category 2: this instance's caching-allocator segments. */
  reservedBytes: number;
  allocatedBytes: number;
  peakAllocatedBytes: number;
  /** Reserve-then-map regions (the KV cache) mapped by this instance. */
  kvMappedBytes: number;
  /**
   * used − reserved − kvMapped: other users (category 1) + this instance's memory outside the
   * allocator (category 3). The KV cache is kept apart because it is sized last.
   */
  nonAllocatorBytes: number;
}

export function takeSnapshot(dev: Device): MemorySnapshot {
  const { free, total } = dev.memInfo();
  const s = dev.stats();
  const used = total - free;
  const kvMapped = dev.mappedRegionBytes();
  return {
    timestamp: Date.now(),
    totalBytes: total,
    freeBytes: free,
    usedBytes: used,
    reservedBytes: s.reservedBytes.current,
    allocatedBytes: s.allocatedBytes.current,
    peakAllocatedBytes: s.allocatedBytes.peak,
    kvMappedBytes: kvMapped,
    nonAllocatorBytes: used - s.reservedBytes.current - kvMapped,
  };
}
