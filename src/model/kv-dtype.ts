// The KV cache's element type (--kv-cache-dtype, vLLM's spelling) and its per-layer scales.
// The cache may be narrower than the compute dtype: f16/bf16 halve an f32 cache, fp8 quarters it,
// so the same memory holds 2x/4x the tokens. Stored values are k / k_scale and v / v_scale,
// rounded to nearest even (fp8 saturating to the finite max), read back times the scale
// (headroom.h "KV cache dtype"). Scales are 1.0 unless the checkpoint carries vLLM's
// `model.layers.N.self_attn.k_scale` / `v_scale` tensors.
import { KvDType, type KvDTypeCode } from "../native/ops.ts";
import type { ComputeDtype } from "./dtype.ts";
import { tensorToF32, type TensorSource } from "./weights.ts";

export type KvCacheDtype = "f32" | "f16" | "bf16" | "fp8_e4m3" | "fp8_e5m2";

/** `--kv-cache-dtype` values; auto = the compute dtype, fp8 = fp8_e4m3 (as vLLM). */
export const KV_CACHE_DTYPE_FLAGS = ["auto", "float16", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"] as const;
export type KvCacheDtypeFlag = (typeof KV_CACHE_DTYPE_FLAGS)[number];

export const KV_DTYPE_BYTES: Record<KvCacheDtype, number> = { f32: 4, f16: 2, bf16: 2, fp8_e4m3: 1, fp8_e5m2: 1 };
export const KV_DTYPE_CODE: Record<KvCacheDtype, KvDTypeCode> = {
  f32: KvDType.F32,
  f16: KvDType.F16,
  bf16: KvDType.BF16,
  fp8_e4m3: KvDType.FP8_E4M3,
  fp8_e5m2: KvDType.FP8_E5M2,
};
const FLAG_KV: Record<Exclude<KvCacheDtypeFlag, "auto">, KvCacheDtype> = {
  float16: "f16",
  bfloat16: "bf16",
  fp8: "fp8_e4m3",
  fp8_e4m3: "fp8_e4m3",
  fp8_e5m2: "fp8_e5m2",
};

export class KvCacheDtypeError extends Error {
  override readonly name = "KvCacheDtypeError";
}

/** The KV cache dtype for `--kv-cache-dtype flag` with compute dtype `compute` (auto = compute). */
export function resolveKvCacheDtype(flag: KvCacheDtypeFlag | undefined | null, compute: ComputeDtype): KvCacheDtype {
  const f = flag ?? "auto";
  if (f === "auto") return compute;
  const d = FLAG_KV[f as Exclude<KvCacheDtypeFlag, "auto">];
  if (!d) throw new KvCacheDtypeError(`--kv-cache-dtype ${String(f)}: expected one of ${KV_CACHE_DTYPE_FLAGS.join(", ")}`);
  return d;
}

/** Per-layer dequantization scales of the KV cache (all 1 unless the checkpoint has them). */
export interface KvScales {
  k: number[];
  v: number[];
  /** Layers whose scales came from the checkpoint. */
  fromCheckpoint: number;
}

export const unitKvScales = (numLayers: number): KvScales => ({
  k: new Array<number>(numLayers).fill(1),
  v: new Array<number>(numLayers).fill(1),
  fromCheckpoint: 0,
});

/** vLLM's names of a layer's KV cache scales (a scalar or one-element tensor each). */
export const kvScaleNames = (layer: number) => ({
  k: `model.layers.${layer}.self_attn.k_scale`,
  v: `model.layers.${layer}.self_attn.v_scale`,
});

/**
 * The scales a checkpoint provides: `read(name)` returns the tensor's float values or null when
 * it is absent. A present scale must be finite and > 0 (else an Error naming it). The scales
 * apply to any kv dtype (they are exact powers of two or 1 in practice; fp8 is what needs them).
 */
export function kvScalesFrom(numLayers: number, read: (name: string) => Float32Array | null): KvScales {
  const s = unitKvScales(numLayers);
  for (let l = 0; l < numLayers; l++) {
    const names = kvScaleNames(l);
    let found = false;
    for (const which of ["k", "v"] as const) {
      const vals = read(names[which]);
      if (!vals) continue;
      if (vals.length < 1) throw new Error(`${names[which]}: empty tensor`);
      const x = vals[0]!;
      if (!(x > 0) || !Number.isFinite(x)) throw new Error(`${names[which]} = ${x}: a KV cache scale must be finite and > 0`);
      s[which][l] = x;
      found = true;
    }
    if (found) s.fromCheckpoint++;
  }
  return s;
}

const SCALE_NAME = /^model\.layers\.(\d+)\.self_attn\.([kv])_scale$/;

/**
 * Takes vLLM's KV cache scale tensors out of a checkpoint's tensor map (they are not weights)
 * and returns them; null when the checkpoint has none. Layer indices must be < numLayers.
 */
export function takeKvScales(numLayers: number, tensors: Map<string, TensorSource>, where: string): KvScales | null {
  const found = new Map<string, Float32Array>();
  for (const [name, t] of tensors) {
    const m = SCALE_NAME.exec(name);
    if (!m) continue;
    if (Number(m[1]) >= numLayers) throw new Error(`${where}: ${name}: the model has ${numLayers} layers`);
    found.set(name, tensorToF32(t));
  }
  if (found.size === 0) return null;
  for (const name of found.keys()) tensors.delete(name);
  return kvScalesFrom(numLayers, (n) => found.get(n) ?? null);
}
