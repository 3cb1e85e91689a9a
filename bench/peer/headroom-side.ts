// headroom's kernel-level figures, measured in-process through the engine's own model runner
// (startEngine + LlamaModel.step: graphs on as `serve` runs them), shaped like llama.cpp's tests:
//   prefill  = llama-bench pp128: one 128-token prompt from an empty cache, logits of the last token
//   decode   = llama-bench tg32 at depth d: 32 single-token steps at positions d..d+31 after an
//              untimed d-token prefill, each step's logits read back
//   batch16  = llama-batched-bench -npp 128 -ntg 32 -npl 16: 16 sequences with their own
//              128-token prompts (prefilled untimed), then 32 steps decoding all 16 (aggregate tok/s)
// Token ids are random (as llama.cpp's benches use); the greedy check uses EngineCore.
import { EngineCore } from "../../src/engine/engine-core.ts";
import { startEngine, type StartedEngine } from "../../src/engine/startup.ts";
import type { StepInputs } from "../../src/model/llama.ts";
import { BANNED_IDS } from "./http.ts";

export interface HeadroomFigures {
  prefillTokS: number;
  /** tg32 tok/s by depth. */
  decodeTokS: Record<number, number>;
  batchDecodeTokS: number;
}

export interface KernelShape {
  prompt: number;
  gen: number;
  depths: number[];
  batch: number;
}

const MiB = 2 ** 20;

export interface GreedyResult {
  tokens: number[];
  /** Top-2 logprobs at each generated position: [first, second]. */
  top2: [number, number][];
}

export class HeadroomKernel {
  private readonly s: StartedEngine;
  private readonly bs: number;
  private readonly maxB: number;
  private rng = 12345;
  private logits: Float32Array | null = null;

  constructor(
    model: string,
    threads: number,
    private readonly shape: KernelShape,
  ) {
    const maxCtx = Math.max(shape.prompt, ...shape.depths) + shape.gen;
    this.s = startEngine({
      model,
      device: "cpu",
      deviceMemory: null,
      gpuMemoryUtilization: 0.9,
      // what the batch-16 test holds, with room to spare
      kvCacheMemoryBytes: 512 * MiB,
      maxModelLen: Math.max(512, maxCtx),
      maxNumSeqs: shape.batch,
      maxNumBatchedTokens: Math.max(512, shape.prompt, ...shape.depths),
      blockSize: 16,
      enforceEager: false,
      servedModelName: null,
      numThreads: threads,
    });
    this.bs = this.s.kvSpec.blockSize;
    this.maxB = this.s.limits.maxBlocksPerSeq;
    const need = shape.batch * Math.ceil((shape.prompt + shape.gen) / this.bs);
    if (need > this.s.kv.numBlocks) throw new Error(`KV cache holds ${this.s.kv.numBlocks} blocks, the batch test needs ${need}`);
  }

  get vocab(): number {
    return this.s.opened.config.vocabSize;
  }

  private token(): number {
    this.rng = (Math.imul(this.rng, 1103515245) + 12345) >>> 0;
    return 3 + (this.rng % (this.vocab - 3));
  }

  /** Inputs of `seqs` sequences adding `n` tokens each at positions [start, start + n); sequence q owns blocks q*P... */
  private inputs(seqs: number, n: number, start: number): StepInputs {
    const per = Math.ceil((Math.max(this.shape.prompt, ...this.shape.depths) + this.shape.gen) / this.bs);
    const T = seqs * n;
    const inp: StepInputs = {
      inputIds: new Int32Array(T),
      positions: new Int32Array(T),
      slotMapping: new Int32Array(T),
      queryStartLoc: new Int32Array(seqs + 1),
      seqLens: new Int32Array(seqs),
      blockTables: new Int32Array(seqs * this.maxB),
      logitsIndices: new Int32Array(seqs),
      decodeOnly: n === 1,
    };
    for (let q = 0; q < seqs; q++) {
      inp.queryStartLoc[q] = q * n;
      inp.seqLens[q] = start + n;
      for (let b = 0; b < per; b++) inp.blockTables[q * this.maxB + b] = q * per + b;
      for (let i = 0; i < n; i++) {
        const pos = start + i;
        const t = q * n + i;
        inp.inputIds[t] = this.token();
        inp.positions[t] = pos;
        inp.slotMapping[t] = (q * per + Math.floor(pos / this.bs)) * this.bs + (pos % this.bs);
      }
      inp.logitsIndices[q] = (q + 1) * n - 1;
    }
    inp.queryStartLoc[seqs] = T;
    return inp;
  }

