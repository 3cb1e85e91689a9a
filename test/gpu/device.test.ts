// CUDA device layer on a GPU: the instance stream, events, async copies, cuBLAS loading and
// its workspace accounting, the message when cuBLAS is missing, and what bad device-resident
// indices do (NaN outputs / skipped writes, never an out-of-bounds access).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";

import type { Device } from "../../src/native/device.ts";
import { DType, Ops, type PagedCache } from "../../src/native/ops.ts";
import { announce, Buffers, cudaExtras, noGpu, openCuda } from "./common.ts";

announce("test/gpu/device.test.ts (stream, events, async copies, cuBLAS, bad indices)");

describe.skipIf(noGpu)("CUDA device layer", () => {
  let dev: Device;
  let x: ReturnType<typeof cudaExtras>;
  beforeAll(() => {
    dev = openCuda();
    x = cudaExtras();
  });
  afterAll(() => dev?.close());
  const ok = (st: number, call: string) => dev.lib.check(st, call);

  test("events time a D2D copy queued on the instance stream", () => {
    const bytes = 64 << 20;
    const a = dev.alloc(bytes),
      b = dev.alloc(bytes);
    const ev = new BigUint64Array(2),
      ev2 = new BigUint64Array(1);
    ok(x.hr_event_create(dev.handle, ev), "hr_event_create");
    ok(x.hr_event_create(dev.handle, ev2), "hr_event_create");
    const [e0, e1] = [ev[0]!, ev2[0]!];
    ok(x.hr_event_record(dev.handle, e0), "hr_event_record");
    ok(x.hr_memcpy_async(dev.handle, 2, b, a, bytes), "hr_memcpy_async");
    ok(x.hr_event_record(dev.handle, e1), "hr_event_record");
    ok(x.hr_event_synchronize(dev.handle, e1), "hr_event_synchronize");
    const ms = new Float64Array(1);
    ok(x.hr_event_elapsed_ms(dev.handle, e0, e1, ms), "hr_event_elapsed_ms");
    expect(ms[0]!).toBeGreaterThan(0);
    expect(ms[0]!).toBeLessThan(1000);
    ok(x.hr_event_destroy(dev.handle, e0), "hr_event_destroy");
    expect(x.hr_event_destroy(dev.handle, e0)).toBe(-1); // stale handle
    expect(String(dev.lib.sym.hr_last_error())).toContain("invalid or destroyed event");
    ok(x.hr_event_destroy(dev.handle, e1), "hr_event_destroy");
    dev.free(a);
    dev.free(b);
  });

  test("async copies round-trip and range checks apply", () => {
    const n = 1 << 16;
    const src = new Float32Array(n).map((_, i) => i * 0.5 + 1);
    const a = dev.alloc(n * 4),
      b = dev.alloc(n * 4);
    dev.copyToDevice(a, src);
    ok(x.hr_memcpy_async(dev.handle, 2, b, a, n * 4), "hr_memcpy_async");
    ok(x.hr_stream_synchronize(dev.handle), "hr_stream_synchronize");
    const back = new Float32Array(n);
    dev.copyFromDevice(back, b);
    expect(back).toEqual(src);
    expect(x.hr_memcpy_async(dev.handle, 2, b, a, n * 4 + 512)).toBe(-1);
    expect(String(dev.lib.sym.hr_last_error())).toContain("not inside a live allocation");
    expect(x.hr_memcpy_async(dev.handle, 7, b, a, 4)).toBe(-1);
    const s = new BigUint64Array(1);
    ok(x.hr_cuda_stream(dev.handle, s), "hr_cuda_stream");
    expect(s[0]).not.toBe(0n);
    dev.free(a);
    dev.free(b);
  });

  test("cuBLAS loads; its workspace is an allocation of this instance", () => {
    const buf = new Uint8Array(512);
    const st = x.hr_blas_info(dev.handle, buf, buf.length);
    if (st !== 0) throw new Error(`cuBLAS not loadable on this GPU machine: ${dev.lib.sym.hr_last_error()}`);
    const info = new TextDecoder().decode(buf.subarray(0, buf.indexOf(0)));
    expect(info).toMatch(/libcublas.*\(version \d+\)/);
    const d2 = openCuda(); // a fresh instance: no workspace yet
    try {
      const before = d2.stats().allocatedBytes.current;
      ok(x.hr_blas_init(d2.handle, 8 << 20), "hr_blas_init");
      expect(d2.stats().allocatedBytes.current - before).toBe(8 << 20);
      ok(x.hr_blas_init(d2.handle, 0), "hr_blas_init"); // idempotent
      expect(d2.stats().allocatedBytes.current - before).toBe(8 << 20);
    } finally {
      d2.close();
    }
    // the closed instance's workspace is forgotten: a new instance works normally
    const d3 = openCuda();
    try {
      const b = new Buffers(d3);
      const xs = b.values(DType.F32, new Float32Array([1, 2, 3, 4])),
        w = b.values(DType.F32, new Float32Array([1, 1, 1, 1, 2, 0, 0, 0]));
      const y = b.poisoned(DType.F32, 2);
      new Ops(d3, DType.F32).matmul(y, xs, w, 0n, 1, 2, 4);
      expect(Array.from(b.read(DType.F32, y, 2))).toEqual([10, 2]);
      b.freeAll();
    } finally {
      d3.close();
    }
  });

  test("without cuBLAS, matmul fails with HR_E_UNSUPPORTED naming the search (child process)", () => {
    const code = `
      import { Device } from "./src/native/device.ts";
      import { Ops } from "./src/native/ops.ts";
      const d = Device.open({ device: "cuda" });
      const p = d.alloc(4096);
      try { new Ops(d, 0).matmul(p, p + 1024n, p + 2048n, 0n, 1, 1, 1); console.log("NO ERROR"); }
      catch (e) { console.log(e.message); }`;
    const r = Bun.spawnSync([process.execPath, "-e", code], {
      cwd: `${import.meta.dir}/../..`,
      env: { ...process.env, HEADROOM_CUBLAS: "/nonexistent/libcublas.so" },
    });
    const out = r.stdout.toString();
    expect(out).toContain("HR_E_UNSUPPORTED");
    expect(out).toContain("HEADROOM_CUBLAS=/nonexistent/libcublas.so could not be loaded");
  });

  test("bad device-resident indices: NaN outputs or skipped writes, never a fault", () => {
    const b = new Buffers(dev);
    const ops = new Ops(dev, DType.BF16);
    // embedding: id 99 of 4 rows -> NaN row, the good row copied
    const table = b.values(DType.BF16, new Float32Array(4 * 8).fill(0.5));
    const out = b.poisoned(DType.BF16, 2 * 8);
    ops.embedding(out, table, b.ints(new Int32Array([1, 99])), 2, 4, 8);
    const e = b.read(DType.BF16, out, 16);
    expect(Array.from(e.subarray(0, 8))).toEqual(new Array(8).fill(0.5));
    expect(e.subarray(8).every(Number.isNaN)).toBe(true);
    // kv_write: slot 1000 of 2x4 slots is skipped
    const kc = b.poisoned(DType.BF16, 8 * 16),
      vc = b.poisoned(DType.BF16, 8 * 16);
    const cache: PagedCache = { kCache: kc, vCache: vc, numBlocks: 2, blockSize: 4, numKvHeads: 1, headDim: 16 };
    const kv = b.values(DType.BF16, new Float32Array(2 * 16).fill(0.25));
    ops.kvWrite(cache, kv, kv, b.ints(new Int32Array([1000, 3])), 2);
    const kcv = b.read(DType.BF16, kc, 8 * 16);
    expect(kcv.subarray(3 * 16, 4 * 16).every((v) => v === 0.25)).toBe(true);
    expect(kcv.filter((v) => !Number.isNaN(v)).length).toBe(16);
    // decode: a block id out of range -> that sequence's outputs are NaN; the other is exact
    const full: PagedCache = {
      kCache: b.values(DType.BF16, new Float32Array(8 * 16).fill(0.5)),
      vCache: b.values(DType.BF16, new Float32Array(8 * 16).fill(0.125)),
      numBlocks: 2,
      blockSize: 4,
      numKvHeads: 1,
      headDim: 16,
    };
    const q = b.values(DType.BF16, new Float32Array(2 * 2 * 16).fill(0.25));
    const dout = b.poisoned(DType.BF16, 2 * 2 * 16);
    // seq 0: table [0, 1], 5 tokens (valid); seq 1: table [7, 0], 3 tokens (block 7 of 2: bad)
    ops.attentionDecode(dout, q, full, b.ints(new Int32Array([0, 1, 7, 0])), b.ints(new Int32Array([5, 3])), 0n, 0, 2, 2, 2, 0, 0.25);
    const dv = b.read(DType.BF16, dout, 64);
    expect(Array.from(dv.subarray(0, 32))).toEqual(new Array(32).fill(0.125));
    expect(dv.subarray(32).every(Number.isNaN)).toBe(true);
    b.freeAll();
  });
});
