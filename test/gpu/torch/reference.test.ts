// The reference handoff without PyTorch: reference.py --backend numpy writes random-weight
// Llama and Qwen2 bf16 safetensors folders and float64 logits; compare.ts runs headroom on them
// (CPU in fp32 here; CUDA in bf16 too when a GPU is present) and must land within the bounds.
// The comparison itself must fail on wrong logits and on an error far above torch's own.
// The PyTorch run (reference.py --backend torch) needs torch + transformers: kit/gpu-check.sh.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { compareReference, compareRows, type ReferenceModel, TORCH_RATIO_BOUND } from "./compare.ts";
import { describeDevices } from "../../util/devices.ts";

const SCRIPT = resolve(import.meta.dir, "reference.py");
const haveNumpy = Bun.spawnSync(["python3", "-c", "import numpy"], { stderr: "ignore" }).exitCode === 0;
if (!haveNumpy) console.warn("skipped: python3 with numpy not found — test/gpu/torch/reference.test.ts (numpy reference)");

let dir = "";
beforeAll(() => {
  if (!haveNumpy) return;
  dir = mkdtempSync(join(tmpdir(), "headroom-ref-"));
  const r = Bun.spawnSync(["python3", SCRIPT, "--out", dir, "--backend", "numpy", "--steps", "12"], { stderr: "pipe", stdout: "pipe" });
  if (r.exitCode !== 0) throw new Error(`reference.py failed: ${r.stderr.toString()}`);
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
}, 120_000);

describeDevices("headroom vs the float64 numpy reference (Llama, Qwen2; bf16 weights)", (env) => {
  test.skipIf(!haveNumpy)(
    env.isCuda ? "CUDA bf16 (graphs): every row within the bf16 bound" : "CPU fp32 (graphs): every row within 1e-4",
    () => {
      const res = compareReference(dir, { device: env.device, dtype: env.isCuda ? "bfloat16" : "float32", log: (l) => console.log(l) });
      expect(res.map((r) => r.model)).toEqual(["llama", "qwen2"]);
      for (const r of res) {
        expect(r.why).toEqual([]);
        expect(r.rowsCompared).toBe(3 * 13);
        expect(r.graphs).toBe(true);
      }
    },
    120_000,
  );
});

describe("the comparison has teeth", () => {
  const m: ReferenceModel = {
    name: "x",
    dir: "x",
    vocab: 64,
    prompts: [[1, 2], [3]],
    tokens: [[5], [6]],
    rows: 2,
    files: { truth: "" },
  };
  const truth = Float32Array.from({ length: 2 * 2 * 64 }, (_, i) => Math.sin(i * 0.37) * 3);

  test("equal rows pass; one row off by 5 % fails the bf16 bound, naming it", () => {
    expect(compareRows(m, truth.slice(), truth, null, "bf16", true).pass).toBe(true);
    const got = truth.slice();
    for (let i = 3 * 64; i < 4 * 64; i++) got[i]! *= 1.05; // prompt 1, row 1
    const r = compareRows(m, got, truth, null, "bf16", true);
    expect(r.pass).toBe(false);
    expect(r.worst).toEqual({ prompt: 1, row: 1 });
    expect(r.why[0]).toMatch(/max relative L2 5\.00e-2 > 0\.04 \(prompt 1, row 1\)/);
  });

  test("a NaN row fails", () => {
    const got = truth.slice();
    got[70] = Number.NaN;
    const r = compareRows(m, got, truth, null, "f32", false);
    expect(r.pass).toBe(false);
    expect(r.why.join()).toMatch(/non-finite/);
  });

  test("within the bound but far above torch's own bf16 error: fails the ratio", () => {
    const noisy = (scale: number) => Float32Array.from(truth, (x, i) => x * (1 + scale * Math.cos(i * 1.7)));
    const torchRef = noisy(0.004);
    const ok = compareRows(m, noisy(0.006), truth, torchRef, "bf16", true);
    expect(ok.pass).toBe(true);
    const bad = compareRows(m, noisy(0.03), truth, torchRef, "bf16", true);
    expect(bad.max).toBeLessThan(0.04);
    expect(bad.ratio!).toBeGreaterThan(TORCH_RATIO_BOUND);
    expect(bad.pass).toBe(false);
  });
});
