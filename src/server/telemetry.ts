// The server's Prometheus metrics: HTTP counters/latencies observed by the server itself plus
// gauges filled from the engine (stats(), memory()) at scrape time.
import type { Engine, EngineStats } from "../engine/api.ts";
import { Counter, Gauge, Histogram, ITL_BUCKETS, LATENCY_BUCKETS, Registry } from "./prom.ts";
import { VllmMetrics } from "./vllm-metrics.ts";

/** Flattens numeric leaves of a JSON-like object: {a: {b: 1}} → [["a.b", 1]]. */
export function numericLeaves(v: unknown, prefix = "", out: [string, number][] = [], depth = 0): [string, number][] {
  if (depth > 6 || v === null || v === undefined) return out;
  if (typeof v === "number" && Number.isFinite(v)) out.push([prefix, v]);
  else if (typeof v === "bigint") out.push([prefix, Number(v)]);
  else if (typeof v === "object" && !Array.isArray(v))
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) numericLeaves(x, prefix ? `${prefix}.${k}` : k, out, depth + 1);
  return out;
}

const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9.]/g, "");

/**
 * Finds a value in flattened memory() leaves by preferred paths (normalized: case, `_`
 * ignored). The first candidate that matches the end of a path wins.
 */
export function pickLeaf(leaves: [string, number][], candidates: string[]): number | undefined {
  const normed = leaves.map(([p, v]) => [norm(p), v] as const);
  for (const c of candidates.map(norm)) {
    const hit = normed.find(([p]) => p === c || p.endsWith("." + c));
    if (hit) return hit[1];
  }
  return undefined;
}

