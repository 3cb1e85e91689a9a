// The test GGUF writer against two independent readers: node-llama-cpp's own JavaScript GGUF
// parser (readGgufFileInfo; needs no native binary) for metadata of every type, nested arrays,
// tensor infos, offsets and alignment; headroom's reader for the tensor bytes. F16/BF16 rounding
// against hand-computed bit patterns.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { readGgufFileInfo } from "node-llama-cpp";

import { parseGguf } from "../../src/model/gguf.ts";
import { f32ToBf16Bits, GgufType, type GgufMeta, type GgufTensor, meta, roundTo, writeGguf } from "./gguf-writer.ts";

const tmp = mkdtempSync(join(tmpdir(), "headroom-gguf-writer-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function nested(obj: unknown, key: string): unknown {
  let o = obj;
  for (const part of key.split(".")) o = (o as Record<string, unknown>)?.[part];
  return o;
}

const METADATA: [string, GgufMeta, unknown][] = [
  ["t.u8", meta.u8(250), 250],
  ["t.i8", meta.i8(-100), -100],
  ["t.u16", meta.u16(65000), 65000],
  ["t.i16", meta.i16(-32000), -32000],
  ["t.u32", meta.u32(4_000_000_000), 4_000_000_000],
  ["t.i32", meta.i32(-2_000_000_000), -2_000_000_000],
  ["t.u64", meta.u64(2n ** 63n + 5n), 2n ** 63n + 5n],
  ["t.i64", meta.i64(-(2n ** 62n) - 3n), -(2n ** 62n) - 3n],
  ["t.f32", meta.f32(0.1), Math.fround(0.1)],
  ["t.f64", meta.f64(0.1), 0.1],
  ["t.bool_true", meta.bool(true), true],
  ["t.bool_false", meta.bool(false), false],
  ["t.str", meta.str("héllo ▁wörld 🦙"), "héllo ▁wörld 🦙"],
  ["t.empty", meta.str(""), ""],
  ["t.arr_u8", meta.arr(GgufType.UINT8, [0, 1, 255]), [0, 1, 255]],
  ["t.arr_i32", meta.arr(GgufType.INT32, [-1, 0, 7]), [-1, 0, 7]],
  ["t.arr_f32", meta.arr(GgufType.FLOAT32, [0.5, -2.25]), [0.5, -2.25]],
  ["t.arr_str", meta.arr(GgufType.STRING, ["a", "", "<0x0A>"]), ["a", "", "<0x0A>"]],
  ["t.arr_bool", meta.arr(GgufType.BOOL, [true, false]), [true, false]],
  ["t.arr_empty", meta.arr(GgufType.INT32, []), []],
  ["t.arr_arr", meta.arrOfArr([meta.arr(GgufType.INT16, [1, -2]), meta.arr(GgufType.INT16, [3])]), [[1, -2], [3]]],
];

function tensors(): GgufTensor[] {
  const v = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + k) * (1 + i));
  return [
    { name: "a.f32", shape: [3, 5], type: "F32", data: v(15, 1) },
    { name: "b.f16", shape: [7], type: "F16", data: v(7, 2) },
    { name: "c.bf16", shape: [2, 3, 3], type: "BF16", data: v(18, 3) },
    { name: "d.f32", shape: [1], type: "F32", data: v(1, 4) },
  ];
}

describe("GGUF test writer", () => {
  for (const alignment of [32, 64]) {
    test(`metadata of every type and F32/F16/BF16 tensors, alignment ${alignment}: node-llama-cpp's parser and headroom's reader agree`, async () => {
      const path = join(tmp, `all-${alignment}.gguf`);
      const md = new Map(METADATA.map(([k, m]) => [k, m]));
      md.set("general.architecture", meta.str("llama"));
      const ts = tensors();
      const size = writeGguf(path, md, ts, alignment);
      expect(statSync(path).size).toBe(size);

      const info = await readGgufFileInfo(path, { sourceType: "filesystem", logWarnings: false });
      expect(info.version).toBe(3);
      for (const [k, , want] of METADATA) expect({ k, v: nested(info.metadata, k) }).toEqual({ k, v: want });
      expect(nested(info.metadata, "general.alignment")).toBe(alignment === 32 ? undefined : alignment);
      const ti = info.tensorInfo!;
      expect(ti.map((t) => t.name)).toEqual(ts.map((t) => t.name));
      expect(ti.map((t) => t.dimensions.map(Number))).toEqual(ts.map((t) => [...t.shape].reverse()));
      expect(ti.map((t) => t.ggmlType as number)).toEqual([0, 1, 30, 0]);
      for (const t of ti) expect(Number(t.fileOffset) % alignment).toBe(0);

      const g = parseGguf(path, new Uint8Array(readFileSync(path)));
      expect(g.alignment).toBe(alignment);
      for (const t of ts) {
        const got = g.tensors.get(t.name)!;
        expect(got.dtype).toBe(t.type.toLowerCase() as "f32" | "f16" | "bf16");
        const vals =
          t.type === "F32"
            ? new Float32Array(got.data.slice().buffer)
            : t.type === "F16"
              ? new Float32Array(new Float16Array(got.data.slice().buffer))
              : new Float32Array(Uint32Array.from(new Uint16Array(got.data.slice().buffer), (b) => b << 16).buffer);
        expect(Array.from(vals)).toEqual(Array.from(roundTo(t.type, t.data)));
      }
    });
  }

  test("BF16 rounds to nearest even, keeps NaN and infinities", () => {
    const x = new Float32Array(
      new Uint32Array([
        0x3f808000, // 1 + 2^-8: a tie, even (0x3f80) kept
        0x3f818000, // 1 + 3·2^-8: a tie, rounds up to even 0x3f82
        0x3f808001, // just above a tie: up
        0x7f800000, // +inf
        0xff800000, // -inf
        0x7fc00001, // NaN
        0x7f7fffff, // max float: rounds to +inf
      ]).buffer,
    );
    expect(Array.from(f32ToBf16Bits(x))).toEqual([0x3f80, 0x3f82, 0x3f81, 0x7f80, 0xff80, 0x7fc0, 0x7f80]);
  });

  test("F16 stores what a reader sees: 1 + 2^-11 rounds to 1, 65520 overflows", () => {
    expect(Array.from(roundTo("F16", Float32Array.of(1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520)))).toEqual([1, 1 + 2 ** -9, Infinity]);
  });

  test("rejects a shape that does not match the data and a bad alignment", () => {
    expect(() => writeGguf(join(tmp, "x.gguf"), new Map(), [{ name: "t", shape: [2, 2], type: "F32", data: new Float32Array(3) }])).toThrow(
      /4 elements/,
    );
    expect(() => writeGguf(join(tmp, "y.gguf"), new Map(), [], 48)).toThrow(/power of two/);
  });
});
