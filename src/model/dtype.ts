// The engine's compute dtype: the element type of the device weights, the activation arena's
// activations and the paged KV cache (logits, RoPE tables and index arrays stay fp32/int32).
// f32 on the CPU backend (its ops compute in fp32 only; --dtype bfloat16/float16 there stores
// only the matmul weights in 16 bits, see resolveDtypes), bf16 on CUDA by default, f16 on
// request. Plus the f32 -> bf16/f16 conversions the weight upload uses: round to nearest,
// ties to even, NaN kept NaN (quiet), overflow to ±inf, f16 subnormals rounded exactly.
import { DType, type DTypeCode } from "../native/ops.ts";

export type ComputeDtype = "f32" | "f16" | "bf16";

/** `--dtype` values (HF/vLLM spelling); auto = f32 on CPU, bf16 on CUDA. */
export const DTYPE_FLAGS = ["auto", "float32", "bfloat16", "float16"] as const;
export type DtypeFlag = (typeof DTYPE_FLAGS)[number];

export const COMPUTE_DTYPE_BYTES: Record<ComputeDtype, number> = { f32: 4, f16: 2, bf16: 2 };
export const COMPUTE_DTYPE_CODE: Record<ComputeDtype, DTypeCode> = { f32: DType.F32, f16: DType.F16, bf16: DType.BF16 };
const FLAG_DTYPE: Record<Exclude<DtypeFlag, "auto">, ComputeDtype> = { float32: "f32", bfloat16: "bf16", float16: "f16" };

export function dtypeOfCode(code: DTypeCode): ComputeDtype {
  return code === DType.F32 ? "f32" : code === DType.F16 ? "f16" : "bf16";
}

/** What `--dtype auto` means on a backend. */
export function defaultComputeDtype(backend: string): ComputeDtype {
  return backend === "cuda" ? "bf16" : "f32";
}

export class ComputeDtypeError extends Error {
  override readonly name = "ComputeDtypeError";
}

/**
 * What `--dtype` sets on a backend: the compute dtype (activations, arena, the default KV cache
 * element) and the weight dtype (the element type of the matmul weights and embedding / LM-head
 * tables). On CUDA both are the flag's. On CPU the ops compute in fp32 only, so bfloat16/float16
 * keep fp32 compute and store just the big matrices in 16 bits (hr_op_*_q with a BF16/F16
 * weight type, csrc/cpu/matmul_16bit.c); norms, biases and RoPE factors stay fp32.
 * `auto` on CPU stays float32 (not the checkpoint's dtype as HF's auto would): fp32 weights are
 * the accurate default and 16-bit weights are an opt-in memory/speed trade.
 */
export interface DtypeChoice {
  compute: ComputeDtype;
  weights: ComputeDtype;
}

export function resolveDtypes(flag: DtypeFlag | undefined | null, backend: string): DtypeChoice {
  const f = flag ?? "auto";
  if (f !== "auto" && !(f in FLAG_DTYPE)) throw new ComputeDtypeError(`--dtype ${String(f)}: expected one of ${DTYPE_FLAGS.join(", ")}`);
  const d = f === "auto" ? defaultComputeDtype(backend) : FLAG_DTYPE[f];
  return backend === "cuda" ? { compute: d, weights: d } : { compute: "f32", weights: d };
}

/** The compute dtype for `--dtype flag` on `backend` ("cpu" | "cuda"): f32 on CPU whatever the flag. */
export function resolveComputeDtype(flag: DtypeFlag | undefined | null, backend: string): ComputeDtype {
  return resolveDtypes(flag, backend).compute;
}

// ---- f32 -> bf16 / f16 bits

/** bf16 bits of the f32 with bits `u`: round to nearest even; NaN stays a (quiet) NaN. */
export function f32BitsToBf16(u: number): number {
  u >>>= 0;
  if ((u & 0x7fffffff) >>> 0 > 0x7f800000) return ((u >>> 16) | 0x0040) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** IEEE half bits of the f32 with bits `u`: round to nearest even, subnormals, ±inf on overflow, quiet NaN. */
export function f32BitsToF16(u: number): number {
  u >>>= 0;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x0200 | (mant >>> 13) : 0);
  const e = exp - 112; // half exponent field (bias 15 vs 127)
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // half subnormal (or zero): value = r · 2^-24, r = (1.mant · 2^23) >> (14 − e)
    if (e < -10) return sign; // below half the smallest subnormal
    const m = mant | 0x800000;
    const shift = 14 - e;
    let r = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1) !== 0)) r++; // may carry into the smallest normal: still right
    return sign | r;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry may reach 0x7c00 (= inf): right
  return sign | h;
}

/** Converts `src` (fp32) into `dst` (bf16 or f16 bits), element by element; dst.length >= src.length. */
export function f32ToHalfBits(dtype: "bf16" | "f16", src: Float32Array, dst: Uint16Array): void {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const n = src.length;
  if (dtype === "bf16") {
    for (let i = 0; i < n; i++) {
      const x = u[i]!;
      dst[i] = (x & 0x7fffffff) > 0x7f800000 ? ((x >>> 16) | 0x0040) & 0xffff : ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
    }
  } else {
    for (let i = 0; i < n; i++) dst[i] = f32BitsToF16(u[i]!);
  }
}
