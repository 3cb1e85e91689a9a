// Device sampling (src/engine/device-sampler.ts) on the CPU backend.
//
// - The rule: which rows the device path carries and why the others fall back to the host.
// - Staging: rows, mask rows and bias entries past the current step are neutral on the device
//   (read back from the arena), so a padded graph never applies a stale mask or bias.
// - Equality with the host sampler (the path every step took before: all logits copied, the
//   engine's TypeScript sampler): one batch mixing greedy, temperature, top-k, top-p,
//   logit_bias, min_tokens, a structured-output (regex) row, and host-fallback rows (logprobs,
//   penalties, min_p, prompt logprobs) gives the same tokens and logprobs with the same seeds,
//   with graphs (and the eager warm-up) and with --enforce-eager.
// - Host bytes per step: ids only for device rows, one logits row per host row.
import { afterAll, describe, expect, test } from "bun:test";

import type { GenerateRequest, SamplingParams, TokenLogprob } from "../../src/engine/api.ts";
import { biasEntriesOf, hostSamplingReason, uniformF32 } from "../../src/engine/device-sampler.ts";
import { EngineCore } from "../../src/engine/engine-core.ts";
import { makeSamplingParams } from "../../src/engine/request.ts";
import type { SamplerRequest } from "../../src/engine/sampler.ts";
import { startEngine, type StartedEngine } from "../../src/engine/startup.ts";
import { logitBiasCapacity } from "../../src/model/arena.ts";
import { GGUF_PATH, HAVE_MODELS, warnIfNoModels } from "../model/helpers.ts";
import { engineOptions, greedyParams } from "./engine-helpers.ts";

warnIfNoModels("device sampling");

const SYNTH = "synthetic:dim=64,hidden=176,layers=2,heads=4,kv_heads=2,vocab=300";
const started: StartedEngine[] = [];
afterAll(() => {
  for (const s of started) s.close();
});
function start(model: string, ordinal: number, over: Parameters<typeof engineOptions>[1] = {}): StartedEngine {
  const s = startEngine(engineOptions(model, { deviceOrdinal: ordinal, maxNumSeqs: 8, ...over }));
  started.push(s);
  return s;
}

function samplerRequest(p: Parameters<typeof makeSamplingParams>[0], out: number[] = [], eos: number | null = 2): SamplerRequest {
  return { sampling: makeSamplingParams(p), promptTokenIds: [1, 5], outputTokenIds: out, samplerSeed: 7, eosTokenId: eos };
}

describe("the rule: device rows and host fallbacks", () => {
  test("device: greedy, temperature, top-k, top-p, logit_bias, min_tokens; host: logprobs, penalties, min_p, duplicate bias ids", () => {
    expect(hostSamplingReason(samplerRequest({ temperature: 0 }))).toBeNull();
    expect(hostSamplingReason(samplerRequest({ temperature: 0.7, topK: 5, topP: 0.9 }))).toBeNull();
    expect(hostSamplingReason(samplerRequest({ logitBias: [[3, 1.5]], minTokens: 4 }))).toBeNull();
    // min_p does nothing to a greedy row, so greedy rows with min_p stay on the device
    expect(hostSamplingReason(samplerRequest({ temperature: 0, minP: 0.2 }))).toBeNull();
    expect(hostSamplingReason(samplerRequest({ logprobs: 0 }))).toBe("logprobs");
    expect(hostSamplingReason(samplerRequest({ temperature: 0, logprobs: 3 }))).toBe("logprobs");
    expect(hostSamplingReason(samplerRequest({ repetitionPenalty: 1.1 }))).toBe("penalties");
    expect(hostSamplingReason(samplerRequest({ frequencyPenalty: 0.5 }))).toBe("penalties");
    expect(hostSamplingReason(samplerRequest({ temperature: 0, presencePenalty: -0.5 }))).toBe("penalties");
    expect(hostSamplingReason(samplerRequest({ minP: 0.05 }))).toBe("min_p");
    expect(
      hostSamplingReason(
        samplerRequest({
          logitBias: [
            [4, 1],
            [4, 2],
          ],
        }),
      ),
    ).toBe("logit_bias_duplicates");
  });

  test("bias entries: min_tokens bans EOS and stop ids (-inf) while too few tokens; a banned and biased token gets one -inf; ids >= vocab skipped", () => {
    const p = {
      minTokens: 2,
      stopTokenIds: [9, 2, 400],
      logitBias: [
        [9, 3],
        [11, -1.25],
        [500, 7],
      ] as [number, number][],
    };
    const ninf = Number.NEGATIVE_INFINITY;
    expect(biasEntriesOf(samplerRequest(p, [5]), 300)).toEqual([
      [2, ninf],
      [9, ninf],
      [11, -1.25],
    ]);
    // enough tokens generated: only the bias
    expect(biasEntriesOf(samplerRequest(p, [5, 6]), 300)).toEqual([
      [9, 3],
      [11, -1.25],
    ]);
    // ignore_eos: EOS not banned, stop ids still are
    expect(biasEntriesOf(samplerRequest({ ...p, ignoreEos: true }, []), 300)).toEqual([
      [9, ninf],
      [2, ninf],
      [11, -1.25],
    ]);
  });

  test("the uniform is the host's, rounded to float32 and kept below 1", () => {
    expect(uniformF32(0.25)).toBe(0.25);
    expect(uniformF32(1 - 2 ** -30)).toBe(1 - 2 ** -24);
    expect(uniformF32(0.1)).toBe(Math.fround(0.1));
  });
});

