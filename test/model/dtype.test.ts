// Compute dtype on the upload path: f32 -> bf16/f16 conversion (round to nearest even) checked
// bit for bit against independent references (bf16: nearest of the two neighbours in float64;
// f16: the runtime's Float16Array), uploads in bf16/f16 read back bit-exact, 16-bit sources of
// the compute dtype copied straight from the file bytes (NaN payloads kept, row permutation
// applied), and a CPU start-up with a 16-bit dtype: 16-bit matrix weights under fp32 compute.
import { afterAll, describe, expect, test } from "bun:test";

import { startEngine, type EngineOptions } from "../../src/engine/startup.ts";
import {
  ComputeDtypeError,
  f32BitsToBf16,
  f32BitsToF16,
  f32ToHalfBits,
  resolveComputeDtype,
  resolveDtypes,
  type DtypeFlag,
} from "../../src/model/dtype.ts";
import { planArena } from "../../src/model/arena.ts";
import { LlamaModel } from "../../src/model/llama.ts";
import { openModel } from "../../src/model/load.ts";
import { batchLimitsFor } from "../../src/memory/planner.ts";
import { DType, Ops } from "../../src/native/ops.ts";
import { downloadTensor, downloadTensorBits, uploadWeights } from "../../src/model/upload.ts";
import { numel, rowCount, rowLength, tensorToF32, type TensorSource, type WeightSet } from "../../src/model/weights.ts";
import { parseServeOptions } from "../../src/server/options.ts";
import { deviceSkipReason, prng, tryOpenCpuDevice } from "./helpers.ts";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => ((f32[0] = x), u32[0]!);
const f32FromBits = (u: number) => ((u32[0] = u >>> 0), f32[0]!);

/** Reference bf16: of the two bf16 neighbours of x (truncated, next up in magnitude) the nearer in float64, ties to the even one. */
function refBf16(u: number): number {
  const x = f32FromBits(u);
  if (Number.isNaN(x)) return -1; // any NaN is fine; checked separately
  const lo = u >>> 16;
  const hi = lo + 1; // next bf16 away from zero (same sign); 0x7f80/0xff80 = inf
  const vlo = f32FromBits(lo << 16);
  const vhi = f32FromBits((hi << 16) >>> 0);
  const dlo = Math.abs(x - vlo);
  const dhi = Math.abs(vhi - x);
  if ((lo & 0x7f80) === 0x7f80) return lo; // ±inf stays
  // above the largest finite bf16 (odd mantissa 0x7f): inf from half an ulp (2^119) on, the tie included
  if ((lo & 0x7fff) === 0x7f7f) return dlo >= 2 ** 119 ? hi & 0xffff : lo;
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi & 0xffff;
  return (lo & 1) === 0 ? lo : hi & 0xffff;
}

/** Reference f16: the runtime's Float16Array conversion (ECMAScript: roundTiesToEven). */
const h16 = new Float16Array(1);
const h16bits = new Uint16Array(h16.buffer);
function refF16(u: number): number {
  h16[0] = f32FromBits(u);
  return h16bits[0]!;
}

