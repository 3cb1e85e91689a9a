// The FFI binding against the real CPU library: loading, ABI, device info, the caching
// allocator's stats/snapshot/OOM/pools through FFI, transfers and error mapping.
import { afterEach, describe, expect, test } from "bun:test";

import { Device, EXPECTED_ABI_VERSION, HeadroomError, hostMemory, loadLibrary, Status } from "../src/native/index.ts";

const MiB = 1 << 20;
const open: Device[] = [];
function device(capacity = 256 * MiB, ordinal = 1): Device {
  const d = Device.open({ device: "cpu", ordinal, cpuCapacityBytes: capacity });
  open.push(d);
  return d;
}
afterEach(() => {
  while (open.length) open.pop()!.close();
});

describe("library", () => {
  test("loads the CPU library with the expected ABI and backend name", () => {
    const lib = loadLibrary("cpu");
    expect(lib.sym.hr_abi_version()).toBe(EXPECTED_ABI_VERSION);
    expect(String(lib.sym.hr_backend_name())).toBe("cpu");
    expect(String(lib.sym.hr_status_name(-2))).toBe("HR_E_OOM");
  });

  test("auto falls back to CPU and says why", () => {
    const logs: string[] = [];
    const lib = loadLibrary("auto", (m) => logs.push(m));
    if (lib.backend === "cpu") {
      expect(logs.length).toBe(1);
      expect(logs[0]).toContain("using cpu");
    }
  });

  test("host memory is reported", () => {
    const h = hostMemory();
    expect(h.total).toBeGreaterThan(256 * MiB);
    expect(h.available).toBeGreaterThan(0);
    expect(h.available).toBeLessThanOrEqual(h.total);
  });
});

describe("CPU device", () => {
  test("info and memory follow cudaMemGetInfo semantics", () => {
    const d = device(64 * MiB);
    const info = d.info();
    expect(info.backend).toBe("cpu");
    expect(info.name).toContain("cpu:1");
    expect(info.totalBytes).toBe(64 * MiB);
    expect(info.unifiedMemory).toBe(true);
    expect(info.multiprocessors).toBeGreaterThan(0);
    expect(d.memInfo()).toEqual({ free: 64 * MiB, total: 64 * MiB });
    const p = d.alloc(1000);
    // a small allocation reserves one 2 MiB small-pool segment
    expect(d.memInfo().free).toBe(62 * MiB);
    d.free(p);
    expect(d.memInfo().free).toBe(62 * MiB); // cached, still reserved
    d.emptyCache();
    expect(d.memInfo().free).toBe(64 * MiB);
  });

  test("simulated other process and non-allocator usage reduce free memory", () => {
    const d = device(64 * MiB);
    d.simulateOtherProcess(10 * MiB);
    d.simulateNonAllocator(3 * MiB);
    expect(d.memInfo().free).toBe(51 * MiB);
    d.simulateNonAllocator(1 * MiB);
    expect(d.memInfo().free).toBe(53 * MiB);
    expect(() => d.simulateOtherProcess(100 * MiB)).toThrow(HeadroomError);
  });

  test("two instances on one device share its capacity", () => {
    const a = device(64 * MiB, 2);
    const b = device(0, 2);
    const p = a.alloc(30 * MiB);
    expect(b.memInfo().free).toBe(64 * MiB - 30 * MiB);
    expect(b.stats().reservedBytes.current).toBe(0);
    a.free(p);
  });

  test("a capacity mismatch on an open device is refused", () => {
    device(64 * MiB, 3);
    expect(() => Device.open({ device: "cpu", ordinal: 3, cpuCapacityBytes: 32 * MiB })).toThrow(/already open/);
  });
});

