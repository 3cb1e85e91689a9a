// On unified-memory devices (the CPU backend, GH200-class GPUs) device memory is host memory:
// cached-but-unused allocator segments starve the host. When host MemAvailable drops below a
// threshold, release the allocator's cached segments (empty_cache). Live blocks are untouched.
import { hostMemory, type Device } from "../native/index.ts";

export interface PressureOptions {
  /** Release when available host memory is below this fraction of total (default 0.05). */
  minAvailableFraction?: number;
  /** Host memory reader (tests inject pressure); default: /proc/meminfo via the library. */
  readHost?: () => { total: number; available: number };
}

export class HostPressureReleaser {
  private readonly unified: boolean;
  private readonly minFraction: number;
  private readonly readHost: () => { total: number; available: number };
  releasedBytes = 0;
  releases = 0;

  constructor(
    private readonly dev: Device,
    opts: PressureOptions = {},
  ) {
    this.unified = dev.info().unifiedMemory;
    this.minFraction = opts.minAvailableFraction ?? 0.05;
    this.readHost = opts.readHost ?? (() => hostMemory(dev.lib));
  }

  /** Checks host memory once; returns the bytes released (0 when there is no pressure). */
  check(): number {
    if (!this.unified) return 0;
    const h = this.readHost();
    if (h.available >= h.total * this.minFraction) return 0;
    const before = this.dev.stats().reservedBytes.current;
    this.dev.emptyCache();
    const released = before - this.dev.stats().reservedBytes.current;
    if (released > 0) {
      this.releasedBytes += released;
      this.releases++;
    }
    return released;
  }
}
