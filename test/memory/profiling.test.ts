// The three-category memory model through the real code path: CPU device with simulated
// other-process and non-allocator usage, real allocator, real snapshots.
import { afterEach, describe, expect, test } from "bun:test";

import { MemoryProfiler } from "../../src/memory/profiling.ts";
import { takeSnapshot } from "../../src/memory/snapshot.ts";
import { Device } from "../../src/native/index.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const open: Device[] = [];
afterEach(() => {
  while (open.length) open.pop()!.close();
});
function device(ordinal: number, capacity: number): Device {
  const d = Device.open({ device: "cpu", ordinal, cpuCapacityBytes: capacity });
  open.push(d);
  return d;
}

describe("memory profiling", () => {
  test("worked example: 1 GiB other, 2 GiB weights, 2 GiB peak activation, non-allocator 0.5→1 GiB ⇒ non-KV 5 GiB", () => {
    const dev = device(4, 16 * GiB);
    dev.simulateOtherProcess(1 * GiB); // category 1, present before this instance starts
    const profiler = new MemoryProfiler(dev); // the instance's first snapshot
    expect(profiler.baseline.usedBytes).toBe(1 * GiB);
    expect(profiler.baseline.nonAllocatorBytes).toBe(1 * GiB);

    dev.simulateNonAllocator(0.5 * GiB); // e.g. the backend context
    const weights = profiler.measureWeights(() => [dev.alloc(1 * GiB), dev.alloc(512 * MiB), dev.alloc(512 * MiB)]);
    profiler.profileRun(() => {
      dev.simulateNonAllocator(1 * GiB); // grows during the run (e.g. library workspaces)
      const act = [dev.alloc(1.5 * GiB), dev.alloc(512 * MiB)];
      for (const p of act) dev.free(p);
    });
    dev.emptyCache();

    const r = profiler.result(0.9);
    expect(r.weightsBytes).toBe(2 * GiB);
    expect(r.peakActivationBytes).toBe(2 * GiB);
    expect(r.nonAllocatorIncreaseBytes).toBe(1 * GiB); // the other process's 1 GiB is not charged
    expect(r.graphBytes).toBe(0);
    expect(r.allocatorSlackBytes).toBe(0);
    expect(r.nonKvBytes).toBe(5 * GiB);
    expect(r.requestedBytes).toBe(Math.floor(16 * GiB * 0.9));
    expect(r.kvBudgetBytes).toBe(Math.floor(16 * GiB * 0.9) - 5 * GiB);
    expect(r.profileSkipped).toBe(false);
    for (const p of weights) dev.free(p);
  });

  test("a second instance on the same device does not count the first one's memory as its own", () => {
    const first = device(5, 8 * GiB);
    const p1 = new MemoryProfiler(first);
    const w1 = p1.measureWeights(() => first.alloc(3 * GiB));
    first.simulateNonAllocator(256 * MiB);

    const second = device(5, 0); // same simulated device
    const p2 = new MemoryProfiler(second);
    expect(p2.baseline.usedBytes).toBe(3 * GiB + 256 * MiB); // the first instance is "other"
    const w2 = p2.measureWeights(() => second.alloc(1 * GiB));
    p2.profileRun(() => second.free(second.alloc(100 * MiB)));
    second.emptyCache();
    const r2 = p2.result(0.4);
    expect(r2.weightsBytes).toBe(1 * GiB);
    expect(r2.peakActivationBytes).toBe(100 * MiB);
    expect(r2.nonAllocatorIncreaseBytes).toBe(0);
    expect(r2.nonKvBytes).toBe(1 * GiB + 100 * MiB);
    expect(r2.kvBudgetBytes).toBe(Math.floor(8 * GiB * 0.4) - r2.nonKvBytes);
    // and the first instance's own view is unchanged by the second
    expect(p1.result(0.5).weightsBytes).toBe(3 * GiB);
    first.free(w1);
    second.free(w2);
  });

  test("snapshots separate allocator, KV regions and non-allocator memory", () => {
    const dev = device(6, 1 * GiB);
    const p = dev.alloc(10 * MiB);
    const { base } = dev.reserveRegion(64 * MiB, 2);
    dev.mapRegion(base, 8 * MiB);
    dev.simulateNonAllocator(5 * MiB);
    const s = takeSnapshot(dev);
    expect(s.reservedBytes).toBe(10 * MiB); // >= 10 MiB: its own segment, rounded to 2 MiB
    expect(s.allocatedBytes).toBe(10 * MiB);
    expect(s.kvMappedBytes).toBe(16 * MiB);
    expect(s.nonAllocatorBytes).toBe(5 * MiB);
    expect(s.usedBytes).toBe(31 * MiB);
    expect(s.freeBytes + s.usedBytes).toBe(s.totalBytes);
    dev.releaseRegion(base);
    dev.free(p);
  });
});