describe("staging (synthetic model)", () => {
  test("a step staging less than the last one leaves every later row, mask row and bias entry neutral on the device", () => {
    const s = start(SYNTH, 30, { enforceEager: true });
    const ds = s.deviceSampler!;
    const m = s.model;
    const S = s.limits.maxSeqs;
    const V = m.cfg.vocabSize;
    const W = Math.ceil(V / 32);
    const rows = Array.from({ length: 5 }, (_, i) =>
      samplerRequest({ temperature: 0.5 + i * 0.1, topK: i, topP: 0.9, logitBias: [[i, 1]], minTokens: 3 }),
    );
    const mask = new Int32Array(3 * W).fill(-1);
    const plan = ds.stage(rows, { mask, rows: Int32Array.of(4, 0, 2), count: 3 });
    expect(plan.numDevice).toBe(5);
    expect(plan.maskRows).toBe(3);
    expect(plan.biasEntries).toBe(5 * 2 - 1); // each: EOS ban + its bias; row 2 biases the EOS (2): one -inf
    const small = ds.stage([samplerRequest({ temperature: 0 })], null);
    expect(small).toMatchObject({ rows: 1, numDevice: 1, maskRows: 0, biasEntries: 0 });
    const params = new Float32Array(4 * S);
    s.dev.copyFromDevice(params, m.buf("sampleParams"));
    const ints = new Int32Array(params.buffer);
    for (let r = 0; r < S; r++) {
      expect(params[r]).toBe(0); // temperature: greedy
      expect(ints[S + r]).toBe(0); // top_k off
      expect(params[2 * S + r]).toBe(1); // top_p off
    }
    const idx = new Int32Array(S);
    s.dev.copyFromDevice(idx, m.buf("bitmaskRows"));
    expect([...idx]).toEqual(new Array(S).fill(-1));
    const cap = logitBiasCapacity(S);
    const entries = new Int32Array(4 * cap);
    s.dev.copyFromDevice(entries, m.buf("logitBias"));
    for (let k = 0; k < cap; k++) expect(entries[4 * k]).toBe(-1);
  });
});

// ---- equality with the host sampler on a real model --------------------------------------------

interface Result {
  tokens: number[];
  logprobs: TokenLogprob[];
  prompt: (TokenLogprob | null)[] | null;
}

function params(over: Partial<SamplingParams>): SamplingParams {
  return { ...greedyParams(20), ignoreEos: false, ...over };
}

/** The mixed batch: device rows and host rows side by side (more requests than max_num_seqs). */
function mixedRequests(prompts: number[][]): GenerateRequest[] {
  const p: SamplingParams[] = [
    params({}),
    params({ temperature: 0.8, seed: 11 }),
    params({ temperature: 1, topK: 20, seed: 12 }),
    params({ temperature: 0.9, topP: 0.8, seed: 13 }),
    params({
      temperature: 1.2,
      topK: 50,
      topP: 0.9,
      seed: 14,
      logitBias: [
        [100, 2.5],
        [101, -100],
        [30, 0.3],
      ],
    }),
    params({ logitBias: [[77, 30]], maxTokens: 6 }), // greedy forced towards token 77
    params({ temperature: 0.7, minTokens: 12, seed: 16 }),
    params({ temperature: 1, seed: 17, structured: { type: "regex", pattern: "[a-z ]{3,30}\\." } }),
    params({ temperature: 1, seed: 18, logprobs: 3 }), // host: logprobs
    params({ temperature: 0.9, seed: 19, repetitionPenalty: 1.3, frequencyPenalty: 0.2 }), // host: penalties
    params({ temperature: 1, seed: 20, minP: 0.1 }), // host: min_p
    params({ temperature: 0.6, seed: 21, promptLogprobs: 2 }), // device row, prompt rows copied
    params({ temperature: 1, seed: 22, topK: 5, logitBias: Array.from({ length: 300 }, (_, t) => [t, 0.01] as [number, number]) }), // > capacity: host
  ];
  return p.map((params, i) => ({ requestId: `r${i}`, promptTokenIds: prompts[i % prompts.length]!, params }));
}

