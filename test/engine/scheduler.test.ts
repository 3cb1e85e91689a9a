import { describe, expect, test } from "bun:test";
import { Request, type RequestInit } from "../../src/engine/request.ts";
import { SchedulerError, fillBlockTable, type SchedulerOutput } from "../../src/engine/scheduler.ts";
import { makeHarness, runAlone, runToCompletion, step } from "./fake-runner.ts";

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
let nextId = 0;
const uid = (p = "q") => `${p}${nextId++}`;

/** Checks an output's internal consistency (flat arrays vs per-request views). */
function checkOutput(o: SchedulerOutput, budget: number, maxSeqs: number) {
  expect(o.numScheduledTokens).toBeLessThanOrEqual(budget);
  expect(o.scheduled.length).toBeLessThanOrEqual(maxSeqs);
  expect(o.numPrefillTokens + o.numDecodeTokens).toBe(o.numScheduledTokens);
  expect(o.queryStartLoc[o.scheduled.length]).toBe(o.numScheduledTokens);
  o.scheduled.forEach((s, i) => {
    expect(s.numNewTokens).toBeGreaterThan(0);
    expect(o.queryStartLoc[i]).toBe(s.queryStart);
    expect(o.seqLens[i]).toBe(s.contextLen);
    expect(s.contextLen).toBe(s.numComputedBefore + s.numNewTokens);
    expect(Array.from(s.positions)).toEqual(range(s.numComputedBefore, s.contextLen));
    expect(Array.from(s.tokenIds)).toEqual(s.request.allTokenIds.slice(s.numComputedBefore, s.contextLen));
    if (s.needsLogits) {
      expect(o.logitsRequests[s.logitsRow]).toBe(s);
      expect(o.logitsIndices[s.logitsRow]).toBe(s.queryStart + s.numNewTokens - 1);
    }
  });
}

