// bench/attention: paged decode attention bandwidth on CUDA, next to a device-to-device copy
// measured in the same run, plus the decode step of a synthetic Llama-8B-shaped layer stack.
//
//   bun bench/attention/run.ts [--batches 1,16,64,256] [--contexts 512,2048,8192,32768]
//                              [--max-model-len 131072] [--iters 30] [--partition 512]
//                              [--peak-tflops 989] [--prefill-tokens 1024,4096]
//                              [--prefill-chunked 4096:512] [--no-e2e] [--out bench/out/attention.json]
//   bun bench/attention/run.ts --device cpu --small    plumbing smoke test on the CPU backend
//
// Attention: bf16, 32 query heads / 8 KV heads, head_dim 128, block_size 16, random block
// tables (pages in shuffled order) as wide as the engine's at --max-model-len (max_blocks_per_seq
// = 8192 at 128k, whatever the context). Decode runs as the engine runs it: planned
// (hr_attention_decode_plan once per call set, then the op with HR_DECODE_PLANNED); the old
// fixed-partition path (--partition tokens, grid and workspace by max_blocks_per_seq) runs in
// the same process as the baseline. Achieved bandwidth = bytes of K/V (context tokens x 8 heads
// x 128 x 2 B, K and V) + queries, each read once, / kernel time (decode + split-K reduction,
// one hr_op_attention_decode call timed with CUDA events, median of --iters runs). Inputs are
// rotated over as many copies as needed to touch >= 512 MiB between reuses, so L2 (40-50 MB)
// holds none of it. Copy bandwidth: hr_memcpy_async D2D of 1 GiB on the same stream, counted
// as bytes read + written / time (the DRAM traffic), median of 10. Target (issue 7): attention
// >= 80 % of the copy bandwidth at batch >= 16 and context >= 2k.
//
// Prefill attention: one sequence of --prefill-tokens new tokens (no cached prefix), and
// --prefill-chunked cached:new pairs (chunked prefill behind a cached prefix), same heads, block
// table as wide as the engine's at --max-model-len; FLOPs = 4 x heads x head_dim x (query, key)
// pairs (T x cached + T (T + 1) / 2), reported as TFLOP/s (min/median/max of 7 runs) and as a
// fraction of --peak-tflops (dense bf16 of the GPU by its datasheet: H100/H200 SXM 989), for
// the engine's path (tensor-core kernel) and, in the same run, the CUDA-core kernel
// (HEADROOM_CUDA_PREFILL=simt) as the baseline.
//
// E2E: one decode step (embedding, 32 x [rms_norm, qkv matmul, rope, kv_write, decode
// attention, o matmul, fused-residual rms_norm, gate_up matmul, silu_mul, down matmul], final
// norm, logits) of a Llama-3-8B-shaped stack (dim 4096, 14336, 32/8 heads, vocab 128256, bf16,
// weights set to a constant by memset: timing does not depend on values) at context 1024,
// timed with events; tokens/s = batch / step time, next to the weight-read bound (weight
// bytes / copy bandwidth).
//
// Without a GPU: prints "skipped: no GPU" and exits 0.
import { dlopen } from "bun:ffi";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname } from "node:path";

import { Device } from "../../src/native/device.ts";
import { libraryPath } from "../../src/native/library.ts";
import { DECODE_PLANNED, DType, Ops, RopeLayout, type DecodePlanInfo, type DTypeCode, type PagedCache } from "../../src/native/ops.ts";
import { cudaExtraSymbols } from "../../src/native/symbols.ts";
import { withCEnv } from "../../test/util/c-env.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const flag = (name: string) => args.includes(`--${name}`);
const device = opt("device", "cuda") as "cuda" | "cpu";
const small = flag("small");
const BATCHES = opt("batches", small ? "1,3" : "1,16,64,256")
  .split(",")
  .map(Number);
