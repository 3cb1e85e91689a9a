// Decode graphs (DESIGN.md "Graph capture with shared output buffers"): one captured decode
// step per batch size, largest first, all reading the model's activation arena (the static
// inputs sized for max_num_seqs, one logits buffer) and writing the same logits rows, so the
// set costs MAX, not SUM, of its graphs. A decode-only batch of B sequences is padded to the
// next captured size and replayed; prefill, mixed and larger batches run eagerly.
//
// Capture happens at start-up between the profile run and KV sizing, against the reserved
// (not yet mapped) KV range: on CPU capture only records ops, on CUDA stream capture queues
// nothing, so the KV memory is never touched before it is mapped.
//
// A graph ends with the logits, with device sampling too: the sampling tail (grammar mask,
// logit bias, sampler; device-sampler.ts) is launched after the replay, once the host has
// computed the step's grammar masks while the replay ran.
//
// Eager warm-up (ISSUE 16 item 6): before a size is captured it runs once eagerly, so that
// whatever a backend does on first use (CUDA: lazy module loading, cuBLAS's first-call
// workspace and handle allocations) happens outside the capture. The eager run reads one
// temporarily mapped KV block (every row attends over block 0, slot -1 writes nothing), which
// is unmapped again after the last capture. On by default on CUDA; the CPU backend has no
// first-use work, so it is off there unless asked for (the tests run it).
import type { Device } from "../native/device.ts";
import { GraphSet, type GraphInfo, type GraphSetInfo } from "../native/graphs.ts";
import type { DecodeGraphReplayer, KvCacheLocation, LlamaModel, StepInputs } from "../model/llama.ts";
import { defaultCaptureSizes } from "../memory/planner.ts";
import type { GraphsReportPayload } from "../memory/report-schema.ts";
import type { BatchLimits } from "../model/arena.ts";

/** The eager warm-up's KV: a location with block 0 mapped while map() .. unmap() holds. */
export interface GraphWarmup {
  kv: KvCacheLocation;
  map(): void;
  unmap(): void;
}

export interface CaptureSizeOptions {
  enforceEager: boolean;
  /** Explicit list (--cudagraph-capture-sizes); null/undefined = the default list. */
  cudagraphCaptureSizes?: number[] | null;
  /** Upper bound on captured sizes (--max-cudagraph-capture-size); null/undefined = none. */
  maxCudagraphCaptureSize?: number | null;
  maxNumSeqs: number;
}

/**
 * The sizes to capture, descending, and the requested sizes left out. A decode step never
 * holds more than min(max_num_seqs, max_num_batched_tokens) sequences, and the arena's
 * static buffers are sized for that, so larger sizes (the default list goes to 2 × max_num_seqs,
 * as vLLM's, whose extra room serves speculative decoding) are never captured.
 */
export function resolveCaptureSizes(o: CaptureSizeOptions, limits: BatchLimits): { sizes: number[]; dropped: number[] } {
  if (o.enforceEager) return { sizes: [], dropped: [] };
  let req = o.cudagraphCaptureSizes ?? defaultCaptureSizes(o.maxNumSeqs);
  const cap = Math.min(limits.maxSeqs, limits.maxTokens, o.maxCudagraphCaptureSize ?? Infinity);
  req = [...new Set(req.filter((s) => Number.isInteger(s) && s >= 1))];
  return { sizes: req.filter((s) => s <= cap).sort((a, b) => b - a), dropped: req.filter((s) => s > cap).sort((a, b) => a - b) };
}

/** Graph memory as GET /v1/memory reports it (bytes, ms). */
export interface GraphsReport {
  /** Captured sizes, ascending. */
  sizes: number[];
  /** Device bytes per graph (pool growth during its capture + executable), same order. */
  perGraphBytes: number[];
  /** The whole set: pool reserved + executables. */
  totalBytes: number;
  poolReserved: number;
  poolAllocated: number;
  execBytes: number;
  /** Host bytes of the op lists (CPU). */
  hostBytes: number;
  /** Wall time of the whole capture (all sizes, without the eager warm-up). */
  captureMs: number;
  /** Wall time of the eager warm-up runs before the captures (0 = none). */
  warmupMs: number;
  /** "op-list" (CPU) or "cuda-graph". */
  kind: "op-list" | "cuda-graph";
  /** Requested sizes above the largest possible decode batch (not captured). */
  droppedSizes: number[];
  /** Ops (CPU) or nodes (CUDA) of the largest graph. */
  largestOps: number;
}

