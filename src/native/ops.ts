// Typed wrappers of the compute ops (the "ops" section of headroom.h). Device pointers are
// bigint addresses; every call checks its status and throws a HeadroomError.
import type { Device } from "./device.ts";

export const DType = { F32: 0, F16: 1, BF16: 2 } as const;
export type DTypeCode = (typeof DType)[keyof typeof DType];

/** KV cache element types (headroom.h "KV cache dtype"): the activation dtypes plus fp8. */
export const KvDType = { ...DType, FP8_E4M3: 3, FP8_E5M2: 4 } as const;
export type KvDTypeCode = (typeof KvDType)[keyof typeof KvDType];

export const RopeLayout = { NEOX: 0, GPTJ: 1 } as const;

/** Device scratch an op may use (its contents are not kept). */
export interface Workspace {
  ptr: bigint;
  bytes: number;
}

/** hr_op_matmul_q_ws: quantized matmuls with more rows than this use the workspace (headroom.h HR_MATMUL_Q_GEMM_MIN_M). */
export const MATMUL_Q_GEMM_MIN_M = 32;

export interface PagedCache {
  kCache: bigint;
  vCache: bigint;
  numBlocks: number;
  blockSize: number;
  numKvHeads: number;
  headDim: number;
  /** Cache element type (default: the ops' dtype) and per-layer dequantization scales (default 1). */
  kvDtype?: KvDTypeCode;
  kScale?: number;
  vScale?: number;
}

/** partition_size of a planned decode (headroom.h HR_DECODE_PLANNED): partitions come from the plan. */
export const DECODE_PLANNED = -1;

/** What hr_attention_decode_plan chose (HR_DPLAN_INFO_*). */
export interface DecodePlanInfo {
  /** Partition length in tokens. */
  partition: number;
  /** (sequence, partition) pairs. */
  pairs: number;
  /** Pairs of split sequences (they go through the workspace and the reduction). */
  workspacePairs: number;
  /** CTAs per wave of the device the plan aimed at. */
  ctas: number;
}

export class Ops {
  private readonly h: bigint;
  private readonly s;
  private readonly out64 = new BigUint64Array(1);

  constructor(
    readonly dev: Device,
    readonly dtype: DTypeCode = DType.F32,
  ) {
    this.h = dev.handle;
    this.s = dev.lib.sym;
  }

  private check(status: number, call: string): void {
    if (status !== 0) this.dev.lib.check(status, call);
  }

  setNumThreads(n: number): void {
    this.check(this.s.hr_set_num_threads(this.h, n), "hr_set_num_threads");
  }

  numThreads(): number {
    const out = new BigInt64Array(1);
    this.check(this.s.hr_get_num_threads(this.h, out), "hr_get_num_threads");
    return Number(out[0]);
  }

  /** wtype: the table's type — `dtype` (plain) or a quantized HR_QTYPE_* code (src/model/quant.ts). */
  embedding(out: bigint, table: bigint, ids: bigint, numTokens: number, numRows: number, dim: number, wtype: number = this.dtype): void {
    if (wtype === this.dtype)
      this.check(this.s.hr_op_embedding(this.h, this.dtype, out, table, ids, numTokens, numRows, dim), "hr_op_embedding");
    else this.check(this.s.hr_op_embedding_q(this.h, this.dtype, wtype, out, table, ids, numTokens, numRows, dim), "hr_op_embedding_q");
  }

  /** out = rmsnorm(x [+= residual]) * weight; residual 0n = no fused add. */
  rmsNorm(out: bigint, x: bigint, residual: bigint, weight: bigint, rows: number, dim: number, eps: number): void {
    this.check(this.s.hr_op_rms_norm(this.h, this.dtype, out, x, residual, weight, rows, dim, eps), "hr_op_rms_norm");
  }

