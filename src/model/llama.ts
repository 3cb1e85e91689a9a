// The Llama-family forward pass (Llama, Mistral, Qwen2/3, Gemma 1/2/3, Phi-3), top to bottom,
// on device buffers. Family differences are config flags (config.ts): q/k norms, Gemma's
// sandwich norms / GeGLU / embedding scale / soft-capping, per-layer sliding windows and RoPE
// tables. q|k|v and gate|up run as one matmul each where the weights were fused at load time
// (weight-layout.ts); RoPE, the q/k norms, the KV write and attention read the fused output
// with strides.
// Every intermediate lives in the activation arena (arena.ts); the KV cache is paged
// ([num_blocks, block_size, num_kv_heads, head_dim] per layer, K and V). One call runs one
// scheduler step: any mix of prefill chunks and decodes, flattened to T tokens.
import type { Device } from "../native/device.ts";
import {
  DECODE_PLANNED,
  DType,
  RopeLayout,
  type DecodePlanInfo,
  type KvDTypeCode,
  type Ops,
  type PagedCache,
  type Workspace,
} from "../native/ops.ts";
import { layerType, layerWindow, type ModelConfig } from "./config.ts";
import { planArena, type ArenaBuffer, type ArenaLayout, type BatchLimits } from "./arena.ts";
import { COMPUTE_DTYPE_BYTES, COMPUTE_DTYPE_CODE, dtypeOfCode, type ComputeDtype } from "./dtype.ts";
import { ropeAttentionFactor, ropeInvFreq } from "./rope.ts";
import { dequantWorkspaceBytes } from "./dequant-workspace.ts";
import { downloadTensor, type LoadedWeights } from "./upload.ts";
import type { QuantizedTensors } from "./weight-layout.ts";

interface LayerWeights {
  inputNorm: bigint;
  /** Fused layers: q is the fused qkv_proj (qBias the fused bias), k and v its row views (unused). */
  q: bigint;
  k: bigint;
  v: bigint;
  qBias: bigint;
  kBias: bigint;
  vBias: bigint;
  o: bigint;
  postNorm: bigint;
  /** Per-head q/k RMSNorm weights (Qwen3, Gemma 3), 0n when absent. */
  qNorm: bigint;
  kNorm: bigint;
  /** Gemma 2/3 sandwich norms, 0n when absent (postNorm is then the post-attention norm). */
  preFfNorm: bigint;
  postFfNorm: bigint;
  /** Fused layers: gate is the fused gate_up_proj, up its row view (unused). */
  gate: bigint;
  up: bigint;
  down: bigint;
}

/** Weight type of each matmul weight: the ops' dtype, or a quantized HR_QTYPE_* code (kept apart
 * from LayerWeights, whose addresses setOffload rebases). */
type LayerWeightTypes = Record<"q" | "k" | "v" | "o" | "gate" | "up" | "down", number> & {
  /** One matmul for q|k|v (and one bias), one for gate|up. */
  fusedQkv: boolean;
  fusedGateUp: boolean;
};

/**
 * Weight offload hooks (src/engine/offload.ts): an offloaded layer's tensors are read from a
 * device staging slot at the same offsets as in its layer buffer; the copy into the slot is
 * issued ahead and waited for before the layer runs, and the slot is released after it.
 */
export interface LayerOffload {
  /** Device address layer l's buffer is read from (its staging slot), or null when it is resident. */
  slotBase(layer: number): bigint | null;
  beginStep(): void;
  beforeLayer(layer: number): void;
  afterLayer(layer: number): void;
}

/** Replays a captured decode step for a decode-only batch; false = no graph fits (run eagerly). */
export interface DecodeGraphReplayer {
  replay(inp: StepInputs): boolean;
}

/** Where the paged KV cache lives: one slice per layer for K and one for V. */
export interface KvCacheLocation {
  base: bigint;
  sliceStride: number;
  numBlocks: number;
  blockSize: number;
}