describe("Scheduler: batching", () => {
  test("chunked prefill respects the token budget; logits only on the last chunk", () => {
    const h = makeHarness({ numBlocks: 64, config: { maxNumBatchedTokens: 32 } });
    h.scheduler.addRequest(new Request({ requestId: "long", promptTokenIds: range(0, 100), sampling: { maxTokens: 3, temperature: 0 } }));
    const chunks: number[] = [];
    const logits: boolean[] = [];
    runToCompletion(h, 100, (o) => {
      checkOutput(o, 32, 256);
      for (const s of o.scheduled) {
        chunks.push(s.numNewTokens);
        logits.push(s.needsLogits);
      }
    });
    expect(chunks).toEqual([32, 32, 32, 4, 1, 1]);
    expect(logits).toEqual([false, false, false, true, true, true]);
    expect(h.kv.stats().usedBlocks).toBe(0);
  });

  test("decodes are scheduled first; prefills fill the rest of the budget; maxNumSeqs holds", () => {
    const h = makeHarness({ numBlocks: 128, config: { maxNumBatchedTokens: 20, maxNumSeqs: 3 } });
    h.scheduler.addRequest(new Request({ requestId: "a", promptTokenIds: range(0, 10), sampling: { maxTokens: 50, temperature: 0 } }));
    h.scheduler.addRequest(new Request({ requestId: "b", promptTokenIds: range(0, 8), sampling: { maxTokens: 50, temperature: 0 } }));
    let o = step(h).out;
    expect(o.scheduled.map((s) => [s.requestId, s.numNewTokens])).toEqual([
      ["a", 10],
      ["b", 8],
    ]);
    h.scheduler.addRequest(new Request({ requestId: "c", promptTokenIds: range(0, 60), sampling: { maxTokens: 5, temperature: 0 } }));
    h.scheduler.addRequest(new Request({ requestId: "d", promptTokenIds: range(0, 5), sampling: { maxTokens: 5, temperature: 0 } }));
    o = step(h).out;
    // a, b decode (1 each), c takes the remaining 18; d must wait (3 seats)
    expect(o.scheduled.map((s) => [s.requestId, s.numNewTokens, s.isDecode])).toEqual([
      ["a", 1, true],
      ["b", 1, true],
      ["c", 18, false],
    ]);
    expect(o.numDecodeTokens).toBe(2);
    expect(o.numPrefillTokens).toBe(18);
    o = step(h).out;
    expect(o.scheduled.map((s) => [s.requestId, s.numNewTokens])).toEqual([
      ["a", 1],
      ["b", 1],
      ["c", 18],
    ]);
    expect(h.scheduler.numWaiting).toBe(1);
    checkOutput(o, 20, 3);
  });

  test("static block table helper pads rows", () => {
    const h = makeHarness({ numBlocks: 16, blockSize: 4 });
    h.scheduler.addRequest(new Request({ requestId: uid(), promptTokenIds: range(0, 9), sampling: { maxTokens: 2 } }));
    h.scheduler.addRequest(new Request({ requestId: uid(), promptTokenIds: range(0, 3), sampling: { maxTokens: 2 } }));
    const o = h.scheduler.schedule();
    const t = fillBlockTable(o, 4, undefined, -1);
    expect(Array.from(t)).toEqual([0, 1, 2, -1, 3, -1, -1, -1]);
    expect(() => fillBlockTable(o, 2)).toThrow();
  });

  test("a repeated prompt is served from the prefix cache", () => {
    const h = makeHarness({ numBlocks: 64 });
    const prompt = range(1, 50);
    h.scheduler.addRequest(new Request({ requestId: "p1", promptTokenIds: prompt, sampling: { maxTokens: 4, temperature: 0 } }));
    const first = runToCompletion(h).get("p1")!;
    h.scheduler.addRequest(new Request({ requestId: "p2", promptTokenIds: prompt, sampling: { maxTokens: 4, temperature: 0 } }));
    const o = step(h).out;
    expect(o.scheduled[0]!.numComputedBefore).toBe(48);
    expect(o.scheduled[0]!.numNewTokens).toBe(1);
    const second = runToCompletion(h).get("p2")!;
    expect(first.outputs.at(-1)!.numCachedTokens).toBe(0);
    expect(second.outputs.at(-1)!.numCachedTokens).toBe(48);
    expect(second.tokens.length).toBe(3); // one came from the step above
    const s = h.kv.stats();
    expect(s.prefixCacheQueries).toBe(98);
    expect(s.prefixCacheHits).toBe(48);
  });
});

