import { describe, expect, test } from "bun:test";
import { makeSamplingParams, type ResolvedSamplingParams } from "../../src/engine/request.ts";
import { Sampler, applyPenalties, argmax, seededUniform, topKIndices, type SamplerRequest } from "../../src/engine/sampler.ts";

/** Deterministic normal-ish logits (fresh per call, never zeros). */
function randomLogits(V: number, seed: number, scale = 3): Float32Array {
  const x = new Float32Array(V);
  for (let i = 0; i < V; i++) {
    const u1 = seededUniform(seed, 2 * i) || 1e-12;
    const u2 = seededUniform(seed, 2 * i + 1);
    x[i] = scale * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  return x;
}

function mkReq(
  p: Partial<ResolvedSamplingParams>,
  seed = 1,
  prompt: number[] = [0],
  output: number[] = [],
  eos: number | null = null,
): SamplerRequest {
  return { sampling: makeSamplingParams(p), promptTokenIds: prompt, outputTokenIds: output, samplerSeed: seed, eosTokenId: eos };
}

/**
 * Brute-force float64 reference: full sorts, the documented filters, then an inverse-CDF walk over
 * the surviving tokens in ascending token id.
 */
function referenceSet(
  raw: Float32Array,
  sp: Pick<ResolvedSamplingParams, "temperature" | "topK" | "topP" | "minP">,
): { idx: number[]; w: number[] } {
  const V = raw.length;
  const x = new Float32Array(V);
  for (let i = 0; i < V; i++) x[i] = raw[i]! * (1 / sp.temperature);
  let m = -Infinity;
  for (const v of x) m = Math.max(m, v);
  const minLogit = sp.minP > 0 ? m + Math.log(sp.minP) : -Infinity;
  const all = Array.from({ length: V }, (_, i) => i);
  let idx = all.filter((i) => x[i]! >= minLogit);
  if (sp.topK > 0 && sp.topK < V) {
    const top = new Set(all.sort((a, b) => x[b]! - x[a]! || a - b).slice(0, sp.topK));
    idx = idx.filter((i) => top.has(i));
  }
  const weight = (i: number) => Math.exp(x[i]! - m);
  if (sp.topP < 1) {
    const total = idx.reduce((a, i) => a + weight(i), 0);
    const order = [...idx].sort((a, b) => weight(b) - weight(a) || a - b);
    let acc = 0;
    let cut = order.length;
    for (let j = 0; j < order.length; j++) {
      acc += weight(order[j]!);
      if (acc >= sp.topP * total) {
        cut = j + 1;
        break;
      }
    }
    const keep = new Set(order.slice(0, cut));
    idx = idx.filter((i) => keep.has(i));
  }
  return { idx, w: idx.map(weight) };
}

function referenceWalk(set: { idx: number[]; w: number[] }, u: number): number {
  const total = set.w.reduce((a, b) => a + b, 0);
  const r = u * total;
  let acc = 0;
  for (let j = 0; j < set.idx.length; j++) {
    acc += set.w[j]!;
    if (r < acc) return set.idx[j]!;
  }
  return set.idx[set.idx.length - 1]!;
}

function softmax64(x: ArrayLike<number>): number[] {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]!);
  const e = Array.from({ length: x.length }, (_, i) => Math.exp(x[i]! - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

describe("Sampler", () => {
  const sampler = new Sampler();

  test("sampling parameters: defaults for missing/undefined fields, ranges validated", () => {
    const s = makeSamplingParams({ seed: undefined, logprobs: undefined, temperature: 0.5 });
    expect(s.seed).toBeNull();
    expect(s.logprobs).toBeNull();
    expect(s.temperature).toBe(0.5);
    expect(s.topP).toBe(1);
    for (const bad of [
      { temperature: -1 },
      { topP: 0 },
      { topK: 1.5 },
      { minP: 2 },
      { logprobs: 21 },
      { maxTokens: 0 },
      { repetitionPenalty: 0 },
    ]) {
      expect(() => makeSamplingParams(bad)).toThrow(RangeError);
    }
  });

  test("greedy (temperature 0) is argmax, whatever the seed", () => {
    for (const V of [32000, 151936]) {
      const rows = 4;
      const logits = new Float32Array(rows * V);
      for (let r = 0; r < rows; r++) logits.set(randomLogits(V, 100 + r + V), r * V);
      const reqs = Array.from({ length: rows }, (_, r) => mkReq({ temperature: 0 }, r * 7919));
      const res = sampler.sample(logits, V, reqs);
      for (let r = 0; r < rows; r++) {
        const row = logits.subarray(r * V, (r + 1) * V);
        let best = 0;
        for (let i = 1; i < V; i++) if (row[i]! > row[best]!) best = i;
        expect(res[r]!.tokenId).toBe(best);
        expect(res[r]!.logprobs).toBeNull();
      }
    }
    expect(argmax([1, 3, 3, 2])).toBe(1); // lowest id on ties
  });

  test("a seed gives the same tokens regardless of batch composition and row position", () => {
    const V = 5000;
    const rowsA = [randomLogits(V, 1), randomLogits(V, 2), randomLogits(V, 3)];
    const sp = { temperature: 1.0, topP: 0.95 };
    const a = mkReq(sp, 42);
    const b = mkReq(sp, 43);
    const c = mkReq(sp, 44);
    const batch1 = new Float32Array(3 * V);
    batch1.set(rowsA[0]!, 0);
    batch1.set(rowsA[1]!, V);
    batch1.set(rowsA[2]!, 2 * V);
    const r1 = sampler.sample(batch1, V, [a, b, c]);
    const batch2 = new Float32Array(2 * V);
    batch2.set(rowsA[2]!, 0);
    batch2.set(rowsA[0]!, V);
    const r2 = new Sampler().sample(batch2, V, [c, a]);
    expect(r2[0]!.tokenId).toBe(r1[2]!.tokenId);
    expect(r2[1]!.tokenId).toBe(r1[0]!.tokenId);
    // a whole sequence: same seed ⇒ same tokens; another seed ⇒ different tokens
    const gen = (seed: number) => {
      const out: number[] = [];
      for (let i = 0; i < 40; i++)
        out.push(sampler.sampleRow(randomLogits(V, 1000 + i, 1), mkReq({ temperature: 1 }, seed, [0], [...out])).tokenId);
      return out;
    };
    expect(gen(7)).toEqual(gen(7));
    expect(gen(7)).not.toEqual(gen(8));
  });

  test("seeded uniforms look uniform", () => {
    const n = 100000;
    const bins = new Array(10).fill(0);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const u = seededUniform(123456789, i);
      expect(u >= 0 && u < 1).toBe(true);
      bins[Math.floor(u * 10)]++;
      sum += u;
    }
    for (const b of bins) expect(Math.abs(b - n / 10)).toBeLessThan(5 * Math.sqrt(n / 10));
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.005);
    expect(seededUniform(-5, 3)).not.toBe(seededUniform(5, 3));
    expect(seededUniform(2 ** 40, 3)).not.toBe(seededUniform(0, 3));
  });

  test("empirical frequencies follow softmax(logits / T)", () => {
    const raw = Float32Array.from([1.0, 2.0, 0.5, -1.0, 1.5, 0.0, -0.5, 2.5]);
    const T = 0.7;
    const p = softmax64(Array.from(raw, (v) => v / T));
    const n = 40000;
    const counts = new Array(raw.length).fill(0);
    for (let s = 0; s < n; s++) counts[sampler.sampleRow(raw, mkReq({ temperature: T }, s)).tokenId]++;
    p.forEach((pi, i) => expect(Math.abs(counts[i] / n - pi)).toBeLessThan(4 * Math.sqrt((pi * (1 - pi)) / n) + 1e-9));
  });

  test("top-k / top-p / min-p restrict the support exactly as a full-sort reference does", () => {
    const V = 3000;
    const configs: Pick<ResolvedSamplingParams, "temperature" | "topK" | "topP" | "minP">[] = [
      { temperature: 1, topK: 5, topP: 1, minP: 0 },
      { temperature: 0.8, topK: 0, topP: 0.9, minP: 0 },
      { temperature: 1.3, topK: 0, topP: 0.5, minP: 0 },
      { temperature: 1, topK: 0, topP: 1, minP: 0.05 },
      { temperature: 1, topK: 50, topP: 0.8, minP: 0.02 },
      { temperature: 2, topK: 0, topP: 0.99, minP: 0 },
      { temperature: 1, topK: 0, topP: 1, minP: 0 },
    ];
    let ci = 0;
    for (const cfg of configs) {
      const raw = randomLogits(V, 500 + ci++, 2);
      const seen = new Set<number>();
      const ref = referenceSet(raw, cfg);
      for (let k = 0; k < 300; k++) {
        const u = seededUniform(9, k);
        const got = sampler.sampleProcessed(Float32Array.from(raw), cfg, u);
        expect(got).toBe(referenceWalk(ref, u));
        seen.add(got);
      }
      // support checks on the probabilities themselves
      const p = softmax64(Array.from(raw, (v) => v / cfg.temperature));
      const pmax = Math.max(...p);
      const order = p.map((_, i) => i).sort((a, b) => p[b]! - p[a]!);
      if (cfg.topK > 0) for (const t of seen) expect(order.indexOf(t)).toBeLessThan(cfg.topK);
      if (cfg.minP > 0) for (const t of seen) expect(p[t]!).toBeGreaterThanOrEqual(cfg.minP * pmax * (1 - 1e-6));
      if (cfg.topP < 1 && cfg.topK === 0 && cfg.minP === 0) {
        let acc = 0;
        let n = 0;
        while (acc < cfg.topP) acc += p[order[n++]!]!;
        for (const t of seen) expect(order.indexOf(t)).toBeLessThan(n + 1);
      }
      if (cfg.topK === 5) expect(seen.size).toBe(5);
    }
  });

  test("top-p nucleus on a large vocab with a long tail", () => {
    const V = 20000;
    const raw = new Float32Array(V).fill(Math.log(0.05 / (V - 3)));
    raw[10] = Math.log(0.5);
    raw[20] = Math.log(0.3);
    raw[30] = Math.log(0.15);
    const draw = (topP: number) => {
      const s = new Set<number>();
      for (let i = 0; i < 300; i++) s.add(sampler.sampleRow(raw, mkReq({ temperature: 1, topP }, i)).tokenId);
      return [...s].sort((a, b) => a - b);
    };
    expect(draw(0.75)).toEqual([10, 20]);
    expect(draw(0.9)).toEqual([10, 20, 30]);
    expect(draw(0.4)).toEqual([10]);
    expect(draw(0.999).length).toBeGreaterThan(3);
  });

  test("penalties change logits exactly as the formulas say", () => {
    const V = 16;
    const raw = Float32Array.from({ length: V }, (_, i) => (i % 2 === 0 ? 1 : -1) * (0.5 + i * 0.25));
    const prompt = [1, 2, 2, 3];
    const output = [3, 4, 4, 4, 9];
    const sp = { repetitionPenalty: 1.3, frequencyPenalty: 0.5, presencePenalty: 0.25 };
    const x = Float32Array.from(raw);
    applyPenalties(x, mkReq(sp, 1, prompt, output));
    const expected = Float32Array.from(raw);
    for (const t of new Set([...prompt, ...output])) {
      const v = expected[t]!;
      expected[t] = v > 0 ? v / 1.3 : v * 1.3; // HF: once per distinct token
    }
    const counts = new Map<number, number>();
    for (const t of output) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const [t, c] of counts) expected[t] = expected[t]! - 0.5 * c - 0.25; // OpenAI: output tokens only
    expect(Array.from(x)).toEqual(Array.from(expected));
    expect(x[0]).toBe(raw[0]!); // untouched
    expect(x[2]).toBe(Math.fround(raw[2]! / 1.3)); // prompt only: repetition penalty, no frequency/presence
    // a penalty can flip greedy
    const flip = Float32Array.from([0, 2.0, 1.9]);
    expect(sampler.sampleRow(flip, mkReq({ temperature: 0 }, 1, [0])).tokenId).toBe(1);
    expect(sampler.sampleRow(flip, mkReq({ temperature: 0, repetitionPenalty: 1.2 }, 1, [1])).tokenId).toBe(2);
    expect(sampler.sampleRow(flip, mkReq({ temperature: 0, presencePenalty: 0.2 }, 1, [0], [1])).tokenId).toBe(2);
    // min_tokens masks EOS and stop ids
    const eos = Float32Array.from([0, 5, 1, 4]);
    expect(sampler.sampleRow(eos, mkReq({ temperature: 0, minTokens: 2, stopTokenIds: [3] }, 1, [0], [], 1)).tokenId).toBe(2);
    expect(sampler.sampleRow(eos, mkReq({ temperature: 0, minTokens: 2 }, 1, [0], [2, 2], 1)).tokenId).toBe(1);
    expect(sampler.sampleRow(eos, mkReq({ temperature: 0, minTokens: 2, ignoreEos: true }, 1, [0], [], 1)).tokenId).toBe(1);
  });

  test("logit_bias: added before the penalties; -100 bans, +100 forces; logprobs stay raw", () => {
    const raw = Float32Array.from([0, 5, 1, 4]);
    const x = Float32Array.from(raw);
    applyPenalties(
      x,
      mkReq(
        {
          logitBias: [
            [1, -2.5],
            [3, 0.25],
          ],
          repetitionPenalty: 2,
        },
        1,
        [3],
      ),
    );
    expect(Array.from(x)).toEqual([0, 2.5, 1, Math.fround((4 + 0.25) / 2)]);
    expect(sampler.sampleRow(raw, mkReq({ temperature: 0, logitBias: [[1, -100]] })).tokenId).toBe(3);
    const forced = sampler.sampleRow(raw, mkReq({ temperature: 1, seed: 7, logitBias: [[0, 100]], logprobs: 1 }));
    expect(forced.tokenId).toBe(0);
    expect(forced.logprobs!.top[0]!.tokenId).toBe(1); // raw logits: token 1 is still the most likely
    expect(() => mkReq({ logitBias: [[-1, 1]] })).toThrow(RangeError);
  });

  test("logprobs are the float64 log-softmax of the raw logits (chosen, rank, top-n)", () => {
    const V = 32000;
    const raw = randomLogits(V, 77, 4);
    let m = -Infinity;
    for (const v of raw) m = Math.max(m, v);
    let s = 0;
    for (const v of raw) s += Math.exp(v - m);
    const lse = m + Math.log(s);
    for (const sp of [{ temperature: 0 }, { temperature: 0.5, repetitionPenalty: 1.5, topK: 10 }]) {
      const res = sampler.sampleRow(raw, mkReq({ ...sp, logprobs: 20 }, 5, [1, 2, 3]));
      const lp = res.logprobs!;
      expect(lp.tokenId).toBe(res.tokenId);
      expect(Math.abs(lp.logprob - (raw[res.tokenId]! - lse))).toBeLessThan(1e-9);
      let rank = 1;
      for (const v of raw) if (v > raw[res.tokenId]!) rank++;
      expect(lp.rank).toBe(rank);
      const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => raw[b]! - raw[a]! || a - b);
      expect(lp.top.map((t) => t.tokenId)).toEqual(order.slice(0, 20));
      lp.top.forEach((t) => expect(Math.abs(t.logprob - (raw[t.tokenId]! - lse))).toBeLessThan(1e-9));
    }
    const none = sampler.sampleRow(raw, mkReq({ temperature: 0, logprobs: 0 }));
    expect(none.logprobs!.top).toEqual([]);
    expect(none.logprobs!.rank).toBe(1);
    expect(topKIndices([3, -Infinity, 3, 5], 3)).toEqual([3, 0, 2]);
  });

  test("fast enough on big vocabularies (16 rows × 151936)", () => {
    const V = 151936;
    const rows = 16;
    const logits = new Float32Array(rows * V);
    let st = 0x2545f491;
    for (let i = 0; i < logits.length; i++) {
      st ^= st << 13;
      st ^= st >>> 17;
      st ^= st << 5;
      const u = (st >>> 0) / 4294967296;
      logits[i] = 6 * (u + ((st >>> 7) & 1023) / 1024 - 1); // triangular-ish in [-6, 6)
    }
    const timings: Record<string, number> = {};
    for (const [name, sp] of [
      ["greedy", { temperature: 0 }],
      ["temperature", { temperature: 0.8 }],
      ["top-k 50", { temperature: 0.8, topK: 50 }],
      ["top-p 0.9", { temperature: 0.8, topP: 0.9 }],
      ["top-k+top-p+min-p+logprobs", { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, logprobs: 5 }],
    ] as const) {
      const reqs = Array.from({ length: rows }, (_, i) => mkReq(sp, i));
      sampler.sample(logits, V, reqs); // warm-up
      const t0 = performance.now();
      sampler.sample(logits, V, reqs);
      timings[name] = (performance.now() - t0) / rows;
    }
    console.log("sampler ms/row @151936:", Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, +v.toFixed(3)])));
    for (const v of Object.values(timings)) expect(v).toBeLessThan(50);
  });
});