/** Host-side inputs of one step (the scheduler's flat arrays). */
export interface StepInputs {
  inputIds: Int32Array;
  positions: Int32Array;
  slotMapping: Int32Array;
  /** Prefix sums of tokens per sequence, length numSeqs + 1. */
  queryStartLoc: Int32Array;
  /** Context length per sequence (cached + new). */
  seqLens: Int32Array;
  /** [numSeqs, maxBlocksPerSeq] row-major. */
  blockTables: Int32Array;
  /** Flat token index of each logits row. */
  logitsIndices: Int32Array;
  /** Every sequence computes exactly one new token (decode-only step). */
  decodeOnly: boolean;
}

/**
 * Decode-attention workspace for the largest decode batch: the step's plan and the split-K
 * partials it bounds (hr_attention_decode_workspace_bytes: batch size and head shape only, not
 * max_model_len; fp32 partials whatever the dtypes, so the planner uses the same figure).
 */
export function attentionWorkspaceBytes(ops: Ops, cfg: ModelConfig, limits: BatchLimits, blockSize: number): number {
  return ops.decodePlanWorkspaceBytes(
    limits.maxSeqs,
    cfg.numHeads,
    { numKvHeads: cfg.numKvHeads, headDim: cfg.headDim, blockSize },
    limits.maxBlocksPerSeq,
  );
}

export class LlamaModel {
  readonly layout: ArenaLayout;
  private arenaBase = 0n;
  private readonly layers: LayerWeights[] = [];
  private readonly layerTypes: LayerWeightTypes[] = [];
  private readonly embedType: number;
  private readonly lmHeadType: number;
  private readonly embed: bigint;
  private readonly finalNorm: bigint;
  private readonly lmHead: bigint;
  private kv: KvCacheLocation | null = null;
  /** The KV cache's element type and per-layer scales (default: the compute dtype, scales 1). */
  private kvFormat: { dtype: KvDTypeCode; k: number[]; v: number[] } | null = null;
  private readonly scale: number;
  private readonly ropeScale: number;
  private offload: LayerOffload | null = null;
  /** The compute dtype (weights, activations, KV cache); the ops' dtype. Logits are fp32. */
  readonly dtype: ComputeDtype;

