// The planner's model of the caching allocator equals the real allocator on start-up-like
// sequences (allocations without frees), with and without memory pressure.
import { describe, expect, test } from "bun:test";

import { simulateAllocations } from "../../src/memory/allocator-model.ts";
import { Device } from "../../src/native/index.ts";

const MiB = 2 ** 20;

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("allocator model", () => {
  for (const [seed, capacity] of [
    [1, 512 * MiB],
    [2, 512 * MiB],
    [3, 48 * MiB],
    [4, 24 * MiB],
    [5, 1024 * MiB],
  ] as const) {
    test(`seed ${seed}, capacity ${capacity / MiB} MiB: predicted allocated/reserved/blocks equal the real allocator`, () => {
      const rand = prng(seed);
      const sizes: number[] = [];
      const pick = () => {
        const r = rand();
        if (r < 0.4) return 1 + Math.floor(rand() * 1.2 * MiB); // small and around the 1 MiB edge
        if (r < 0.8) return MiB + Math.floor(rand() * 9 * MiB); // large, 20 MiB segments
        return 10 * MiB + Math.floor(rand() * 30 * MiB); // rounded to 2 MiB
      };
      const dev = Device.open({ device: "cpu", ordinal: 50 + seed, cpuCapacityBytes: capacity });
      try {
        const blocks: number[] = [];
        for (let i = 0; i < 60; i++) {
          const s = pick();
          let ok = true;
          const before = dev.stats().allocatedBytes.current;
          try {
            dev.alloc(s);
          } catch {
            ok = false;
          }
          if (!ok) break;
          sizes.push(s);
          blocks.push(dev.stats().allocatedBytes.current - before);
        }
        const st = dev.stats();
        const model = simulateAllocations(sizes, capacity);
        expect(model.blocks).toEqual(blocks);
        expect(model.allocated).toBe(st.allocatedBytes.current);
        expect(model.reserved).toBe(st.reservedBytes.current);
      } finally {
        dev.close();
      }
    });
  }
});