describe("caching allocator through FFI", () => {
  test("rounds to 512 B and reports PyTorch-style stats", () => {
    const d = device();
    const a = d.alloc(1);
    const b = d.alloc(513);
    const s = d.stats();
    expect(s.allocatedBytes.current).toBe(512 + 1024);
    expect(s.reservedBytes.current).toBe(2 * MiB);
    expect(s.segment.current).toBe(1);
    expect(s.numAllocs).toBe(2);
    d.free(a);
    d.free(b);
    const t = d.stats();
    expect(t.allocatedBytes.current).toBe(0);
    expect(t.allocatedBytes.peak).toBe(1536);
    expect(t.allocatedBytes.allocated).toBe(1536);
    expect(t.allocatedBytes.freed).toBe(1536);
    d.resetPeak();
    expect(d.stats().allocatedBytes.peak).toBe(0);
  });

  test("large requests use 20 MiB segments below 10 MiB and 2 MiB rounding above", () => {
    const d = device();
    const a = d.alloc(3 * MiB);
    expect(d.stats().reservedBytes.current).toBe(20 * MiB);
    const c = d.alloc(11 * MiB); // best fit: the 17 MiB remainder of the first segment
    expect(d.stats().reservedBytes.current).toBe(20 * MiB);
    const b = d.alloc(18 * MiB + 1); // no free block fits: a new segment rounded up to 2 MiB
    expect(d.stats().reservedBytes.current).toBe(20 * MiB + 20 * MiB);
    d.free(c);
    d.free(a);
    d.free(b);
  });

  test("snapshot lists segments and blocks consistent with stats", () => {
    const d = device();
    const ptrs = [d.alloc(100), d.alloc(5 * MiB), d.alloc(70_000)];
    const snap = d.snapshot();
    const reserved = snap.reduce((s, seg) => s + seg.size, 0);
    const allocated = snap
      .flatMap((s) => s.blocks)
      .filter((b) => b.allocated)
      .reduce((s, b) => s + b.size, 0);
    expect(reserved).toBe(d.stats().reservedBytes.current);
    expect(allocated).toBe(d.stats().allocatedBytes.current);
    for (const seg of snap) expect(seg.blocks.reduce((s, b) => s + b.size, 0)).toBe(seg.size);
    for (const p of ptrs) d.free(p);
  });

  test("OOM throws with the numbers, counts it, and leaves the allocator usable", () => {
    const d = device(64 * MiB);
    const keep = d.alloc(40 * MiB);
    let err: unknown;
    try {
      d.alloc(40 * MiB);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HeadroomError);
    const he = err as HeadroomError;
    expect(he.code).toBe(Status.OOM);
    expect(he.isOom).toBe(true);
    expect(he.call).toBe("hr_alloc");
    expect(he.message).toMatch(/41943040/); // the requested bytes are named
    expect(d.stats().numOoms).toBe(1);
    d.free(keep);
    const again = d.alloc(40 * MiB);
    d.free(again);
  });

  test("a limit turns into OOM below the device capacity", () => {
    const d = device(128 * MiB);
    d.setMemoryLimit(16 * MiB);
    expect(() => d.alloc(20 * MiB)).toThrow(HeadroomError);
    const p = d.alloc(8 * MiB);
    d.free(p);
    d.setMemoryLimit(0);
    d.free(d.alloc(20 * MiB));
  });

  test("private pools keep their own segments", () => {
    const d = device();
    const pool = d.createPool();
    const inPool = d.withPool(pool, () => d.alloc(4096));
    const outside = d.alloc(4096);
    expect(d.poolReserved(pool)).toBe(2 * MiB);
    const segs = d.snapshot();
    const owner = (p: bigint) => segs.find((s) => p >= s.address && p < s.address + BigInt(s.size))!;
    expect(owner(inPool).pool).not.toBe(owner(outside).pool);
    expect(() => d.destroyPool(pool)).toThrow(/live|in use|STATE/i);
    d.free(inPool);
    d.destroyPool(pool);
    d.free(outside);
  });
});

