// Releasing cached allocator memory under (simulated) host memory pressure on a unified-memory
// device (the CPU backend is one).
import { expect, test } from "bun:test";

import { HostPressureReleaser } from "../../src/memory/pressure.ts";
import { Device, hostMemory } from "../../src/native/index.ts";

const MiB = 2 ** 20;

test("cached segments are released when MemAvailable drops below the threshold, live blocks stay", () => {
  const dev = Device.open({ device: "cpu", ordinal: 60, cpuCapacityBytes: 256 * MiB });
  try {
    expect(dev.info().unifiedMemory).toBe(true);
    const live = dev.alloc(3 * MiB); // keeps its 20 MiB segment
    const cached = [dev.alloc(30 * MiB), dev.alloc(18 * MiB)];
    for (const p of cached) dev.free(p);
    const reservedBefore = dev.stats().reservedBytes.current;
    expect(reservedBefore).toBe(20 * MiB + 30 * MiB + 18 * MiB);
    let available = 10 * 1024 * MiB;
    const r = new HostPressureReleaser(dev, { minAvailableFraction: 0.1, readHost: () => ({ total: 16 * 1024 * MiB, available }) });
    expect(r.check()).toBe(0); // no pressure: the cache stays
    expect(dev.stats().reservedBytes.current).toBe(reservedBefore);
    available = 1024 * MiB; // below 10 % of 16 GiB
    expect(r.check()).toBe(48 * MiB);
    expect(dev.stats().reservedBytes.current).toBe(20 * MiB);
    expect(r.releases).toBe(1);
    dev.copyToDevice(live, new Float32Array(16).fill(1)); // the live block is intact and usable
    dev.free(live);
  } finally {
    dev.close();
  }
});

test("the default reader is the real /proc/meminfo", () => {
  const h = hostMemory();
  expect(h.available).toBeGreaterThan(0);
  expect(h.available).toBeLessThanOrEqual(h.total);
});
