// The order of a step with grammar masks (ISSUE 16: the masks must overlap the forward pass):
// launch the forward pass (kernels or a decode-graph replay; asynchronous on CUDA) -> compute
// the grammar masks on the host -> stage the sampling inputs -> launch the sampling tail ->
// read the ids. Device sampling and host sampling (`deviceSampling: false`) alike.
//
// What proves it (on every test device; CUDA when a GPU is present):
// - the real calls, wrapped on the live objects (the model's step, the matchers' prepare, the
//   device sampler's stage / tail / id read) and the runner's own phase recorder, are seen in
//   exactly that order in every step, decode-graph replays included;
// - the logits as they are when the masks begin to be computed (read from the device at that
//   moment) are the ones the step samples from: every greedy row's token is the argmax of that
//   snapshot over the tokens its mask allows (an independent argmax, not the engine's sampler),
//   so the forward pass had been launched (and nothing after the masks changed its result).
import { afterEach, expect, test } from "bun:test";

import type { GenerateRequest } from "../../src/engine/api.ts";
import { EngineCore } from "../../src/engine/engine-core.ts";
import type { StepPhase } from "../../src/engine/model-runner.ts";
import type { SchedulerOutput } from "../../src/engine/scheduler.ts";
import { startEngine, type StartedEngine } from "../../src/engine/startup.ts";
import type { StructuredOutputs, TokenBitmaskBatch } from "../../src/engine/structured.ts";
import type { StepInputs } from "../../src/model/llama.ts";
import { GGUF_PATH, HAVE_MODELS, warnIfNoModels } from "../model/helpers.ts";
import { describeDevices, type DeviceEnv } from "../util/devices.ts";
import { greedyParams } from "./engine-helpers.ts";

warnIfNoModels("step overlap");

const started: StartedEngine[] = [];
afterEach(() => {
  while (started.length) started.pop()!.close();
});

type Seen = StepPhase | "model.step:graph" | "model.step:eager" | "prepare" | "stage" | "tail" | "readIds";

interface StepRecord {
  seen: Seen[];
  /** performance.now() at each recorded phase (printed, never asserted: no timing thresholds). */
  at: Partial<Record<StepPhase, number>>;
  /** Logits rows as read from the device when the masks began (null: no mask computed). */
  snapshot: Float32Array | null;
  bitmask: TokenBitmaskBatch | null;
  rows: number;
  requestIds: string[];
}

/** Wraps the live objects of `core` so every step records what ran, in order. */
function instrument(s: StartedEngine, core: EngineCore): StepRecord[] {
  const steps: StepRecord[] = [];
  let cur: StepRecord | null = null;
  const V = s.model.cfg.vocabSize;
  const push = (x: Seen) => cur!.seen.push(x);
  const model = s.model;
  const step = model.step.bind(model);
  model.step = (inp: StepInputs, numTokens: number, numSeqs: number, numLogitsRows: number): boolean => {
    cur = { seen: [], at: {}, snapshot: null, bitmask: null, rows: numLogitsRows, requestIds: [] };
    steps.push(cur);
    const replayed = step(inp, numTokens, numSeqs, numLogitsRows);
    push(replayed ? "model.step:graph" : "model.step:eager");
    return replayed;
  };
  core.runner.recorder = (p) => {
    push(p);
    cur!.at[p] = performance.now();
  };
  const finish = core.runner.finish.bind(core.runner);
  core.runner.finish = (out: SchedulerOutput, bitmask?: TokenBitmaskBatch | null) => {
    cur!.requestIds = out.logitsRequests.map((r) => r.request.requestId);
    cur!.bitmask = bitmask ? { mask: bitmask.mask.slice(), rows: bitmask.rows.slice(), count: bitmask.count } : null;
    return finish(out, bitmask);
  };
  const ds = s.deviceSampler;
  if (ds) {
    const stage = ds.stage.bind(ds);
    ds.stage = (...a: Parameters<typeof ds.stage>) => {
      const r = stage(...a);
      push("stage");
      return r;
    };
    const tail = ds.runTail.bind(ds);
    ds.runTail = (...a: Parameters<typeof ds.runTail>) => {
      tail(...a);
      push("tail");
    };
    const readIds = ds.readIds.bind(ds);
    ds.readIds = (...a: Parameters<typeof ds.readIds>) => {
      readIds(...a);
      push("readIds");
    };
  }
  // The matchers live in the core (created with the first constrained request).
  const so = (core as unknown as { structured: StructuredOutputs | null }).structured!;
  const prepare = so.prepare.bind(so);
  so.prepare = async () => {
    if (so.needsPrepare() && cur) {
      push("prepare");
      const snap = new Float32Array(cur.rows * V);
      s.dev.copyFromDevice(snap, s.model.buf("logits"));
      cur.snapshot = snap;
    }
    await prepare();
  };
  return steps;
}

/**
 * What a step records. `constrained`: a constrained request was still live when the step began;
 * once none is, the core runs plain steps (no mask phase at all).
 */
function expectedOrder(deviceSampling: boolean, replayed: boolean, masks: boolean, constrained: boolean): Seen[] {
  const head: Seen[] = [replayed ? "model.step:graph" : "model.step:eager", "forward_launched"];
  if (constrained) {
    head.push("masks_begin");
    if (masks) head.push("prepare");
    head.push("masks_end");
  }
  if (!deviceSampling) return [...head, "logits_read"];
  return [...head, "stage", "sampling_staged", "tail", "sampling_tail_launched", "readIds", "ids_read"];
}

/** Whether token t is allowed by bitmask row k. */
function allowed(b: TokenBitmaskBatch, k: number, t: number, words: number): boolean {
  return ((b.mask[k * words + (t >> 5)]! >>> (t & 31)) & 1) === 1;
}