  constructor(
    private readonly dev: Device,
    private readonly ops: Ops,
    readonly cfg: ModelConfig,
    readonly weights: LoadedWeights,
    readonly limits: BatchLimits,
    readonly blockSize: number,
  ) {
    this.dtype = dtypeOfCode(ops.dtype);
    if (weights.dtype !== this.dtype) {
      throw new Error(`LlamaModel: the weights were uploaded as ${weights.dtype} but the ops compute in ${this.dtype}`);
    }
    const eb = COMPUTE_DTYPE_BYTES[this.dtype];
    const dequant = dequantWorkspaceBytes(cfg, eb, loadedQuantized(weights), limits, dev.backend);
    this.layout = planArena(cfg, limits, eb, attentionWorkspaceBytes(ops, cfg, limits, blockSize), dequant);
    const w = (name: string) => weights.get(name).ptr;
    const opt = (name: string) => (weights.tensors.has(name) ? w(name) : 0n);
    // quantized code, or the tensor's own dtype (16-bit matrix weights under fp32 compute on CPU)
    const wt = (name: string) => weights.get(name).quant?.code ?? COMPUTE_DTYPE_CODE[weights.get(name).dtype];
    for (let i = 0; i < cfg.numLayers; i++) {
      const p = `model.layers.${i}.`;
      const qkv = weights.fused.get(`${p}self_attn.qkv_proj.weight`);
      const gateUp = weights.fused.get(`${p}mlp.gate_up_proj.weight`);
      // The fused tensor starts at its first part, so q / gate (and q's bias) address it as a whole.
      if (qkv && qkv.ptr !== w(`${p}self_attn.q_proj.weight`)) throw new Error(`LlamaModel: layer ${i}: qkv_proj does not start at q_proj`);
      if (gateUp && gateUp.ptr !== w(`${p}mlp.gate_proj.weight`))
        throw new Error(`LlamaModel: layer ${i}: gate_up_proj does not start at gate_proj`);
      if (qkv && cfg.qkvBias && !weights.fused.has(`${p}self_attn.qkv_proj.bias`))
        throw new Error(`LlamaModel: layer ${i}: fused qkv_proj without its fused bias`);
      this.layers.push({
        inputNorm: w(`${p}input_layernorm.weight`),
        q: w(`${p}self_attn.q_proj.weight`),
        k: w(`${p}self_attn.k_proj.weight`),
        v: w(`${p}self_attn.v_proj.weight`),
        qBias: opt(`${p}self_attn.q_proj.bias`),
        kBias: opt(`${p}self_attn.k_proj.bias`),
        vBias: opt(`${p}self_attn.v_proj.bias`),
        o: w(`${p}self_attn.o_proj.weight`),
        postNorm: w(`${p}post_attention_layernorm.weight`),
        qNorm: opt(`${p}self_attn.q_norm.weight`),
        kNorm: opt(`${p}self_attn.k_norm.weight`),
        preFfNorm: opt(`${p}pre_feedforward_layernorm.weight`),
        postFfNorm: opt(`${p}post_feedforward_layernorm.weight`),
        gate: w(`${p}mlp.gate_proj.weight`),
        up: w(`${p}mlp.up_proj.weight`),
        down: w(`${p}mlp.down_proj.weight`),
      });
      this.layerTypes.push({
        q: wt(`${p}self_attn.q_proj.weight`),
        k: wt(`${p}self_attn.k_proj.weight`),
        v: wt(`${p}self_attn.v_proj.weight`),
        o: wt(`${p}self_attn.o_proj.weight`),
        gate: wt(`${p}mlp.gate_proj.weight`),
        up: wt(`${p}mlp.up_proj.weight`),
        down: wt(`${p}mlp.down_proj.weight`),
        fusedQkv: qkv !== undefined,
        fusedGateUp: gateUp !== undefined,
      });
    }
    this.embed = w("model.embed_tokens.weight");
    this.finalNorm = w("model.norm.weight");
    this.lmHead = cfg.tieWordEmbeddings ? this.embed : w("lm_head.weight");
    this.embedType = wt("model.embed_tokens.weight");
    this.lmHeadType = cfg.tieWordEmbeddings ? this.embedType : wt("lm_head.weight");
    // Gemma 2/3 scale by query_pre_attn_scalar; yarn/longrope's cos/sin factor scales q.k by its square.
    this.scale = 1 / Math.sqrt(cfg.queryPreAttnScalar ?? cfg.headDim);
    this.ropeScale = ropeAttentionFactor(cfg) ** 2;
  }

  /** Attention scale of layer l (the RoPE attention factor applies to the scaled, global table only). */
  private layerScale(l: number): number {
    return this.localRope(l) ? this.scale : this.scale * this.ropeScale;
  }

  /** Layer l rotates with Gemma 3's local table. */
  private localRope(l: number): boolean {
    return this.cfg.ropeLocalTheta != null && layerType(this.cfg, l) === "sliding";
  }

  /** Longest sequence the engine serves (picks dynamic-NTK / LongRoPE tables, rope.ts). */
  get maxModelLen(): number {
    return this.limits.maxBlocksPerSeq * this.blockSize;
  }

  /** Allocates the arena (once) and writes the constant RoPE table into it. */
  allocateArena(): void {
    if (this.arenaBase !== 0n) return;
    this.arenaBase = this.dev.alloc(this.layout.totalBytes);
    const factors = this.weights.tensors.get("rope_freqs.weight");
    const host = this.weights.hostF32.get("rope_freqs.weight");
    const inv = ropeInvFreq(this.cfg, factors ? (host ?? downloadTensor(this.dev, factors)) : undefined, this.maxModelLen);
    this.dev.copyToDevice(this.buf("invFreq"), inv);
    if (this.cfg.ropeLocalTheta != null)
      this.dev.copyToDevice(this.buf("invFreqLocal"), ropeInvFreq(this.cfg, undefined, this.maxModelLen, true));
  }