export const RESERVED_KEYS = [
  "snapshot.allocator_reserved",
  "snapshot.reserved",
  "allocator.reserved_bytes",
  "allocator_reserved",
  "reserved_bytes.current",
  "reserved_bytes",
];
export const ALLOCATED_KEYS = [
  "snapshot.allocator_allocated",
  "snapshot.allocated",
  "allocator.allocated_bytes",
  "allocator_allocated",
  "allocated_bytes.current",
  "allocated_bytes",
];
export const GRAPH_KEYS = [
  "profile.cuda_graph",
  "profile.cuda_graph_bytes",
  "profile.graph_memory",
  "cuda_graph_memory",
  "cuda_graph",
  "graph_memory",
];

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = this.registry.add(new Counter("headroom_http_requests_total", "HTTP requests by route, method and status"));
  readonly requestLatency = this.registry.add(
    new Histogram(
      "headroom_http_request_duration_seconds",
      "Time to response headers by route (streams: to the first chunk)",
      LATENCY_BUCKETS,
    ),
  );
  readonly e2e = this.registry.add(
    new Histogram("headroom_e2e_request_latency_seconds", "Generation request latency, arrival to last token", LATENCY_BUCKETS),
  );
  readonly ttft = this.registry.add(
    new Histogram("headroom_time_to_first_token_seconds", "Arrival to first generated token", LATENCY_BUCKETS),
  );
  readonly itl = this.registry.add(
    new Histogram("headroom_inter_token_latency_seconds", "Time between consecutive generated tokens of a request", ITL_BUCKETS),
  );
  readonly promptTokens = this.registry.add(new Counter("headroom_prompt_tokens_total", "Prompt tokens of finished requests"));
  readonly generationTokens = this.registry.add(new Counter("headroom_generation_tokens_total", "Generated tokens"));
  readonly finishedReasons = this.registry.add(new Counter("headroom_request_success_total", "Finished sequences by finish_reason"));
  readonly rejected = this.registry.add(
    new Counter("headroom_requests_rejected_total", "Generation requests rejected by reason (queue_full, invalid, …)"),
  );
  readonly inflight = this.registry.add(new Gauge("headroom_http_inflight_sequences", "Sequences admitted by the server and not finished"));
  readonly engine = this.registry.add(
    new Gauge("headroom_engine_up", "1 when the engine is ready, 0 while starting, restarting or after it died"),
  );
  readonly restarts = this.registry.add(new Counter("headroom_engine_restarts_total", "Engine restarts after a crash, exception or hang"));
  readonly running = this.registry.add(new Gauge("headroom_num_requests_running", "Sequences running in the engine"));
  readonly waiting = this.registry.add(new Gauge("headroom_num_requests_waiting", "Sequences waiting in the engine"));
  readonly tokensPerSecond = this.registry.add(new Gauge("headroom_tokens_per_second", "Engine generation throughput (tokens/s)"));
  readonly kvBlocks = this.registry.add(new Gauge("headroom_kv_blocks", "KV cache blocks by state (total, used, free, cached)"));
  readonly kvUsage = this.registry.add(new Gauge("headroom_kv_cache_usage_ratio", "KV blocks used / total"));
  readonly prefixQueries = this.registry.add(new Counter("headroom_prefix_cache_queries_total", "Prefix-cache lookups (blocks)"));
  readonly prefixHits = this.registry.add(new Counter("headroom_prefix_cache_hits_total", "Prefix-cache hits (blocks)"));
  readonly preemptions = this.registry.add(
    new Counter("headroom_preemptions_total", "Sequences preempted (recompute) for lack of KV blocks"),
  );
  readonly steps = this.registry.add(new Counter("headroom_engine_steps_total", "Engine steps"));
  readonly reserved = this.registry.add(new Gauge("headroom_allocator_reserved_bytes", "Caching allocator reserved bytes"));
  readonly allocated = this.registry.add(new Gauge("headroom_allocator_allocated_bytes", "Caching allocator allocated bytes"));
  readonly graphMem = this.registry.add(new Gauge("headroom_cuda_graph_memory_bytes", "Measured CUDA-graph memory"));
  readonly memory = this.registry.add(
    new Gauge("headroom_memory", "Every numeric field of GET /v1/memory, by path (bytes unless the path says otherwise)"),
  );
  /** The same figures under vLLM's names (src/server/vllm-metrics.ts). */
  readonly vllm: VllmMetrics;

  /** `modelName`: the served model name for vLLM's model_name label (null while unknown); `maxModelLen` sizes vLLM's token-count buckets. */
  constructor(modelName: () => string | null = () => null, maxModelLen?: () => number) {
    this.vllm = new VllmMetrics(this.registry, modelName, maxModelLen);
  }

  /** A sequence's first generated token arrived `seconds` after the request did. */
  firstToken(seconds: number): void {
    this.ttft.observe(seconds);
    this.vllm.firstToken(seconds);
  }

  /** One generated token, `seconds` after the previous one. */
  interToken(seconds: number): void {
    this.itl.observe(seconds);
    this.vllm.interToken(seconds);
  }

  /** A sequence finished: `e2e` since arrival, `decode` since its first token. */
  finished(reason: string, e2eSeconds: number, decodeSeconds: number, generatedTokens: number, promptTokens: number): void {
    this.finishedReasons.inc({ finish_reason: reason });
    this.e2e.observe(e2eSeconds);
    this.vllm.finished(reason, e2eSeconds, decodeSeconds, generatedTokens, promptTokens);
  }

  /** Renders the exposition, refreshing engine-side gauges first (best effort). */
  async scrape(engine: Engine, inflight: number): Promise<string> {
    const health = engine.health();
    this.engine.set({}, health === "ready" ? 1 : 0);
    this.restarts.set({}, engine.restarts?.() ?? 0);
    this.inflight.set({}, inflight);
    if (health === "ready") {
      const timeout = <T>(p: Promise<T>) =>
        Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000))]).catch(() => undefined);
      const [stats, mem] = await Promise.all([timeout(engine.stats()), timeout(engine.memory())]);
      if (stats) this.applyStats(stats);
      if (mem) this.applyMemory(mem);
    }
    return this.registry.render();
  }

  applyStats(s: EngineStats): void {
    this.running.set({}, s.running);
    this.waiting.set({}, s.waiting);
    this.tokensPerSecond.set({}, s.tokensPerSecond);
    this.kvBlocks.set({ state: "total" }, s.blocksTotal);
    this.kvBlocks.set({ state: "used" }, s.blocksUsed);
    this.kvBlocks.set({ state: "free" }, s.blocksFree);
    this.kvBlocks.set({ state: "cached" }, s.blocksCached);
    this.kvUsage.set({}, s.blocksTotal > 0 ? s.blocksUsed / s.blocksTotal : 0);
    this.prefixQueries.set({}, s.prefixCacheQueries);
    this.prefixHits.set({}, s.prefixCacheHits);
    this.preemptions.set({}, s.preemptions);
    this.steps.set({}, s.steps);
    this.vllm.applyStats(s);
  }

  applyMemory(mem: Record<string, unknown>): void {
    const leaves = numericLeaves(mem);
    const r = pickLeaf(leaves, RESERVED_KEYS);
    const a = pickLeaf(leaves, ALLOCATED_KEYS);
    const g = pickLeaf(leaves, GRAPH_KEYS);
    if (r !== undefined) this.reserved.set({}, r);
    if (a !== undefined) this.allocated.set({}, a);
    if (g !== undefined) this.graphMem.set({}, g);
    this.memory.clear();
    for (const [path, v] of leaves.slice(0, 500)) this.memory.set({ path }, v);
  }
}
