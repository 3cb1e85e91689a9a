// CUDA memory and capture safety (issue 16 items 1, 5, 6, 7, 8): device memory outside the
// allocator does not grow with GEMMs (the cuBLAS workspace is re-applied after every
// cublasSetStream), reservations are bounded by the device, captures survive other instances'
// synchronous copies (non-blocking stream), synchronizing calls are refused during capture,
// graphs bound KV block ids by the blocks mapped at replay time (NaN, not a fault), the
// decode kernel's bad-index flag covers every warp, graph-set destroy is safe right after
// replays, and copy-engine query/synchronize see copies made by graph replays.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";

import type { Device } from "../../src/native/device.ts";
import { GraphSet } from "../../src/native/graphs.ts";
import { DType, Ops, type PagedCache } from "../../src/native/ops.ts";
import { announce, Buffers, cudaExtras, expectClose, noGpu, openCuda, Rng } from "./common.ts";

announce("test/gpu/memory.test.ts (cuBLAS workspace, VMM bounds, capture safety, mapped-block bound)");

const MiB = 1 << 20;
const STATE = -3;

/** Device bytes in use that the allocators do not hold (context, cuBLAS, graphs...). */
function outsideAllocator(devs: Device[]): number {
  const { free, total } = devs[0]!.memInfo();
  let reserved = 0;
  for (const d of devs) reserved += d.stats().reservedBytes.current + d.mappedRegionBytes();
  return total - free - reserved;
}

