// Start-up memory profiling in the three-category model ("capture first, size last").
//
// The profiler takes the instance's first snapshot before anything is loaded. Everything the
// instance adds afterwards is measured, never estimated:
//   weights            allocator growth while loading weights
//   peak activation    allocator peak increase during the profile run at the maximum batch
//   non-allocator      increase of (used − reserved − KV) since the first snapshot
//   graphs             free-memory drop while capturing graphs
//   allocator slack    reserved − allocated after start-up (segment rounding, cached blocks)
// Memory other users held at the first snapshot is never charged to this instance.
import type { Device } from "../native/index.ts";
import { takeSnapshot, type MemorySnapshot } from "./snapshot.ts";

export interface MemoryProfilingResult {
  baseline: MemorySnapshot;
  afterProfile: MemorySnapshot;
  weightsBytes: number;
  peakActivationBytes: number;
  nonAllocatorIncreaseBytes: number;
  graphBytes: number;
  allocatorSlackBytes: number;
  /** weights + peak activation + non-allocator increase + graphs + allocator slack. */
  nonKvBytes: number;
  /** total × gpu_memory_utilization. */
  requestedBytes: number;
  /** requested − non-KV (what the KV cache may use before the margin). */
  kvBudgetBytes: number;
  profileTimeMs: number;
  /** true when --kv-cache-memory-bytes skipped the profile run. */
  profileSkipped: boolean;
}

export class MemoryProfiler {
  readonly baseline: MemorySnapshot;
  private weights = 0;
  private peakActivation = 0;
  private graphs = 0;
  private profileMs = 0;
  private skipped = false;
  private afterProfile: MemorySnapshot | null = null;

  constructor(private readonly dev: Device) {
    this.baseline = takeSnapshot(dev);
  }

  /** Runs `load` and charges the allocator growth to weights. */
  measureWeights<T>(load: () => T): T {
    const before = this.dev.stats().allocatedBytes.current;
    const out = load();
    this.weights += this.dev.stats().allocatedBytes.current - before;
    return out;
  }

  /** Runs the profile step and records the peak activation (allocator peak increase). */
  profileRun<T>(run: () => T): T {
    const t0 = performance.now();
    this.dev.resetPeak();
    const before = this.dev.stats().allocatedBytes.current;
    const out = run();
    this.dev.synchronize();
    this.peakActivation = Math.max(this.peakActivation, this.dev.stats().allocatedBytes.peak - before);
    this.profileMs += performance.now() - t0;
    this.afterProfile = takeSnapshot(this.dev);
    return out;
  }

  /** --kv-cache-memory-bytes: no profile run; activations are still measured when allocated. */
  skipProfile<T>(allocate: () => T): T {
    this.skipped = true;
    const before = this.dev.stats().allocatedBytes.current;
    const out = allocate();
    this.peakActivation = this.dev.stats().allocatedBytes.current - before;
    this.afterProfile = takeSnapshot(this.dev);
    return out;
  }

  /** Runs graph capture and charges the free-memory drop (pool segments + executables). */
  measureGraphs<T>(capture: () => T): T {
    const before = takeSnapshot(this.dev);
    const out = capture();
    this.dev.synchronize();
    const after = takeSnapshot(this.dev);
    this.graphs += before.freeBytes - after.freeBytes - (after.kvMappedBytes - before.kvMappedBytes);
    return out;
  }

  result(gpuMemoryUtilization: number): MemoryProfilingResult {
    const now = takeSnapshot(this.dev);
    const afterProfile = this.afterProfile ?? now;
    // Graph memory outside the allocator shows up in non-allocator growth too: count it once.
    const nonAllocIncrease = Math.max(0, now.nonAllocatorBytes - this.baseline.nonAllocatorBytes);
    const graphPoolAndExec = this.graphs;
    const nonAllocExcludingGraphs = Math.max(0, nonAllocIncrease - this.graphsOutsideAllocator(now));
    const slack = Math.max(0, now.reservedBytes - now.allocatedBytes - this.cachedInGraphPools());
    const nonKv = this.weights + this.peakActivation + nonAllocExcludingGraphs + graphPoolAndExec + slack;
    const requested = Math.floor(this.baseline.totalBytes * gpuMemoryUtilization);
    return {
      baseline: this.baseline,
      afterProfile,
      weightsBytes: this.weights,
      peakActivationBytes: this.peakActivation,
      nonAllocatorIncreaseBytes: nonAllocExcludingGraphs,
      graphBytes: graphPoolAndExec,
      allocatorSlackBytes: slack,
      nonKvBytes: nonKv,
      requestedBytes: requested,
      kvBudgetBytes: requested - nonKv,
      profileTimeMs: this.profileMs,
      profileSkipped: this.skipped,
    };
  }

  // Hooks for the graph runner (issue 8) to split graph memory between the allocator pool
  // and executables; both are 0 until graphs are captured.
  private graphPoolReserved = 0;
  private graphPoolAllocated = 0;
  /** Tells the profiler how much of the graph memory lives in the allocator's private pool. */
  recordGraphPool(reservedBytes: number, allocatedBytes: number): void {
    this.graphPoolReserved = reservedBytes;
    this.graphPoolAllocated = allocatedBytes;
  }
  private graphsOutsideAllocator(_now: MemorySnapshot): number {
    return Math.max(0, this.graphs - this.graphPoolReserved);
  }
  private cachedInGraphPools(): number {
    return Math.max(0, this.graphPoolReserved - this.graphPoolAllocated);
  }
}
