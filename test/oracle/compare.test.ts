// The comparison rule itself (compare.ts) on hand-made continuations: what it accepts and what it
// must reject. Needs neither llama.cpp nor a model.
import { describe, expect, test } from "bun:test";

import { type Continuation, compareContinuations } from "./compare.ts";

/** A continuation whose step i has top entries [token, logprob] as given. */
function cont(steps: [number, number][][]): Continuation {
  return { tokens: steps.map((s) => s[0]![0]), top: steps.map((s) => s.map(([tokenId, logprob]) => ({ tokenId, logprob }))) };
}

const REF = cont([
  [
    [5, -0.1],
    [7, -2.5],
    [9, -4.0],
  ],
  [
    [3, -0.5],
    [4, -0.505],
    [8, -3.0],
  ],
  [
    [1, -0.2],
    [2, -3.0],
    [6, -3.5],
  ],
]);

describe("compareContinuations", () => {
  test("identical continuations agree with zero delta", () => {
    const r = compareContinuations(REF, REF, 1e-4, 2e-4);
    expect(r).toMatchObject({ stepsCompared: 3, divergedAt: null, maxLogprobDelta: 0, problems: [] });
    expect(r.minTopGap).toBeCloseTo(0.005, 9);
  });

  test("small logprob deltas within the tolerance pass and are reported", () => {
    const got = cont([
      [
        [5, -0.10005],
        [7, -2.5],
        [9, -4.00002],
      ],
      [
        [3, -0.5],
        [4, -0.505],
        [8, -3.0],
      ],
      [
        [1, -0.2],
        [2, -3.0],
        [6, -3.5],
      ],
    ]);
    const r = compareContinuations(REF, got, 1e-4, 2e-4);
    expect(r.problems).toEqual([]);
    expect(r.maxLogprobDelta).toBeCloseTo(5e-5, 9);
  });

  test("a delta above the tolerance fails", () => {
    const got = cont([
      [
        [5, -0.1],
        [7, -2.5003],
        [9, -4.0],
      ],
      [
        [3, -0.5],
        [4, -0.505],
        [8, -3.0],
      ],
      [
        [1, -0.2],
        [2, -3.0],
        [6, -3.5],
      ],
    ]);
    const r = compareContinuations(REF, got, 1e-4, 2e-4);
    expect(r.problems.join("\n")).toMatch(/exceeds the tolerance/);
  });

  test("a different token where llama.cpp's top-2 gap is wide fails", () => {
    const got = cont([
      [
        [7, -0.1],
        [5, -2.5],
        [9, -4.0],
      ],
      [
        [3, -0.5],
        [4, -0.505],
        [8, -3.0],
      ],
      [
        [1, -0.2],
        [2, -3.0],
        [6, -3.5],
      ],
    ]);
    const r = compareContinuations(REF, got, 1e-4, 2e-4);
    expect(r.stepsCompared).toBe(0);
    expect(r.problems.join("\n")).toMatch(/step 0: llama.cpp chose 5, headroom 7.*not a near-tie/);
  });

  test("a different token at a near-tie ends the comparison without failing", () => {
    const got = cont([
      [
        [5, -0.1],
        [7, -2.5],
        [9, -4.0],
      ],
      [
        [4, -0.5],
        [3, -0.5001],
        [8, -3.0],
      ],
      [
        [2, -0.1],
        [1, -3.0],
        [6, -3.5],
      ],
    ]);
    const r = compareContinuations(REF, got, 1e-2, 2e-2);
    expect(r).toMatchObject({ stepsCompared: 1, divergedAt: 1, problems: [] });
  });

  test("a token missing from the other side's top-k fails unless it sits at the edge", () => {
    const missing = cont([
      [
        [5, -0.1],
        [7, -2.5],
        [11, -3.9],
      ],
      [
        [3, -0.5],
        [4, -0.505],
        [8, -3.0],
      ],
      [
        [1, -0.2],
        [2, -3.0],
        [6, -3.5],
      ],
    ]);
    expect(compareContinuations(REF, missing, 1e-4, 2e-4).problems.join("\n")).toMatch(/token 11 .* in headroom.* missing from llama.cpp/);
    // 9 at -4.0 and 11 at -4.00005 swap places at the edge of the list: within the tolerance.
    const edge = cont([
      [
        [5, -0.1],
        [7, -2.5],
        [11, -3.99995],
      ],
      [
        [3, -0.5],
        [4, -0.505],
        [8, -3.0],
      ],
      [
        [1, -0.2],
        [2, -3.0],
        [6, -3.5],
      ],
    ]);
    expect(compareContinuations(REF, edge, 1e-4, 2e-4).problems).toEqual([]);
  });

  test("different lengths fail", () => {
    const short: Continuation = { tokens: REF.tokens.slice(0, 2), top: REF.top.slice(0, 2) };
    expect(compareContinuations(REF, short, 1e-4, 2e-4).problems.join("\n")).toMatch(/lengths differ/);
  });
});
