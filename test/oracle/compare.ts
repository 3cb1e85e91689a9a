// The comparison rule between two greedy continuations with top-k log-probabilities per step.
//
// Tokens must be equal step by step. Where they first differ, the divergence is accepted only as
// a near-tie: llama.cpp's own top-2 log-probability gap at that step must be below `tieGap`
// (then nothing after it is compared, since the two runs continue from different text); any other
// difference fails. At every compared step, each token in one side's top-k must be in the other
// side's top-k with |Δ logprob| <= `tol`, unless it sits within `tol` of the other side's k-th
// value (a near-tie at the edge of the list).

export interface TopEntry {
  tokenId: number;
  logprob: number;
}

export interface Continuation {
  tokens: number[];
  /** Per step: the top-k entries, highest first. */
  top: TopEntry[][];
}

export interface Comparison {
  /** Steps whose tokens were compared equal (before any accepted near-tie divergence). */
  stepsCompared: number;
  /** Step of an accepted near-tie divergence, null when all steps agreed. */
  divergedAt: number | null;
  /** Largest |Δ logprob| over the top-k entries present on both sides at the compared steps. */
  maxLogprobDelta: number;
  /** Smallest llama.cpp top-1/top-2 gap over the compared steps (how well separated the path was). */
  minTopGap: number;
  /** Failures, human-readable; empty when the runs agree under the rule. */
  problems: string[];
}

function gap(row: TopEntry[]): number {
  return row.length >= 2 ? row[0]!.logprob - row[1]!.logprob : Number.POSITIVE_INFINITY;
}

function compareTop(step: number, a: TopEntry[], b: TopEntry[], tol: number, problems: string[]): number {
  let maxDelta = 0;
  const check = (x: TopEntry[], y: TopEntry[], xs: string, ys: string) => {
    const inY = new Map(y.map((e) => [e.tokenId, e.logprob]));
    const yLast = y.length ? y[y.length - 1]!.logprob : Number.NEGATIVE_INFINITY;
    for (const e of x) {
      const other = inY.get(e.tokenId);
      if (other !== undefined) maxDelta = Math.max(maxDelta, Math.abs(other - e.logprob));
      else if (e.logprob > yLast + tol) {
        problems.push(
          `step ${step}: token ${e.tokenId} (logprob ${e.logprob.toFixed(5)} in ${xs}) missing from ${ys}'s top-${y.length} (last ${yLast.toFixed(5)})`,
        );
      }
    }
  };
  check(a, b, "llama.cpp", "headroom");
  check(b, a, "headroom", "llama.cpp");
  return maxDelta;
}

/** `ref` is llama.cpp's continuation, `got` headroom's. */
export function compareContinuations(ref: Continuation, got: Continuation, tol: number, tieGap: number): Comparison {
  const problems: string[] = [];
  let maxLogprobDelta = 0;
  let minTopGap = Number.POSITIVE_INFINITY;
  let divergedAt: number | null = null;
  const n = Math.min(ref.tokens.length, got.tokens.length);
  if (ref.tokens.length !== got.tokens.length)
    problems.push(`lengths differ: llama.cpp ${ref.tokens.length}, headroom ${got.tokens.length}`);
  let i = 0;
  for (; i < n; i++) {
    const r = ref.top[i] ?? [];
    if (ref.tokens[i] !== got.tokens[i]) {
      const g = gap(r);
      if (g < tieGap) divergedAt = i;
      else {
        problems.push(
          `step ${i}: llama.cpp chose ${ref.tokens[i]}, headroom ${got.tokens[i]}; llama.cpp's top-2 gap ${g.toFixed(5)} is not a near-tie (< ${tieGap})`,
        );
      }
      break;
    }
    minTopGap = Math.min(minTopGap, gap(r));
    maxLogprobDelta = Math.max(maxLogprobDelta, compareTop(i, r, got.top[i] ?? [], tol, problems));
  }
  if (maxLogprobDelta > tol) problems.push(`max |Δ logprob| ${maxLogprobDelta.toExponential(3)} exceeds the tolerance ${tol}`);
  return { stepsCompared: i, divergedAt, maxLogprobDelta, minTopGap, problems };
}
