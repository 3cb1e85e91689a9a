// Sampling under a grammar mask is exact: hr_op_apply_token_bitmask (CPU backend) on fresh
// random logits, then the engine's sampler. Greedy must be the argmax over the allowed tokens of
// the raw logits (computed here independently), and sampling must draw only allowed tokens with
// the softmax renormalized over them (checked against the exact probabilities over many draws).
// Rows without a mask in the same batch are sampled exactly as without the op.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";

import type { ResolvedSamplingParams } from "../../src/engine/request.ts";
import { Sampler, type SamplerRequest } from "../../src/engine/sampler.ts";
import { Device } from "../../src/native/device.ts";
import { Ops } from "../../src/native/ops.ts";

const V = 1000,
  W = Math.ceil(V / 32);
let seed = (Date.now() ^ 0x5bd1e995) >>> 0;
console.log(`[mask-sampling] seed ${seed}`);
const rnd = () => {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 4294967296;
};

function req(temperature: number, samplerSeed: number): SamplerRequest {
  const sampling = {
    temperature,
    topP: 1,
    topK: 0,
    minP: 0,
    seed: null,
    maxTokens: 10,
    minTokens: 0,
    stopTokenIds: [],
    ignoreEos: false,
    logprobs: null,
    presencePenalty: 0,
    frequencyPenalty: 0,
    repetitionPenalty: 1,
    logitBias: [],
    promptLogprobs: null,
  } as unknown as ResolvedSamplingParams;
  return { sampling, promptTokenIds: [1], outputTokenIds: [], samplerSeed, eosTokenId: null };
}

describe("sampling under a token bitmask (CPU backend)", () => {
  let dev: Device;
  let ops: Ops;
  beforeAll(() => {
    dev = Device.open({ device: "cpu", ordinal: 6, cpuCapacityBytes: 0 });
    ops = new Ops(dev);
  });
  afterAll(() => dev?.close());

  /** logits [2, V]: row 0 masked by `mask`, row 1 free. Returns the logits after the op. */
  function masked(raw: Float32Array, mask: Int32Array): Float32Array {
    const l = dev.alloc(raw.byteLength),
      m = dev.alloc(mask.byteLength),
      idx = dev.alloc(4);
    try {
      dev.copyToDevice(l, raw);
      dev.copyToDevice(m, mask);
      dev.copyToDevice(idx, new Int32Array([0]));
      ops.applyTokenBitmask(l, 2, m, idx, 1, V);
      const out = new Float32Array(raw.length);
      dev.copyFromDevice(out, l);
      return out;
    } finally {
      dev.free(l), dev.free(m), dev.free(idx);
    }
  }

  const isAllowed = (mask: Int32Array, t: number) => ((mask[t >> 5]! >>> (t & 31)) & 1) === 1;

  test("greedy = argmax of the raw logits over the allowed tokens; the free row is untouched", () => {
    const sampler = new Sampler();
    for (let trial = 0; trial < 50; trial++) {
      const raw = Float32Array.from({ length: 2 * V }, () => (rnd() - 0.5) * 20);
      const mask = Int32Array.from({ length: W }, () => (rnd() * 4294967296) | 0); // ~half the tokens allowed
      mask[trial % W] = 1 << (trial % 32); // at least one allowed token
      const out = masked(raw, mask);
      let best = -1;
      for (let t = 0; t < V; t++) if (isAllowed(mask, t) && (best < 0 || raw[t]! > raw[best]!)) best = t;
      const [a, b] = sampler.sample(out, V, [req(0, 1), req(0, 1)]);
      expect(a!.tokenId).toBe(best);
      expect(b!.tokenId).toBe(sampler.sample(raw.subarray(V), V, [req(0, 1)])[0]!.tokenId);
      expect(Array.from(out.subarray(V))).toEqual(Array.from(raw.subarray(V)));
    }
  });

  test("sampling draws only allowed tokens, with the softmax renormalized over them", () => {
    const sampler = new Sampler();
    const raw = Float32Array.from({ length: 2 * V }, () => (rnd() - 0.5) * 4);
    const mask = new Int32Array(W);
    const allowedIds = [3, 77, 78, 500, 999];
    for (const t of allowedIds) mask[t >> 5]! |= 1 << (t & 31);
    const out = masked(raw, mask);
    const z = allowedIds.reduce((s, t) => s + Math.exp(raw[t]!), 0);
    const counts = new Map<number, number>();
    const N = 20000;
    for (let i = 0; i < N; i++) {
      const t = sampler.sample(out, V, [req(1, i + 1)])[0]!.tokenId;
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    for (const t of counts.keys()) expect(allowedIds).toContain(t);
    for (const t of allowedIds) {
      const p = Math.exp(raw[t]!) / z;
      const sd = Math.sqrt((p * (1 - p)) / N);
      expect(Math.abs((counts.get(t) ?? 0) / N - p)).toBeLessThan(5 * sd + 1e-3);
    }
  });
});
