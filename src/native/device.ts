// A device instance (hr_device_open): memory info, the caching allocator and transfers.
import type { DeviceChoice, NativeLibrary } from "./library.ts";
import { loadLibrary } from "./library.ts";

export interface DeviceInfo {
  name: string;
  backend: string;
  ordinal: number;
  totalBytes: number;
  freeBytes: number;
  computeCapability: [number, number];
  maxSharedMemoryPerBlock: number;
  multiprocessors: number;
  unifiedMemory: boolean;
  cpuFeatures: string[];
}

/** One stat group of the PyTorch-style allocator statistics. */
export interface StatGroup {
  current: number;
  peak: number;
  allocated: number;
  freed: number;
}

export interface AllocatorStats {
  allocatedBytes: StatGroup;
  reservedBytes: StatGroup;
  activeBytes: StatGroup;
  segment: StatGroup;
  numAllocRetries: number;
  numOoms: number;
  numAllocs: number;
  limit: number;
}

export interface SnapshotBlock {
  address: bigint;
  size: number;
  allocated: boolean;
}

export interface SnapshotSegment {
  address: bigint;
  size: number;
  pool: number;
  blocks: SnapshotBlock[];
}

export interface OpenOptions {
  device?: DeviceChoice;
  ordinal?: number;
  /** CPU backend only: capacity of the simulated device (bytes); 0 = default. */
  cpuCapacityBytes?: number;
  log?: (msg: string) => void;
}

/** Host memory a transfer may read or write: any typed array (no copy is made). */
export type HostBuffer =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

const CPU_FEATURES = ["sse4.2", "avx", "avx2", "fma", "avx512f", "neon"];
const INFO_COUNT = 9;
const STATS_COUNT = 20;
const SNAP_ROW = 6;

function group(a: BigInt64Array, at: number): StatGroup {
  return { current: Number(a[at]), peak: Number(a[at + 1]), allocated: Number(a[at + 2]), freed: Number(a[at + 3]) };
}

export class Device {
  private closed = false;
  private readonly u64 = new BigUint64Array(2);

  private constructor(
    readonly lib: NativeLibrary,
    readonly handle: bigint,
  ) {}

  static open(opts: OpenOptions = {}): Device {
    const lib = loadLibrary(opts.device ?? "auto", opts.log);
    const out = new BigUint64Array(1);
    lib.check(lib.sym.hr_device_open(opts.ordinal ?? 0, opts.cpuCapacityBytes ?? 0, out), "hr_device_open");
    return new Device(lib, out[0]!);
  }

  get backend(): string {
    return this.lib.backend;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.lib.check(this.lib.sym.hr_device_close(this.handle), "hr_device_close");
  }

  memInfo(): { free: number; total: number } {
    const f = new BigUint64Array(1);
    const t = new BigUint64Array(1);
    this.lib.check(this.lib.sym.hr_device_mem_info(this.handle, f, t), "hr_device_mem_info");
    return { free: Number(f[0]), total: Number(t[0]) };
  }

  info(): DeviceInfo {
    const a = new BigInt64Array(INFO_COUNT);
    this.lib.check(this.lib.sym.hr_device_info(this.handle, a, INFO_COUNT), "hr_device_info");
    const buf = new Uint8Array(256);
    this.lib.check(this.lib.sym.hr_device_name(this.handle, buf, buf.length), "hr_device_name");
    const n = Number(a[7]);
    return {
      name: new TextDecoder().decode(buf.subarray(0, buf.indexOf(0))),
      backend: this.lib.backend,
      ordinal: Number(a[8]),
      totalBytes: Number(a[0]),
      freeBytes: Number(a[1]),
      computeCapability: [Number(a[2]), Number(a[3])],
      maxSharedMemoryPerBlock: Number(a[4]),
      multiprocessors: Number(a[5]),
      unifiedMemory: a[6] === 1n,
      cpuFeatures: CPU_FEATURES.filter((_, i) => (n >> i) & 1),
    };
  }

  /** CPU backend test hook: memory used by another process (category 1 of the memory model). */
  simulateOtherProcess(bytes: number): void {
    this.lib.check(this.lib.sym.hr_device_simulate_usage(this.handle, 0, bytes), "hr_device_simulate_usage");
  }

  /** CPU backend test hook: this instance's memory outside the allocator (category 3). */
  simulateNonAllocator(bytes: number): void {
    this.lib.check(this.lib.sym.hr_device_simulate_usage(this.handle, 1, bytes), "hr_device_simulate_usage");
  }

  // ---- caching allocator

  alloc(bytes: number | bigint): bigint {
    this.lib.check(this.lib.sym.hr_alloc(this.handle, bytes, this.u64), "hr_alloc");
    return this.u64[0]!;
  }

  free(ptr: bigint): void {
    this.lib.check(this.lib.sym.hr_free(this.handle, ptr), "hr_free");
  }

  setMemoryLimit(bytes: number): void {
    this.lib.check(this.lib.sym.hr_allocator_set_limit(this.handle, bytes), "hr_allocator_set_limit");
  }

  emptyCache(): void {
    this.lib.check(this.lib.sym.hr_allocator_empty_cache(this.handle), "hr_allocator_empty_cache");
  }

  resetPeak(): void {
    this.lib.check(this.lib.sym.hr_allocator_reset_peak(this.handle), "hr_allocator_reset_peak");
  }

  stats(): AllocatorStats {
    const a = new BigInt64Array(STATS_COUNT);
    this.lib.check(this.lib.sym.hr_allocator_stats(this.handle, a, STATS_COUNT), "hr_allocator_stats");
    return {
      allocatedBytes: group(a, 0),
      reservedBytes: group(a, 4),
      activeBytes: group(a, 8),
      segment: group(a, 12),
      numAllocRetries: Number(a[16]),
      numOoms: Number(a[17]),
      numAllocs: Number(a[18]),
      limit: Number(a[19]),
    };
  }