  freeArena(): void {
    if (this.arenaBase === 0n) return;
    this.dev.free(this.arenaBase);
    this.arenaBase = 0n;
  }

  get arenaBytes(): number {
    return this.layout.totalBytes;
  }

  /** Reads offloaded layers from their staging slots (set once, before the first forward). */
  setOffload(o: LayerOffload): void {
    this.offload = o;
    for (const b of this.weights.buffers) {
      const slot = b.layer === null ? null : o.slotBase(b.layer);
      if (slot === null || b.layer === null) continue;
      const L = this.layers[b.layer]! as unknown as Record<string, bigint>;
      for (const key of Object.keys(L)) if (L[key] !== 0n) L[key] = L[key]! - b.ptr + slot;
    }
  }

  setKvCache(kv: KvCacheLocation): void {
    this.kv = kv;
  }

  /** Sets the KV cache dtype and per-layer scales (kv-dtype.ts); before the first forward or capture. */
  setKvFormat(dtype: KvDTypeCode, scales: { k: number[]; v: number[] }): void {
    this.kvFormat = { dtype, k: scales.k, v: scales.v };
  }

  buf(name: ArenaBuffer): bigint {
    return this.arenaBase + BigInt(this.layout.offsets[name]);
  }

  private cache(layer: number): PagedCache {
    const kv = this.kv!;
    return {
      kCache: kv.base + BigInt(2 * layer * kv.sliceStride),
      vCache: kv.base + BigInt((2 * layer + 1) * kv.sliceStride),
      numBlocks: kv.numBlocks,
      blockSize: kv.blockSize,
      numKvHeads: this.cfg.numKvHeads,
      headDim: this.cfg.headDim,
      ...(this.kvFormat ? { kvDtype: this.kvFormat.dtype, kScale: this.kvFormat.k[layer] ?? 1, vScale: this.kvFormat.v[layer] ?? 1 } : {}),
    };
  }

  /** Copies a step's inputs into the arena's index buffers (queued: the host does not wait). */
  stage(inp: StepInputs): void {
    const T = inp.inputIds.length;
    const S = inp.seqLens.length;
    if (T > this.limits.maxTokens || S > this.limits.maxSeqs || inp.logitsIndices.length > this.limits.maxSeqs) {
      throw new RangeError(`step of ${T} tokens / ${S} sequences exceeds the arena (${this.limits.maxTokens} / ${this.limits.maxSeqs})`);
    }
    this.dev.copyToDeviceAsync(this.buf("inputIds"), inp.inputIds);
    this.dev.copyToDeviceAsync(this.buf("positions"), inp.positions);
    this.dev.copyToDeviceAsync(this.buf("slotMapping"), inp.slotMapping);
    this.dev.copyToDeviceAsync(this.buf("queryStartLoc"), inp.queryStartLoc);
    this.dev.copyToDeviceAsync(this.buf("seqLens"), inp.seqLens);
    this.dev.copyToDeviceAsync(this.buf("blockTables"), inp.blockTables);
    this.dev.copyToDeviceAsync(this.buf("logitsIndices"), inp.logitsIndices);
    if (inp.decodeOnly) this.planDecode(inp.seqLens);
  }

