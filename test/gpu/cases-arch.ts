// GPU-suite cases of the elementwise ops added for Gemma: gelu_tanh_mul (GeGLU), scale
// (embedding x sqrt(hidden)) and softcap (final logits, always float32), each against a
// float64 reference (the attention window/softcap cases live with the attention cases).
import type { Device } from "../../src/native/device.ts";
import { DType, Ops, type DTypeCode } from "../../src/native/ops.ts";
import type { Check, OpCase } from "./cases.ts";
import { Buffers, esize, roundTo, type Rng } from "./common.ts";

const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

const geluMul = (rows: number, inter: number, merged: boolean): OpCase => ({
  name: `gelu_tanh_mul rows=${rows} inter=${inter}${merged ? " merged gate_up" : ""}`,
  run(dev: Device, dtype: number, rng: Rng, roundAs = dtype): Check[] {
    const b = new Buffers(dev);
    try {
      const stride = merged ? 2 * inter : inter;
      const g = roundTo(roundAs, rng.floats(rows * stride, 4));
      const u = merged ? g : roundTo(roundAs, rng.floats(rows * stride, 1));
      const gp = b.values(dtype, g);
      const up = merged ? gp + BigInt(inter * esize(dtype)) : b.values(dtype, u);
      const out = b.poisoned(dtype, rows * inter);
      new Ops(dev, dtype as DTypeCode).geluTanhMul(out, gp, up, rows, inter, merged ? stride : 0);
      const ref = new Float64Array(rows * inter);
      const upOff = merged ? inter : 0;
      for (let r = 0; r < rows; r++)
        for (let i = 0; i < inter; i++) ref[r * inter + i] = geluTanh(g[r * stride + i]!) * u[r * stride + upOff + i]!;
      return [{ what: "out", got: b.read(dtype, out, rows * inter), ref, scale: 0.1 }];
    } finally {
      b.freeAll();
    }
  },
});

const scaleCase = (n: number, s: number): OpCase => ({
  name: `scale n=${n} x${s}`,
  run(dev: Device, dtype: number, rng: Rng, roundAs = dtype): Check[] {
    const b = new Buffers(dev);
    try {
      const x = roundTo(roundAs, rng.floats(n, 1));
      const p = b.values(dtype, x);
      new Ops(dev, dtype as DTypeCode).scale(p, n, s);
      return [{ what: "x", got: b.read(dtype, p, n), ref: Float64Array.from(x, (v) => v * s), scale: s * 0.1 }];
    } finally {
      b.freeAll();
    }
  },
});

const softcapCase = (rows: number, vocab: number, cap: number): OpCase => ({
  name: `softcap (f32 logits) rows=${rows} vocab=${vocab} cap=${cap}`,
  run(dev: Device, _dtype: number, rng: Rng): Check[] {
    const b = new Buffers(dev);
    try {
      const x = rng.floats(rows * vocab, 4 * cap); // well into the saturating range
      const p = b.values(DType.F32, x);
      new Ops(dev, _dtype as DTypeCode).softcap(p, rows * vocab, cap, DType.F32);
      return [
        {
          what: "logits",
          got: b.read(DType.F32, p, rows * vocab),
          ref: Float64Array.from(x, (v) => cap * Math.tanh(v / cap)),
          scale: cap * 0.1,
        },
      ];
    } finally {
      b.freeAll();
    }
  },
});

export const ARCH_CASES: OpCase[] = [
  geluMul(1, 11, false),
  geluMul(17, 1000, true),
  geluMul(4, 9216, false),
  scaleCase(1, 45.25),
  scaleCase(70001, 48),
  softcapCase(1, 7, 30),
  softcapCase(3, 256000, 30),
];
