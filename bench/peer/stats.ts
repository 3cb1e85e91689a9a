// The arithmetic of the peer benchmark, kept apart so it is tested (test/bench/peer-stats.test.ts):
// min/median/max over repetitions, headroom ÷ llama.cpp as the ratio of medians plus the range of
// the per-repetition (paired, same-moment) ratios, and where two greedy continuations diverge.
import { readFileSync } from "node:fs";

export interface Spread {
  n: number;
  min: number;
  median: number;
  max: number;
  samples: number[];
}

export function spread(xs: readonly number[]): Spread {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return { n: 0, min: NaN, median: NaN, max: NaN, samples: [...xs] };
  const m = s.length >> 1;
  const median = s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  return { n: s.length, min: s[0]!, median, max: s.at(-1)!, samples: [...xs] };
}

export type Better = "higher" | "lower";

export interface Comparison {
  metric: string;
  unit: string;
  better: Better;
  llama: Spread;
  headroom: Spread;
  /** headroom ÷ llama.cpp, medians. */
  ratio: number;
  /** min and max of headroom_i ÷ llama_i over the repetitions (each pair measured back to back). */
  pairedMin: number;
  pairedMax: number;
  /** true when headroom's median is the better one. */
  headroomBetter: boolean;
}

export function compare(metric: string, unit: string, better: Better, llama: readonly number[], headroom: readonly number[]): Comparison {
  const l = spread(llama),
    h = spread(headroom);
  const paired: number[] = [];
  for (let i = 0; i < Math.min(llama.length, headroom.length); i++) {
    const r = headroom[i]! / llama[i]!;
    if (Number.isFinite(r)) paired.push(r);
  }
  const p = spread(paired);
  const ratio = h.median / l.median;
  return {
    metric,
    unit,
    better,
    llama: l,
    headroom: h,
    ratio,
    pairedMin: p.min,
    pairedMax: p.max,
    headroomBetter: better === "higher" ? ratio > 1 : ratio < 1,
  };
}

export interface Agreement {
  /** Tokens compared (the shorter continuation). */
  compared: number;
  /** Index of the first differing token, null when all compared tokens agree. */
  divergeAt: number | null;
  /** At the divergence: each system's top-1 − top-2 logprob margin (a near tie when small). */
  margins?: { llama: number; headroom: number };
}

export function agreement(
  llama: readonly number[],
  headroom: readonly number[],
  llamaTop2?: readonly [number, number][],
  headroomTop2?: readonly [number, number][],
): Agreement {
  const n = Math.min(llama.length, headroom.length);
  for (let i = 0; i < n; i++) {
    if (llama[i] === headroom[i]) continue;
    const m = (t?: readonly [number, number][]) => (t?.[i] ? t[i]![0] - t[i]![1] : NaN);
    return { compared: n, divergeAt: i, margins: { llama: m(llamaTop2), headroom: m(headroomTop2) } };
  }
  return { compared: n, divergeAt: null };
}

export function describeAgreement(a: Agreement): string {
  if (a.divergeAt === null) return `agree (${a.compared}/${a.compared})`;
  const m = a.margins;
  const near =
    m && Number.isFinite(m.llama) ? `; top-2 margin there: llama.cpp ${m.llama.toFixed(3)}, headroom ${m.headroom.toFixed(3)} nats` : "";
  return `diverge at ${a.divergeAt} of ${a.compared}${near}`;
}

/** /proc/loadavg's 1-, 5- and 15-minute figures (NaN where unreadable). */
export function loadAverage(): [number, number, number] {
  try {
    const [a, b, c] = readFileSync("/proc/loadavg", "utf8").split(" ").map(Number);
    return [a ?? NaN, b ?? NaN, c ?? NaN];
  } catch {
    return [NaN, NaN, NaN];
  }
}

/** "1.23× (1.10–1.31)": ratio of medians, then the range of the paired ratios. */
export function fmtRatio(c: Comparison): string {
  if (!Number.isFinite(c.ratio)) return "–";
  const range = Number.isFinite(c.pairedMin) && c.llama.n > 1 ? ` (${c.pairedMin.toFixed(2)}–${c.pairedMax.toFixed(2)})` : "";
  return `${c.ratio.toFixed(2)}×${range}`;
}

export function fmtSpread(s: Spread, digits = 1): string {
  if (s.n === 0) return "–";
  if (s.n === 1) return s.median.toFixed(digits);
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}