  /**
   * The step's decode-attention plan (partitions from the real context lengths), written into
   * the head of the workspace; every layer's decode attention, and a replayed graph, reads it.
   */
  private planDecode(seqLens: Int32Array): void {
    const { cfg } = this;
    const c: PagedCache = this.kv
      ? this.cache(0)
      : { kCache: 0n, vCache: 0n, numBlocks: 1, blockSize: this.blockSize, numKvHeads: cfg.numKvHeads, headDim: cfg.headDim };
    this.lastDecodePlan = this.ops.decodePlan(
      seqLens,
      seqLens.length,
      cfg.numHeads,
      c,
      this.limits.maxBlocksPerSeq,
      this.buf("workspace"),
      this.layout.bytes.workspace,
    );
  }

  /** What the last decode plan chose (bench and tests read it). */
  lastDecodePlan: DecodePlanInfo | null = null;

  /**
   * One forward pass over the staged step; logits rows land in the arena's "logits" buffer
   * (read them with readLogits).
   */
  forward(numTokens: number, numSeqs: number, numLogitsRows: number, decodeOnly: boolean, logitsOut: bigint = this.buf("logits")): void {
    const { ops, cfg } = this;
    const T = numTokens;
    const D = cfg.hiddenSize;
    const I = cfg.intermediateSize;
    const qDim = cfg.numHeads * cfg.headDim;
    const kvDim = cfg.numKvHeads * cfg.headDim;
    const qkvDim = qDim + 2 * kvDim;
    const eb = BigInt(COMPUTE_DTYPE_BYTES[this.dtype]);
    const x = this.buf("x"); // residual stream
    const h = this.buf("h"); // normalized input of the current sub-block
    const [qkv, attn, o, gateUp, act] = [this.buf("qkv"), this.buf("attn"), this.buf("o"), this.buf("gateUp"), this.buf("act")];
    const maxBlocks = this.limits.maxBlocksPerSeq;
    // quantized weights dequantize prefill-sized matmuls through this (CUDA; 0 bytes elsewhere)
    const ws: Workspace = { ptr: this.buf("dequant"), bytes: this.layout.bytes.dequant };

    const off = this.offload;
    off?.beginStep();
    const eps = cfg.rmsNormEps;
    const softcap = cfg.attnSoftcap ?? 0;
    ops.embedding(x, this.embed, this.buf("inputIds"), T, cfg.vocabSize, D, this.embedType);
    // Gemma: x * sqrt(hidden), the constant rounded to the activation dtype as HF does.
    if (cfg.embedScale) ops.scale(x, T * D, roundToDtype(Math.sqrt(D), this.dtype));
    for (let l = 0; l < cfg.numLayers; l++) {
      const L = this.layers[l]!;
      const W = this.layerTypes[l]!;
      off?.beforeLayer(l);
      // attention block: h = norm(x [+ previous block output]); q, k, v = h W + b; [q/k norm]; RoPE; cache; attend
      ops.rmsNorm(h, x, l === 0 ? 0n : o, L.inputNorm, T, D, eps);
      // Fused: one [T, q + 2 kv] output read with stride qkvDim. Else q, k, v dense one after another.
      const q = qkv;
      let k: bigint;
      let v: bigint;
      let stride = 0; // elements between tokens of q, k and v (0 = dense)
      if (W.fusedQkv) {
        ops.matmul(qkv, h, L.q, L.qBias, T, qkvDim, D, W.q, ws);
        k = qkv + BigInt(qDim) * eb;
        v = k + BigInt(kvDim) * eb;
        stride = qkvDim;
      } else {
        k = q + BigInt(T * qDim) * eb;
        v = k + BigInt(T * kvDim) * eb;
        ops.matmul(q, h, L.q, L.qBias, T, qDim, D, W.q, ws);
        ops.matmul(k, h, L.k, L.kBias, T, kvDim, D, W.k, ws);
        ops.matmul(v, h, L.v, L.vBias, T, kvDim, D, W.v, ws);
      }
      if (L.qNorm !== 0n) {
        // per-head RMSNorm over head_dim, in place (rows = tokens x heads)
        const hd = cfg.headDim;
        if (stride) {
          ops.rmsNormStrided(q, q, L.qNorm, T, cfg.numHeads, hd, stride, eps);
          ops.rmsNormStrided(k, k, L.kNorm, T, cfg.numKvHeads, hd, stride, eps);
        } else {
          ops.rmsNorm(q, q, 0n, L.qNorm, T * cfg.numHeads, hd, eps);
          ops.rmsNorm(k, k, 0n, L.kNorm, T * cfg.numKvHeads, hd, eps);
        }
      }
      const invFreq = this.buf(this.localRope(l) ? "invFreqLocal" : "invFreq");
      ops.rope(q, k, this.buf("positions"), invFreq, T, cfg.numHeads, cfg.numKvHeads, cfg.headDim, 0, RopeLayout.NEOX, stride, stride);
      const cache = this.cache(l);
      ops.kvWrite(cache, k, v, this.buf("slotMapping"), T, stride);
      // Sliding-window layers read only the last `window` keys, but every block stays allocated:
      // Gemma 2/3 global layers need them all, prefix caching hashes whole chains of blocks, and
      // the block manager has one table per sequence for all layers. Freeing blocks wholly before
      // the window would only pay off for all-sliding models (Mistral v0.1, Phi-3) and needs
      // per-layer tables; it is not done.
      const window = layerWindow(cfg, l);
      const scale = this.layerScale(l);
      if (decodeOnly) {
        ops.attentionDecode(
          attn,
          q,
          cache,
          this.buf("blockTables"),
          this.buf("seqLens"),
          this.buf("workspace"),
          this.layout.bytes.workspace,
          numSeqs,
          cfg.numHeads,
          maxBlocks,
          DECODE_PLANNED,
          scale,
          stride,
          window,
          softcap,
        );
      } else {
        ops.attentionPrefill(
          attn,
          q,
          cache,
          this.buf("blockTables"),
          this.buf("seqLens"),
          this.buf("queryStartLoc"),
          numSeqs,
          T,
          cfg.numHeads,
          maxBlocks,
          scale,
          stride,
          window,
          softcap,
        );
      }
      ops.matmul(o, attn, L.o, 0n, T, D, qDim, W.o, ws);
      // MLP block: h = norm(x += attention output); o = down(act(gate h) * up h). Gemma 2/3
      // normalize the attention output first (sandwich) and the MLP output after.
      if (L.preFfNorm !== 0n) {
        ops.rmsNorm(o, o, 0n, L.postNorm, T, D, eps);
        ops.rmsNorm(h, x, o, L.preFfNorm, T, D, eps);
      } else {
        ops.rmsNorm(h, x, o, L.postNorm, T, D, eps);
      }
      // Fused: gate|up rows [T, 2 I] (the gated op reads both halves with stride 2 I).
      const gate = gateUp;
      let up: bigint;
      if (W.fusedGateUp) {
        ops.matmul(gateUp, h, L.gate, 0n, T, 2 * I, D, W.gate, ws);
        up = gateUp + BigInt(I) * eb;
      } else {
        up = gateUp + BigInt(T * I) * eb;
        ops.matmul(gate, h, L.gate, 0n, T, I, D, W.gate, ws);
        ops.matmul(up, h, L.up, 0n, T, I, D, W.up, ws);
      }
      const inStride = W.fusedGateUp ? 2 * I : 0;
      if (cfg.hiddenAct === "gelu_tanh") ops.geluTanhMul(act, gate, up, T, I, inStride);
      else ops.siluMul(act, gate, up, T, I, inStride);
      ops.matmul(o, act, L.down, 0n, T, D, I, W.down, ws);
      if (L.postFfNorm !== 0n) ops.rmsNorm(o, o, 0n, L.postFfNorm, T, D, eps);
      off?.afterLayer(l);
    }
    ops.rmsNorm(h, x, o, this.finalNorm, T, D, eps);
    if (numLogitsRows > 0) {
      ops.logits(logitsOut, h, this.buf("logitsIndices"), numLogitsRows, T, this.lmHead, cfg.vocabSize, D, this.lmHeadType, ws);
      // Gemma 2 final soft-capping on the float32 logits.
      if (cfg.finalSoftcap) ops.softcap(logitsOut, numLogitsRows * cfg.vocabSize, cfg.finalSoftcap, DType.F32);
    }
  }

