// The test-side quantizers (test/util/quant: ggml's quantize_row_*_ref ported to TS, used to write
// every quantized file the llama.cpp oracle runs) against ggml itself: byte for byte with
// ggml_quantize_chunk from the libggml-base.so that node-llama-cpp ships (the llama.cpp build the
// oracle runs; skipped visibly where that prebuilt binary is not installed), over inputs chosen to
// reach every branch (zero and constant blocks, sub-normal fp16 scales, exact rounding ties,
// outliers, one-signed blocks). And, needing nothing but headroom, the round trip through
// src/model/quant.ts's dequantizer stays within each format's rounding bound.
import { describe, expect, test } from "bun:test";

import { dequantizeRow, quantTypeByName } from "../../src/model/quant.ts";
import { openGgmlQuantizer, prebuiltBinDir } from "../oracle/llama-cpp-libs.ts";
import { quantize } from "./quant/index.ts";
import { normals } from "./tiny-models.ts";

const TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"] as const;
const ROW = 256;
const ROWS = 16;

/** Named inputs of ROWS x ROW floats. */
function inputs(): [string, Float32Array][] {
  const g = normals(20240601);
  const make = (fn: (i: number) => number) => Float32Array.from({ length: ROW * ROWS }, (_, i) => fn(i));
  return [
    ["gaussian", make(() => g())],
    ["gaussian x 1e-3", make(() => 1e-3 * g())],
    ["gaussian x 300", make(() => 300 * g())],
    ["heavy-tailed (cubed gaussian)", make(() => g() ** 3)],
    ["all positive", make(() => 3 + g())],
    ["all negative", make(() => -1 - Math.abs(g()))],
    ["zero sub-blocks of 16 between gaussian ones", make((i) => ((i >> 4) % 3 === 1 ? 0 : g()))],
    ["constant blocks", make((i) => [0.5, -0.25, 7][(i >> 5) % 3]!)],
    ["one spike per 32, zeros elsewhere", make((i) => (i % 32 === (i >> 5) % 32 ? 5 * g() : 0))],
    ["one spike per 32 over tiny noise", make((i) => (i % 32 === 7 ? 10 : 1e-3 * g()))],
    ["fp16-subnormal scales (gaussian x 1e-6)", make(() => 1e-6 * g())],
    ["below ggml's GROUP_MAX_EPS (gaussian x 1e-20)", make(() => 1e-20 * g())],
    ["exact half-integers (rounding ties)", make((i) => (((i * 7919) % 33) - 16) / 2)],
    ["a quarter-step grid", make((i) => (((i * 104729) % 63) - 31) / 4)],
    ["all zeros", make(() => 0)],
  ];
}

const bin = prebuiltBinDir();
const skip = typeof bin === "string" ? null : bin.skip;
if (skip) console.warn(`[quant: ggml byte-for-byte] skipped: ${skip}`);

describe.skipIf(skip !== null)("ggml's reference quantizers in TS equal libggml-base byte for byte", () => {
  const ggml = typeof bin === "string" ? openGgmlQuantizer(bin) : null;
  for (const name of TYPES) {
    test(name, () => {
      const q = quantTypeByName(name)!;
      for (const [what, x] of inputs()) {
        const want = ggml!.quantize(q.ggmlType, x, ROW, (x.length / q.blockElems) * q.blockBytes);
        const got = quantize(name, x);
        const first = want.findIndex((b, i) => b !== got[i]);
        if (first >= 0) throw new Error(`${name}, ${what}: byte ${first} (block ${Math.floor(first / q.blockBytes)}) differs from ggml's`);
        expect(got.length).toBe(want.length);
      }
    });
  }
});

/**
 * Max |x - dequant(quant(x))| per block the format allows: half a step for the rounded types,
 * a whole step at the clipped end of Q4_0/Q5_0 (max maps to -8 or -16, so +max lands on the 7/15
 * level), plus the fp16 rounding of the scale and min: relative 2^-11, or absolute 2^-25 (half
 * the sub-normal spacing) for tiny values, times the largest level.
 */
function legacyBound(name: string, block: Float32Array): number {
  let min = Infinity;
  let max = -Infinity;
  for (const v of block) [min, max] = [Math.min(min, v), Math.max(max, v)];
  const amax = Math.max(-min, max);
  const half = (v: number) => Math.max(Math.abs(v) * 2 ** -11, 2 ** -25);
  switch (name) {
    case "Q8_0":
      return (amax / 127) * 0.5 + 127 * half(amax / 127);
    case "Q4_0":
      return amax / 8 + 8 * half(amax / 8);
    case "Q5_0":
      return amax / 16 + 16 * half(amax / 16);
    case "Q4_1":
      return ((max - min) / 15) * 0.5 + 15 * half((max - min) / 15) + half(min);
    case "Q5_1":
      return ((max - min) / 31) * 0.5 + 31 * half((max - min) / 31) + half(min);
  }
  throw new Error(name);
}

/**
 * K-quants pick their scales by a weighted search (no closed-form max error): RMS error / RMS of
 * x, measured 0.071/0.036/0.018 on gaussians and 0.089/0.050/0.025 heavy-tailed. Checked where
 * the fp16 super-block scales stay normal (|x| >= 0.1 here): below 2^-14 they lose relative
 * precision, as ggml's do (the byte-for-byte test covers those inputs).
 */
const K_RMS_BOUND: Record<string, number> = { Q4_K: 0.11, Q5_K: 0.06, Q6_K: 0.03 };

describe("quantize then headroom's dequantizer: within each format's rounding error", () => {
  for (const name of TYPES) {
    test(name, () => {
      const q = quantTypeByName(name)!;
      for (const [what, x] of inputs()) {
        const y = new Float32Array(x.length);
        dequantizeRow(q, quantize(name, x), 0, x.length, y);
        if (name.endsWith("_K")) {
          let se = 0;
          let sx = 0;
          for (let i = 0; i < x.length; i++) [se, sx] = [se + (x[i]! - y[i]!) ** 2, sx + x[i]! ** 2];
          const amax = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          if (amax === 0) expect(se, `${name}, ${what}`).toBe(0);
          else if (amax >= 0.1) expect(Math.sqrt(se / sx), `${name}, ${what}`).toBeLessThan(K_RMS_BOUND[name]!);
          continue;
        }
        for (let b = 0; b < x.length; b += 32) {
          const block = x.subarray(b, b + 32);
          const bound = legacyBound(name, block) * (1 + 1e-6) + 1e-45;
          for (let i = 0; i < 32; i++) {
            const err = Math.abs(block[i]! - y[b + i]!);
            if (!(err <= bound)) throw new Error(`${name}, ${what}: element ${b + i} is ${y[b + i]} for ${block[i]} (bound ${bound})`);
          }
        }
      }
    });
  }
});
