// Runs headroom on the folders test/gpu/torch/reference.py wrote and compares its logits with
// the reference's (README.md beside this file: handoff, tolerance and its derivation).
//
//   bun test/gpu/torch/compare.ts REF_DIR [--device cuda|cpu] [--dtype auto|float32|bfloat16]
//                                 [--json FILE] [--eager]
//
// Every prompt of a model is prefilled in one step, then --steps decode steps run as one batch
// (CUDA graphs replayed unless --eager), teacher-forced with the reference's greedy tokens so
// that one flipped near-tie cannot derail the rest. Each logits row (prefill's last token, then
// one per step) is compared by relative L2 error against "truth" (fp32/float64 arithmetic on
// the same bf16 weights) and, where the reference also ran in bf16 ("ref", torch), headroom's
// mean error is held against torch's own. Exit status 1 when a bound is exceeded.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import type { DtypeFlag } from "../../../src/model/dtype.ts";
import type { StepInputs } from "../../../src/model/llama.ts";
import { startEngine, type StartedEngine } from "../../../src/engine/startup.ts";
import { engineOptions } from "../../engine/engine-helpers.ts";

/**
 * Relative L2 error bound per row against "truth", by headroom's compute dtype. f32: only the
 * accumulation order differs from float64 (~1e-6 seen). bf16: README.md derives 4e-2.
 */
export const REL_L2_BOUND: Record<string, number> = { f32: 1e-4, f16: 1e-2, bf16: 4e-2 };
/** headroom's mean bf16 error may be at most this multiple of torch's own bf16 error (both vs truth). */
export const TORCH_RATIO_BOUND = 3;

export interface ReferenceModel {
  name: string;
  dir: string;
  vocab: number;
  prompts: number[][];
  tokens: number[][];
  rows: number;
  files: { truth: string; ref?: string };
  info?: Record<string, unknown>;
}
export interface ReferenceManifest {
  backend: "torch" | "numpy";
  device: string;
  steps: number;
  models: ReferenceModel[];
}

export interface ModelComparison {
  model: string;
  dtype: string;
  graphs: boolean;
  /** Relative L2 vs truth: prefill rows, all rows (max and mean), the worst row. */
  prefillMax: number;
  max: number;
  mean: number;
  worst: { prompt: number; row: number };
  /** Torch bf16 vs truth (mean), and headroom's mean over it; null without a bf16 reference. */
  torchMean: number | null;
  ratio: number | null;
  /** Rows whose argmax equals truth's, of all rows (a figure: near-ties may flip). */
  argmaxAgree: number;
  rowsCompared: number;
  bound: number;
  pass: boolean;
  why: string[];
}

/** ‖a − b‖₂ / ‖b‖₂ over one row, in float64. */
export function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < b.length; i++) {
    const d = a[i]! - b[i]!;
    num += d * d;
    den += b[i]! * b[i]!;
  }
  if (!(den > 0)) return Number.NaN;
  return Math.sqrt(num / den);
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

