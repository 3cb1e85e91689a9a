// Decode-attention occupancy on a GPU: the plan reports the CTAs one wave of the device holds
// for the kernel variant (cudaOccupancyMaxActiveBlocksPerMultiprocessor x SMs), and every
// variant (each KV cache dtype x head_dim 64/128/256) must keep 8 CTAs of 128 threads per SM,
// i.e. 32 of 64 warps (50 %). The group size does not pick a variant (it is a run-time thread
// layout), so this covers GQA groups 1..8 too; the cases in cases-kv.ts check their results.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";

import type { Device } from "../../src/native/device.ts";
import { KvDType, Ops, type KvDTypeCode, type PagedCache } from "../../src/native/ops.ts";
import { announce, DTYPES, noGpu, openCuda } from "./common.ts";
import { KV_NAMES } from "./cases-kv.ts";

announce("test/gpu/attn-occupancy.test.ts (decode attention: >= 50 % occupancy for every variant)");

describe.skipIf(noGpu)("decode attention occupancy", () => {
  let dev: Device;
  beforeAll(() => {
    dev = openCuda();
  });
  afterAll(() => dev?.close());

  for (const dt of DTYPES)
    for (const kv of [KvDType.F32, KvDType.F16, KvDType.BF16, KvDType.FP8_E4M3, KvDType.FP8_E5M2])
      for (const d of [64, 128, 256])
        test(`${dt.name} activations, kv ${KV_NAMES[kv]}, head_dim ${d}: >= 8 CTAs (32 warps) per SM`, () => {
          const ops = new Ops(dev, dt.code);
          const sms = dev.info().multiprocessors;
          for (const g of [1, 2, 3, 4, 5, 6, 7, 8]) {
            const c: PagedCache = {
              kCache: 0n,
              vCache: 0n,
              numBlocks: 1,
              blockSize: 16,
              numKvHeads: 8,
              headDim: d,
              kvDtype: kv as KvDTypeCode,
            };
            const bytes = ops.decodePlanWorkspaceBytes(1, 8 * g, c, 8192);
            const ws = dev.alloc(bytes);
            try {
              const p = ops.decodePlan(Int32Array.of(2048), 1, 8 * g, c, 8192, ws, bytes);
              expect(p.ctas / sms).toBeGreaterThanOrEqual(8);
            } finally {
              dev.free(ws);
            }
          }
        });
});