  snapshot(): SnapshotSegment[] {
    const rows = new BigInt64Array(1);
    let cap = 256;
    let buf: BigInt64Array;
    for (;;) {
      buf = new BigInt64Array(cap * SNAP_ROW);
      this.lib.check(this.lib.sym.hr_allocator_snapshot(this.handle, buf, cap, rows), "hr_allocator_snapshot");
      if (Number(rows[0]) <= cap) break;
      cap = Number(rows[0]) + 64;
    }
    const segments: SnapshotSegment[] = [];
    for (let r = 0; r < Number(rows[0]); r++) {
      const o = r * SNAP_ROW;
      const [kind, address, size, allocated, pool] = [buf[o]!, buf[o + 1]!, buf[o + 2]!, buf[o + 3]!, buf[o + 4]!];
      if (kind === 0n) {
        segments.push({ address: BigInt.asUintN(64, address), size: Number(size), pool: Number(pool), blocks: [] });
      } else {
        segments.at(-1)?.blocks.push({ address: BigInt.asUintN(64, address), size: Number(size), allocated: allocated === 1n });
      }
    }
    return segments;
  }

  createPool(): bigint {
    this.lib.check(this.lib.sym.hr_pool_create(this.handle, this.u64), "hr_pool_create");
    return this.u64[0]!;
  }

  /** Runs `fn` with allocations routed to `pool` (graph capture). */
  withPool<T>(pool: bigint, fn: () => T): T {
    this.lib.check(this.lib.sym.hr_pool_begin(this.handle, pool), "hr_pool_begin");
    try {
      return fn();
    } finally {
      this.lib.check(this.lib.sym.hr_pool_end(this.handle), "hr_pool_end");
    }
  }

  destroyPool(pool: bigint): void {
    this.lib.check(this.lib.sym.hr_pool_destroy(this.handle, pool), "hr_pool_destroy");
  }

  poolReserved(pool: bigint): number {
    this.lib.check(this.lib.sym.hr_pool_reserved(this.handle, pool, this.u64), "hr_pool_reserved");
    return Number(this.u64[0]);
  }

  // ---- reserve-then-map regions (the KV cache is sized last, at a fixed address)

  /**
   * Reserves address space for `numSlices` slices of up to `sliceBytes` each, without
   * physical memory. Slice i starts at base + i * sliceStride.
   */
  reserveRegion(sliceBytes: number, numSlices = 1): { base: bigint; granularity: number; sliceStride: number } {
    const g = new BigUint64Array(1);
    const stride = new BigUint64Array(1);
    this.lib.check(this.lib.sym.hr_vmm_reserve(this.handle, sliceBytes, numSlices, this.u64, g, stride), "hr_vmm_reserve");
    return { base: this.u64[0]!, granularity: Number(g[0]), sliceStride: Number(stride[0]) };
  }

  /** Maps exactly the first `bytesPerSlice` of every slice (a multiple of the granularity). */
  mapRegion(base: bigint, bytesPerSlice: number): void {
    this.lib.check(this.lib.sym.hr_vmm_map(this.handle, base, bytesPerSlice), "hr_vmm_map");
  }

  releaseRegion(base: bigint): void {
    this.lib.check(this.lib.sym.hr_vmm_release(this.handle, base), "hr_vmm_release");
  }

  mappedRegionBytes(): number {
    this.lib.check(this.lib.sym.hr_vmm_mapped_bytes(this.handle, this.u64), "hr_vmm_mapped_bytes");
    return Number(this.u64[0]);
  }

  // ---- transfers (the host side is any TypedArray; no extra JS copy is made)

  copyToDevice(dst: bigint, src: HostBuffer): void {
    if (src.byteLength === 0) return;
    this.lib.check(this.lib.sym.hr_memcpy_h2d(this.handle, dst, src, src.byteLength), "hr_memcpy_h2d");
  }

  /**
   * Queues a host-to-device copy without waiting for the device: `src` is copied into the
   * instance's pinned staging ring before this returns (reuse it at once); the device copy is
   * ordered with the ops queued after it (hr_memcpy_h2d_async). For per-step inputs.
   */
  copyToDeviceAsync(dst: bigint, src: HostBuffer): void {
    if (src.byteLength === 0) return;
    this.lib.check(this.lib.sym.hr_memcpy_h2d_async(this.handle, dst, src, src.byteLength), "hr_memcpy_h2d_async");
  }

  copyFromDevice(dst: HostBuffer, src: bigint): void {
    if (dst.byteLength === 0) return;
    this.lib.check(this.lib.sym.hr_memcpy_d2h(this.handle, dst, src, dst.byteLength), "hr_memcpy_d2h");
  }

  copyDeviceToDevice(dst: bigint, src: bigint, bytes: number): void {
    this.lib.check(this.lib.sym.hr_memcpy_d2d(this.handle, dst, src, bytes), "hr_memcpy_d2d");
  }

  memset(dst: bigint, byteValue: number, bytes: number): void {
    this.lib.check(this.lib.sym.hr_memset(this.handle, dst, byteValue, bytes), "hr_memset");
  }

  synchronize(): void {
    this.lib.check(this.lib.sym.hr_synchronize(this.handle), "hr_synchronize");
  }
}

/** Total and available host memory (bytes). */
export function hostMemory(lib: NativeLibrary = loadLibrary("cpu")): { total: number; available: number } {
  const t = new BigUint64Array(1);
  const a = new BigUint64Array(1);
  lib.check(lib.sym.hr_get_cpu_memory(t, a), "hr_get_cpu_memory");
  return { total: Number(t[0]), available: Number(a[0]) };
}
