// Upload into a CPU device through the caching allocator. Needs build/libheadroom_cpu.so with
// the allocator (skips visibly otherwise).
import { afterAll, describe, expect, test } from "bun:test";

import { demoConfig, demoWeights, DEMO_MODEL_NAME } from "../../src/model/demo-model.ts";
import { parameterCount } from "../../src/model/config.ts";
import { openModel } from "../../src/model/load.ts";
import { downloadTensor, uploadWeights } from "../../src/model/upload.ts";
import { deviceBytes, tensorToF32, type WeightSet } from "../../src/model/weights.ts";
import { deviceSkipReason, GGUF_PATH, HAVE_MODELS, HF_DIR, tryOpenCpuDevice } from "./helpers.ts";

const dev = tryOpenCpuDevice(1 << 30);
if (!dev) console.warn(`[upload] skipped: no CPU device (${deviceSkipReason()}); run \`make\``);
afterAll(() => dev?.close());

function roundTrip(ws: WeightSet, chunkBytes?: number): void {
  const d = dev!;
  const before = d.stats().allocatedBytes.current;
  const lw = uploadWeights(d, ws, { chunkBytes });
  expect(lw.totalBytes).toBe(deviceBytes(ws));
  expect(d.stats().allocatedBytes.current - before).toBeGreaterThanOrEqual(lw.totalBytes);
  for (const [name, t] of ws.tensors) {
    const l = lw.get(name);
    expect(l.shape).toEqual(t.shape);
    expect(downloadTensor(d, l)).toEqual(tensorToF32(t));
  }
  lw.free();
  lw.free(); // idempotent
  expect(d.stats().allocatedBytes.current).toBe(before);
}

describe.skipIf(!dev)("uploadWeights (CPU device)", () => {
  test("demo model: deterministic random weights generated into the upload path, small chunks", () => {
    const ws = demoWeights();
    expect(ws.config.randomWeights).toBe(true);
    expect(ws.config.name).toBe(DEMO_MODEL_NAME);
    roundTrip(ws, 64 << 10);
    // Deterministic: same values again, and a different seed differs.
    const a = tensorToF32(demoWeights().tensors.get("model.layers.3.mlp.up_proj.weight")!);
    const b = tensorToF32(demoWeights().tensors.get("model.layers.3.mlp.up_proj.weight")!);
    const c = tensorToF32(demoWeights(7).tensors.get("model.layers.3.mlp.up_proj.weight")!);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const std = Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    expect(std).toBeGreaterThan(0.018);
    expect(std).toBeLessThan(0.022);
    expect(parameterCount(demoConfig())).toBe(deviceBytes(ws) / 4);
  });

  test.skipIf(!HAVE_MODELS)(
    "stories260K GGUF (permuted Q/K through scratch) and HF (direct from mmap) upload to identical device weights",
    () => {
      const g = openModel(GGUF_PATH).weights;
      const h = openModel(HF_DIR).weights;
      roundTrip(g, 4096);
      roundTrip(h);
      const lg = uploadWeights(dev!, g);
      const lh = uploadWeights(dev!, h);
      for (const name of h.tensors.keys()) expect(downloadTensor(dev!, lg.get(name))).toEqual(downloadTensor(dev!, lh.get(name)));
      lg.free();
      lh.free();
    },
  );

  test("out of device memory: the partial upload is freed and the allocator error surfaces", () => {
    const d = dev!;
    const before = d.stats().allocatedBytes.current;
    d.emptyCache(); // cached segments from earlier tests would serve the allocations
    d.setMemoryLimit(8 << 20); // demo needs ~24 MiB
    try {
      expect(() => uploadWeights(d, demoWeights())).toThrow(/HR_E_OOM/);
    } finally {
      d.setMemoryLimit(0);
    }
    expect(d.stats().allocatedBytes.current).toBe(before);
  });
});
