// Chunked prefill paced by time (src/engine/step-pacer.ts): the online cost model, and the
// scheduler's chunk choices under an injected cost law (no clock: every "measured" step time is
// the law applied to the step's shape, so each choice is exact and deterministic).
import { describe, expect, test } from "bun:test";
import { Request } from "../../src/engine/request.ts";
import type { SchedulerOutput } from "../../src/engine/scheduler.ts";
import { OnlineStepCost, StepPacer, chunkPairs, shapeOf, type StepCostModel, type StepShape } from "../../src/engine/step-pacer.ts";
import { EngineCore } from "../../src/engine/engine-core.ts";
import { startEngine, type EngineOptions } from "../../src/engine/startup.ts";
import { engineOptions } from "./engine-helpers.ts";
import { makeHarness, runAlone, runToCompletion } from "./fake-runner.ts";

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

/** A known linear cost law: ms = fixed + perToken·tokens + perRow·rows + perKPairs·attn/1024. */
class Law implements StepCostModel {
  constructor(
    readonly fixed: number,
    readonly perToken: number,
    readonly perRow = 0,
    readonly perKPairs = 0,
  ) {}
  predict(s: StepShape): number {
    return this.fixed + this.perToken * s.tokens + this.perRow * s.rows + (this.perKPairs * s.attn) / 1024;
  }
  observe(): void {}
}

/** A model that cannot predict (as the online one before it has seen two step sizes). */
const cold: StepCostModel = { predict: () => null, observe: () => {} };

describe("OnlineStepCost", () => {
  const law = new Law(6, 0.25, 0.08, 0.5);
  const shapes: StepShape[] = [];
  for (let d = 1; d <= 16; d++) shapes.push({ tokens: d, rows: d, attn: d * 140 });
  for (const p of [16, 64, 128, 300]) shapes.push({ tokens: 8 + p, rows: 9, attn: 8 * 150 + chunkPairs(0, p) });
  for (const p of [32, 100]) shapes.push({ tokens: p, rows: 0, attn: chunkPairs(256, p) });

  test("recovers a linear law from exact step times", () => {
    const m = new OnlineStepCost();
    for (let i = 0; i < 3; i++) for (const s of shapes) m.observe(s, law.predict(s));
    const c = m.coefficients()!;
    expect(c[0]).toBeCloseTo(6, 4);
    expect(c[1]).toBeCloseTo(0.25, 5);
    expect(c[2]).toBeCloseTo(0.08, 4);
    expect(c[3]).toBeCloseTo(0.5, 4);
    const unseen = { tokens: 200, rows: 17, attn: chunkPairs(40, 190) + 16 * 300 };
    expect(m.predict(unseen)!).toBeCloseTo(law.predict(unseen), 4);
  });

  test("cannot predict until two step sizes were seen", () => {
    const m = new OnlineStepCost();
    for (let i = 0; i < 10; i++) m.observe({ tokens: 16, rows: 16, attn: 2000 }, 10);
    expect(m.predict({ tokens: 16, rows: 16, attn: 2000 })).toBeNull();
    m.observe({ tokens: 128, rows: 1, attn: chunkPairs(0, 128) }, 40);
    expect(m.predict({ tokens: 16, rows: 16, attn: 2000 })).not.toBeNull();
  });

  test("coefficients stay non-negative (a law without row or attention cost)", () => {
    const flat = new Law(3, 0.5);
    const m = new OnlineStepCost();
    for (const s of shapes) m.observe(s, flat.predict(s));
    for (const c of m.coefficients()!) expect(c).toBeGreaterThanOrEqual(0);
    for (const s of shapes) expect(m.predict(s)!).toBeCloseTo(flat.predict(s), 3);
  });

  test("one descheduled step moves the fit little (capped at 3× the prediction); it is forgotten", () => {
    const m = new OnlineStepCost(0.97);
    for (let i = 0; i < 5; i++) for (const s of shapes) m.observe(s, law.predict(s));
    const s = { tokens: 16, rows: 16, attn: 16 * 140 };
    m.observe(s, 100 * law.predict(s));
    const after = m.predict(s)!;
    expect(after).toBeGreaterThan(law.predict(s));
    // uncapped, the 100× step would weigh as ~100 ordinary ones
    expect(after).toBeLessThan(1.5 * law.predict(s));
    for (let i = 0; i < 10; i++) for (const x of shapes) m.observe(x, law.predict(x));
    expect(m.predict(s)! / law.predict(s)).toBeCloseTo(1, 3);
  });

  test("a uniformly slower machine (other load) gives proportionally slower predictions", () => {
    const m = new OnlineStepCost(0.9);
    for (let i = 0; i < 3; i++) for (const s of shapes) m.observe(s, law.predict(s));
    for (let i = 0; i < 20; i++) for (const s of shapes) m.observe(s, 2 * law.predict(s));
    const s = { tokens: 100, rows: 5, attn: 5000 };
    expect(m.predict(s)! / law.predict(s)).toBeCloseTo(2, 3);
  });
});

