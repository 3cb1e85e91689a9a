// The periodic stats line (--stats-interval seconds, as vLLM's "Avg prompt throughput: …" line):
// prompt and generation throughput over the interval, running and waiting sequences, KV cache
// usage and the prefix-cache hit rate. Written only while something happens: a line when
// tokens flowed or sequences are running/waiting, plus one line after activity stops (so the
// last figures read 0 tokens/s); an idle server stays quiet.
import type { Engine, EngineStats } from "../engine/api.ts";
import type { Logger } from "./log.ts";

export interface StatsLine {
  prompt_tokens_per_s: number;
  generation_tokens_per_s: number;
  running: number;
  waiting: number;
  kv_cache_usage_pct: number;
  /** Over the interval's prefix-cache queries; the cumulative rate when there were none. */
  prefix_cache_hit_rate_pct: number;
  interval_s: number;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

export function statsText(s: StatsLine): string {
  return (
    `Avg prompt throughput: ${s.prompt_tokens_per_s.toFixed(1)} tokens/s, ` +
    `Avg generation throughput: ${s.generation_tokens_per_s.toFixed(1)} tokens/s, ` +
    `Running: ${s.running} reqs, Waiting: ${s.waiting} reqs, ` +
    `KV cache usage: ${s.kv_cache_usage_pct.toFixed(1)}%, ` +
    `Prefix cache hit rate: ${s.prefix_cache_hit_rate_pct.toFixed(1)}%`
  );
}

export class StatsLogger {
  private prev: { t: number; s: EngineStats } | null = null;
  private wasActive = false;
  private timer: ReturnType<typeof setInterval> | null = null;
  private busy = false;

  constructor(
    private readonly engine: Engine,
    private readonly log: Logger,
    private readonly intervalS: number,
  ) {}

  start(): void {
    if (this.intervalS <= 0 || this.timer !== null) return;
    this.timer = setInterval(() => void this.tick(), this.intervalS * 1000);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Reads the engine's stats; returns the line written (null when quiet or not ready). */
  async tick(now = performance.now()): Promise<StatsLine | null> {
    if (this.busy || this.engine.health() !== "ready") return null;
    this.busy = true;
    try {
      const s = await this.engine.stats();
      const prev = this.prev;
      this.prev = { t: now, s };
      if (prev === null) return null; // the first reading is the baseline
      const dt = (now - prev.t) / 1000;
      if (dt <= 0) return null;
      const queries = s.prefixCacheQueries - prev.s.prefixCacheQueries;
      const hits = s.prefixCacheHits - prev.s.prefixCacheHits;
      const line: StatsLine = {
        prompt_tokens_per_s: round1(Math.max(0, s.promptTokens - prev.s.promptTokens) / dt),
        generation_tokens_per_s: round1(Math.max(0, s.generatedTokens - prev.s.generatedTokens) / dt),
        running: s.running,
        waiting: s.waiting,
        kv_cache_usage_pct: round1(s.blocksTotal > 0 ? (100 * s.blocksUsed) / s.blocksTotal : 0),
        prefix_cache_hit_rate_pct: round1(100 * (queries > 0 ? hits / queries : s.prefixCacheHitRate)),
        interval_s: Math.round(dt * 1000) / 1000,
      };
      const active = line.prompt_tokens_per_s > 0 || line.generation_tokens_per_s > 0 || line.running > 0 || line.waiting > 0;
      const write = active || this.wasActive;
      this.wasActive = active;
      if (!write) return null;
      this.log.info(statsText(line), { event: "stats", ...line });
      return line;
    } catch {
      return null; // the engine went away mid-read: health() reports that elsewhere
    } finally {
      this.busy = false;
    }
  }
}