export class DecodeGraphs implements DecodeGraphReplayer {
  readonly set: GraphSet;
  private readonly largest: number;
  private captureMs = 0;
  private warmupMs = 0;
  private dropped: number[] = [];
  // Padded host copies of a step's inputs (sized for the largest graph).
  private readonly ids: Int32Array;
  private readonly pos: Int32Array;
  private readonly slots: Int32Array;
  private readonly qsl: Int32Array;
  private readonly lens: Int32Array;
  private readonly tables: Int32Array;
  private readonly logitsIdx: Int32Array;
  /** Steps replayed / run eagerly by tryReplay's caller (decode only). */
  replays = 0;

  constructor(
    private readonly dev: Device,
    private readonly model: LlamaModel,
    sizes: readonly number[],
  ) {
    if (sizes.length === 0) throw new RangeError("DecodeGraphs: no capture sizes");
    this.largest = Math.max(...sizes);
    const { maxSeqs, maxTokens, maxBlocksPerSeq } = model.limits;
    if (this.largest > Math.min(maxSeqs, maxTokens)) {
      throw new RangeError(`DecodeGraphs: size ${this.largest} exceeds the arena (${maxSeqs} sequences, ${maxTokens} tokens)`);
    }
    this.set = GraphSet.create(dev, sizes);
    const L = this.largest;
    this.ids = new Int32Array(L);
    this.pos = new Int32Array(L);
    this.slots = new Int32Array(L);
    this.qsl = new Int32Array(L + 1);
    this.lens = new Int32Array(L);
    this.tables = new Int32Array(L * maxBlocksPerSeq);
    this.logitsIdx = new Int32Array(L);
  }

  /**
   * Captures every size, largest first, against `kv` (the reserved range, with as many blocks
   * as it can address: the block ids a step uses are bounded by the mapped size later, and
   * captured ops only need stable addresses). Restores no KV location: the caller sets the
   * final one after sizing.
   */
  capture(kv: KvCacheLocation, dropped: number[] = [], warmup: GraphWarmup | null = null): void {
    this.dropped = dropped;
    let captureMs = 0;
    let warmupMs = 0;
    warmup?.map();
    try {
      for (const B of [...this.set.sizes].sort((a, b) => b - a)) {
        if (warmup) {
          const t = performance.now();
          this.model.setKvCache(warmup.kv);
          this.runEagerly(B);
          this.dev.synchronize();
          warmupMs += performance.now() - t;
        }
        const t = performance.now();
        this.model.setKvCache(kv);
        this.set.capture(B, () => this.step(B));
        captureMs += performance.now() - t;
      }
      this.dev.synchronize();
    } finally {
      warmup?.unmap();
    }
    this.captureMs = captureMs;
    this.warmupMs = warmupMs;
  }

  /** What a graph of size B holds: the decode forward pass, up to the logits. */
  private step(B: number): void {
    this.model.forward(B, B, B, true);
  }

  /** The eager warm-up of size B: B one-token rows at position 0 over block 0, writing no K/V. */
  private runEagerly(B: number): void {
    const mb = this.model.limits.maxBlocksPerSeq;
    const rows = Int32Array.from({ length: B }, (_, i) => i);
    this.model.stage({
      inputIds: new Int32Array(B),
      positions: new Int32Array(B),
      slotMapping: new Int32Array(B).fill(-1),
      queryStartLoc: Int32Array.from({ length: B + 1 }, (_, i) => i),
      seqLens: new Int32Array(B).fill(1),
      blockTables: new Int32Array(B * mb),
      logitsIndices: rows,
      decodeOnly: true,
    });
    this.step(B);
  }