const CONTEXTS = opt("contexts", small ? "64,200" : "512,2048,8192,32768")
  .split(",")
  .map(Number);
const ITERS = Number(opt("iters", small ? "3" : "30"));
const PART = Number(opt("partition", small ? "32" : "512"));
const OUT = opt("out", small ? "bench/out/attention-smoke.json" : "bench/out/attention.json");
const E2E = !flag("no-e2e");
const MAX_MODEL_LEN = Number(opt("max-model-len", small ? "4096" : "131072"));
const PEAK_TFLOPS = Number(opt("peak-tflops", "989"));
const PREFILL_TOKENS = opt("prefill-tokens", small ? "64" : "1024,4096")
  .split(",")
  .map(Number);

// chunked prefill: (cached, new) pairs, "cached:new,..."
const PREFILL_CHUNKED = opt("prefill-chunked", small ? "100:30" : "4096:512")
  .split(",")
  .map((x) => x.split(":").map(Number) as [number, number]);

const HQ = small ? 8 : 32,
  HK = small ? 2 : 8,
  D = small ? 32 : 128,
  BS = 16;
const DT: DTypeCode = device === "cuda" ? DType.BF16 : DType.F32;
const ESZ = DT === DType.F32 ? 4 : 2;
const GiB = 2 ** 30,
  MiB = 2 ** 20;

let dev: Device;
try {
  dev = Device.open({ device });
} catch (e) {
  console.log(`skipped: no GPU (${(e as Error).message})`);
  process.exit(0);
}
const ops = new Ops(dev, DT);
const x = device === "cuda" ? dlopen(libraryPath("cuda"), cudaExtraSymbols).symbols : null;
const check = (st: number, call: string) => dev.lib.check(st, call);
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

/** Times `fn` (queued work) `n` times: CUDA events around each run, else wall clock. */
function timeMs(fn: (i: number) => void, n: number, warmup = 3): number[] {
  for (let i = 0; i < warmup; i++) fn(i);
  dev.synchronize();
  const out: number[] = [];
  if (!x) {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      fn(i);
      dev.synchronize();
      out.push(performance.now() - t0);
    }
    return out;
  }
  const ev = new BigUint64Array(1);
  const a: bigint[] = [],
    b: bigint[] = [];
  for (let i = 0; i < n; i++) {
    check(x.hr_event_create(dev.handle, ev), "hr_event_create");
    a.push(ev[0]!);
    check(x.hr_event_create(dev.handle, ev), "hr_event_create");
    b.push(ev[0]!);
  }
  for (let i = 0; i < n; i++) {
    check(x.hr_event_record(dev.handle, a[i]!), "hr_event_record");
    fn(i);
    check(x.hr_event_record(dev.handle, b[i]!), "hr_event_record");
  }
  const ms = new Float64Array(1);
  for (let i = 0; i < n; i++) {
    check(x.hr_event_synchronize(dev.handle, b[i]!), "hr_event_synchronize");
    check(x.hr_event_elapsed_ms(dev.handle, a[i]!, b[i]!, ms), "hr_event_elapsed_ms");
    out.push(ms[0]!);
    check(x.hr_event_destroy(dev.handle, a[i]!), "hr_event_destroy");
    check(x.hr_event_destroy(dev.handle, b[i]!), "hr_event_destroy");
  }
  return out;
}

function uploadInts(v: Int32Array): bigint {
  const p = dev.alloc(v.byteLength);
  dev.copyToDevice(p, v);
  return p;
}

// ---- copy bandwidth ----
function copyBandwidth(): { bytes: number; gbPerS: number } {
  const bytes = small ? 64 * MiB : GiB;
  const a = dev.alloc(bytes),
    b = dev.alloc(bytes);
  dev.memset(a, 1, bytes);
  const ms = timeMs(() => {
    if (x) check(x.hr_memcpy_async(dev.handle, 2, b, a, bytes), "hr_memcpy_async");
    else dev.copyDeviceToDevice(b, a, bytes);
  }, 10);
  dev.free(a);
  dev.free(b);
  return { bytes, gbPerS: (2 * bytes) / (median(ms) / 1e3) / 1e9 };
}