describe("Scheduler: preemption", () => {
  for (const [name, sampling, prefixCaching] of [
    ["greedy", { temperature: 0 }, true],
    ["seeded sampling", { temperature: 0.9, topP: 0.9, topK: 40, repetitionPenalty: 1.1 }, true],
    ["greedy, no prefix caching", { temperature: 0 }, false],
  ] as const) {
    test(`32 requests, tiny pool, chunked prefill, mixed lengths: each equals running alone (${name})`, () => {
      const bs = 4;
      const inits: RequestInit[] = [];
      const shared = range(7, 27);
      for (let i = 0; i < 32; i++) {
        const len = 3 + ((i * 7) % 23);
        const prompt = i % 3 === 0 ? [...shared, ...range(i, i + len)] : range(i * 5, i * 5 + len).map((t) => t % 97);
        inits.push({ requestId: `pre${i}`, promptTokenIds: prompt, sampling: { ...sampling, seed: 1000 + i, maxTokens: 6 + (i % 9) } });
      }
      const ref = new Map(inits.map((r) => [r.requestId, runAlone(r, bs)]));
      const h = makeHarness({ numBlocks: 20, blockSize: bs, prefixCaching, config: { maxNumBatchedTokens: 24, maxNumSeqs: 8 } });
      let preemptions = 0;
      let maxUsed = 0;
      // staggered arrivals
      let added = 0;
      const done = new Map<string, number[]>();
      let steps = 0;
      while (added < inits.length || h.scheduler.hasUnfinishedRequests()) {
        if (added < inits.length && steps % 2 === 0) {
          for (let k = 0; k < 3 && added < inits.length; k++) h.scheduler.addRequest(new Request(inits[added++]!));
        }
        const { out, results } = step(h);
        checkOutput(out, 24, 8);
        preemptions += out.preemptedRequestIds.length;
        maxUsed = Math.max(maxUsed, h.kv.stats().usedBlocks);
        for (const r of results) done.set(r.requestId, [...(done.get(r.requestId) ?? []), ...r.newTokenIds]);
        if (++steps > 5000) throw new Error("no progress");
      }
      expect(preemptions).toBeGreaterThan(0);
      expect(maxUsed).toBeLessThanOrEqual(20);
      for (const [id, f] of ref) expect(done.get(id)).toEqual(f.tokens);
      const s = h.kv.stats();
      expect(s.usedBlocks).toBe(0);
      expect(s.freeBlocks).toBe(20);
      expect(h.scheduler.stats().numPreemptions).toBe(preemptions);
      if (prefixCaching) expect(s.prefixCacheHits).toBeGreaterThan(0);
    });
  }

  test("the fake runner notices a corrupted block table (the oracle is sensitive)", () => {
    const h = makeHarness({ numBlocks: 16, blockSize: 4 });
    for (let i = 0; i < 3; i++) {
      h.scheduler.addRequest(
        new Request({ requestId: `c${i}`, promptTokenIds: range(i * 10, i * 10 + 9), sampling: { maxTokens: 4, temperature: 0 } }),
      );
    }
    step(h);
    const out = h.scheduler.schedule();
    const bt = out.scheduled[1]!.blockTable;
    [bt[0], bt[1]] = [bt[1]!, bt[0]!];
    expect(() => h.runner.execute(out)).toThrow(/holds position/);
  });

  test("the latest-arrived request is the one preempted; it resumes at the queue front", () => {
    const bs = 4;
    const h = makeHarness({ numBlocks: 6, blockSize: bs, prefixCaching: false, config: { maxNumBatchedTokens: 64 } });
    h.scheduler.addRequest(
      new Request({ requestId: "old", promptTokenIds: range(0, 8), sampling: { maxTokens: 12, temperature: 0, ignoreEos: true } }),
    );
    h.scheduler.addRequest(
      new Request({ requestId: "new", promptTokenIds: range(20, 28), sampling: { maxTokens: 12, temperature: 0, ignoreEos: true } }),
    );
    const seen: string[][] = [];
    let firstPreempt: string[] | null = null;
    let waitingAfter: string[] = [];
    runToCompletion(h, 1000, (o) => {
      seen.push(o.scheduled.map((s) => s.requestId));
      if (firstPreempt === null && o.preemptedRequestIds.length > 0) {
        firstPreempt = o.preemptedRequestIds;
        waitingAfter = h.scheduler.waitingRequestIds();
      }
    });
    expect(firstPreempt!).toEqual(["new"]);
    expect(waitingAfter[0]).toBe("new");
    // the preempted request recomputes prompt + generated tokens in one chunk when it resumes
    const resumed = seen.findIndex((ids, i) => i > 0 && ids.includes("new") && !seen[i - 1]!.includes("new"));
    expect(resumed).toBeGreaterThan(0);
    expect(h.kv.stats().usedBlocks).toBe(0);
  });
});