describe.skipIf(noGpu)("CUDA memory and capture safety", () => {
  let dev: Device;
  beforeAll(() => {
    dev = openCuda();
  });
  afterAll(() => dev?.close());

  test("GEMMs (eager and captured) do not grow device memory outside the allocator", () => {
    const d = openCuda();
    try {
      const b = new Buffers(d);
      const ops = new Ops(d, DType.BF16);
      const K = 1024,
        N = 1536;
      const w = b.values(DType.BF16, new Float32Array(N * K).fill(0.01));
      const x = b.values(DType.BF16, new Float32Array(512 * K).fill(0.02));
      const y = b.poisoned(DType.BF16, 512 * N);
      ops.matmul(y, x, w, 0n, 1, N, K); // creates the handle + the accounted workspace
      d.synchronize();
      const before = outsideAllocator([d, dev]);
      // many shapes: each may pick another algorithm; with the workspace dropped by
      // cublasSetStream, cuBLAS would take its own (unaccounted) per-stream workspace
      for (let i = 0; i < 200; i++) ops.matmul(y, x, w, 0n, 1 + ((i * 37) % 512), N - (i % 8) * 64, K);
      d.synchronize();
      const set = GraphSet.create(d, [8, 4]);
      let exec = 0;
      for (const B of [8, 4])
        exec += set.capture(B, () => {
          for (let i = 0; i < 20; i++) ops.matmul(y, x, w, 0n, B * (i + 1), N, K);
        }).execBytes;
      for (let i = 0; i < 50; i++) set.replay(i % 2 ? 8 : 4);
      d.synchronize();
      const after = outsideAllocator([d, dev]);
      // graph executables are outside the allocator by design: subtract what they report
      expect(after - before - exec).toBeLessThan(2 * MiB);
      b.freeAll();
      set.destroy();
    } finally {
      d.close();
    }
  });

  test("a KV reservation is bounded by the device size; several instances fit", () => {
    const { total } = dev.memInfo();
    const others = [openCuda(), openCuda(), openCuda()];
    try {
      const regions = [dev, ...others].map((d) => d.reserveRegion(total, 64)); // 'whole device per slice' x 64
      for (const r of regions) {
        expect(r.sliceStride * 64).toBeLessThanOrEqual(total + 64 * r.granularity);
        expect(r.sliceStride).toBeGreaterThan(0);
      }
      dev.mapRegion(regions[0]!.base, regions[0]!.granularity);
      expect(() => dev.mapRegion(regions[0]!.base, regions[0]!.sliceStride + regions[0]!.granularity)).toThrow(/cannot map/);
      dev.releaseRegion(regions[0]!.base);
      others.forEach((d, i) => d.releaseRegion(regions[i + 1]!.base));
    } finally {
      for (const d of others) d.close();
    }
  });

  test("capture survives another instance's synchronous copies; synchronizing calls are refused", () => {
    const other = openCuda();
    const x = cudaExtras();
    try {
      const b = new Buffers(dev),
        ob = new Buffers(other);
      const ops = new Ops(dev, DType.F32);
      const n = 4096;
      const src = b.floats32(new Float32Array(2 * n).fill(0.5));
      const out = b.poisoned(DType.F32, n);
      const host = new Float32Array(n).fill(3);
      const op = ob.floats32(host);
      const region = dev.reserveRegion(64 * MiB, 2);
      const set = GraphSet.create(dev, [1]);
      set.capture(1, () => {
        ops.siluMul(out, src, src + BigInt(n * 4), 1, n, 0);
        other.copyToDevice(op, host); // legacy-stream work used to invalidate the capture
        other.copyFromDevice(host, op);
        expect(dev.lib.sym.hr_vmm_map(dev.handle, region.base, region.granularity)).toBe(STATE);
        expect(String(dev.lib.sym.hr_last_error())).toContain("hr_vmm_map: the instance is capturing");
        expect(x.hr_stream_synchronize(dev.handle)).toBe(STATE);
        expect(dev.lib.sym.hr_allocator_empty_cache(dev.handle)).toBe(STATE);
        ops.siluMul(out, out, src, 1, n, 0);
      });
      set.replay(1);
      const got = b.read(DType.F32, out, n);
      const s = (0.5 / (1 + Math.exp(-0.5))) * 0.5;
      const want = (s / (1 + Math.exp(-s))) * 0.5;
      expect(Math.abs(got[0]! - want)).toBeLessThan(1e-5);
      expect(got.every((v) => Math.abs(v - want) < 1e-5)).toBe(true);
      set.destroy();
      dev.releaseRegion(region.base);
      b.freeAll();
      ob.freeAll();
    } finally {
      other.close();
    }
  });

  test("graphs bound KV block ids by the blocks mapped at replay: NaN, then real values once mapped", () => {
    const b = new Buffers(dev);
    const ops = new Ops(dev, DType.BF16);
    const bs = 16,
      hk = 2,
      d = 128,
      hq = 4;
    const blockBytes = bs * hk * d * 2;
    const reservedBlocks = 4096;
    const r = dev.reserveRegion(reservedBlocks * blockBytes, 2);
    const numBlocks = Math.floor(r.sliceStride / blockBytes);
    const mappedBlocks = r.granularity / blockBytes; // one granule (2 MiB on an H200): 256 blocks of 8 KiB
    dev.mapRegion(r.base, r.granularity);
    const cache: PagedCache = {
      kCache: r.base,
      vCache: r.base + BigInt(r.sliceStride),
      numBlocks,
      blockSize: bs,
      numKvHeads: hk,
      headDim: d,
    };
    const q = b.values(DType.BF16, new Float32Array(hq * d).fill(0.25));
    const kv = b.values(DType.BF16, new Float32Array(hk * d).fill(0.5));
    const out = b.poisoned(DType.BF16, hq * d);
    const badBlock = mappedBlocks + 100; // reserved, not mapped: used to fault (illegal address)
    const bt = b.ints(new Int32Array([badBlock]));
    const lens = b.ints(new Int32Array([1]));
    const slot = b.ints(new Int32Array([badBlock * bs]));
    const set = GraphSet.create(dev, [1]);
    set.capture(1, () => {
      ops.kvWrite(cache, kv, kv, slot, 1);
      ops.attentionDecode(out, q, cache, bt, lens, 0n, 0, 1, hq, 1, 0, 0.1);
    });
    set.replay(1);
    expect(b.read(DType.BF16, out, hq * d).every(Number.isNaN)).toBe(true); // synchronizes: no fault
    dev.mapRegion(r.base, Math.ceil(((badBlock + 1) * blockBytes) / r.granularity) * r.granularity);
    set.replay(1);
    const got = b.read(DType.BF16, out, hq * d);
    expect(got.every((v) => v === 0.5)).toBe(true);
    set.destroy();
    dev.releaseRegion(r.base);
    b.freeAll();
  });

  test("decode: a bad block id in any warp's tokens (not only warp 0's) gives NaN, every time", () => {
    const b = new Buffers(dev);
    const ops = new Ops(dev, DType.BF16);
    const bs = 4,
      hk = 1,
      d = 64,
      hq = 2,
      nb = 32,
      maxb = 16;
    const cache: PagedCache = {
      kCache: b.values(DType.BF16, new Float32Array(nb * bs * hk * d).fill(0.5)),
      vCache: b.values(DType.BF16, new Float32Array(nb * bs * hk * d).fill(0.125)),
      numBlocks: nb,
      blockSize: bs,
      numKvHeads: hk,
      headDim: d,
    };
    const S = 64;
    const table = new Int32Array(S * maxb);
    for (let s = 0; s < S; s++) for (let j = 0; j < maxb; j++) table[s * maxb + j] = j;
    // tokens 32..63 of the first chunk are read by warp 1: a bad block there (block 12 = tokens 48..51)
    for (let s = 0; s < S; s += 2) table[s * maxb + 12] = 1000;
    const bt = b.ints(table),
      lens = b.ints(new Int32Array(S).fill(60));
    const q = b.values(DType.BF16, new Float32Array(S * hq * d).fill(0.25));
    const out = b.poisoned(DType.BF16, S * hq * d);
    for (let rep = 0; rep < 200; rep++) ops.attentionDecode(out, q, cache, bt, lens, 0n, 0, S, hq, maxb, 0, 0.1);
    const got = b.read(DType.BF16, out, S * hq * d);
    for (let s = 0; s < S; s++) {
      const row = got.subarray(s * hq * d, (s + 1) * hq * d);
      if (s % 2 === 0) expect(row.every(Number.isNaN)).toBe(true);
      else expect(row.every((v) => v === 0.125)).toBe(true);
    }
    b.freeAll();
  });

  test("graph-set destroy right after replays, then the pool's memory reused: no fault", () => {
    const d = openCuda();
    try {
      const ops = new Ops(d, DType.F32);
      const n = 1 << 22;
      const src = d.alloc(2 * n * 4);
      const set = GraphSet.create(d, [1]);
      let tmp = 0n;
      set.capture(1, () => {
        tmp = d.alloc(n * 4); // from the set's pool
        for (let i = 0; i < 20; i++) ops.siluMul(tmp, src, src + BigInt(n * 4), 1, n, 0);
        d.free(tmp);
      });
      for (let i = 0; i < 100; i++) set.replay(1);
      set.destroy(); // executables first, then a device sync, then the pool goes
      d.emptyCache();
      const p = d.alloc(n * 4);
      d.memset(p, 0, n * 4);
      d.synchronize();
      d.free(p);
      d.free(src);
    } finally {
      d.close();
    }
  });

  test("copy-engine query/synchronize see copies made by graph replays", () => {
    const d = openCuda();
    const s = d.lib.sym;
    try {
      const bytes = 256 * MiB;
      const hb = new BigUint64Array(1),
        eb = new BigUint64Array(1),
        done = new BigInt64Array(1);
      d.lib.check(s.hr_host_alloc(d.handle, bytes, hb), "hr_host_alloc");
      d.lib.check(s.hr_copy_engine_create(d.handle, 1, eb), "hr_copy_engine_create");
      const dst = d.alloc(bytes);
      const set = GraphSet.create(d, [1]);
      set.capture(1, () => {
        d.lib.check(s.hr_copy_begin(d.handle, eb[0]!), "hr_copy_begin");
        d.lib.check(s.hr_copy_async(d.handle, eb[0]!, 0, dst, hb[0]!, bytes, 0), "hr_copy_async");
        d.lib.check(s.hr_copy_wait(d.handle, eb[0]!, 0), "hr_copy_wait");
      });
      set.replay(1); // ~10 ms of copying inside the graph
      d.lib.check(s.hr_copy_query(d.handle, eb[0]!, 0, done), "hr_copy_query");
      expect(done[0]).toBe(0n); // used to say "done": the replay's copy is not tracked by the slot event
      d.lib.check(s.hr_copy_synchronize(d.handle, eb[0]!), "hr_copy_synchronize");
      d.lib.check(s.hr_copy_query(d.handle, eb[0]!, 0, done), "hr_copy_query");
      expect(done[0]).toBe(1n);
      set.destroy();
      d.free(dst);
    } finally {
      d.close(); // the engine and the host buffer go with the instance
    }
  });

  test("hr_memcpy_h2d_async: sources reusable at once, copies ordered with the ops around them", () => {
    const d = openCuda();
    try {
      const b = new Buffers(d);
      const ops = new Ops(d, DType.F32);
      const rng = new Rng(16);
      const K = 256,
        N = 64,
        STEPS = 150; // more copies than the ring keeps events for (64)
      const wv = rng.floats(N * K);
      const w = b.values(DType.F32, wv);
      const x = b.alloc(K * 4);
      const ys = Array.from({ length: STEPS }, () => b.poisoned(DType.F32, N));
      // a few ms of queued work first, so the copies below are queued behind it, not done at once
      const big = 2048;
      const bx = b.values(DType.F32, rng.floats(big * big, 0.01));
      const by = b.alloc(big * big * 4);
      for (let i = 0; i < 4; i++) ops.matmul(by, bx, bx, 0n, big, big, big);
      const huge = new Float32Array(3 * 262144); // 3 MiB: the ring grows with copies in flight
      const hugeDst = b.alloc(huge.byteLength);
      const inputs: Float32Array[] = [];
      for (let i = 0; i < STEPS; i++) {
        const src = rng.floats(K);
        inputs.push(src.slice());
        d.copyToDeviceAsync(x, src);
        src.fill(Number.NaN); // the call copied it already
        ops.matmul(ys[i]!, x, w, 0n, 1, N, K); // must read this step's x, not a later one
        if (i === STEPS / 2) {
          for (let j = 0; j < huge.length; j++) huge[j] = j;
          d.copyToDeviceAsync(hugeDst, huge);
          huge.fill(-1);
        }
      }
      d.synchronize();
      const hugeBack = b.read(DType.F32, hugeDst, huge.length);
      let wrong = 0;
      for (let j = 0; j < hugeBack.length; j++) if (hugeBack[j] !== j) wrong++;
      expect(wrong).toBe(0);
      for (let i = 0; i < STEPS; i++) {
        const want = new Float64Array(N);
        for (let n = 0; n < N; n++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc += wv[n * K + k]! * inputs[i]![k]!;
          want[n] = acc;
        }
        expectClose(`step ${i}`, b.read(DType.F32, ys[i]!, N), want, 1e-4, 1);
      }
      b.freeAll();
    } finally {
      d.close();
    }
  });
});