describe("StepPacer.chunk", () => {
  const law = new Law(10, 0.5);
  const pacer = new StepPacer({ factor: 2, model: law, minChunk: 16 });
  const decodes = { tokens: 4, rows: 4, attn: 4 * 100 };

  test("the largest chunk whose predicted step fits the target", () => {
    // target 2 × (10 + 0.5 × 16) = 36 ms: tokens ≤ 52, 4 of them decodes → 48 prompt tokens
    const target = pacer.targetMs(4, 400, 16)!;
    expect(target).toBe(36);
    expect(pacer.chunk(decodes, 0, 128, 1, target, 0)).toBe(48);
    expect(pacer.chunk(decodes, 0, 30, 1, target, 0)).toBe(30); // the whole rest of a prompt
  });

  test("the first chunk gets at least minChunk (progress); later chunks below it are dropped", () => {
    const full = { tokens: 50, rows: 4, attn: 4 * 100 };
    expect(pacer.chunk(full, 0, 128, 1, 36, 0)).toBe(16);
    expect(pacer.chunk(full, 0, 128, 1, 36, 46)).toBe(0);
    expect(pacer.chunk(full, 0, 2, 1, 36, 46)).toBe(2); // ends its prompt: fits, taken
  });

  test("no decodes, no target; factor must exceed 1", () => {
    expect(pacer.targetMs(0, 0, 16)).toBeNull();
    expect(() => new StepPacer({ factor: 1, model: law })).toThrow(RangeError);
  });
});