async function generate(s: StartedEngine, reqs: GenerateRequest[]): Promise<{ out: Map<string, Result>; core: EngineCore }> {
  const core = new EngineCore(s, { maxNumSeqs: s.limits.maxSeqs, maxWaiting: 64, servedModelName: null });
  for (const r of reqs) await core.addAsync(r);
  const out = new Map<string, Result>(reqs.map((r) => [r.requestId, { tokens: [], logprobs: [], prompt: null }]));
  while (core.hasWork())
    for (const e of await core.stepAsync()) {
      const r = out.get(e.requestId)!;
      r.tokens.push(...e.tokenIds);
      if (e.logprobs) r.logprobs.push(...e.logprobs);
      if (e.promptLogprobs) r.prompt = e.promptLogprobs;
    }
  expect(core.stats().blocksUsed).toBe(0);
  return { out, core };
}

describe.skipIf(!HAVE_MODELS)("device sampling equals the host sampler (stories260K, CPU backend)", () => {
  const prompts = [
    [1, 403, 407, 261, 378],
    [1, 365, 1297 % 512, 260],
    [1, 43, 411, 302, 325, 264, 268],
    [1, 100],
  ];

  test("mixed batch: same tokens and logprobs with the same seeds, graphs (warm-up) and eager alike", async () => {
    const reqs = mixedRequests(prompts);
    const host = await generate(start(GGUF_PATH, 31, { enforceEager: false, deviceSampling: false }), reqs);
    const devGraphs = start(GGUF_PATH, 32, { enforceEager: false, graphWarmup: true });
    expect(devGraphs.graphs!.warmupMs).toBeGreaterThan(0);
    const dev = await generate(devGraphs, reqs);
    const devEager = await generate(start(GGUF_PATH, 33, { enforceEager: true }), reqs);
    expect(devGraphs.decodeGraphs!.replays).toBeGreaterThan(10);
    for (const r of reqs) {
      const h = host.out.get(r.requestId)!;
      expect({ id: r.requestId, ...dev.out.get(r.requestId)! }).toEqual({ id: r.requestId, ...h });
      expect({ id: r.requestId, ...devEager.out.get(r.requestId)! }).toEqual({ id: r.requestId, ...h });
    }
    // The rows did what they ask for (so the equality above covers real work).
    const toks = (id: string) => host.out.get(id)!.tokens;
    expect(toks("r5")).toEqual(new Array(6).fill(77));
    expect(toks("r4")).not.toContain(101);
    expect(toks("r6").length).toBeGreaterThanOrEqual(12);
    expect(host.out.get("r8")!.logprobs.length).toBe(toks("r8").length);
    expect(host.out.get("r11")!.prompt!.length).toBe(prompts[11 % prompts.length]!.length);
    const text = devGraphs.opened.tokenizer.decode(toks("r7"));
    expect(text).toMatch(/^[a-z ]{3,30}\.?/);
    // The host path copied every logits row; the device path far fewer bytes.
    expect(dev.core.runner.copies.totalBytes).toBeLessThan(host.core.runner.copies.totalBytes / 2);
  });

  test("host bytes per decode step: 4 per device row, vocab x 4 per host row", () => {
    const V = 512;
    const run = (s: StartedEngine, withLogprobsRow: boolean) => {
      const core = new EngineCore(s, { maxNumSeqs: 8, maxWaiting: 64, servedModelName: null });
      for (let i = 0; i < 4; i++)
        core.add({
          requestId: `b${i}`,
          promptTokenIds: prompts[i]!,
          params: params({
            temperature: i % 2 ? 0.8 : 0,
            seed: i,
            maxTokens: 8,
            ignoreEos: true,
            ...(withLogprobsRow && i === 3 ? { logprobs: 1 } : {}),
          }),
        });
      // The prompts' prefill (one or more steps, as the scheduler paces it), until each has a token.
      const started = new Set<string>();
      while (started.size < 4) for (const e of core.step()) if (e.tokenIds.length > 0) started.add(e.requestId);
      const perStep: number[] = [];
      for (let k = 0; k < 4; k++) {
        core.step(); // decode-only, 4 rows
        perStep.push(core.runner.copies.lastStepBytes);
      }
      while (core.hasWork()) core.step();
      return perStep;
    };
    const dev = start(GGUF_PATH, 34, { enforceEager: false });
    const host = start(GGUF_PATH, 35, { enforceEager: false, deviceSampling: false });
    expect(run(host, false)).toEqual(new Array(4).fill(4 * V * 4));
    expect(run(dev, false)).toEqual(new Array(4).fill(4 * 4));
    expect(run(dev, true)).toEqual(new Array(4).fill(4 * 4 + V * 4));
  });
});
