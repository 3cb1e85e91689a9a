// The decode-attention plan on the CPU backend (headroom.h "Decode-attention plan"): what it
// chooses for edge-case batches, the workspace bound (batch and head shape only, never
// max_model_len), and the loud failures of a missing, stale or too-fine plan. The CUDA kernel
// that runs the plan is checked against the float64 reference in test/gpu/cases-kv.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";

import type { Device } from "../src/native/device.ts";
import { GraphSet } from "../src/native/graphs.ts";
import { DECODE_PLANNED, Ops, type PagedCache } from "../src/native/ops.ts";
import { openCpu } from "./gpu/common.ts";

let dev: Device;
let ops: Ops;
beforeAll(() => {
  dev = openCpu();
  ops = new Ops(dev);
});
afterAll(() => dev?.close());

const shape = (hk: number, d: number, bs = 16): PagedCache => ({
  kCache: 0n,
  vCache: 0n,
  numBlocks: 1,
  blockSize: bs,
  numKvHeads: hk,
  headDim: d,
});
const ceil = (a: number, b: number) => Math.ceil(a / b);

describe("decode plan: workspace bound", () => {
  test("Llama-3-8B shape: the same bytes at max_model_len 2k and 128k, ~1000x below the fixed-partition workspace", () => {
    const c = shape(8, 128);
    const at2k = ops.decodePlanWorkspaceBytes(256, 32, c, 2048 / 16);
    const at128k = ops.decodePlanWorkspaceBytes(256, 32, c, 131072 / 16);
    expect(at128k).toBe(at2k);
    const fixed = ops.decodeWorkspaceBytes(256, 32, 128, 131072 / 16, 16, 512); // the old engine figure
    expect(fixed).toBeGreaterThan(2 ** 30);
    expect(at128k).toBeLessThan(16 * 2 ** 20);
  });

  test("a context that can never split (max context <= one partition) needs only the plan", () => {
    const c = shape(2, 64);
    const one = ops.decodePlanWorkspaceBytes(4, 8, c, 4); // 64 tokens: one 64-token partition at most
    const two = ops.decodePlanWorkspaceBytes(4, 8, c, 5);
    expect(one).toBeLessThan(4096);
    expect(two - one).toBe(4 * 2 * 8 * (64 + 2) * 4); // 4 sequences x 2 partitions x hq rows of (d + 2) floats
  });
});

describe("decode plan: what it chooses", () => {
  const plan = (lens: number[], hq: number, hk: number, d: number, maxb: number, part = 0) => {
    const c = shape(hk, d);
    const bytes = ops.decodePlanWorkspaceBytes(lens.length, hq, c, maxb);
    const ws = dev.alloc(bytes);
    try {
      return ops.decodePlan(Int32Array.from(lens), lens.length, hq, c, maxb, ws, bytes, part);
    } finally {
      dev.free(ws);
    }
  };

  test("B=1, context 1: one pair, no split, nothing through the workspace", () => {
    const p = plan([1], 32, 8, 128, 8192);
    expect(p.pairs).toBe(1);
    expect(p.workspacePairs).toBe(0);
  });

  test("mixed 1 and 8k contexts: every pair counted, partitions whole blocks, bounded split pairs", () => {
    const lens = [1, 8192, 1, 8192, 3];
    const p = plan(lens, 8, 2, 128, 8192);
    expect(p.partition % 16).toBe(0);
    expect(p.partition).toBeGreaterThanOrEqual(64);
    expect(p.pairs).toBe(lens.reduce((a, L) => a + ceil(L, p.partition), 0));
    expect(p.workspacePairs).toBe(lens.filter((L) => L > p.partition).reduce((a, L) => a + ceil(L, p.partition), 0));
    expect(p.workspacePairs).toBeLessThanOrEqual(4096 / 2);
    expect(p.workspacePairs).toBeGreaterThan(0); // two long sequences in a small batch do split
  });

  test("a batch that fills the device alone is not split (CPU: 4096 CTAs per wave, 1024 sequences x 8 KV heads)", () => {
    const lens = Array.from({ length: 1024 }, () => 1024);
    const p = plan(lens, 32, 8, 128, 8192);
    expect(p.ctas).toBe(4096);
    expect(p.workspacePairs).toBe(0);
    expect(p.pairs).toBe(1024);
  });

  test("a forced partition that would exceed the workspace bound is refused", () => {
    expect(() => plan([8192, 8192], 32, 8, 128, 512, 16)).toThrow(/workspace holds/);
  });
});