describe("Scheduler with a StepPacer", () => {
  const prompts = (n: number, len: number) => Array.from({ length: n }, (_, i) => range(i * 7, i * 7 + len).map((t) => t % 97));

  function burst(model: StepCostModel, observe: (o: SchedulerOutput) => void = () => {}, minStepTokens = 0) {
    const h = makeHarness({
      numBlocks: 512,
      config: { maxNumBatchedTokens: 512, maxNumSeqs: 16, pacer: new StepPacer({ factor: 2, model, minChunk: 16, minStepTokens }) },
    });
    const ps = prompts(16, 128);
    ps.forEach((p, i) =>
      h.scheduler.addRequest(new Request({ requestId: `r${i}`, promptTokenIds: p, sampling: { maxTokens: 8, temperature: 0 } })),
    );
    const steps: SchedulerOutput[] = [];
    const done = runToCompletion(h, 10000, (o) => {
      steps.push(o);
      observe(o);
    });
    for (let i = 0; i < 16; i++)
      expect(done.get(`r${i}`)!.tokens).toEqual(
        runAlone({ requestId: `r${i}`, promptTokenIds: ps[i]!, sampling: { maxTokens: 8, temperature: 0 } }).tokens,
      );
    return steps;
  }

  test("16 prompts at once: first tokens one prompt per step; steps that decode are sized to 2× a 16-row decode step", () => {
    const law = new Law(10, 0.5); // target 36 ms = 52 tokens in a step that decodes
    const steps = burst(law);
    // nothing decodes yet, but a 128-token prompt costs more than a step's fixed part (64 > 10 ms):
    // r0 gets its first token after its own step instead of waiting for r1..r3 in a 512-token one
    expect(steps[0]!.scheduled.map((s) => [s.requestId, s.numNewTokens])).toEqual([["r0", 128]]);
    let partial = 0;
    let full = 0;
    for (const o of steps.slice(1)) {
      expect(o.numScheduledTokens).toBeLessThanOrEqual(512);
      if (o.numPrefillTokens === 0) continue;
      const prompts = o.scheduled.filter((s) => !s.isDecode);
      // at most one prompt ends per step (128-token prompts are not cheaper than a step)
      expect(prompts.filter((s) => s.needsLogits).length).toBeLessThanOrEqual(1);
      // prompts are prefilled in arrival order, one at a time: at most one unfinished prompt
      const unfinished = prompts.filter((s) => !s.needsLogits);
      expect(unfinished.length).toBeLessThanOrEqual(1);
      if (unfinished.length) partial++;
      if (o.numDecodeTokens === 0) continue;
      // a step that decodes never exceeds 52 tokens (fewer once fewer than 16 are served)
      expect(o.numScheduledTokens).toBeLessThanOrEqual(52);
      if (o.numScheduledTokens === 52) full++;
    }
    expect(partial).toBeGreaterThan(0);
    expect(full).toBeGreaterThan(0);
  });

  test("prompts cheaper than a step's fixed part share a step", () => {
    const h = makeHarness({
      numBlocks: 512,
      config: { maxNumBatchedTokens: 512, maxNumSeqs: 16, pacer: new StepPacer({ factor: 2, model: new Law(10, 0.5), minStepTokens: 0 }) },
    });
    // 8-token prompts add 4 ms each (< 10 ms fixed): all six in the first step
    for (let i = 0; i < 6; i++)
      h.scheduler.addRequest(
        new Request({ requestId: `s${i}`, promptTokenIds: range(i, i + 8), sampling: { maxTokens: 2, temperature: 0 } }),
      );
    h.scheduler.addRequest(new Request({ requestId: "big", promptTokenIds: range(0, 100), sampling: { maxTokens: 2, temperature: 0 } }));
    const o = h.scheduler.schedule();
    // the 100-token prompt (50 ms > 10 ms) waits for a step of its own
    expect(o.scheduled.map((s) => s.requestId)).toEqual(["s0", "s1", "s2", "s3", "s4", "s5"]);
  });

  test("an online model fed the law's step times converges to the law's choices", () => {
    const law = new Law(10, 0.5, 0.05, 0.2);
    const online = new OnlineStepCost();
    // an engine that has served before: a few steps of each kind seen
    for (const p of [0, 16, 64, 128])
      for (const d of [1, 8, 16]) {
        const x = { tokens: d + p, rows: d + (p ? 1 : 0), attn: d * 150 + chunkPairs(0, p) };
        online.observe(x, law.predict(x));
      }
    // The harness's "clock": every step takes exactly what the law says of its shape.
    const steps = burst(online, (o) => online.observe(shapeOf(o), law.predict(shapeOf(o))));
    const reference = burst(law);
    // The online pacer picks what the law would: every step that decodes and prefills fits
    // 2× a decode step of the served batch.
    for (const o of steps) {
      if (o.numDecodeTokens === 0 || o.numPrefillTokens === 0) continue;
      const dec = o.scheduled.filter((s) => s.isDecode);
      const pairs = dec.reduce((a, s) => a + chunkPairs(s.numComputedBefore, 1), 0);
      const target = 2 * law.predict({ tokens: 16, rows: 16, attn: (pairs / dec.length) * 16 });
      expect(law.predict(shapeOf(o))).toBeLessThanOrEqual(target * 1.001);
    }
    expect(Math.abs(steps.length - reference.length)).toBeLessThanOrEqual(2);
  });

  test("the floor: never fewer tokens in a step than a fixed budget of minStepTokens would take", () => {
    // the law allows 52 tokens per decoding step; the floor of 100 wins
    const steps = burst(new Law(10, 0.5), () => {}, 100);
    let floored = 0;
    for (const o of steps.slice(1)) {
      if (o.numDecodeTokens === 0 || o.numPrefillTokens === 0) continue;
      const prompts = o.scheduled.filter((s) => !s.isDecode);
      expect(o.numScheduledTokens).toBeLessThanOrEqual(100);
      if (prompts.every((s) => !s.needsLogits)) {
        expect(o.numScheduledTokens).toBe(100);
        floored++;
      }
    }
    expect(floored).toBeGreaterThan(0);
    // a cheaper prompt token (the law allows more than the floor): the pacer's larger chunk wins
    // (target 2 × (100 + 8) = 216 ms = 232 tokens; a 128-token prompt, 64 ms, is cheaper than a
    // step's fixed 100 ms, so prompts also share steps)
    const wide = burst(new Law(100, 0.5), () => {}, 100);
    expect(wide.slice(1).some((o) => o.numDecodeTokens > 0 && o.numScheduledTokens > 100)).toBe(true);
    for (const o of wide) if (o.numDecodeTokens > 0) expect(o.numScheduledTokens).toBeLessThanOrEqual(232);
  });

  test("a model that cannot predict yet: the floor alone while sequences decode", () => {
    const steps = burst(cold, () => {}, 40);
    expect(steps[0]!.numPrefillTokens).toBe(128); // one prompt (the model cannot tell it is cheap)
    for (const o of steps.slice(1))
      if (o.numDecodeTokens > 0) expect(o.numScheduledTokens).toBeLessThanOrEqual(Math.max(40, o.numDecodeTokens));
    expect(steps.slice(1).some((o) => o.numDecodeTokens > 0 && o.numScheduledTokens === 40)).toBe(true);
  });

  test("very costly prompt tokens still make progress: minChunk per step", () => {
    // a prompt token (a token without a logits row) costs 1000× a decode row: no room in 2× a decode step
    const steep: StepCostModel = { predict: (s) => 1 + s.rows + 1000 * (s.tokens - s.rows), observe: () => {} };
    const steps = burst(steep);
    for (const o of steps.slice(1)) if (o.numDecodeTokens > 0 && o.numPrefillTokens > 0) expect(o.numPrefillTokens).toBe(16);
  });

  test("without chunked prefill the pacer is ignored", () => {
    const h = makeHarness({
      numBlocks: 64,
      config: { maxNumBatchedTokens: 4096, enableChunkedPrefill: false, pacer: new StepPacer({ factor: 2, model: new Law(1, 100) }) },
    });
    expect(h.scheduler.pacer).toBeNull();
  });
});