  /**
   * RMSNorm of `groups` × `rowsPerGroup` rows of `dim`, row j of group g at g·groupStride + j·dim
   * elements (in place when out == x): the per-head q/k norms inside a fused QKV output.
   */
  rmsNormStrided(
    out: bigint,
    x: bigint,
    weight: bigint,
    groups: number,
    rowsPerGroup: number,
    dim: number,
    groupStride: number,
    eps: number,
  ): void {
    this.check(
      this.s.hr_op_rms_norm_strided(this.h, this.dtype, out, x, weight, groups, rowsPerGroup, dim, groupStride, eps),
      "hr_op_rms_norm_strided",
    );
  }

  rope(
    q: bigint,
    k: bigint,
    positions: bigint,
    invFreq: bigint,
    numTokens: number,
    numQHeads: number,
    numKvHeads: number,
    headDim: number,
    rotaryDim: number,
    layout: number,
    qStride = 0,
    kStride = 0,
  ): void {
    this.check(
      this.s.hr_op_rope(
        this.h,
        this.dtype,
        q,
        k,
        positions,
        invFreq,
        numTokens,
        numQHeads,
        numKvHeads,
        headDim,
        rotaryDim,
        layout,
        qStride,
        kStride,
      ),
      "hr_op_rope",
    );
  }

  /**
   * y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias); wtype as in embedding(). `ws`: the dequantization
   * workspace quantized weights may use for large m (hr_op_matmul_q_ws; CUDA prefill).
   */
  matmul(y: bigint, x: bigint, w: bigint, bias: bigint, m: number, n: number, k: number, wtype: number = this.dtype, ws?: Workspace): void {
    if (wtype === this.dtype) this.check(this.s.hr_op_matmul(this.h, this.dtype, y, x, w, bias, m, n, k), "hr_op_matmul");
    else if (ws && ws.bytes > 0)
      this.check(this.s.hr_op_matmul_q_ws(this.h, this.dtype, wtype, y, x, w, bias, m, n, k, ws.ptr, ws.bytes), "hr_op_matmul_q_ws");
    else this.check(this.s.hr_op_matmul_q(this.h, this.dtype, wtype, y, x, w, bias, m, n, k), "hr_op_matmul_q");
  }

  logits(
    logits: bigint,
    hidden: bigint,
    rowIds: bigint,
    numRows: number,
    numHiddenRows: number,
    w: bigint,
    vocab: number,
    dim: number,
    wtype: number = this.dtype,
    ws?: Workspace,
  ): void {
    if (wtype === this.dtype) {
      this.check(this.s.hr_op_logits(this.h, this.dtype, logits, hidden, rowIds, numRows, numHiddenRows, w, vocab, dim), "hr_op_logits");
    } else if (ws && ws.bytes > 0) {
      this.check(
        this.s.hr_op_logits_q_ws(
          this.h,
          this.dtype,
          wtype,
          logits,
          hidden,
          rowIds,
          numRows,
          numHiddenRows,
          w,
          vocab,
          dim,
          ws.ptr,
          ws.bytes,
        ),
        "hr_op_logits_q_ws",
      );
    } else {
      this.check(
        this.s.hr_op_logits_q(this.h, this.dtype, wtype, logits, hidden, rowIds, numRows, numHiddenRows, w, vocab, dim),
        "hr_op_logits_q",
      );
    }
  }

  siluMul(out: bigint, gate: bigint, up: bigint, rows: number, inter: number, inStride = 0): void {
    this.check(this.s.hr_op_silu_mul(this.h, this.dtype, out, gate, up, rows, inter, inStride), "hr_op_silu_mul");
  }

  /** out = gelu_tanh(gate) * up (Gemma's GeGLU); arguments as siluMul. */
  geluTanhMul(out: bigint, gate: bigint, up: bigint, rows: number, inter: number, inStride = 0): void {
    this.check(this.s.hr_op_gelu_tanh_mul(this.h, this.dtype, out, gate, up, rows, inter, inStride), "hr_op_gelu_tanh_mul");
  }

  /** x *= scale in place (n elements of `dtype`, default the ops' dtype). */
  scale(x: bigint, n: number, scale: number, dtype: DTypeCode = this.dtype): void {
    this.check(this.s.hr_op_scale(this.h, dtype, x, n, scale), "hr_op_scale");
  }