function readRows(path: string, prompts: number, rows: number, vocab: number): Float32Array {
  const buf = readFileSync(path);
  const want = prompts * rows * vocab * 4;
  if (buf.byteLength !== want) throw new Error(`${path}: ${buf.byteLength} bytes, expected ${want} ([${prompts}][${rows}][${vocab}] f32)`);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** headroom's logits rows [prompts][rows][vocab] for the teacher-forced sequences of `m`. */
export function headroomLogits(s: StartedEngine, m: ReferenceModel): Float32Array {
  const S = m.prompts.length;
  const V = m.vocab;
  const bs = s.kvSpec.blockSize;
  const mb = s.limits.maxBlocksPerSeq;
  if (s.kv.numBlocks < S * mb) throw new Error(`KV cache of ${s.kv.numBlocks} blocks < ${S} x ${mb}`);
  const out = new Float32Array(S * m.rows * V);
  const put = (logits: Float32Array, row: number) => {
    for (let p = 0; p < S; p++) out.set(logits.subarray(p * V, (p + 1) * V), (p * m.rows + row) * V);
  };
  const tables = new Int32Array(S * mb);
  for (let p = 0; p < S; p++) for (let j = 0; j < mb; j++) tables[p * mb + j] = p * mb + j;
  const slot = (p: number, pos: number) => (p * mb + Math.floor(pos / bs)) * bs + (pos % bs);
  // prefill: every prompt in one step, logits of each prompt's last token
  const T = m.prompts.reduce((a, p) => a + p.length, 0);
  const ids = new Int32Array(T),
    pos = new Int32Array(T),
    slots = new Int32Array(T),
    qsl = new Int32Array(S + 1),
    lens = new Int32Array(S),
    li = new Int32Array(S);
  let t = 0;
  m.prompts.forEach((pr, p) => {
    qsl[p] = t;
    lens[p] = pr.length;
    pr.forEach((id, i) => {
      ids[t] = id;
      pos[t] = i;
      slots[t++] = slot(p, i);
    });
    li[p] = t - 1;
  });
  qsl[S] = t;
  const prefill: StepInputs = {
    inputIds: ids,
    positions: pos,
    slotMapping: slots,
    queryStartLoc: qsl,
    seqLens: lens,
    blockTables: tables,
    logitsIndices: li,
    decodeOnly: false,
  };
  s.model.step(prefill, T, S, S);
  put(s.model.readLogits(S), 0);
  // decode: row k feeds tokens[k-1] at position len + k - 1
  for (let k = 1; k < m.rows; k++) {
    const inp: StepInputs = {
      inputIds: Int32Array.from(m.tokens, (tk) => tk[k - 1]!),
      positions: Int32Array.from(m.prompts, (pr) => pr.length + k - 1),
      slotMapping: Int32Array.from(m.prompts, (pr, p) => slot(p, pr.length + k - 1)),
      queryStartLoc: Int32Array.from({ length: S + 1 }, (_, i) => i),
      seqLens: Int32Array.from(m.prompts, (pr) => pr.length + k),
      blockTables: tables,
      logitsIndices: Int32Array.from({ length: S }, (_, i) => i),
      decodeOnly: true,
    };
    s.model.step(inp, S, S, S);
    put(s.model.readLogits(S), k);
  }
  return out;
}

/** Compares headroom's rows with the manifest's truth (and ref); pure, testable without a device. */
export function compareRows(
  m: ReferenceModel,
  got: Float32Array,
  truth: Float32Array,
  ref: Float32Array | null,
  dtype: string,
  graphs: boolean,
): ModelComparison {
  const V = m.vocab;
  const row = (a: Float32Array, p: number, k: number) => a.subarray((p * m.rows + k) * V, (p * m.rows + k + 1) * V);
  let max = 0,
    sum = 0,
    prefillMax = 0,
    tsum = 0,
    agree = 0,
    n = 0;
  let worst = { prompt: 0, row: 0 };
  const why: string[] = [];
  for (let p = 0; p < m.prompts.length; p++) {
    for (let k = 0; k < m.rows; k++) {
      const g = row(got, p, k),
        tr = row(truth, p, k);
      const e = relL2(g, tr);
      if (!Number.isFinite(e)) why.push(`prompt ${p} row ${k}: non-finite logits or error`);
      if (!(e <= max)) {
        max = Number.isFinite(e) ? e : Number.POSITIVE_INFINITY;
        worst = { prompt: p, row: k };
      }
      if (k === 0) prefillMax = Math.max(prefillMax, e);
      sum += e;
      if (ref) tsum += relL2(row(ref, p, k), tr);
      if (argmax(g) === argmax(tr)) agree++;
      n++;
    }
  }
  const bound = REL_L2_BOUND[dtype] ?? REL_L2_BOUND.bf16!;
  const mean = sum / n;
  const torchMean = ref ? tsum / n : null;
  const ratio = torchMean !== null ? mean / Math.max(torchMean, 1e-3) : null;
  if (!(max <= bound)) why.push(`max relative L2 ${max.toExponential(2)} > ${bound} (prompt ${worst.prompt}, row ${worst.row})`);
  if (ratio !== null && dtype !== "f32" && !(ratio <= TORCH_RATIO_BOUND)) {
    why.push(
      `mean error ${mean.toExponential(2)} is ${ratio.toFixed(2)}x torch's own bf16 error ${torchMean!.toExponential(2)} (> ${TORCH_RATIO_BOUND}x)`,
    );
  }
  return {
    model: m.name,
    dtype,
    graphs,
    prefillMax,
    max,
    mean,
    worst,
    torchMean,
    ratio,
    argmaxAgree: agree,
    rowsCompared: n,
    bound,
    pass: why.length === 0,
    why,
  };
}

export interface CompareOptions {
  device: "cpu" | "cuda";
  dtype: DtypeFlag;
  eager?: boolean;
  log?: (line: string) => void;
}

export function compareReference(dir: string, o: CompareOptions): ModelComparison[] {
  const man = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8")) as ReferenceManifest;
  const results: ModelComparison[] = [];
  for (const m of man.models) {
    const folder = join(dir, m.dir);
    const maxModelLen = 16 * Math.ceil((Math.max(...m.prompts.map((p) => p.length)) + m.rows) / 16);
    const s = startEngine({
      ...engineOptions(folder, {
        maxModelLen,
        maxNumSeqs: Math.max(4, m.prompts.length),
        maxNumBatchedTokens: Math.max(
          256,
          m.prompts.reduce((a, p) => a + p.length, 0),
        ),
        enforceEager: o.eager === true,
        dtype: o.dtype,
      }),
      device: o.device,
      deviceOrdinal: o.device === "cuda" ? 0 : 9,
      deviceMemory: o.device === "cuda" ? null : 1024 * 2 ** 20,
      gpuMemoryUtilization: o.device === "cuda" ? 0.1 : 0.9,
    });
    try {
      const got = headroomLogits(s, m);
      const truth = readRows(join(dir, m.files.truth), m.prompts.length, m.rows, m.vocab);
      const ref = m.files.ref ? readRows(join(dir, m.files.ref), m.prompts.length, m.rows, m.vocab) : null;
      const r = compareRows(m, got, truth, ref, s.dtype, s.decodeGraphs !== null);
      results.push(r);
      o.log?.(
        `${r.pass ? "PASS" : "FAIL"} ${m.name} (${man.backend} reference, headroom ${o.device} ${r.dtype}${r.graphs ? ", graphs" : ""}): ` +
          `rel L2 vs truth max ${r.max.toExponential(2)} (bound ${r.bound}), mean ${r.mean.toExponential(2)}, prefill ${r.prefillMax.toExponential(2)}` +
          (r.torchMean !== null ? `; torch bf16 mean ${r.torchMean.toExponential(2)}, ratio ${r.ratio!.toFixed(2)}` : "") +
          `; argmax = truth in ${r.argmaxAgree}/${r.rowsCompared} rows` +
          (r.pass ? "" : ` — ${r.why.join("; ")}`),
      );
    } finally {
      s.close();
    }
  }
  return results;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const flag = (name: string, def: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1]! : def;
  };
  const dir = args[0];
  if (!dir || dir.startsWith("--")) {
    console.error(
      "usage: bun test/gpu/torch/compare.ts REF_DIR [--device cuda|cpu] [--dtype auto|float32|bfloat16] [--json FILE] [--eager]",
    );
    process.exit(2);
  }
  const device = flag("--device", "cuda") as "cpu" | "cuda";
  const results = compareReference(dir, {
    device,
    dtype: flag("--dtype", "auto") as DtypeFlag,
    eager: args.includes("--eager"),
    log: (l) => console.log(l),
  });
  const json = flag("--json", "");
  if (json) writeFileSync(json, JSON.stringify({ device, results }, null, 1));
  process.exit(results.every((r) => r.pass) ? 0 : 1);
}
