// The bounded workload shared by the HTTP client and the direct (in-process) baseline:
// `requests` requests, at most `concurrency` in flight, per-token arrival times recorded.

export interface BenchConfig {
  engine: "fake" | "real";
  /** Real engine: its own process (the server's default) or a Worker of this process. */
  engineMode: "process" | "worker";
  /** `headroom serve` flags for the real engine. */
  serveArgs: string[];
  fakeStepMs: number;
  concurrency: number;
  requests: number;
  maxTokens: number;
  prompt: string;
}

export interface RequestTiming {
  start: number;
  /** Arrival time of every chunk that carried tokens. */
  tokenTimes: number[];
  tokens: number;
  end: number;
  ok: boolean;
  error?: string;
}

export interface Summary {
  requests: number;
  failed: number;
  wall_s: number;
  requests_per_s: number;
  output_tokens: number;
  output_tokens_per_s: number;
  ttft_ms: Percentiles;
  itl_ms: Percentiles;
  e2e_ms: Percentiles;
  /** Mean over requests of (e2e − ttft) / (tokens − 1). */
  tpot_mean_ms: number;
  itl_mean_ms: number;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  mean: number;
}

export function percentiles(xs: number[]): Percentiles {
  if (xs.length === 0) return { p50: NaN, p90: NaN, p99: NaN, mean: NaN };
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

export async function runWorkload(cfg: BenchConfig, one: () => Promise<RequestTiming>): Promise<Summary> {
  const timings: RequestTiming[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(cfg.concurrency, cfg.requests) }, async () => {
      while (next < cfg.requests) {
        next++;
        try {
          timings.push(await one());
        } catch (e) {
          timings.push({ start: 0, tokenTimes: [], tokens: 0, end: 0, ok: false, error: e instanceof Error ? e.message : String(e) });
        }
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  const ok = timings.filter((t) => t.ok && t.tokenTimes.length > 0);
  const itl: number[] = [];
  const tpot: number[] = [];
  for (const t of ok) {
    for (let i = 1; i < t.tokenTimes.length; i++) itl.push(t.tokenTimes[i]! - t.tokenTimes[i - 1]!);
    if (t.tokens > 1) tpot.push((t.tokenTimes.at(-1)! - t.tokenTimes[0]!) / (t.tokens - 1));
  }
  const tokens = ok.reduce((a, t) => a + t.tokens, 0);
  const itlP = percentiles(itl);
  return {
    requests: timings.length,
    failed: timings.length - ok.length,
    wall_s: wall,
    requests_per_s: ok.length / wall,
    output_tokens: tokens,
    output_tokens_per_s: tokens / wall,
    ttft_ms: percentiles(ok.map((t) => t.tokenTimes[0]! - t.start)),
    itl_ms: itlP,
    e2e_ms: percentiles(ok.map((t) => t.end - t.start)),
    tpot_mean_ms: percentiles(tpot).mean,
    itl_mean_ms: itlP.mean,
  };
}