describe("--step-time-factor and --min-step-tokens reach the engine's pacer", () => {
  const SYNTH = "synthetic:dim=64,hidden=176,layers=2,heads=4,kv_heads=2,vocab=300";
  const core = (over: Partial<EngineOptions>) => {
    const s = startEngine(engineOptions(SYNTH, { deviceOrdinal: 7, ...over }));
    try {
      return new EngineCore(s, { maxNumSeqs: 8, servedModelName: null }).scheduler.pacer;
    } finally {
      s.close();
    }
  };

  test("CPU defaults: factor 4, floor 128; the flags replace them; factor 0 = no pacer", () => {
    expect(core({})).toMatchObject({ factor: 4, minStepTokens: 128 });
    expect(core({ stepTimeFactor: 2, minStepTokens: 64 })).toMatchObject({ factor: 2, minStepTokens: 64 });
    expect(core({ stepTimeFactor: 0 })).toBeNull();
  });

  test("a floor below 1 token, not whole, or without the pacer is refused at start-up, naming the flag", () => {
    expect(() => core({ minStepTokens: 0 })).toThrow("--min-step-tokens 0");
    expect(() => core({ minStepTokens: 2.5 })).toThrow("--min-step-tokens 2.5");
    // Without the pacer the floor would do nothing: refused, not ignored.
    expect(() => core({ stepTimeFactor: 0, minStepTokens: 64 })).toThrow("--step-time-factor is 0 (off)");
  });
});