  /** The captured size a batch of B runs as, or 0 (eager). */
  sizeFor(batch: number): number {
    if (batch > this.largest) return 0;
    for (const s of this.set.sizes) if (s >= batch) return s;
    return 0;
  }

  /**
   * Pads a decode-only step to the next captured size, stages it and replays that graph.
   * Padding rows: token 0 at position 0, slot −1 (K/V not written), seq_len 1 over block 0,
   * logits row = its own index; their outputs are ignored. false = no graph (run eagerly).
   */
  replay(inp: StepInputs): boolean {
    if (!inp.decodeOnly) return false;
    const B = inp.seqLens.length;
    if (B === 0 || inp.inputIds.length !== B || inp.logitsIndices.length !== B) return false;
    const P = this.sizeFor(B);
    if (P === 0) return false;
    for (let i = 0; i < B; i++) if (inp.logitsIndices[i] !== i || inp.queryStartLoc[i] !== i) return false;
    const mb = this.model.limits.maxBlocksPerSeq;
    this.ids.set(inp.inputIds);
    this.ids.fill(0, B, P);
    this.pos.set(inp.positions);
    this.pos.fill(0, B, P);
    this.slots.set(inp.slotMapping);
    this.slots.fill(-1, B, P);
    for (let i = 0; i <= P; i++) this.qsl[i] = i;
    this.lens.set(inp.seqLens);
    this.lens.fill(1, B, P);
    this.tables.set(inp.blockTables.subarray(0, B * mb));
    this.tables.fill(0, B * mb, P * mb);
    for (let i = 0; i < P; i++) this.logitsIdx[i] = i;
    this.model.stage({
      inputIds: this.ids.subarray(0, P),
      positions: this.pos.subarray(0, P),
      slotMapping: this.slots.subarray(0, P),
      queryStartLoc: this.qsl.subarray(0, P + 1),
      seqLens: this.lens.subarray(0, P),
      blockTables: this.tables.subarray(0, P * mb),
      logitsIndices: this.logitsIdx.subarray(0, P),
      decodeOnly: true,
    });
    this.set.replay(P);
    this.replays++;
    return true;
  }

  graphInfo(size: number): GraphInfo {
    return this.set.info(size);
  }

  setInfo(): GraphSetInfo {
    return this.set.setInfo();
  }

  report(): GraphsReport {
    const s = this.set.setInfo();
    const infos = this.set.sizes.map((b) => this.set.info(b));
    return {
      sizes: [...this.set.sizes],
      perGraphBytes: infos.map((g) => g.bytes),
      totalBytes: s.totalBytes,
      poolReserved: s.poolReserved,
      poolAllocated: s.poolAllocated,
      execBytes: s.execBytes,
      hostBytes: s.hostBytes,
      captureMs: this.captureMs,
      warmupMs: this.warmupMs,
      kind: s.recordsOps ? "op-list" : "cuda-graph",
      droppedSizes: this.dropped,
      largestOps: infos.at(-1)?.numOps ?? 0,
    };
  }

  destroy(): void {
    if (this.model.decodeGraphs === this) this.model.decodeGraphs = null;
    this.set.destroy();
  }
}

/** The `graphs` object of GET /v1/memory. */
export function graphsPayload(r: GraphsReport | null, offReason = ""): GraphsReportPayload {
  if (!r) {
    return { enabled: false, reason: offReason, sizes: [], per_graph_bytes: [], total_bytes: 0, pool_reserved: 0, capture_ms: 0 };
  }
  return {
    enabled: true,
    kind: r.kind,
    sizes: r.sizes,
    per_graph_bytes: r.perGraphBytes,
    total_bytes: r.totalBytes,
    pool_reserved: r.poolReserved,
    pool_allocated: r.poolAllocated,
    exec_bytes: r.execBytes,
    host_bytes: r.hostBytes,
    capture_ms: r.captureMs,
    largest_ops: r.largestOps,
    dropped_sizes: r.droppedSizes,
  };
}