describe("Scheduler: abort", () => {
  test("abort frees blocks at once, for running and waiting requests, even between schedule and update", () => {
    const h = makeHarness({ numBlocks: 32, config: { maxNumSeqs: 1 } });
    h.scheduler.addRequest(new Request({ requestId: "x", promptTokenIds: range(0, 40), sampling: { maxTokens: 100 } }));
    h.scheduler.addRequest(new Request({ requestId: "y", promptTokenIds: range(0, 10), sampling: { maxTokens: 100 } }));
    step(h);
    expect(h.kv.stats().usedBlocks).toBe(3);
    const out = h.scheduler.schedule();
    const a = h.scheduler.abort("x")!;
    expect(a.finished).toBe(true);
    expect(a.finishReason).toBe("abort");
    expect(h.kv.stats().usedBlocks).toBe(0);
    const lg = h.runner.execute(out);
    const res = h.scheduler.update(
      out,
      h.sampler
        .sample(
          lg.logits,
          lg.vocabSize,
          out.logitsRequests.map((s) => s.request),
        )
        .map((s) => s.tokenId),
    );
    expect(res).toEqual([]); // x skipped
    expect(h.scheduler.abort("x")).toBeNull();
    expect(h.scheduler.abort("nope")).toBeNull();
    expect(h.scheduler.abort("y")!.finishReason).toBe("abort"); // was waiting
    expect(h.scheduler.hasUnfinishedRequests()).toBe(false);
    const o2 = h.scheduler.schedule();
    expect(o2.finishedRequestIds.sort()).toEqual(["x", "y"]);
    expect(o2.scheduled.length).toBe(0);
  });
});

describe("Scheduler: stop conditions", () => {
  const V = 97;
  test("maxTokens → length", () => {
    const f = runAlone({ requestId: uid(), promptTokenIds: [1, 2, 3], sampling: { maxTokens: 7, temperature: 0 } });
    expect(f.tokens.length).toBe(7);
    expect(f.finishReason).toBe("length");
  });

  test("stop token ids and EOS end with 'stop' (token kept); ignoreEos and minTokens", () => {
    const base = runAlone({ requestId: uid(), promptTokenIds: [5, 6, 7], sampling: { maxTokens: 30, temperature: 0 } });
    expect(base.tokens.length).toBe(30);
    const t3 = base.tokens[3]!;
    const firstIdx = base.tokens.indexOf(t3);
    const s = runAlone({ requestId: uid(), promptTokenIds: [5, 6, 7], sampling: { maxTokens: 30, temperature: 0, stopTokenIds: [t3] } });
    expect(s.tokens).toEqual(base.tokens.slice(0, firstIdx + 1));
    expect(s.finishReason).toBe("stop");
    expect(s.stopReason).toBe(t3);
    const e = runAlone({ requestId: uid(), promptTokenIds: [5, 6, 7], eosTokenId: t3, sampling: { maxTokens: 30, temperature: 0 } });
    expect(e.tokens).toEqual(base.tokens.slice(0, firstIdx + 1));
    expect(e.finishReason).toBe("stop");
    expect(e.stopReason).toBeNull();
    const ig = runAlone({
      requestId: uid(),
      promptTokenIds: [5, 6, 7],
      eosTokenId: t3,
      sampling: { maxTokens: 30, temperature: 0, ignoreEos: true },
    });
    expect(ig.tokens).toEqual(base.tokens);
    // minTokens: the stop token is masked by the sampler until minTokens tokens exist
    const mt = runAlone({
      requestId: uid(),
      promptTokenIds: [5, 6, 7],
      eosTokenId: t3,
      sampling: { maxTokens: 30, temperature: 0, minTokens: firstIdx + 2 },
    });
    expect(mt.tokens.length).toBeGreaterThanOrEqual(firstIdx + 2);
    expect(mt.tokens.slice(0, firstIdx + 2)).not.toContain(t3);
  });

  test("maxModelLen caps prompt + output; over-long prompts and hopeless requests are refused", () => {
    const f = runAlone({ requestId: uid(), promptTokenIds: range(0, 10), sampling: { maxTokens: 100, temperature: 0 } }, 16, V, 16);
    expect(f.tokens.length).toBe(6);
    expect(f.finishReason).toBe("length");
    const h = makeHarness({ numBlocks: 4, blockSize: 4, config: { maxModelLen: 32, maxWaitingRequests: 2 } });
    const err = (fn: () => void): SchedulerError => {
      try {
        fn();
      } catch (e) {
        if (e instanceof SchedulerError) return e;
        throw e;
      }
      throw new Error("expected a SchedulerError");
    };
    expect(err(() => h.scheduler.addRequest(new Request({ requestId: uid(), promptTokenIds: range(0, 32) }))).code).toBe("invalid_request");
    // needs 20 tokens of KV = 5 blocks > 4
    expect(
      err(() => h.scheduler.addRequest(new Request({ requestId: uid(), promptTokenIds: range(0, 10), sampling: { maxTokens: 11 } }))).code,
    ).toBe("invalid_request");
    h.scheduler.addRequest(new Request({ requestId: "w1", promptTokenIds: [1] }));
    expect(err(() => h.scheduler.addRequest(new Request({ requestId: "w1", promptTokenIds: [1] }))).code).toBe("duplicate_request");
    h.scheduler.addRequest(new Request({ requestId: "w2", promptTokenIds: [1] }));
    expect(h.scheduler.canAcceptRequest()).toBe(false);
    expect(err(() => h.scheduler.addRequest(new Request({ requestId: "w3", promptTokenIds: [1] }))).code).toBe("queue_full");
  });
});