function run(env: DeviceEnv, deviceSampling: boolean, ordinal: number) {
  const s = startEngine(env.engineOptions(GGUF_PATH, { deviceOrdinal: ordinal, enforceEager: false, maxNumSeqs: 8, deviceSampling }));
  started.push(s);
  expect(s.decodeGraphs).not.toBeNull();
  return s;
}

async function generate(s: StartedEngine): Promise<{ tokens: Map<string, number[]>; steps: StepRecord[]; constrainedLive: boolean[] }> {
  const core = new EngineCore(s, { maxNumSeqs: 8, maxWaiting: 64, servedModelName: null });
  const tok = s.opened.tokenizer;
  const prompts = ["Once upon a time", "The cat", "Lily and Ben", "One day"].map((t) => tok.encode(t, { addBos: true }));
  const reqs: GenerateRequest[] = prompts.map((p, i) => ({
    requestId: `q${i}`,
    promptTokenIds: p,
    params: {
      ...greedyParams(14),
      ignoreEos: false,
      // Two constrained rows, two free ones in the same batch.
      ...(i % 2 === 0 ? { structured: { type: "regex" as const, pattern: i === 0 ? "[a-z ]{3,40}\\." : "(yes|no), [a-z]+ [a-z ]+" } } : {}),
    },
  }));
  for (const r of reqs) await core.addAsync(r);
  const steps = instrument(s, core);
  const tokens = new Map<string, number[]>(reqs.map((r) => [r.requestId, []]));
  const perStep: Map<string, number>[] = [];
  const finished = new Set<string>();
  const constrainedLive: boolean[] = [];
  while (core.hasWork()) {
    constrainedLive.push(!finished.has("q0") || !finished.has("q2"));
    const ev = await core.stepAsync();
    for (const e of ev) if (e.finishReason !== null) finished.add(e.requestId);
    perStep.push(new Map(ev.filter((e) => e.tokenIds.length > 0).map((e) => [e.requestId, e.tokenIds[0]!])));
    for (const e of ev) tokens.get(e.requestId)!.push(...e.tokenIds);
  }
  // Every greedy row's token is the argmax of the logits seen when the masks began, over its allowed tokens.
  const V = s.model.cfg.vocabSize;
  const words = Math.ceil(V / 32);
  let checkedRows = 0;
  steps.forEach((st, k) => {
    if (!st.snapshot) return;
    st.requestIds.forEach((id, row) => {
      const got = perStep[k]!.get(id);
      if (got === undefined) return;
      const maskRow = st.bitmask ? [...st.bitmask.rows.subarray(0, st.bitmask.count)].indexOf(row) : -1;
      let best = -1;
      let bestV = Number.NEGATIVE_INFINITY;
      for (let t = 0; t < V; t++) {
        if (maskRow >= 0 && !allowed(st.bitmask!, maskRow, t, words)) continue;
        const v = st.snapshot![row * V + t]!;
        if (v > bestV) {
          bestV = v;
          best = t;
        }
      }
      expect({ step: k, id, token: got }).toEqual({ step: k, id, token: best });
      checkedRows++;
    });
  });
  expect(checkedRows).toBeGreaterThan(20);
  return { tokens, steps, constrainedLive };
}

describeDevices("a step launches the forward pass before computing grammar masks (stories260K)", (env) => {
  for (const deviceSampling of [true, false]) {
    test.skipIf(!HAVE_MODELS)(
      `${deviceSampling ? "device" : "host"} sampling: forward -> masks -> stage -> tail -> ids, graphs and eager steps`,
      async () => {
        const s = run(env, deviceSampling, deviceSampling ? 40 : 41);
        const { tokens, steps, constrainedLive } = await generate(s);
        let maskedReplays = 0;
        for (const [k, st] of steps.entries()) {
          const replayed = st.seen[0] === "model.step:graph";
          const masks = st.seen.includes("prepare");
          expect({ step: k, seen: st.seen }).toEqual({
            step: k,
            seen: expectedOrder(deviceSampling, replayed, masks, constrainedLive[k]!),
          });
          if (replayed && masks) maskedReplays++;
        }
        // What the overlap buys, shown (not asserted): host time spent on the masks after the
        // launch, and the wait from the masks' end to the ids (rest of the forward pass + tail).
        const masked = steps.filter((st) => st.seen.includes("prepare") && st.at.masks_end !== undefined);
        const mean = (f: (st: StepRecord) => number) => masked.reduce((a, st) => a + f(st), 0) / Math.max(1, masked.length);
        const end = deviceSampling ? "ids_read" : "logits_read";
        console.log(
          `[${env.device}, ${deviceSampling ? "device" : "host"} sampling] ${masked.length} masked steps: masks ` +
            `${mean((st) => st.at.masks_end! - st.at.forward_launched!).toFixed(3)} ms after the launch, then ` +
            `${mean((st) => st.at[end]! - st.at.masks_end!).toFixed(3)} ms to the ${end === "ids_read" ? "ids" : "logits"}`,
        );
        // Decode steps replayed graphs while their masks were computed.
        expect(maskedReplays).toBeGreaterThan(5);
        expect(s.decodeGraphs!.replays).toBeGreaterThanOrEqual(maskedReplays);
        // The constrained rows followed their grammars.
        const text = (id: string) => s.opened.tokenizer.decode(tokens.get(id)!);
        expect(text("q0")).toMatch(/^[a-z ]{3,40}\.?$/);
        expect(text("q2")).toMatch(/^(yes|no)/);
      },
      120_000,
    );
  }
});
