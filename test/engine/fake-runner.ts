// A deterministic fake model for engine tests. It keeps a fake paged KV cache (token id and
// position per slot), writes every scheduled token at its slot, then, for each row that needs
// logits, reads the whole context back THROUGH THE BLOCK TABLE and derives logits from a hash of
// it. Wrong slot mappings, block tables, prefix-cache hits or a block handed to two requests show
// up as different tokens than a request run alone.

import { KVCacheManager } from "../../src/engine/kv-cache-manager.ts";
import { Request, type RequestInit } from "../../src/engine/request.ts";
import type { LogitsOutput, ModelRunner } from "../../src/engine/runner.ts";
import { Sampler } from "../../src/engine/sampler.ts";
import { Scheduler, type RequestOutput, type SchedulerConfig, type SchedulerOutput } from "../../src/engine/scheduler.ts";

function mix(h: number, v: number): number {
  h ^= v + 0x9e3779b9 + (h << 6) + (h >>> 2);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class FakeRunner implements ModelRunner {
  readonly kvTok: Int32Array;
  readonly kvPos: Int32Array;
  steps = 0;

  constructor(
    numBlocks: number,
    readonly blockSize: number,
    readonly vocabSize: number,
  ) {
    this.kvTok = new Int32Array(numBlocks * blockSize).fill(-1);
    this.kvPos = new Int32Array(numBlocks * blockSize).fill(-1);
  }

  execute(out: SchedulerOutput): LogitsOutput {
    this.steps++;
    const written = new Set<number>();
    for (const sr of out.scheduled) {
      if (sr.blockTable.length < Math.ceil(sr.contextLen / this.blockSize)) {
        throw new Error(`fake runner: ${sr.requestId} block table too short for ${sr.contextLen} tokens`);
      }
      for (let i = 0; i < sr.numNewTokens; i++) {
        const slot = sr.slotMapping[i] as number;
        const pos = sr.positions[i] as number;
        if (written.has(slot)) throw new Error(`fake runner: slot ${slot} written twice in one step`);
        written.add(slot);
        const expectSlot = (sr.blockTable[Math.floor(pos / this.blockSize)] as number) * this.blockSize + (pos % this.blockSize);
        if (slot !== expectSlot) throw new Error(`fake runner: slot ${slot} != block table slot ${expectSlot}`);
        this.kvTok[slot] = sr.tokenIds[i] as number;
        this.kvPos[slot] = pos;
      }
    }
    const V = this.vocabSize;
    const logits = new Float32Array(out.logitsRequests.length * V);
    out.logitsRequests.forEach((sr, row) => {
      let h = 0x12345678;
      for (let p = 0; p < sr.contextLen; p++) {
        const slot = (sr.blockTable[Math.floor(p / this.blockSize)] as number) * this.blockSize + (p % this.blockSize);
        if (this.kvPos[slot] !== p)
          throw new Error(`fake runner: ${sr.requestId} slot ${slot} holds position ${this.kvPos[slot]}, expected ${p}`);
        h = mix(h, this.kvTok[slot] as number);
      }
      for (let j = 0; j < V; j++) logits[row * V + j] = (mix(h, j) / 4294967296) * 8 - 4;
    });
    return { logits, vocabSize: V, numRows: out.logitsRequests.length };
  }
}

export interface EngineHarness {
  scheduler: Scheduler;
  kv: KVCacheManager;
  runner: FakeRunner;
  sampler: Sampler;
}

export function makeHarness(opts: {
  numBlocks: number;
  blockSize?: number;
  vocabSize?: number;
  prefixCaching?: boolean;
  config?: Partial<SchedulerConfig>;
}): EngineHarness {
  const blockSize = opts.blockSize ?? 16;
  const kv = new KVCacheManager({ numBlocks: opts.numBlocks, blockSize, enablePrefixCaching: opts.prefixCaching ?? true });
  const scheduler = new Scheduler({ maxModelLen: 4096, ...opts.config }, kv);
  return { scheduler, kv, runner: new FakeRunner(opts.numBlocks, blockSize, opts.vocabSize ?? 97), sampler: new Sampler() };
}

export interface Finished {
  tokens: number[];
  finishReason: string | null;
  stopReason: number | null;
  outputs: RequestOutput[];
}

/** One engine step: schedule → runner → sampler → update. */
export function step(h: EngineHarness, onSchedule?: (o: SchedulerOutput) => void): { out: SchedulerOutput; results: RequestOutput[] } {
  const out = h.scheduler.schedule();
  onSchedule?.(out);
  const lg = h.runner.execute(out);
  const samples = h.sampler.sample(
    lg.logits,
    lg.vocabSize,
    out.logitsRequests.map((s) => s.request),
  );
  const results = h.scheduler.update(
    out,
    samples.map((s) => s.tokenId),
    samples.map((s) => s.logprobs),
  );
  return { out, results };
}

/** Runs until nothing is left; collects every request's streamed tokens. */
export function runToCompletion(h: EngineHarness, maxSteps = 100000, onSchedule?: (o: SchedulerOutput) => void): Map<string, Finished> {
  const done = new Map<string, Finished>();
  const get = (id: string): Finished => {
    let f = done.get(id);
    if (f === undefined) {
      f = { tokens: [], finishReason: null, stopReason: null, outputs: [] };
      done.set(id, f);
    }
    return f;
  };
  let steps = 0;
  while (h.scheduler.hasUnfinishedRequests()) {
    if (steps++ > maxSteps) throw new Error("runToCompletion: too many steps");
    const { results } = step(h, onSchedule);
    for (const r of results) {
      const f = get(r.requestId);
      f.tokens.push(...r.newTokenIds);
      f.outputs.push(r);
      if (r.finished) {
        f.finishReason = r.finishReason;
        f.stopReason = r.stopReason;
      }
    }
  }
  return done;
}

/** The same request run alone in a roomy engine (the reference). */
export function runAlone(init: RequestInit, blockSize = 16, vocabSize = 97, maxModelLen = 4096): Finished {
  const h = makeHarness({ numBlocks: 512, blockSize, vocabSize, config: { maxModelLen, maxNumBatchedTokens: 4096 } });
  h.scheduler.addRequest(new Request(init));
  const f = runToCompletion(h).get(init.requestId);
  if (f === undefined) throw new Error("runAlone: no output");
  return f;
}
