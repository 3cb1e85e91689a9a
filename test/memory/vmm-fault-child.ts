// Child process of test/memory/vmm.test.ts (CUDA only): runs one VMM scenario with
// HEADROOM_TEST_VMM_FAIL (csrc/cuda/vmm.cu) set in its environment, so chosen cuMemCreate calls
// fail, and prints one JSON line (FaultReport). Also exports the pattern helpers the test uses.
//   bun test/memory/vmm-fault-child.ts shrink   map 2g, grow to 5g, fill, shrink to 3g (then, if
//                                               that failed, grow to 3g again)
//   bun test/memory/vmm-fault-child.ts grow     map 2g, fill, grow to 5g
import { Device } from "../../src/native/device.ts";

export interface FaultReport {
  ok: boolean;
  error: string;
  /** Mapped bytes per slice after the scenario's map call, in granules. */
  mappedPerSlice: number;
  /** Every slice's mapped prefix still holds the pattern written before the call. */
  contentsKept: boolean;
  /** Device bytes taken (free before the reservation - free now): right after mapping 2 granules, and at the end. */
  takenAt2: number;
  takenAfter: number;
  /** Bytes of one granule times the slices. */
  granuleAllSlices: number;
  /** After a failed shrink: granules per slice after mapping 3 again, and the old prefix still kept. */
  regrownPerSlice?: number;
  regrownKept?: boolean;
}

/** Writes a distinct pseudo-random pattern over the first `bytes` of every slice; returns it. */
export function fillSlices(d: Device, base: bigint, stride: number, slices: number, bytes: number, seed: number): Uint32Array[] {
  const out: Uint32Array[] = [];
  for (let s = 0; s < slices; s++) {
    const a = new Uint32Array(bytes / 4);
    let x = (seed * 0x9e3779b9 + s * 0x85ebca6b + 1) >>> 0;
    for (let i = 0; i < a.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      a[i] = x >>> 0;
    }
    d.copyToDevice(base + BigInt(s * stride), a);
    out.push(a);
  }
  return out;
}

/** First word index where slice `s`'s first `bytes` differ from `want`, or -1. */
export function firstMismatch(d: Device, base: bigint, stride: number, s: number, bytes: number, want: Uint32Array): number {
  const got = new Uint32Array(bytes / 4);
  d.copyFromDevice(got, base + BigInt(s * stride));
  for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) return i;
  return -1;
}

const SLICES = 4;

function main(scenario: string): FaultReport {
  const d = Device.open({ device: "cuda" });
  try {
    const before = d.memInfo().free;
    const r = d.reserveRegion(64 * 2 ** 20, SLICES);
    const g = r.granularity;
    d.mapRegion(r.base, 2 * g);
    const takenAt2 = before - d.memInfo().free;
    if (scenario === "shrink") d.mapRegion(r.base, 5 * g);
    const filled = scenario === "shrink" ? 5 * g : 2 * g;
    const want = fillSlices(d, r.base, r.sliceStride, SLICES, filled, 3);
    let ok = true;
    let error = "";
    try {
      d.mapRegion(r.base, scenario === "shrink" ? 3 * g : 5 * g);
    } catch (e) {
      ok = false;
      error = (e as Error).message;
    }
    const kept = (bytes: number) => want.every((w, s) => firstMismatch(d, r.base, r.sliceStride, s, Math.min(bytes, filled), w) === -1);
    const mapped = d.mappedRegionBytes() / SLICES;
    const report: FaultReport = {
      ok,
      error,
      mappedPerSlice: mapped / g,
      contentsKept: kept(mapped),
      takenAt2,
      takenAfter: before - d.memInfo().free,
      granuleAllSlices: g * SLICES,
    };
    if (!ok && scenario === "shrink") {
      d.mapRegion(r.base, 3 * g);
      report.regrownPerSlice = d.mappedRegionBytes() / SLICES / g;
      report.regrownKept = kept(mapped);
    }
    d.releaseRegion(r.base);
    return report;
  } finally {
    d.close();
  }
}

if (import.meta.main) {
  const scenario = process.argv[2] ?? "";
  if (scenario !== "shrink" && scenario !== "grow") throw new Error(`usage: vmm-fault-child.ts shrink|grow (got '${scenario}')`);
  console.log(JSON.stringify(main(scenario)));
}
