// The dequantization rule of every block type we keep quantized, checked against ggml itself:
// test/fixtures/quant/ggml-dequant.bin holds random blocks and ggml's to_float output for them
// (written by scripts/ggml-dequant-fixture.c, linked against the llama.cpp source that the pinned
// node-llama-cpp package carries). Both of our implementations must agree with it: the TS one
// (src/model/quant.ts, host reads) and the C one (hr_dequantize, the kernels' reference).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

import { loadLibrary } from "../../src/native/index.ts";
import { dequantizeRow, quantTypeOfGgml } from "../../src/model/quant.ts";

interface Record_ {
  ggmlType: number;
  nblocks: number;
  blockBytes: number;
  blockElems: number;
  raw: Uint8Array;
  ggml: Float32Array;
}

function readFixture(): Record_[] {
  const buf = readFileSync(resolve(import.meta.dir, "../fixtures/quant/ggml-dequant.bin"));
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  expect(new TextDecoder().decode(buf.subarray(0, 4))).toBe("HRQF");
  const n = dv.getUint32(4, true);
  const out: Record_[] = [];
  let at = 8;
  for (let i = 0; i < n; i++) {
    const [ggmlType, nblocks, blockBytes, blockElems] = [0, 1, 2, 3].map((j) => dv.getUint32(at + 4 * j, true)) as [
      number,
      number,
      number,
      number,
    ];
    at += 16;
    const raw = new Uint8Array(buf.subarray(at, at + nblocks * blockBytes));
    at += nblocks * blockBytes;
    const ggml = new Float32Array(nblocks * blockElems);
    new Uint8Array(ggml.buffer).set(buf.subarray(at, at + ggml.byteLength));
    at += ggml.byteLength;
    out.push({ ggmlType, nblocks, blockBytes, blockElems, raw, ggml });
  }
  return out;
}

/** ggml may fuse multiply-adds (Q4_1/Q5_1 mins, K-quant mins): allow a few ulps, relative to the block's scale. */
function expectClose(got: Float32Array, want: Float32Array, what: string): void {
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const tol = 4 * 2 ** -23 * Math.max(Math.abs(want[i]!), 2 ** -10);
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= tol)) throw new Error(`${what}: element ${i} is ${got[i]}, ggml gives ${want[i]}`);
    worst = Math.max(worst, err);
  }
  expect(worst).toBeLessThan(1e-6);
}

describe("quantized block types vs ggml's dequantization", () => {
  const records = readFixture();
  test("the fixture covers all eight types", () => {
    expect(records.map((r) => quantTypeOfGgml(r.ggmlType)?.name)).toEqual(["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"]);
  });
  for (const r of records) {
    const q = quantTypeOfGgml(r.ggmlType)!;
    test(`${q?.name}: layout and both dequantizers match ggml`, () => {
      expect([q.blockBytes, q.blockElems]).toEqual([r.blockBytes, r.blockElems]);
      const ts = new Float32Array(r.ggml.length);
      dequantizeRow(q, r.raw, 0, ts.length, ts);
      expectClose(ts, r.ggml, `${q.name} (src/model/quant.ts)`);

      const lib = loadLibrary("cpu");
      const elems = new BigInt64Array(1);
      const bytes = new BigInt64Array(1);
      lib.check(lib.sym.hr_quant_block_info(q.code, elems, bytes), "hr_quant_block_info");
      expect([Number(bytes[0]), Number(elems[0])]).toEqual([r.blockBytes, r.blockElems]);
      const c = new Float32Array(r.ggml.length);
      lib.check(lib.sym.hr_dequantize(q.code, r.raw, c, c.length), "hr_dequantize");
      expectClose(c, r.ggml, `${q.name} (hr_dequantize)`);
    });
  }
});