// ---- attention ----
interface AttnRow {
  batch: number;
  context: number;
  max_blocks_per_seq: number;
  plan: DecodePlanInfo;
  workspace_bytes: number;
  sets: number;
  bytes: number;
  median_us: number;
  gb_per_s: number;
  of_copy: number;
  /** the fixed-partition path at the same max_blocks_per_seq (same run) */
  fixed: { partition: number; workspace_bytes: number; median_us: number; of_copy: number } | { skipped: string };
}

function shuffled(n: number): Int32Array {
  const a = new Int32Array(n).map((_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function attention(B: number, ctx: number, copyGbs: number): AttnRow | { batch: number; context: number; skipped: string } {
  const blocksPerSeq = Math.ceil(ctx / BS);
  const maxb = Math.max(blocksPerSeq, Math.ceil(MAX_MODEL_LEN / BS)); // the engine's table width
  const nb = B * blocksPerSeq;
  const cacheBytes = nb * BS * HK * D * ESZ;
  const qBytes = B * HQ * D * ESZ;
  const setBytes = 2 * cacheBytes + qBytes;
  const { free } = dev.memInfo();
  const sets = Math.max(1, Math.ceil((512 * MiB) / setBytes));
  if (sets * setBytes > 0.8 * free) return { batch: B, context: ctx, skipped: `needs ${((sets * setBytes) / GiB).toFixed(1)} GiB` };
  const shape = { numKvHeads: HK, headDim: D, blockSize: BS };
  const wsBytes = ops.decodePlanWorkspaceBytes(B, HQ, shape, maxb);
  const ws = dev.alloc(wsBytes);
  const out = dev.alloc(qBytes);
  const lensHost = new Int32Array(B).fill(ctx);
  const seqLens = uploadInts(lensHost);
  const made: { cache: PagedCache; q: bigint; bt: bigint }[] = [];
  for (let s = 0; s < sets; s++) {
    const k = dev.alloc(cacheBytes),
      v = dev.alloc(cacheBytes),
      q = dev.alloc(qBytes);
    // bf16 0x3c3c (~0.0115) everywhere: the kernel's work does not depend on values
    dev.memset(k, 0x3c, cacheBytes);
    dev.memset(v, 0x3c, cacheBytes);
    dev.memset(q, 0x3c, qBytes);
    // [B, maxb]: the context's pages in random order, the rest of each row unused (0)
    const pages = shuffled(nb),
      table = new Int32Array(B * maxb);
    for (let r = 0; r < B; r++) table.set(pages.subarray(r * blocksPerSeq, (r + 1) * blocksPerSeq), r * maxb);
    made.push({ cache: { kCache: k, vCache: v, numBlocks: nb, blockSize: BS, numKvHeads: HK, headDim: D }, q, bt: uploadInts(table) });
  }
  const scale = 1 / Math.sqrt(D);
  const plan = ops.decodePlan(lensHost, B, HQ, made[0]!.cache, maxb, ws, wsBytes); // one plan: every set has the same lengths
  const ms = timeMs((i) => {
    const m = made[i % sets]!;
    ops.attentionDecode(out, m.q, m.cache, m.bt, seqLens, ws, wsBytes, B, HQ, maxb, DECODE_PLANNED, scale);
  }, ITERS);
  const bytes = B * ctx * HK * D * ESZ * 2 + qBytes;
  // baseline: the fixed-partition path (what the engine did before the plan) at the same table width
  let fixed: AttnRow["fixed"];
  const fixedWs = ops.decodeWorkspaceBytes(B, HQ, D, maxb, BS, PART);
  if (fixedWs > 0.5 * dev.memInfo().free) fixed = { skipped: `workspace ${(fixedWs / GiB).toFixed(1)} GiB` };
  else {
    const fws = fixedWs ? dev.alloc(fixedWs) : 0n;
    const fms = median(
      timeMs((i) => {
        const m = made[i % sets]!;
        ops.attentionDecode(out, m.q, m.cache, m.bt, seqLens, fws, fixedWs, B, HQ, maxb, PART, scale);
      }, ITERS),
    );
    if (fws) dev.free(fws);
    fixed = { partition: PART, workspace_bytes: fixedWs, median_us: fms * 1e3, of_copy: bytes / (fms / 1e3) / 1e9 / copyGbs };
  }
  for (const m of made) {
    dev.free(m.cache.kCache);
    dev.free(m.cache.vCache);
    dev.free(m.q);
    dev.free(m.bt);
  }
  dev.free(out);
  dev.free(seqLens);
  dev.free(ws);
  const med = median(ms);
  const gbs = bytes / (med / 1e3) / 1e9;
  return {
    batch: B,
    context: ctx,
    max_blocks_per_seq: maxb,
    plan,
    workspace_bytes: wsBytes,
    sets,
    bytes,
    median_us: med * 1e3,
    gb_per_s: gbs,
    of_copy: gbs / copyGbs,
    fixed,
  };
}

// ---- prefill attention ----
// The engine's path (the tensor-core kernel for bf16) next to the CUDA-core kernel
// (HEADROOM_CUDA_PREFILL=simt) in the same run, block table as wide as the engine's.
interface PrefillTiming {
  min_ms: number;
  median_ms: number;
  max_ms: number;
  tflops: number; // at the median
  of_peak: number;
}
interface PrefillRow {
  cached: number;
  tokens: number;
  max_blocks_per_seq: number;
  tensor_core: PrefillTiming;
  cuda_core: PrefillTiming;
  speedup: number;
}

function prefill(cached: number, T: number): PrefillRow {
  const L = cached + T,
    nbSeq = Math.ceil(L / BS),
    maxb = Math.max(nbSeq, Math.ceil(MAX_MODEL_LEN / BS));
  const cacheBytes = nbSeq * BS * HK * D * ESZ;
  const k = dev.alloc(cacheBytes),
    v = dev.alloc(cacheBytes),
    q = dev.alloc(T * HQ * D * ESZ),
    out = dev.alloc(T * HQ * D * ESZ);
  dev.memset(k, 0x3c, cacheBytes);
  dev.memset(v, 0x3c, cacheBytes);
  dev.memset(q, 0x3c, T * HQ * D * ESZ);
  const table = new Int32Array(maxb);
  table.set(shuffled(nbSeq));
  const bt = uploadInts(table);
  const lens = uploadInts(Int32Array.of(L));
  const qsl = uploadInts(Int32Array.of(0, T));
  const cache: PagedCache = { kCache: k, vCache: v, numBlocks: nbSeq, blockSize: BS, numKvHeads: HK, headDim: D };
  const flops = 4 * HQ * D * (T * cached + (T * (T + 1)) / 2);
  const timing = (): PrefillTiming => {
    const ms = timeMs(() => ops.attentionPrefill(out, q, cache, bt, lens, qsl, 1, T, HQ, maxb, 1 / Math.sqrt(D)), small ? 2 : 7, 1);
    const med = median(ms),
      tflops = flops / (med / 1e3) / 1e12;
    return { min_ms: Math.min(...ms), median_ms: med, max_ms: Math.max(...ms), tflops, of_peak: tflops / PEAK_TFLOPS };
  };
  const tc = timing();
  const simt = withCEnv("HEADROOM_CUDA_PREFILL", "simt", timing);
  for (const p of [k, v, q, out, bt, lens, qsl]) dev.free(p);
  return { cached, tokens: T, max_blocks_per_seq: maxb, tensor_core: tc, cuda_core: simt, speedup: simt.median_ms / tc.median_ms };
}

// ---- e2e: synthetic Llama-8B-shaped decode step ----
interface E2eRow {
  batch: number;
  context: number;
  step_ms: number;
  tokens_per_s: number;
  weight_bytes: number;
  bound_ms: number;
  step_over_bound: number;
}

function e2e(B: number, ctx: number, copyGbs: number): E2eRow {
  const dim = small ? 64 : 4096,
    inter = small ? 160 : 14336,
    layers = small ? 2 : 32,
    vocab = small ? 300 : 128256;
  const hq = HQ,
    hk = HK,
    d = dim / hq;
  const qkvN = (hq + 2 * hk) * d;
  const allocs: bigint[] = [];
  const alloc = (elems: number, fill = 0x3c) => {
    const p = dev.alloc(elems * ESZ);
    dev.memset(p, DT === DType.F32 ? 0 : fill, elems * ESZ);
    allocs.push(p);
    return p;
  };
  const layer = () => ({
    n1: alloc(dim),
    n2: alloc(dim),
    wqkv: alloc(qkvN * dim),
    wo: alloc(dim * hq * d),
    wgu: alloc(2 * inter * dim),
    wd: alloc(dim * inter),
  });
  const L = Array.from({ length: layers }, layer);
  const emb = alloc(vocab * dim),
    head = alloc(vocab * dim),
    nf = alloc(dim);
  const weightBytes = (layers * (2 * dim + qkvN * dim + dim * dim + 3 * inter * dim) + 2 * vocab * dim + dim) * ESZ;
  const blocksPerSeq = Math.ceil((ctx + 1) / BS);
  const nb = B * blocksPerSeq;
  const kv = L.map(() => ({ k: alloc(nb * BS * hk * d), v: alloc(nb * BS * hk * d) }));
  const h = alloc(B * dim),
    res = alloc(B * dim),
    xn = alloc(B * dim),
    qkv = alloc(B * qkvN),
    att = alloc(B * hq * d);
  const gu = alloc(B * 2 * inter),
    act = alloc(B * inter);
  const logits = dev.alloc(B * vocab * 4);
  allocs.push(logits);
  const ids = uploadInts(new Int32Array(B).map((_, i) => (i * 7919) % vocab));
  const pos = uploadInts(new Int32Array(B).fill(ctx));
  const seqLens = uploadInts(new Int32Array(B).fill(ctx + 1));
  const btHost = shuffled(nb); // [B, blocksPerSeq]
  const bt = uploadInts(btHost);
  const slotsHost = new Int32Array(B); // the new token of each sequence goes to position ctx
  for (let s = 0; s < B; s++) slotsHost[s] = btHost[s * blocksPerSeq + Math.floor(ctx / BS)]! * BS + (ctx % BS);
  const slots = uploadInts(slotsHost);
  const rows = uploadInts(new Int32Array(B).map((_, i) => i));
  const invf = dev.alloc((d / 2) * 4);
  dev.copyToDevice(
    invf,
    new Float32Array(d / 2).map((_, i) => 1 / 500000 ** ((2 * i) / d)),
  );
  allocs.push(ids, pos, seqLens, bt, slots, rows, invf);
  const e2eShape = { numKvHeads: hk, headDim: d, blockSize: BS };
  const wsBytes = ops.decodePlanWorkspaceBytes(B, hq, e2eShape, blocksPerSeq);
  const ws = dev.alloc(wsBytes);
  allocs.push(ws);
  ops.decodePlan(new Int32Array(B).fill(ctx + 1), B, hq, { ...e2eShape, kCache: 0n, vCache: 0n, numBlocks: nb }, blocksPerSeq, ws, wsBytes);
  const off = (p: bigint, elems: number) => p + BigInt(elems * ESZ);
  const scale = 1 / Math.sqrt(d);
  const step = () => {
    ops.embedding(h, emb, ids, B, vocab, dim);
    for (let l = 0; l < layers; l++) {
      const w = L[l]!;
      const cache: PagedCache = { kCache: kv[l]!.k, vCache: kv[l]!.v, numBlocks: nb, blockSize: BS, numKvHeads: hk, headDim: d };
      // x = h (+ res from the previous layer's MLP); res keeps the running residual
      ops.rmsNorm(xn, h, l === 0 ? 0n : res, w.n1, B, dim, 1e-5);
      ops.matmul(qkv, xn, w.wqkv, 0n, B, qkvN, dim);
      ops.rope(qkv, off(qkv, hq * d), pos, invf, B, hq, hk, d, d, RopeLayout.NEOX, qkvN, qkvN);
      ops.kvWrite(cache, off(qkv, hq * d), off(qkv, (hq + hk) * d), slots, B, qkvN);
      ops.attentionDecode(att, qkv, cache, bt, seqLens, ws, wsBytes, B, hq, blocksPerSeq, DECODE_PLANNED, scale, qkvN);
      ops.matmul(res, att, w.wo, 0n, B, dim, hq * d);
      ops.rmsNorm(xn, h, res, w.n2, B, dim, 1e-5); // h += attn out; xn = norm(h)
      ops.matmul(gu, xn, w.wgu, 0n, B, 2 * inter, dim);
      ops.siluMul(act, gu, off(gu, inter), B, inter, 2 * inter);
      ops.matmul(res, act, w.wd, 0n, B, dim, inter);
    }
    ops.rmsNorm(xn, h, res, nf, B, dim, 1e-5);
    ops.logits(logits, xn, rows, B, B, head, vocab, dim);
  };
  const ms = median(timeMs(step, small ? 2 : 10, 2));
  for (const p of allocs) dev.free(p);
  const bound = (weightBytes / ((copyGbs / 2) * 1e9)) * 1e3; // reads at the copy's per-direction rate
  return {
    batch: B,
    context: ctx,
    step_ms: ms,
    tokens_per_s: B / (ms / 1e3),
    weight_bytes: weightBytes,
    bound_ms: bound,
    step_over_bound: ms / bound,
  };
}

// ---- run ----
const info = dev.info();
console.log(`device: ${info.name} (${device}), ${(info.totalBytes / GiB).toFixed(1)} GiB, cc ${info.computeCapability.join(".")}`);
const copy = copyBandwidth();
console.log(`device-to-device copy: ${copy.gbPerS.toFixed(0)} GB/s (read + write of ${copy.bytes / MiB} MiB)`);
const rows: (AttnRow | { batch: number; context: number; skipped: string })[] = [];
console.log(
  `\npaged decode attention (${DT === DType.BF16 ? "bf16" : "f32"}, ${HQ}/${HK} heads, d ${D}, block ${BS}, ` +
    `max_model_len ${MAX_MODEL_LEN}: planned; baseline fixed partition ${PART})`,
);
console.log("batch  context  median µs    GB/s  of copy  partition pairs  workspace   | fixed: µs  of copy  workspace");
for (const B of BATCHES)
  for (const ctx of CONTEXTS) {
    const r = attention(B, ctx, copy.gbPerS);
    rows.push(r);
    if ("skipped" in r) console.log(`${String(B).padStart(5)}  ${String(ctx).padStart(7)}  skipped: ${r.skipped}`);
    else {
      const f = r.fixed;
      const fixedCol =
        "skipped" in f
          ? `skipped: ${f.skipped}`
          : `${f.median_us.toFixed(1).padStart(9)}  ${(f.of_copy * 100).toFixed(1).padStart(6)} %  ${(f.workspace_bytes / MiB).toFixed(1)} MiB`;
      console.log(
        `${String(B).padStart(5)}  ${String(ctx).padStart(7)}  ${r.median_us.toFixed(1).padStart(9)}  ${r.gb_per_s.toFixed(0).padStart(6)}  ` +
          `${(r.of_copy * 100).toFixed(1).padStart(6)} %  ${String(r.plan.partition).padStart(9)} ${String(r.plan.pairs).padStart(5)}  ` +
          `${(r.workspace_bytes / MiB).toFixed(1).padStart(6)} MiB  | ${fixedCol}`,
      );
    }
  }
const target = rows.filter((r): r is AttnRow => !("skipped" in r) && r.batch >= 16 && r.context >= 2048);
const worst = target.length ? Math.min(...target.map((r) => r.of_copy)) : null;
if (worst !== null)
  console.log(
    `target (>= 80 % of copy at batch >= 16, context >= 2k): worst ${(worst * 100).toFixed(1)} % -> ${worst >= 0.8 ? "met" : "NOT met"}`,
  );

console.log(`\nprefill attention (one sequence, causal, ${HQ}/${HK} heads, d ${D}; peak ${PEAK_TFLOPS} TFLOP/s)`);
const prefillRows: (PrefillRow | { cached: number; tokens: number; error: string })[] = [];
const fmtT = (t: PrefillTiming) =>
  `${t.median_ms.toFixed(2)} ms [${t.min_ms.toFixed(2)}..${t.max_ms.toFixed(2)}] ${t.tflops.toFixed(1)} TFLOP/s (${(t.of_peak * 100).toFixed(1)} %)`;
for (const [cached, T] of [...PREFILL_TOKENS.map((t) => [0, t] as const), ...PREFILL_CHUNKED]) {
  try {
    const r = prefill(cached, T);
    prefillRows.push(r);
    console.log(
      `${String(cached).padStart(6)} cached + ${String(T).padStart(5)} new: tensor-core ${fmtT(r.tensor_core)} | CUDA-core ${fmtT(r.cuda_core)} | x${r.speedup.toFixed(1)}`,
    );
  } catch (e) {
    prefillRows.push({ cached, tokens: T, error: (e as Error).message });
    console.log(`${cached} cached + ${T} new: failed: ${(e as Error).message}`);
  }
}

const e2eRows: (E2eRow | { batch: number; error: string })[] = [];
if (E2E) {
  console.log("\nsynthetic Llama-8B-shaped decode step (context 1024)");
  for (const B of small ? [1, 2] : [1, 16, 64]) {
    try {
      const r = e2e(B, small ? 40 : 1024, copy.gbPerS);
      e2eRows.push(r);
      console.log(
        `batch ${String(B).padStart(3)}: ${r.step_ms.toFixed(2)} ms/step, ${r.tokens_per_s.toFixed(0)} tokens/s, weight-read bound ${r.bound_ms.toFixed(2)} ms (x${r.step_over_bound.toFixed(2)})`,
      );
    } catch (e) {
      e2eRows.push({ batch: B, error: (e as Error).message });
      console.log(`batch ${B}: failed: ${(e as Error).message}`);
    }
  }
}

mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(
  OUT,
  JSON.stringify(
    {
      benchmark: "attention",
      device: info.name,
      backend: device,
      dtype: DT === DType.BF16 ? "bf16" : "f32",
      shape: { num_q_heads: HQ, num_kv_heads: HK, head_dim: D, block_size: BS, max_model_len: MAX_MODEL_LEN, fixed_partition: PART },
      load_average: loadavg(),
      copy_gb_per_s: copy.gbPerS,
      attention: rows,
      target: {
        rule: ">= 0.8 of copy bandwidth at batch >= 16 and context >= 2048",
        worst_ratio: worst,
        met: worst !== null && worst >= 0.8,
      },
      prefill: { peak_tflops: PEAK_TFLOPS, rows: prefillRows },
      e2e: e2eRows,
    },
    null,
    2,
  ) + "\n",
);
console.log(`\nwrote ${OUT}`);
dev.close();