  /** Captured decode graphs (src/engine/graph-runner.ts, set at start-up); null = eager only. */
  decodeGraphs: DecodeGraphReplayer | null = null;

  /**
   * Stages and runs one step: a decode-only step of B <= the largest captured size replays the
   * graph of the next captured size (inputs padded); prefill, mixed and larger steps run
   * eagerly. Returns true when a graph ran. Logits rows land where forward() puts them.
   */
  step(inp: StepInputs, numTokens: number, numSeqs: number, numLogitsRows: number): boolean {
    if (inp.decodeOnly && this.decodeGraphs?.replay(inp)) return true;
    this.stage(inp);
    this.forward(numTokens, numSeqs, numLogitsRows, inp.decodeOnly);
    return false;
  }

  /**
   * Structured outputs: stages `rows` grammar bitmask rows (int32 [rows, ceil(vocab/32)]) and
   * their logits rows, then sets every disallowed logit to -inf on the device (after the
   * forward pass or graph replay, before readLogits). Free rows of the batch are untouched.
   */
  applyTokenBitmask(bitmask: Int32Array, rowIndices: Int32Array, rows: number, logitsRows: number): void {
    if (rows === 0) return;
    const words = Math.ceil(this.cfg.vocabSize / 32);
    if (rows > this.limits.maxSeqs || bitmask.length < rows * words)
      throw new RangeError(`token bitmask of ${rows} rows does not fit the arena`);
    this.dev.copyToDeviceAsync(this.buf("tokenBitmask"), bitmask.subarray(0, rows * words));
    this.dev.copyToDeviceAsync(this.buf("bitmaskRows"), rowIndices.subarray(0, rows));
    this.ops.applyTokenBitmask(this.buf("logits"), logitsRows, this.buf("tokenBitmask"), this.buf("bitmaskRows"), rows, this.cfg.vocabSize);
  }