function isBf16NaN(b: number): boolean {
  return (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;
}
function isF16NaN(h: number): boolean {
  return (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
}

/** Edge cases: ties at every half boundary, subnormals, overflow, signed zeros, infinities, NaNs. */
function edgeBits(): number[] {
  const out: number[] = [
    0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 0x7fbfffff, 1, 0x807fffff, 0x7f7fffff, 0xff7fffff,
  ];
  for (const base of [
    0x3f800000, 0x3f810000, 0x477fe000, 0x477ff000, 0x477fefff, 0x7f7f0000, 0x7f7f8000, 0x7f7f7fff, 0x387fc000, 0x33800000, 0x33000000,
    0x33000001, 0x32ffffff, 0x38800000,
  ]) {
    for (const d of [-0x8001, -0x8000, -0x7fff, -0x1001, -0x1000, -0xfff, -1, 0, 1, 0xfff, 0x1000, 0x1001, 0x7fff, 0x8000, 0x8001]) {
      const b = (base + d) >>> 0;
      out.push(b, (b | 0x80000000) >>> 0);
    }
  }
  // f16 subnormal range and its ties: k · 2^-25 for small k (odd k = exact ties between two subnormals)
  for (let k = 0; k < 4096; k++) out.push(bitsOf(k * 2 ** -25), bitsOf(-k * 2 ** -25));
  return out;
}

describe("f32 -> bf16 / f16 rounding", () => {
  test("edge cases and 2M random bit patterns equal the references", () => {
    const rnd = prng(11);
    const cases = edgeBits();
    for (let i = 0; i < 2_000_000; i++) cases.push(Math.floor(rnd() * 2 ** 32) >>> 0);
    let bad = 0;
    for (const u of cases) {
      const b = f32BitsToBf16(u);
      const rb = refBf16(u);
      const h = f32BitsToF16(u);
      const rh = refF16(u);
      if (rb < 0) {
        if (!isBf16NaN(b) || (b & 0x8000) !== ((u >>> 16) & 0x8000)) bad++;
      } else if (b !== rb) bad++;
      if (Number.isNaN(f32FromBits(u))) {
        if (!isF16NaN(h) || (h & 0x8000) !== ((u >>> 16) & 0x8000)) bad++;
      } else if (h !== rh) bad++;
      if (bad > 0)
        throw new Error(
          `mismatch at 0x${u.toString(16)}: bf16 0x${b.toString(16)} vs 0x${rb.toString(16)}, f16 0x${h.toString(16)} vs 0x${rh.toString(16)}`,
        );
    }
    expect(bad).toBe(0);
  });

  test("known values: ties to even, overflow to inf, smallest subnormal", () => {
    expect(f32BitsToBf16(0x3f808000)).toBe(0x3f80); // 1 + 2^-8: tie, even is 1.0
    expect(f32BitsToBf16(0x3f818000)).toBe(0x3f82); // tie, rounds up to even
    expect(f32BitsToBf16(0x7f7fffff)).toBe(0x7f80); // max float -> inf
    expect(f32BitsToF16(bitsOf(65520))).toBe(0x7c00); // halfway above max half -> inf
    expect(f32BitsToF16(bitsOf(65519))).toBe(0x7bff);
    expect(f32BitsToF16(bitsOf(2 ** -24))).toBe(1);
    expect(f32BitsToF16(bitsOf(2 ** -25))).toBe(0); // tie with 0: even
    expect(f32BitsToF16(bitsOf(3 * 2 ** -25))).toBe(2); // tie between 1 and 2: even
    expect(f32BitsToF16(bitsOf(1 + 2 ** -11))).toBe(0x3c00);
    expect(f32BitsToF16(bitsOf(1 + 3 * 2 ** -11))).toBe(0x3c02);
    const h = new Uint16Array(3);
    f32ToHalfBits("bf16", Float32Array.of(1, NaN, -2), h);
    expect([h[0], isBf16NaN(h[1]!), h[2]]).toEqual([0x3f80, true, 0xc000]);
  });
});

const dev = tryOpenCpuDevice(1 << 30);
if (!dev) console.warn(`[dtype] upload tests skipped: no CPU device (${deviceSkipReason()}); run \`make\``);
afterAll(() => dev?.close());

const SPEC = "synthetic:dim=64,hidden=176,layers=2,heads=4,kv_heads=2,vocab=300";

/** The same tensors as `ws` with file data in `dtype` (random bit patterns, NaN payloads included). */
function with16BitData(ws: WeightSet, dtype: "bf16" | "f16", seed: number, permute: string[] = []): WeightSet {
  const rnd = prng(seed);
  const tensors = new Map<string, TensorSource>();
  for (const [name, t] of ws.tensors) {
    const bits = new Uint16Array(numel(t.shape));
    for (let i = 0; i < bits.length; i++) bits[i] = Math.floor(rnd() * 65536);
    bits[0] = dtype === "bf16" ? 0x7f81 : 0x7c01; // signalling NaN: would change in any f32 round trip
    const src: TensorSource = { name, shape: t.shape, dtype, file: "test", fileName: name, data: new Uint8Array(bits.buffer) };
    if (permute.includes(name)) {
      const rows = rowCount(t.shape);
      src.rowPerm = Int32Array.from({ length: rows }, (_, r) => (r * 7 + 3) % rows);
    }
    tensors.set(name, src);
  }
  return { ...ws, tensors };
}

describe.skipIf(!dev)("upload in the compute dtype (CPU device memory)", () => {
  for (const dtype of ["bf16", "f16"] as const) {
    test(`f32 weights -> ${dtype}: device bits equal the reference conversion; download widens exactly; plan-sized buffers`, () => {
      const d = dev!;
      const ws = openModel(SPEC).weights;
      const before = d.stats().allocatedBytes.current;
      const lw = uploadWeights(d, ws, { dtype, chunkBytes: 4096 });
      expect(lw.dtype).toBe(dtype);
      let n = 0;
      for (const [name, t] of ws.tensors) {
        const l = lw.get(name);
        expect(l.dtype).toBe(dtype);
        expect(l.bytes).toBe(numel(t.shape) * 2);
        const ref32 = tensorToF32(t);
        const ref16 = Uint16Array.from(ref32, (x) => (dtype === "bf16" ? refBf16(bitsOf(x)) : refF16(bitsOf(x))));
        const bits = downloadTensorBits(d, l);
        expect(new Uint16Array(bits.buffer, 0, bits.length / 2)).toEqual(ref16);
        const back = downloadTensor(d, l);
        const widened = new Float32Array(ref16.length);
        for (let i = 0; i < ref16.length; i++) {
          if (dtype === "bf16") widened[i] = f32FromBits(ref16[i]! << 16);
          else {
            h16bits[0] = ref16[i]!;
            widened[i] = h16[0]!;
          }
        }
        expect(back).toEqual(widened);
        n += numel(t.shape);
      }
      expect(lw.totalBytes).toBe(2 * n);
      lw.free();
      expect(d.stats().allocatedBytes.current).toBe(before);
    });

    test(`${dtype} file data in ${dtype}: copied byte for byte (NaN payloads kept, GGUF-style row permutation applied)`, () => {
      const d = dev!;
      const base = openModel(SPEC).weights;
      const permuted = ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight"];
      const ws = with16BitData(base, dtype, dtype === "bf16" ? 5 : 6, permuted);
      const lw = uploadWeights(d, ws, { dtype, chunkBytes: 1024 }); // small chunks: permuted rows in several pieces
      for (const [name, t] of ws.tensors) {
        const got = downloadTensorBits(d, lw.get(name));
        if (!t.rowPerm) {
          expect(got).toEqual(t.data!);
          continue;
        }
        const rb = rowLength(t.shape) * 2;
        const want = new Uint8Array(t.data!.length);
        for (let r = 0; r < rowCount(t.shape); r++) want.set(t.data!.subarray(t.rowPerm[r]! * rb, (t.rowPerm[r]! + 1) * rb), r * rb);
        expect(got).toEqual(want);
      }
      lw.free();
    });
  }

  test("LlamaModel: bf16 ops + bf16 weights lay the arena out with 2-byte activations; a dtype mismatch is refused", () => {
    const d = dev!;
    const ws = openModel(SPEC).weights;
    const cfg = ws.config;
    const limits = batchLimitsFor(128, 4, 64, 16);
    const w = uploadWeights(d, ws, { dtype: "bf16" });
    try {
      const ops = new Ops(d, DType.BF16);
      const m = new LlamaModel(d, ops, cfg, w, limits, 16);
      expect(m.dtype).toBe("bf16");
      const ws16 = m.layout.bytes.workspace;
      expect(m.layout).toEqual(planArena(cfg, limits, 2, ws16));
      expect(m.layout.bytes.qkv).toBe(2 * 64 * (cfg.numHeads + 2 * cfg.numKvHeads) * cfg.headDim);
      expect(m.layout.bytes.logits).toBe(4 * 4 * cfg.vocabSize); // logits stay fp32
      const w32 = uploadWeights(d, ws);
      try {
        expect(ws16).toBe(new LlamaModel(d, new Ops(d), cfg, w32, limits, 16).layout.bytes.workspace); // fp32 partials either way
      } finally {
        w32.free();
      }
      expect(() => new LlamaModel(d, new Ops(d), cfg, w, limits, 16)).toThrow(/uploaded as bf16 but the ops compute in f32/);
    } finally {
      w.free();
    }
  });

  test("bf16 file data uploaded as f16 and as f32: converted through exact f32 widening", () => {
    const d = dev!;
    const ws = with16BitData(openModel(SPEC).weights, "bf16", 9);
    const a = uploadWeights(d, ws, { dtype: "f16" });
    const b = uploadWeights(d, ws, { dtype: "f32" });
    for (const [name, t] of ws.tensors) {
      const ref32 = tensorToF32(t);
      const got = downloadTensorBits(d, a.get(name));
      const g16 = new Uint16Array(got.buffer, 0, got.length / 2);
      for (let i = 0; i < ref32.length; i++) {
        const want = refF16(bitsOf(ref32[i]!));
        if (Number.isNaN(ref32[i]!)) expect(isF16NaN(g16[i]!)).toBe(true);
        else if (g16[i] !== want) throw new Error(`${name}[${i}]: 0x${g16[i]!.toString(16)} vs 0x${want.toString(16)}`);
      }
      const back = downloadTensor(d, b.get(name)); // bf16 -> f32 is exact, NaN payloads included (compare bits: NaN != NaN)
      expect(new Uint32Array(back.buffer)).toEqual(new Uint32Array(ref32.buffer));
    }
    a.free();
    b.free();
  });
});

describe("--dtype on the CPU backend", () => {
  test("resolution: auto = f32 on CPU and bf16 on CUDA; a 16-bit dtype on CPU = 16-bit weights, fp32 compute", () => {
    expect(resolveComputeDtype("auto", "cpu")).toBe("f32");
    expect(resolveDtypes("auto", "cpu")).toEqual({ compute: "f32", weights: "f32" });
    expect(resolveDtypes("bfloat16", "cpu")).toEqual({ compute: "f32", weights: "bf16" });
    expect(resolveDtypes("float16", "cpu")).toEqual({ compute: "f32", weights: "f16" });
    expect(resolveDtypes("float16", "cuda")).toEqual({ compute: "f16", weights: "f16" });
    expect(() => resolveDtypes("fp8" as DtypeFlag, "cpu")).toThrow(ComputeDtypeError);
    expect(resolveComputeDtype(undefined, "cuda")).toBe("bf16");
    expect(resolveComputeDtype("float16", "cuda")).toBe("f16");
    expect(resolveComputeDtype("float32", "cuda")).toBe("f32");
    expect(resolveComputeDtype("bfloat16", "cpu")).toBe("f32");
    expect(parseServeOptions(["--dtype", "bfloat16"], {}).dtype).toBe("bfloat16");
    expect(parseServeOptions([], { HEADROOM_DTYPE: "float16" }).dtype).toBe("float16");
    expect(parseServeOptions([], {}).dtype).toBe("auto");
    expect(() => parseServeOptions(["--dtype", "fp8"], {})).toThrow(/expected one of auto, float32, bfloat16, float16/);
  });

  const options = (over: Partial<EngineOptions>): EngineOptions => ({
    model: SPEC,
    device: "cpu",
    deviceMemory: 16 * 2 ** 20,
    deviceOrdinal: 45,
    gpuMemoryUtilization: 0.9,
    kvCacheMemoryBytes: null,
    maxModelLen: 128,
    maxNumSeqs: 4,
    maxNumBatchedTokens: 64,
    blockSize: 16,
    enforceEager: true,
    maxWaiting: 64,
    servedModelName: null,
    ...over,
  });

  test.skipIf(!dev)("start-up: bfloat16 / float16 store matrix weights in 16 bits (fp32 compute, KV, norms); plan = measurement", () => {
    for (const [flag, wdt] of [
      ["float32", "f32"],
      ["auto", "f32"],
      ["bfloat16", "bf16"],
      ["float16", "f16"],
    ] as const) {
      const s = startEngine(options({ dtype: flag }));
      try {
        expect(s.dtype).toBe("f32");
        expect(s.weights.dtype).toBe("f32");
        expect(s.weights.weightDtype).toBe(wdt);
        expect(s.weights.get("model.layers.0.self_attn.q_proj.weight").dtype).toBe(wdt);
        expect(s.weights.get("model.embed_tokens.weight").dtype).toBe(wdt);
        expect(s.weights.get("model.layers.0.input_layernorm.weight").dtype).toBe("f32");
        expect(s.weights.get("model.norm.weight").dtype).toBe("f32");
        expect(s.kvSpec.dtypeBytes).toBe(4);
        expect(s.plan.computeDtype).toBe("f32");
        expect(s.plan.weightDtype).toBe(wdt);
        expect(s.planMismatches).toEqual([]);
        expect(s.plan.weightsBytes).toBe(s.profile.weightsBytes);
      } finally {
        s.close();
      }
    }
  });
});
