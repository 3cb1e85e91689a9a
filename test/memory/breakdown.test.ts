// GET /v1/memory's breakdown (src/memory/breakdown.ts): the categories add up to the device's
// total, other processes get only what this instance does not hold.
import { describe, expect, test } from "bun:test";
import { memoryBreakdown } from "../../src/memory/breakdown.ts";
import type { MemoryProfilingResult } from "../../src/memory/profiling.ts";
import type { MemorySnapshot } from "../../src/memory/snapshot.ts";

const snap = (o: Partial<MemorySnapshot>): MemorySnapshot => {
  const s = {
    timestamp: 0,
    totalBytes: 1000,
    freeBytes: 0,
    usedBytes: 0,
    reservedBytes: 0,
    allocatedBytes: 0,
    peakAllocatedBytes: 0,
    kvMappedBytes: 0,
    nonAllocatorBytes: 0,
    ...o,
  };
  return { ...s, usedBytes: s.totalBytes - s.freeBytes, nonAllocatorBytes: s.totalBytes - s.freeBytes - s.reservedBytes - s.kvMappedBytes };
};

describe("memoryBreakdown", () => {
  test("categories add up to the total; other processes are what the instance does not hold", () => {
    for (let i = 0; i < 200; i++) {
      const r = () => Math.floor(Math.random() * 100);
      const [weights, act, graphs, nonAlloc, slack, kv, other0, other1, free] = Array.from({ length: 9 }, r);
      const allocated = weights! + act!;
      const reserved = allocated + slack!;
      const base = snap({ totalBytes: 10_000, freeBytes: 10_000 - other0! });
      const now = snap({ totalBytes: 10_000, freeBytes: free!, reservedBytes: reserved, allocatedBytes: allocated, kvMappedBytes: kv! });
      const nowFixed = { ...now, totalBytes: free! + other1! + reserved + kv! + nonAlloc! + graphs! };
      nowFixed.usedBytes = nowFixed.totalBytes - nowFixed.freeBytes;
      nowFixed.nonAllocatorBytes = nowFixed.usedBytes - reserved - kv!;
      const profile = {
        baseline: { ...base, nonAllocatorBytes: other1! },
        weightsBytes: weights!,
        peakActivationBytes: act!,
        nonAllocatorIncreaseBytes: nonAlloc!,
        graphBytes: graphs!,
      } as MemoryProfilingResult;
      const kvUsed = Math.floor(kv! / 2);
      const b = memoryBreakdown(nowFixed, profile, kvUsed);
      expect(b.other_processes).toBe(other1!);
      expect(b.kv_used + b.kv_free).toBe(kv!);
      expect(b.allocator_slack).toBe(slack!);
      const sum = Object.values(b).reduce((a, v) => a + v, 0);
      expect(sum).toBe(nowFixed.totalBytes);
    }
  });
});
