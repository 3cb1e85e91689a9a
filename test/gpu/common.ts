// Shared pieces of the GPU suites (test/gpu/*.test.ts): GPU detection with a visible skip
// line, the CUDA-only symbols, dtype conversion (fp16/bf16 bit patterns), seeded random
// inputs that are never zero, device buffers poisoned with NaN, and error checks that look
// at every element.
import { dlopen } from "bun:ffi";
import { existsSync } from "node:fs";

import { Device } from "../../src/native/device.ts";
import { libraryPath, loadLibrary } from "../../src/native/library.ts";
import { DType, type DTypeCode } from "../../src/native/ops.ts";
import { cudaExtraSymbols } from "../../src/native/symbols.ts";

// ---- GPU detection ------------------------------------------------------------------

function detect(): { ok: boolean; reason: string } {
  if (!existsSync(libraryPath("cuda"))) return { ok: false, reason: `${libraryPath("cuda")} not built` };
  try {
    loadLibrary("cuda");
    return { ok: true, reason: "" };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

const detected = detect();
/** True where no CUDA device can be used: the GPU suites skip (visibly). */
export const noGpu = !detected.ok;
export const noGpuReason = detected.reason;

/** Prints the visible skip line of one suite (call at module level). */
export function announce(suite: string): void {
  if (noGpu) console.warn(`skipped: no GPU — ${suite} (${noGpuReason})`);
}

/** The CUDA-only ABI extras (hr_event_*, hr_memcpy_async, hr_blas_*...). */
export function cudaExtras() {
  return dlopen(libraryPath("cuda"), cudaExtraSymbols).symbols;
}

export function openCuda(): Device {
  return Device.open({ device: "cuda" });
}
export function openCpu(): Device {
  return Device.open({ device: "cpu", ordinal: 5, cpuCapacityBytes: 0 });
}

// ---- dtypes -----------------------------------------------------------------------

export const DTYPES: { name: string; code: DTypeCode }[] = [
  { name: "f32", code: DType.F32 },
  { name: "f16", code: DType.F16 },
  { name: "bf16", code: DType.BF16 },
];

/**
 * Error bounds per dtype (relative to the float64 reference, see `expectClose`):
 *   f32: 1e-5, f16: 1e-2, bf16: 2e-2. Inputs are already representable in the dtype (they are
 * rounded before the reference sees them), so the bounds cover the kernel's own roundings
 * (outputs, written-back intermediates) and fp32 accumulation order.
 */
export const RTOL: Record<number, number> = { [DType.F32]: 1e-5, [DType.F16]: 1e-2, [DType.BF16]: 2e-2 };

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** float -> bfloat16 bits, round to nearest even (NaN stays NaN). */
export function toBf16Bits(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
export function fromBf16Bits(b: number): number {
  u32buf[0] = (b & 0xffff) << 16;
  return f32buf[0]!;
}

/** float -> IEEE half bits, round to nearest even (subnormals and overflow handled). */
export function toF16Bits(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}
export function fromF16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Rounds values to what `dtype` can hold (in place) and returns them. */
export function roundTo(dtype: number, v: Float32Array): Float32Array {
  if (dtype === DType.F16) for (let i = 0; i < v.length; i++) v[i] = fromF16Bits(toF16Bits(v[i]!));
  else if (dtype === DType.BF16) for (let i = 0; i < v.length; i++) v[i] = fromBf16Bits(toBf16Bits(v[i]!));
  return v;
}

/** The bytes `dtype` stores for `v` (f32: the floats themselves). */
export function encode(dtype: number, v: Float32Array): Float32Array | Uint16Array {
  if (dtype === DType.F32) return v;
  const out = new Uint16Array(v.length);
  const f = dtype === DType.F16 ? toF16Bits : toBf16Bits;
  for (let i = 0; i < v.length; i++) out[i] = f(v[i]!);
  return out;
}
export function decode(dtype: number, raw: Float32Array | Uint16Array): Float32Array {
  if (raw instanceof Float32Array) return raw;
  const out = new Float32Array(raw.length);
  const f = dtype === DType.F16 ? fromF16Bits : fromBf16Bits;
  for (let i = 0; i < raw.length; i++) out[i] = f(raw[i]!);
  return out;
}
export const esize = (dtype: number) => (dtype === DType.F32 ? 4 : 2);

// ---- random inputs ------------------------------------------------------------------

/** xorshift64* seeded per run (fresh inputs each run; the seed is printed on failure). */
export class Rng {
  private s: bigint;
  constructor(readonly seed: number) {
    this.s = BigInt(seed) | 1n;
  }
  u32(): number {
    let s = this.s;
    s ^= s >> 12n;
    s ^= (s << 25n) & 0xffffffffffffffffn;
    s ^= s >> 27n;
    this.s = s;
    return Number(((s * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn) >> 32n);
  }
  /** uniform in [-1, 1), never exactly 0 */
  f(): number {
    return ((this.u32() & 0xffffff) + 0.5) / 8388608 - 1;
  }
  int(n: number): number {
    return this.u32() % n;
  }
  floats(n: number, scale = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.f() * scale;
    return a;
  }
  /** random permutation of 0..n-1 */
  perm(n: number): Int32Array {
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }
}
export function freshSeed(): number {
  return (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0;
}

// ---- device buffers -----------------------------------------------------------------

/** Allocations of one test on one device, freed together. */
export class Buffers {
  private ptrs: bigint[] = [];
  constructor(readonly dev: Device) {}
  alloc(bytes: number): bigint {
    const p = this.dev.alloc(Math.max(bytes, 4));
    this.ptrs.push(p);
    return p;
  }
  /** Uploads values as `dtype`. */
  values(dtype: number, v: Float32Array): bigint {
    const raw = encode(dtype, v);
    const p = this.alloc(raw.byteLength);
    this.dev.copyToDevice(p, raw);
    return p;
  }
  ints(v: Int32Array): bigint {
    const p = this.alloc(v.byteLength);
    this.dev.copyToDevice(p, v);
    return p;
  }
  floats32(v: Float32Array): bigint {
    const p = this.alloc(v.byteLength);
    this.dev.copyToDevice(p, v);
    return p;
  }
  /** An output buffer of n elements filled with NaN (0xff bytes: NaN in f32, f16 and bf16). */
  poisoned(dtype: number, n: number): bigint {
    const p = this.alloc(n * esize(dtype));
    this.dev.memset(p, 0xff, n * esize(dtype));
    return p;
  }
  read(dtype: number, p: bigint, n: number): Float32Array {
    this.dev.synchronize();
    const raw = dtype === DType.F32 ? new Float32Array(n) : new Uint16Array(n);
    this.dev.copyFromDevice(raw, p);
    return decode(dtype, raw);
  }
  freeAll(): void {
    for (const p of this.ptrs) this.dev.free(p);
    this.ptrs = [];
  }
}

// ---- checks -------------------------------------------------------------------------

/**
 * Every element: finite (nothing left poisoned) and |got - ref| <= rtol * (|ref| + scale[i]),
 * scale = per-element magnitude the error can scale with (e.g. sum |x w| of a dot product;
 * pass a number for a constant). Throws naming the first offending element and the seed.
 */
export function expectClose(
  what: string,
  got: Float32Array,
  ref: Float64Array | Float32Array,
  rtol: number,
  scale: number | Float64Array = 0,
  seed?: number,
): { maxErr: number } {
  if (got.length !== ref.length) throw new Error(`${what}: length ${got.length} != ${ref.length}`);
  let maxErr = 0;
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!,
      r = ref[i]!;
    const sc = typeof scale === "number" ? scale : scale[i]!;
    const err = Math.abs(g - r);
    if (!Number.isFinite(g) || !(err <= rtol * (Math.abs(r) + sc))) {
      throw new Error(
        `${what}: element ${i} = ${g}, expected ${r} (|err| ${err.toExponential(3)} > ${rtol} * (|ref| + ${sc}))` +
          (seed !== undefined ? ` [seed ${seed}]` : ""),
      );
    }
    if (err > maxErr) maxErr = err;
  }
  return { maxErr };
}

/** Every element NaN (untouched poisoned rows / affected outputs). */
export function expectAllNaN(what: string, got: Float32Array): void {
  for (let i = 0; i < got.length; i++) if (!Number.isNaN(got[i]!)) throw new Error(`${what}: element ${i} = ${got[i]} should be NaN`);
}