describe("planned decode on the CPU backend checks the plan", () => {
  const hq = 4,
    hk = 2,
    d = 16,
    bs = 4,
    nb = 64,
    B = 2,
    maxb = 64;
  function setup() {
    const kc = dev.alloc(nb * bs * hk * d * 4),
      vc = dev.alloc(nb * bs * hk * d * 4);
    dev.memset(kc, 0, nb * bs * hk * d * 4);
    dev.memset(vc, 0, nb * bs * hk * d * 4);
    const cache: PagedCache = { kCache: kc, vCache: vc, numBlocks: nb, blockSize: bs, numKvHeads: hk, headDim: d };
    const bt = dev.alloc(B * maxb * 4);
    dev.copyToDevice(
      bt,
      Int32Array.from({ length: B * maxb }, (_, i) => i % nb),
    );
    const lens = dev.alloc(B * 4);
    const q = dev.alloc(B * hq * d * 4),
      out = dev.alloc(B * hq * d * 4);
    dev.memset(q, 0, B * hq * d * 4);
    const wsBytes = ops.decodePlanWorkspaceBytes(B, hq, cache, maxb);
    const ws = dev.alloc(wsBytes);
    dev.memset(ws, 0, wsBytes);
    const run = () => ops.attentionDecode(out, q, cache, bt, lens, ws, wsBytes, B, hq, maxb, DECODE_PLANNED, 0.25);
    const free = () => [kc, vc, bt, lens, q, out, ws].forEach((p) => dev.free(p));
    return { cache, lens, ws, wsBytes, run, free };
  }

  test("no plan in the workspace: HR_E_INVALID naming hr_attention_decode_plan", () => {
    const s = setup();
    try {
      dev.copyToDevice(s.lens, Int32Array.of(5, 9));
      expect(s.run).toThrow(/no decode plan/);
    } finally {
      s.free();
    }
  });

  test("a plan made for other lengths: HR_E_INVALID (stale plan), then fine after planning again", () => {
    const s = setup();
    try {
      ops.decodePlan(Int32Array.of(5, 90), B, hq, s.cache, maxb, s.ws, s.wsBytes, 64);
      dev.copyToDevice(s.lens, Int32Array.of(5, 200));
      expect(s.run).toThrow(/stale decode plan/);
      ops.decodePlan(Int32Array.of(5, 200), B, hq, s.cache, maxb, s.ws, s.wsBytes, 64);
      s.run();
    } finally {
      s.free();
    }
  });

  test("planning during graph capture is refused (HR_E_STATE); a replay reads the plan staged before it", () => {
    const s = setup();
    const set = GraphSet.create(dev, [B]);
    try {
      dev.copyToDevice(s.lens, Int32Array.of(3, 7));
      ops.decodePlan(Int32Array.of(3, 7), B, hq, s.cache, maxb, s.ws, s.wsBytes, 64);
      set.capture(B, () => {
        expect(() => ops.decodePlan(Int32Array.of(3, 7), B, hq, s.cache, maxb, s.ws, s.wsBytes)).toThrow(/HR_E_STATE/);
        s.run();
      });
      set.replay(B);
      dev.copyToDevice(s.lens, Int32Array.of(30, 200));
      expect(() => set.replay(B)).toThrow(/stale decode plan/);
      ops.decodePlan(Int32Array.of(30, 200), B, hq, s.cache, maxb, s.ws, s.wsBytes, 64);
      set.replay(B);
    } finally {
      set.destroy();
      s.free();
    }
  });
});