describe("transfers", () => {
  test("host → device → host round trip", () => {
    const d = device();
    const src = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) + 2);
    const p = d.alloc(src.byteLength);
    d.copyToDevice(p, src);
    const back = new Float32Array(1000);
    d.copyFromDevice(back, p);
    expect(back).toEqual(src);
    const q = d.alloc(src.byteLength);
    d.copyDeviceToDevice(q, p, src.byteLength);
    d.memset(p, 0, src.byteLength);
    d.copyFromDevice(back, p);
    expect(back.every((x) => x === 0)).toBe(true);
    d.copyFromDevice(back, q);
    expect(back).toEqual(src);
    d.free(p);
    d.free(q);
  });

  test("ranges outside live allocations are refused with HR_E_INVALID", () => {
    const d = device();
    const p = d.alloc(1024);
    expect(() => d.copyToDevice(p + 512n, new Uint8Array(1024))).toThrow(/not inside a live allocation/);
    expect(() => d.copyFromDevice(new Uint8Array(16), 12345n)).toThrow(HeadroomError);
    d.free(p);
    expect(() => d.free(p)).toThrow(HeadroomError);
  });

  test("bad handles are errors, not crashes", () => {
    const lib = loadLibrary("cpu");
    expect(lib.sym.hr_device_close(0xdeadbeefn)).toBe(Status.INVALID);
    expect(lib.lastError()).toContain("invalid or closed device handle");
    const d = device();
    const h = d.handle;
    open.pop()!.close();
    expect(lib.sym.hr_alloc(h, 16, new BigUint64Array(1))).toBe(Status.INVALID);
  });
});

describe("reserve-then-map regions", () => {
  test("reserving costs no device memory; mapping commits exactly what is asked", () => {
    const d = device(64 * MiB);
    const { base, granularity } = d.reserveRegion(1024 * MiB); // far beyond the capacity
    expect(granularity).toBe(4096); // page size on the CPU backend
    expect(d.memInfo().free).toBe(64 * MiB);
    d.mapRegion(base, 10 * MiB);
    expect(d.memInfo().free).toBe(54 * MiB);
    expect(d.mappedRegionBytes()).toBe(10 * MiB);
    // mapped memory is usable through transfers; beyond the mapped prefix is refused
    const data = Float32Array.from({ length: 256 }, (_, i) => i * 0.5 + 1);
    d.copyToDevice(base + BigInt(10 * MiB - 1024), data);
    const back = new Float32Array(256);
    d.copyFromDevice(back, base + BigInt(10 * MiB - 1024));
    expect(back).toEqual(data);
    expect(() => d.copyToDevice(base + BigInt(10 * MiB - 512), data)).toThrow(HeadroomError);
    // too much for the device: OOM, previous mapping unchanged
    expect(() => d.mapRegion(base, 100 * MiB)).toThrow(/cannot map/);
    expect(d.mappedRegionBytes()).toBe(10 * MiB);
    d.mapRegion(base, 4 * MiB); // shrink
    expect(d.memInfo().free).toBe(60 * MiB);
    expect(() => d.mapRegion(base, 3 * MiB + 100)).toThrow(/granularity/);
    d.releaseRegion(base);
    expect(d.memInfo().free).toBe(64 * MiB);
    expect(() => d.releaseRegion(base)).toThrow(HeadroomError);
  });

  test("sliced regions map the same prefix of every slice (one slice per layer's K or V)", () => {
    const d = device(64 * MiB);
    const r = d.reserveRegion(100 * MiB, 4);
    // all slices grow together, so none can map more than a quarter of the 64 MiB device:
    // the reservation is bounded by the device size, not 4 x 100 MiB
    expect(r.sliceStride).toBe(16 * MiB);
    d.mapRegion(r.base, 4 * MiB);
    expect(d.memInfo().free).toBe(64 * MiB - 16 * MiB);
    expect(d.mappedRegionBytes()).toBe(16 * MiB);
    const one = new Float32Array([1.5, 2.5]);
    for (let s = 0; s < 4; s++) d.copyToDevice(r.base + BigInt(s * r.sliceStride + 4 * MiB - 8), one);
    expect(() => d.copyToDevice(r.base + BigInt(r.sliceStride + 4 * MiB), one)).toThrow(HeadroomError);
    expect(() => d.mapRegion(r.base, 20 * MiB)).toThrow(HeadroomError); // 80 MiB > 64 MiB
    expect(d.mappedRegionBytes()).toBe(16 * MiB);
    d.releaseRegion(r.base);
    expect(d.memInfo().free).toBe(64 * MiB);
  });
});