  private run(inp: StepInputs): void {
    const seqs = inp.seqLens.length;
    this.s.model.step(inp, inp.inputIds.length, seqs, seqs);
    // Into a buffer allocated once, as llama.cpp copies into its context's logits buffer: a fresh
    // 2 MiB array per step would time page faults and zeroing that neither engine has.
    this.logits ??= new Float32Array(this.shape.batch * this.vocab);
    this.s.model.readLogits(seqs, this.logits);
  }

  /** Prefill of each of `seqs` sequences separately (n tokens from position 0), untimed. */
  private fill(seqs: number, n: number): void {
    for (let q = 0; q < seqs; q++) {
      const all = this.inputs(seqs, n, 0);
      const one: StepInputs = {
        ...all,
        inputIds: all.inputIds.subarray(q * n, (q + 1) * n),
        positions: all.positions.subarray(q * n, (q + 1) * n),
        slotMapping: all.slotMapping.subarray(q * n, (q + 1) * n),
        queryStartLoc: Int32Array.of(0, n),
        seqLens: Int32Array.of(n),
        blockTables: all.blockTables.subarray(q * this.maxB, (q + 1) * this.maxB),
        logitsIndices: Int32Array.of(n - 1),
        decodeOnly: false,
      };
      this.run(one);
    }
  }

  private decode(seqs: number, from: number, steps: number): number {
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) this.run(this.inputs(seqs, 1, from + i));
    return (seqs * steps) / ((performance.now() - t0) / 1000);
  }

  /** Seconds of each of `steps` decode steps of `seqs` sequences at positions from.. (after
   * prefilling each sequence's `from` tokens, untimed), for per-step statistics. */
  decodeSteps(seqs: number, from: number, steps: number): number[] {
    if (from > 0) this.fill(seqs, from);
    const t: number[] = [];
    for (let i = 0; i < steps; i++) {
      const inp = this.inputs(seqs, 1, from + i);
      const t0 = performance.now();
      this.run(inp);
      t.push((performance.now() - t0) / 1000);
    }
    return t;
  }

  /** One warm-up pass of every test (llama-bench and batched-bench warm up too). */
  warmUp(): void {
    this.run(this.inputs(1, this.shape.prompt, 0));
    this.decode(1, this.shape.prompt, 2);
    this.decode(this.shape.batch, this.shape.prompt, 2);
  }

  prefill(): number {
    const inp = this.inputs(1, this.shape.prompt, 0);
    const t0 = performance.now();
    this.run(inp);
    return this.shape.prompt / ((performance.now() - t0) / 1000);
  }

  decodeAt(depth: number): number {
    if (depth > 0) this.fill(1, depth);
    return this.decode(1, depth, this.shape.gen);
  }

  batchDecode(): number {
    this.fill(this.shape.batch, this.shape.prompt);
    return this.decode(this.shape.batch, this.shape.prompt, this.shape.gen);
  }

  /** Greedy continuation of `prompt` through the whole engine (scheduler, sampler), BANNED_IDS biased away as on llama-server. */
  greedy(prompt: number[], n: number): GreedyResult {
    const core = new EngineCore(this.s, { maxNumSeqs: this.shape.batch, servedModelName: null, enablePrefixCaching: false });
    core.add({
      requestId: "greedy",
      promptTokenIds: prompt,
      params: {
        temperature: 0,
        topP: 1,
        topK: 0,
        minP: 0,
        maxTokens: n,
        stopTokenIds: [],
        ignoreEos: true,
        logprobs: 2,
        logitBias: BANNED_IDS.map((i): [number, number] => [i, -100]),
        presencePenalty: 0,
        frequencyPenalty: 0,
        repetitionPenalty: 1,
      },
    });
    const out: GreedyResult = { tokens: [], top2: [] };
    while (core.hasWork())
      for (const e of core.step()) {
        out.tokens.push(...e.tokenIds);
        for (const l of e.logprobs ?? []) out.top2.push([l.top[0]?.logprob ?? NaN, l.top[1]?.logprob ?? NaN]);
      }
    return out;
  }

  close(): void {
    this.s.close();
  }
}