  /** x = cap * tanh(x / cap) in place; logits are float32, so pass DType.F32 for them. */
  softcap(x: bigint, n: number, cap: number, dtype: DTypeCode = this.dtype): void {
    this.check(this.s.hr_op_softcap(this.h, dtype, x, n, cap), "hr_op_softcap");
  }

  kvWrite(c: PagedCache, key: bigint, value: bigint, slotMapping: bigint, numTokens: number, kvStride = 0): void {
    this.check(
      this.s.hr_op_kv_write(
        this.h,
        this.dtype,
        c.kCache,
        c.vCache,
        key,
        value,
        slotMapping,
        numTokens,
        c.numKvHeads,
        c.headDim,
        c.numBlocks,
        c.blockSize,
        kvStride,
        c.kvDtype ?? this.dtype,
        c.kScale ?? 1,
        c.vScale ?? 1,
      ),
      "hr_op_kv_write",
    );
  }

  decodeWorkspaceBytes(
    numSeqs: number,
    numQHeads: number,
    headDim: number,
    maxBlocksPerSeq: number,
    blockSize: number,
    partitionSize: number,
  ): number {
    this.check(
      this.s.hr_paged_attention_workspace_bytes(
        this.dtype,
        numSeqs,
        numQHeads,
        headDim,
        maxBlocksPerSeq,
        blockSize,
        partitionSize,
        this.out64,
      ),
      "hr_paged_attention_workspace_bytes",
    );
    return Number(this.out64[0]);
  }

  /**
   * Workspace of planned decode attention (plan + split-K partials): depends on the batch size
   * and head shape only, never on max_model_len.
   */
  decodePlanWorkspaceBytes(
    numSeqs: number,
    numQHeads: number,
    c: Pick<PagedCache, "numKvHeads" | "headDim" | "blockSize">,
    maxBlocksPerSeq: number,
  ): number {
    this.check(
      this.s.hr_attention_decode_workspace_bytes(numSeqs, numQHeads, c.numKvHeads, c.headDim, c.blockSize, maxBlocksPerSeq, this.out64),
      "hr_attention_decode_workspace_bytes",
    );
    return Number(this.out64[0]);
  }

  /**
   * Plans the step's decode attention from the host copy of seq_lens (the values staged into the
   * device seq_lens) and writes the plan into the head of `workspace` (a synchronous copy; not
   * during graph capture). partitionSize 0 = choose; > 0 forces it (tests).
   */
  decodePlan(
    seqLens: Int32Array,
    numSeqs: number,
    numQHeads: number,
    c: PagedCache,
    maxBlocksPerSeq: number,
    workspace: bigint,
    workspaceBytes: number,
    partitionSize = 0,
  ): DecodePlanInfo {
    if (seqLens.length < numSeqs) throw new RangeError(`decodePlan: ${seqLens.length} seq_lens for ${numSeqs} sequences`);
    const info = this.planInfo;
    this.check(
      this.s.hr_attention_decode_plan(
        this.h,
        seqLens,
        numSeqs,
        numQHeads,
        c.numKvHeads,
        c.headDim,
        c.blockSize,
        maxBlocksPerSeq,
        this.dtype,
        c.kvDtype ?? this.dtype,
        partitionSize,
        workspace,
        workspaceBytes,
        info,
      ),
      "hr_attention_decode_plan",
    );
    return { partition: Number(info[0]), pairs: Number(info[1]), workspacePairs: Number(info[2]), ctas: Number(info[3]) };
  }
  private readonly planInfo = new BigInt64Array(4);

