// Runs a loaded model through the real forward pass on any device and dtype: prefill in chunks
// (cached prefix), then greedy decode steps, over a scattered block table (shared by the CPU
// family tests and the GPU suite).
import type { Device } from "../../src/native/device.ts";
import { DType, Ops } from "../../src/native/ops.ts";
import { batchLimitsFor } from "../../src/memory/planner.ts";
import { COMPUTE_DTYPE_BYTES, type ComputeDtype } from "../../src/model/dtype.ts";
import { LlamaModel } from "../../src/model/llama.ts";
import { uploadWeights } from "../../src/model/upload.ts";
import type { WeightSet } from "../../src/model/weights.ts";

const DTYPE_CODE = { f32: DType.F32, f16: DType.F16, bf16: DType.BF16 } as const;

export interface Run {
  /** tokens of the whole sequence (prompt + greedy continuation) */
  seq: number[];
  promptLen: number;
  /** [position, logits] for the last row of each prefill chunk and each decode step */
  rows: [number, Float32Array][];
  /** Fused weight tensors the run used (qkv_proj / gate_up_proj per layer; 0 with fuse off). */
  fusedTensors: number;
}

/** Prefill `prompt` in `chunks`, then `steps` greedy decode steps, through the paged KV path. */
export function runModel(
  d: Device,
  ws: WeightSet,
  prompt: number[],
  chunks: number[],
  steps: number,
  maxModelLen: number,
  dtype: ComputeDtype = "f32",
  bs = 4,
  fuse = true,
): Run {
  const cfg = ws.config;
  const w = uploadWeights(d, ws, { dtype, fuse });
  const ops = new Ops(d, DTYPE_CODE[dtype]);
  const limits = batchLimitsFor(maxModelLen, 4, 64, bs);
  const m = new LlamaModel(d, ops, cfg, w, limits, bs);
  m.allocateArena();
  const numBlocks = limits.maxBlocksPerSeq + 3;
  const sliceStride = numBlocks * bs * cfg.numKvHeads * cfg.headDim * COMPUTE_DTYPE_BYTES[dtype];
  const kv = d.alloc(2 * cfg.numLayers * sliceStride);
  try {
    m.setKvCache({ base: kv, sliceStride, numBlocks, blockSize: bs });
    // scattered, reversed blocks: the block table is really used
    const table = Int32Array.from({ length: limits.maxBlocksPerSeq }, (_, i) => numBlocks - 1 - i);
    const seq = [...prompt];
    const rows: [number, Float32Array][] = [];
    let done = 0;
    const step = (ids: number[], decodeOnly: boolean) => {
      const n = ids.length;
      const pos = Int32Array.from({ length: n }, (_, i) => done + i);
      m.stage({
        inputIds: Int32Array.from(ids),
        positions: pos,
        slotMapping: pos.map((p) => table[Math.floor(p / bs)]! * bs + (p % bs)),
        queryStartLoc: Int32Array.from([0, n]),
        seqLens: Int32Array.from([done + n]),
        blockTables: table,
        logitsIndices: Int32Array.from([n - 1]),
        decodeOnly,
      });
      m.forward(n, 1, 1, decodeOnly);
      done += n;
      rows.push([done - 1, m.readLogits(1).slice()]);
    };
    for (const n of chunks) step(prompt.slice(done, done + n), false);
    if (done !== prompt.length) throw new Error("chunks must cover the prompt");
    for (let s = 0; s < steps; s++) {
      const last = rows[rows.length - 1]![1];
      let best = 0;
      for (let i = 1; i < last.length; i++) if (last[i]! > last[best]!) best = i;
      seq.push(best);
      step([best], true);
    }
    return { seq, rows, promptLen: prompt.length, fusedTensors: w.fused.size };
  } finally {
    d.free(kv);
    m.freeArena();
    w.free();
  }
}