  /** Copies logits rows first .. first+count-1 to `out` (device sampling's host rows). */
  readLogitsRows(first: number, count: number, out: Float32Array): void {
    const V = this.cfg.vocabSize;
    if (count > 0) this.dev.copyFromDevice(out.subarray(0, count * V), this.buf("logits") + BigInt(first * V * 4));
  }

  /** Copies `rows` logits rows back to the host. */
  readLogits(rows: number, out: Float32Array = new Float32Array(rows * this.cfg.vocabSize)): Float32Array {
    if (rows > 0) this.dev.copyFromDevice(out.subarray(0, rows * this.cfg.vocabSize), this.buf("logits"));
    return out;
  }
}

/** The quantized tensors of an upload, as the layout and the planner see them. */
function loadedQuantized(w: LoadedWeights): QuantizedTensors {
  const m = new Map<string, { bytes: number; code: number }>();
  for (const [name, t] of w.tensors) if (t.quant) m.set(name, { bytes: t.bytes, code: t.quant.code });
  return m;
}

/** `v` rounded to the compute dtype (HF builds Gemma's normalizer as a tensor of the activation dtype). */
function roundToDtype(v: number, dtype: ComputeDtype): number {
  if (dtype === "f32") return Math.fround(v);
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer);
  if (dtype === "bf16") {
    // round to nearest even on the upper 16 bits
    u[0] = ((u[0]! + 0x7fff + ((u[0]! >>> 16) & 1)) & 0xffff0000) >>> 0;
    return f[0]!;
  }
  // f16: 10 mantissa bits (the values used here are normal numbers)
  const e = Math.floor(Math.log2(Math.abs(v)));
  const step = 2 ** (e - 10);
  return Math.round(v / step) * step;
}
