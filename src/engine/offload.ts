// The offload manager: the runtime side of "Conditional weight offload" (DESIGN.md). Layers
// firstOffloaded … L−1 live in host buffers (upload.ts, firstHostLayer); `slots` device staging
// buffers (one layer buffer each, allocated through the caching allocator so they are
// accounted) form a ring: offloaded layer j (0-based among the offloaded ones) always runs
// from slot j mod k, so every pointer is static (graph friendly).
//
// Per step (hooks called by LlamaModel.forward):
//   beginStep      fork the copy engine after the work already queued; copy offloaded layers
//                  0 … k−1 into their slots (they overlap the resident layers' compute)
//   beforeLayer    wait for the copy into the layer's slot
//   afterLayer     release the slot; copy offloaded layer j + k into it (the copy waits for
//                  the release, so a slot is never overwritten while its layer may still run)
// All four go through the op dispatcher, so CPU op-list graphs record them and CUDA stream
// capture turns them into memcpy nodes and event dependencies. Every copy of a step is waited
// on within the step (a captured graph is joined).
import type { LayerOffload } from "../model/llama.ts";
import type { LoadedWeights } from "../model/upload.ts";
import { CopyEngine, type CopyEngineStats } from "../native/copy-engine.ts";
import type { Device } from "../native/device.ts";

export interface OffloadStats {
  layersOnDevice: number;
  layersOffloaded: number;
  slots: number;
  slotBytes: number;
  hostBytes: number;
  /** Bytes copied per step (offloaded layers × layer bytes). */
  bytesPerStep: number;
  copy: CopyEngineStats;
  /** bytes ÷ copy-thread busy time (CPU); null where the backend does not time copies (CUDA). */
  achievedBandwidthBytesPerS: number | null;
  /** Fraction of copy time hidden behind compute: 1 − blocked wait ÷ copy time (CPU); null on CUDA. */
  overlap: number | null;
}

export class OffloadManager implements LayerOffload {
  readonly engine: CopyEngine;
  readonly numLayers: number;
  readonly firstOffloaded: number;
  readonly layerBytes: number;
  readonly slotPtrs: bigint[] = [];
  private readonly hostPtrs: bigint[] = [];
  /** Test/measurement switch: run the hooks without copying or waiting (compute-only timing). */
  skipCopies = false;
  private destroyed = false;

  constructor(
    private readonly dev: Device,
    weights: LoadedWeights,
    readonly slots: number,
  ) {
    this.numLayers = weights.config.numLayers;
    const host = weights.buffers.filter((b) => b.layer !== null && b.host !== null).sort((a, b) => a.layer! - b.layer!);
    if (host.length === 0) throw new Error("OffloadManager: no layer lives in host memory");
    this.firstOffloaded = host[0]!.layer!;
    host.forEach((b, i) => {
      if (b.layer !== this.firstOffloaded + i)
        throw new Error(`OffloadManager: offloaded layers must be the last ones (got layer ${b.layer})`);
      this.hostPtrs.push(b.ptr);
    });
    if (this.firstOffloaded + host.length !== this.numLayers)
      throw new Error("OffloadManager: offloaded layers must run to the last layer");
    this.layerBytes = Math.max(...host.map((b) => Math.max(1, b.bytes)));
    this.engine = CopyEngine.create(dev, slots);
    try {
      for (let s = 0; s < slots; s++) this.slotPtrs.push(dev.alloc(this.layerBytes));
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  get layersOffloaded(): number {
    return this.hostPtrs.length;
  }

  slotBase(layer: number): bigint | null {
    const j = layer - this.firstOffloaded;
    return j >= 0 ? this.slotPtrs[j % this.slots]! : null;
  }

  beginStep(): void {
    if (this.skipCopies) return;
    this.engine.begin();
    const n = Math.min(this.slots, this.hostPtrs.length);
    for (let j = 0; j < n; j++) this.engine.copyAsync(j, this.slotPtrs[j]!, this.hostPtrs[j]!, this.layerBytes, false);
  }

  beforeLayer(layer: number): void {
    const j = layer - this.firstOffloaded;
    if (j < 0 || this.skipCopies) return;
    this.engine.wait(j % this.slots);
  }

  afterLayer(layer: number): void {
    const j = layer - this.firstOffloaded;
    if (j < 0 || this.skipCopies) return;
    const s = j % this.slots;
    this.engine.release(s);
    const next = j + this.slots;
    if (next < this.hostPtrs.length) this.engine.copyAsync(s, this.slotPtrs[s]!, this.hostPtrs[next]!, this.layerBytes, true);
  }

  /**
   * Host→device bandwidth of this copy engine (bytes/s): layer-sized copies from the host
   * buffers (pinned on CUDA) into the slots, at least `minBytes` in total and at most
   * `maxMs`, timed to the last copy's completion.
   */
  measureBandwidth(minBytes = 64 * 2 ** 20, maxMs = 2000): number {
    // warm-up: one copy into every slot (first-touch page faults, caches) before timing
    for (let s = 0; s < this.slots; s++)
      this.engine.copyAsync(s, this.slotPtrs[s]!, this.hostPtrs[s % this.hostPtrs.length]!, this.layerBytes, false);
    this.engine.synchronize();
    const t0 = performance.now();
    let bytes = 0;
    let i = 0;
    while (bytes < minBytes || i < this.slots) {
      const s = i % this.slots;
      this.engine.copyAsync(s, this.slotPtrs[s]!, this.hostPtrs[i % this.hostPtrs.length]!, this.layerBytes, false);
      bytes += this.layerBytes;
      i++;
      if (i % 16 === 0 && performance.now() - t0 > maxMs) break;
    }
    this.engine.synchronize();
    const s = (performance.now() - t0) / 1000;
    return s > 0 ? bytes / s : Number.POSITIVE_INFINITY;
  }

  stats(): OffloadStats {
    const copy = this.engine.stats();
    const timed = copy.busySeconds > 0;
    return {
      layersOnDevice: this.firstOffloaded,
      layersOffloaded: this.hostPtrs.length,
      slots: this.slots,
      slotBytes: this.slots * this.layerBytes,
      hostBytes: this.hostPtrs.length * this.layerBytes,
      bytesPerStep: this.hostPtrs.length * this.layerBytes,
      copy,
      achievedBandwidthBytesPerS: timed ? copy.bytes / copy.busySeconds : null,
      overlap: timed ? Math.max(0, Math.min(1, 1 - copy.waitSeconds / copy.busySeconds)) : null,
    };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    let first: unknown;
    try {
      this.engine.destroy(); // waits for pending copies
    } catch (e) {
      first = e;
    }
    for (const p of this.slotPtrs) {
      try {
        this.dev.free(p);
      } catch (e) {
        first ??= e;
      }
    }
    this.slotPtrs.length = 0;
    if (first) throw first;
  }
}