  attentionDecode(
    out: bigint,
    q: bigint,
    c: PagedCache,
    blockTables: bigint,
    seqLens: bigint,
    workspace: bigint,
    workspaceBytes: number,
    numSeqs: number,
    numQHeads: number,
    maxBlocksPerSeq: number,
    partitionSize: number,
    scale: number,
    qStride = 0,
    window = 0,
    softcap = 0,
  ): void {
    this.check(
      this.s.hr_op_attention_decode(
        this.h,
        this.dtype,
        out,
        q,
        c.kCache,
        c.vCache,
        blockTables,
        seqLens,
        workspace,
        workspaceBytes,
        numSeqs,
        numQHeads,
        c.numKvHeads,
        c.headDim,
        c.numBlocks,
        c.blockSize,
        maxBlocksPerSeq,
        partitionSize,
        scale,
        qStride,
        window,
        softcap,
        c.kvDtype ?? this.dtype,
        c.kScale ?? 1,
        c.vScale ?? 1,
      ),
      "hr_op_attention_decode",
    );
  }

  attentionPrefill(
    out: bigint,
    q: bigint,
    c: PagedCache,
    blockTables: bigint,
    seqLens: bigint,
    queryStartLoc: bigint,
    numSeqs: number,
    numTokens: number,
    numQHeads: number,
    maxBlocksPerSeq: number,
    scale: number,
    qStride = 0,
    window = 0,
    softcap = 0,
  ): void {
    this.check(
      this.s.hr_op_attention_prefill(
        this.h,
        this.dtype,
        out,
        q,
        c.kCache,
        c.vCache,
        blockTables,
        seqLens,
        queryStartLoc,
        numSeqs,
        numTokens,
        numQHeads,
        c.numKvHeads,
        c.headDim,
        c.numBlocks,
        c.blockSize,
        maxBlocksPerSeq,
        scale,
        qStride,
        window,
        softcap,
        c.kvDtype ?? this.dtype,
        c.kScale ?? 1,
        c.vScale ?? 1,
      ),
      "hr_op_attention_prefill",
    );
  }

  /** outIds[r] (int32) = argmax of float32 logits row r (lowest id on ties). Ignores `dtype`. */
  argmax(outIds: bigint, logits: bigint, rows: number, vocab: number): void {
    this.check(this.s.hr_op_argmax(this.h, outIds, logits, rows, vocab), "hr_op_argmax");
  }

  /**
   * One token per float32 logits row (headroom.h "sampling"): per-row device arrays temperature
   * (f32; < 1e-5 = greedy), topK (i32; 0 = off), topP (f32; 1 = off) and uniform (f32 in [0, 1)).
   * Ignores `dtype`.
   */
  sample(
    outIds: bigint,
    logits: bigint,
    temperature: bigint,
    topK: bigint,
    topP: bigint,
    uniform: bigint,
    rows: number,
    vocab: number,
  ): void {
    this.check(this.s.hr_op_sample(this.h, outIds, logits, temperature, topK, topP, uniform, rows, vocab), "hr_op_sample");
  }

  /**
   * Structured outputs (headroom.h): float32 logits row rowIndices[r] (or r when rowIndices is
   * 0n) gets -inf at every token whose bit is clear in int32 bitmask row r ([rows, ceil(vocab/32)],
   * xgrammar's layout). Other rows are untouched; indices < 0 or >= logitsRows are skipped.
   */
  applyTokenBitmask(logits: bigint, logitsRows: number, bitmask: bigint, rowIndices: bigint, rows: number, vocab: number): void {
    this.check(this.s.hr_op_apply_token_bitmask(this.h, logits, logitsRows, bitmask, rowIndices, rows, vocab), "hr_op_apply_token_bitmask");
  }

  /**
   * Sparse logit bias (headroom.h "logit bias"): for each of `n` packed 16-byte entries
   * {int32 row, int32 token, float64 bias} at `entries`, float32 logits[row, token] becomes
   * (float)((double)logit + bias). Entries with row/token out of range are skipped (padding:
   * row -1); the others' (row, token) pairs must be distinct. Ignores `dtype`.
   */
  addLogitBias(logits: bigint, logitsRows: number, entries: bigint, n: number, vocab: number): void {
    this.check(this.s.hr_op_add_logit_bias(this.h, logits, logitsRows, entries, n, vocab), "hr_op_add_logit_bias");
  }
}