describe("Scheduler: prompt logprob rows", () => {
  test("every prompt position gets one row, chunks capped so rows fit next to other requests; no prefix-cache skip", () => {
    const h = makeHarness({ numBlocks: 64, blockSize: 4, prefixCaching: true, config: { maxNumSeqs: 4, maxNumBatchedTokens: 64 } });
    // Warm the prefix cache with the same prompt: the prompt-logprob request must not use it.
    h.scheduler.addRequest(new Request({ requestId: "warm", promptTokenIds: range(1, 21), sampling: { maxTokens: 1, temperature: 0 } }));
    runToCompletion(h);
    h.scheduler.addRequest(
      new Request({ requestId: "p", promptTokenIds: range(1, 21), sampling: { maxTokens: 2, temperature: 0, promptLogprobs: 1 } }),
    );
    h.scheduler.addRequest(new Request({ requestId: "other", promptTokenIds: range(30, 33), sampling: { maxTokens: 4, temperature: 0 } }));
    const positions: number[] = [];
    let first: RequestOutputLike | null = null;
    type RequestOutputLike = { promptLogprobs?: unknown[] };
    for (let i = 0; i < 50 && h.scheduler.hasUnfinishedRequests(); i++) {
      const { out, results } = step(h, (o) => {
        checkOutput(o, 64, 4);
        expect(o.logitsIndices.length).toBe(o.logitsRequests.length + o.promptLogprobRows.length);
        expect(o.logitsIndices.length).toBeLessThanOrEqual(4); // the arena's rows
        for (const [j, row] of o.promptLogprobRows.entries()) {
          const sr = o.scheduled.find((s) => s.request === row.request)!;
          expect(o.logitsIndices[o.logitsRequests.length + j]).toBe(sr.queryStart + row.position - sr.numComputedBefore);
          positions.push(row.position);
        }
      });
      void out;
      for (const r of results) if (r.requestId === "p" && r.promptLogprobs && !first) first = r;
    }
    expect(positions).toEqual(range(0, 19)); // positions 0..18 score prompt tokens 1..19
    expect(first?.promptLogprobs).toBeDefined(); // sent once, with the first output (the engine core fills the values)
    expect(h.scheduler.getRequest("p")).toBeUndefined();
  });

  test("refused without chunked prefill", () => {
    const h = makeHarness({ numBlocks: 64, config: { enableChunkedPrefill: false, maxNumBatchedTokens: 4096, maxModelLen: 4096 } });
    expect(() =>
      h.scheduler.addRequest(new Request({ requestId: uid(), promptTokenIds: [1, 2], sampling: { promptLogprobs: 0 } })),
    ).toThrow(SchedulerError);
  });
});
