// Host buffers and the copy engine of the "offload / copy engine" section of headroom.h:
// offloaded weights live in host buffers (pinned on CUDA) and are copied into device staging
// slots on a copy thread (CPU) or copy stream (CUDA), ordered by per-slot events.
import { toArrayBuffer, type Pointer } from "bun:ffi";

import type { Device } from "./device.ts";

export interface CopyEngineStats {
  bytes: number;
  copies: number;
  /** Seconds the copy thread spent copying (CPU; 0 on CUDA). */
  busySeconds: number;
  /** Seconds the compute side was blocked waiting for a copy (CPU; 0 on CUDA). */
  waitSeconds: number;
  waits: number;
  waitsBlocked: number;
}

/** A host buffer (hr_host_alloc): host memory, never counted against the device. */
export class HostBuffer {
  private freed = false;
  private constructor(
    readonly dev: Device,
    readonly ptr: bigint,
    readonly bytes: number,
  ) {}

  static alloc(dev: Device, bytes: number): HostBuffer {
    const out = new BigUint64Array(1);
    dev.lib.check(dev.lib.sym.hr_host_alloc(dev.handle, bytes, out), "hr_host_alloc");
    return new HostBuffer(dev, out[0]!, bytes);
  }

  /** A byte view of [offset, offset + length) for filling the buffer from JS (no copy). */
  view(offset = 0, length = this.bytes - offset): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.bytes)
      throw new RangeError(`host buffer view [${offset}, +${length}) outside ${this.bytes} bytes`);
    return new Uint8Array(toArrayBuffer(Number(this.ptr) as Pointer, offset, length));
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.dev.lib.check(this.dev.lib.sym.hr_host_free(this.dev.handle, this.ptr), "hr_host_free");
  }
}

/** Bytes this instance holds in host buffers. */
export function hostBufferBytes(dev: Device): number {
  const out = new BigUint64Array(1);
  dev.lib.check(dev.lib.sym.hr_host_bytes(dev.handle, out), "hr_host_bytes");
  return Number(out[0]);
}

export class CopyEngine {
  private destroyed = false;
  private readonly s;
  private readonly h: bigint;
  private readonly out64 = new BigInt64Array(1);

  private constructor(
    readonly dev: Device,
    readonly handle: bigint,
    readonly numSlots: number,
  ) {
    this.s = dev.lib.sym;
    this.h = dev.handle;
  }

  static create(dev: Device, numSlots: number): CopyEngine {
    const out = new BigUint64Array(1);
    dev.lib.check(dev.lib.sym.hr_copy_engine_create(dev.handle, numSlots, out), "hr_copy_engine_create");
    return new CopyEngine(dev, out[0]!, numSlots);
  }

  private check(status: number, call: string): void {
    if (status !== 0) this.dev.lib.check(status, call);
  }

  /** Copies issued after this start after the compute work queued before it. */
  begin(): void {
    this.check(this.s.hr_copy_begin(this.h, this.handle), "hr_copy_begin");
  }

  /** Queues a host → device copy tagged `slot` (returns at once). */
  copyAsync(slot: number, dst: bigint, srcHost: bigint, bytes: number, afterRelease: boolean): void {
    this.check(this.s.hr_copy_async(this.h, this.handle, slot, dst, srcHost, bytes, afterRelease ? 1 : 0), "hr_copy_async");
  }

  /** Compute work queued after this runs after the last copy tagged `slot`. */
  wait(slot: number): void {
    this.check(this.s.hr_copy_wait(this.h, this.handle, slot), "hr_copy_wait");
  }

  /** The compute work using `slot` has been queued; a later copy with afterRelease waits for it. */
  release(slot: number): void {
    this.check(this.s.hr_copy_release(this.h, this.handle, slot), "hr_copy_release");
  }

  query(slot: number): boolean {
    this.check(this.s.hr_copy_query(this.h, this.handle, slot, this.out64), "hr_copy_query");
    return this.out64[0] === 1n;
  }

  synchronize(): void {
    this.check(this.s.hr_copy_synchronize(this.h, this.handle), "hr_copy_synchronize");
  }

  /** CPU test knob: the copy thread sleeps this long before every copy. */
  setDelayUs(us: number): void {
    this.check(this.s.hr_copy_engine_set_delay_us(this.h, this.handle, us), "hr_copy_engine_set_delay_us");
  }

  stats(): CopyEngineStats {
    const a = new Float64Array(6);
    this.check(this.s.hr_copy_engine_stats(this.h, this.handle, a, 6), "hr_copy_engine_stats");
    return { bytes: a[0]!, copies: a[1]!, busySeconds: a[2]!, waitSeconds: a[3]!, waits: a[4]!, waitsBlocked: a[5]! };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.check(this.s.hr_copy_engine_destroy(this.h, this.handle), "hr_copy_engine_destroy");
  }
}
