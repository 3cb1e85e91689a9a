// vLLM-compatible metrics on /metrics, next to headroom_*: the names, types, label names and
// histogram buckets of vLLM v1 (vllm/v1/metrics/loggers.py, PrometheusStatLogger), so vLLM's
// Grafana dashboards and Kubernetes inference gateways (which pick endpoints by
// vllm:num_requests_waiting and vllm:kv_cache_usage_perc) work unchanged. Every series carries
// model_name (the served model name) and engine="0", as vLLM's do.
//
// Sources: gauges and token/prefix/preemption counters come from the engine's stats at scrape
// time (engine-side figures, as in vLLM: prompt tokens count every sequence admitted);
// latency histograms and finished-request counts are observed by the server as tokens stream.
import type { EngineStats } from "../engine/api.ts";
import { Counter, Gauge, Histogram, type Registry } from "./prom.ts";

export const VLLM_TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
] as const;
/** vllm:inter_token_latency_seconds, vllm:time_per_output_token_seconds, vllm:request_time_per_output_token_seconds. */
export const VLLM_TPOT_BUCKETS = [
  0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
] as const;
export const VLLM_REQUEST_LATENCY_BUCKETS = [
  0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
] as const;
/** vLLM's build_1_2_5_buckets: 1, 2, 5, 10, 20, 50, … up to max (token-count histograms). */
export function buckets125(max: number): number[] {
  const out: number[] = [];
  for (let e = 1; ; e *= 10)
    for (const m of [1, 2, 5]) {
      if (m * e > max) return out;
      out.push(m * e);
    }
}

/** vLLM creates a request_success series per finish reason up front. */
const FINISH_REASONS = ["stop", "length", "abort"] as const;

type Labels = { model_name: string; engine: string };

export class VllmMetrics {
  readonly running: Gauge;
  readonly waiting: Gauge;
  readonly kvUsage: Gauge;
  /** Deprecated in vLLM 0.9 (renamed vllm:kv_cache_usage_perc) but still what older gateways read. */
  readonly gpuCacheUsage: Gauge;
  readonly prefixQueries: Counter;
  readonly prefixHits: Counter;
  readonly promptTokens: Counter;
  readonly generationTokens: Counter;
  readonly preemptions: Counter;
  readonly requestSuccess: Counter;
  readonly ttft: Histogram;
  /** Current vLLM's name for the time between consecutive tokens … */
  readonly itl: Histogram;
  /** … and the older name of the same observations, which existing dashboards still query. */
  readonly tpot: Histogram;
  readonly requestTpot: Histogram;
  readonly e2e: Histogram;
  /** Per-sequence token counts; their buckets depend on max_model_len, known once the engine is ready. */
  private tokenHists: { prompt: Histogram; generation: Histogram } | null = null;
  private touched: string | null = null;

  /**
   * `modelName`: the served model name, or null while it is not known (engine starting);
   * `maxModelLen`: the context length, read with the first known model name.
   */
  constructor(
    private readonly registry: Registry,
    private readonly modelName: () => string | null,
    private readonly maxModelLen: () => number = () => 2048,
  ) {
    const r = registry;
    this.running = r.add(new Gauge("vllm:num_requests_running", "Number of requests in model execution batches."));
    this.waiting = r.add(new Gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed."));
    this.gpuCacheUsage = r.add(
      new Gauge(
        "vllm:gpu_cache_usage_perc",
        "GPU KV-cache usage. 1 means 100 percent usage. DEPRECATED: Use vllm:kv_cache_usage_perc instead.",
      ),
    );
    this.kvUsage = r.add(new Gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage."));
    this.prefixQueries = r.add(
      new Counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.", true),
    );
    this.prefixHits = r.add(new Counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.", true));
    this.preemptions = r.add(new Counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine.", true));
    this.promptTokens = r.add(new Counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", true));
    this.generationTokens = r.add(new Counter("vllm:generation_tokens_total", "Number of generation tokens processed.", true));
    this.requestSuccess = r.add(new Counter("vllm:request_success_total", "Count of successfully processed requests.", true));
    this.ttft = r.add(new Histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", VLLM_TTFT_BUCKETS));
    this.itl = r.add(new Histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", VLLM_TPOT_BUCKETS));
    this.tpot = r.add(
      new Histogram(
        "vllm:time_per_output_token_seconds",
        "Histogram of time per output token in seconds. (Same observations as vllm:inter_token_latency_seconds.)",
        VLLM_TPOT_BUCKETS,
      ),
    );
    this.requestTpot = r.add(
      new Histogram(
        "vllm:request_time_per_output_token_seconds",
        "Histogram of time_per_output_token_seconds per request.",
        VLLM_TPOT_BUCKETS,
      ),
    );
    this.e2e = r.add(
      new Histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", VLLM_REQUEST_LATENCY_BUCKETS),
    );
  }

  /** The label set, creating every series at zero the first time the model name is known. */
  private labels(): Labels | null {
    const name = this.modelName();
    if (name === null) return null;
    const l = { model_name: name, engine: "0" };
    if (this.touched !== name) {
      this.touched = name;
      for (const c of [this.prefixQueries, this.prefixHits, this.preemptions, this.promptTokens, this.generationTokens]) c.inc(l, 0);
      for (const reason of FINISH_REASONS) this.requestSuccess.inc({ ...l, finished_reason: reason }, 0);
      for (const h of [this.ttft, this.itl, this.tpot, this.requestTpot, this.e2e]) h.touch(l);
      if (this.tokenHists === null) {
        const b = buckets125(Math.max(1, this.maxModelLen()));
        this.tokenHists = {
          prompt: this.registry.add(new Histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", b)),
          generation: this.registry.add(new Histogram("vllm:request_generation_tokens", "Number of generation tokens processed.", b)),
        };
      }
      this.tokenHists.prompt.touch(l);
      this.tokenHists.generation.touch(l);
    }
    return l;
  }

  applyStats(s: EngineStats): void {
    const l = this.labels();
    if (l === null) return;
    const usage = s.blocksTotal > 0 ? s.blocksUsed / s.blocksTotal : 0;
    this.running.set(l, s.running);
    this.waiting.set(l, s.waiting);
    this.kvUsage.set(l, usage);
    this.gpuCacheUsage.set(l, usage);
    this.prefixQueries.set(l, s.prefixCacheQueries);
    this.prefixHits.set(l, s.prefixCacheHits);
    this.preemptions.set(l, s.preemptions);
    this.promptTokens.set(l, s.promptTokens);
    this.generationTokens.set(l, s.generatedTokens);
  }

  firstToken(seconds: number): void {
    const l = this.labels();
    if (l !== null) this.ttft.observe(seconds, l);
  }

  interToken(seconds: number): void {
    const l = this.labels();
    if (l === null) return;
    this.itl.observe(seconds, l);
    this.tpot.observe(seconds, l);
  }

  /** A sequence finished: e2e latency, its mean time per output token after the first, its token counts. */
  finished(reason: string, e2eSeconds: number, decodeSeconds: number, generatedTokens: number, promptTokens: number): void {
    const l = this.labels();
    if (l === null) return;
    this.requestSuccess.inc({ ...l, finished_reason: reason });
    this.e2e.observe(e2eSeconds, l);
    this.tokenHists?.prompt.observe(promptTokens, l);
    this.tokenHists?.generation.observe(generatedTokens, l);
    if (generatedTokens > 1) this.requestTpot.observe(decodeSeconds / (generatedTokens - 1), l);
  }
}
