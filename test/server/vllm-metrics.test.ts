// vLLM-compatible metrics on /metrics over the real engine (stories260K, CPU): parsed with a
// strict Prometheus text parser after real requests; names, types, labels and buckets as
// vLLM v1's; values move with what was served (token counts equal the responses' usage,
// histogram counts equal sequences and tokens, gauges show running and waiting sequences).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { createEngine } from "../../src/engine/index.ts";
import { defaultServeOptions, type ServeOptions } from "../../src/server/options.ts";
import { VLLM_REQUEST_LATENCY_BUCKETS, VLLM_TPOT_BUCKETS, VLLM_TTFT_BUCKETS } from "../../src/server/vllm-metrics.ts";
import { bucketBounds, parsePrometheusText, sampleValue, type Family } from "../util/prom-text.ts";
import { postJson, startTestServer, waitFor, type TestServer } from "./helpers.ts";

const MODELS = process.env.HEADROOM_MODELS_DIR ?? resolve(import.meta.dir, "../../../shared/models");
const GGUF = resolve(MODELS, "stories260K/stories260K.gguf");
const HAVE = existsSync(GGUF);
if (!HAVE) console.warn("[vllm-metrics] skipped: ../shared/models/stories260K not found");

const NAME = "stories-test";
const L = { model_name: NAME, engine: "0" };

let s: TestServer;
async function scrape(): Promise<Map<string, Family>> {
  const r = await fetch(`${s.url}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toContain("text/plain; version=0.0.4");
  return parsePrometheusText(await r.text());
}
const v = (f: Map<string, Family>, name: string, extra: Record<string, string> = {}) => sampleValue(f, name, { ...L, ...extra });

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
}
async function complete(prompt: string, maxTokens: number): Promise<Usage> {
  const r = await postJson(`${s.url}/v1/completions`, { model: NAME, prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true });
  expect(r.status).toBe(200);
  return ((await r.json()) as { usage: Usage }).usage;
}

describe.skipIf(!HAVE)("vLLM-compatible /metrics (real engine)", () => {
  beforeAll(async () => {
    const options: ServeOptions = {
      ...defaultServeOptions(),
      host: "127.0.0.1",
      port: 0,
      device: "cpu",
      deviceMemory: 256 * 2 ** 20,
      model: GGUF,
      servedModelName: NAME,
      maxModelLen: 256,
      maxNumSeqs: 2,
      maxNumBatchedTokens: 256,
      statsInterval: 0,
    };
    const engine = createEngine(options);
    await engine.ready();
    s = await startTestServer({ engine, options });
  }, 60_000);
  afterAll(async () => await s?.close());

  test("names, types, labels and buckets are vLLM v1's; every vllm:* series names the served model", async () => {
    const f = await scrape();
    const types: Record<string, string> = {
      "vllm:num_requests_running": "gauge",
      "vllm:num_requests_waiting": "gauge",
      "vllm:kv_cache_usage_perc": "gauge",
      "vllm:gpu_cache_usage_perc": "gauge",
      "vllm:prefix_cache_queries_total": "counter",
      "vllm:prefix_cache_hits_total": "counter",
      "vllm:prompt_tokens_total": "counter",
      "vllm:generation_tokens_total": "counter",
      "vllm:num_preemptions_total": "counter",
      "vllm:request_success_total": "counter",
      "vllm:time_to_first_token_seconds": "histogram",
      "vllm:inter_token_latency_seconds": "histogram",
      "vllm:time_per_output_token_seconds": "histogram",
      "vllm:request_time_per_output_token_seconds": "histogram",
      "vllm:e2e_request_latency_seconds": "histogram",
      "vllm:request_prompt_tokens": "histogram",
      "vllm:request_generation_tokens": "histogram",
    };
    for (const [name, type] of Object.entries(types)) {
      expect(f.get(name)?.type).toBe(type as never);
      expect(f.get(name)!.samples.length).toBeGreaterThan(0); // series exist from the start, at zero
    }
    for (const fam of f.values()) {
      if (!fam.name.startsWith("vllm:")) continue;
      for (const smp of fam.samples) {
        expect(smp.labels.model_name).toBe(NAME);
        expect(smp.labels.engine).toBe("0");
      }
    }
    expect(bucketBounds(f.get("vllm:time_to_first_token_seconds")!)).toEqual([...VLLM_TTFT_BUCKETS]);
    expect(bucketBounds(f.get("vllm:inter_token_latency_seconds")!)).toEqual([...VLLM_TPOT_BUCKETS]);
    expect(bucketBounds(f.get("vllm:time_per_output_token_seconds")!)).toEqual([...VLLM_TPOT_BUCKETS]);
    expect(bucketBounds(f.get("vllm:e2e_request_latency_seconds")!)).toEqual([...VLLM_REQUEST_LATENCY_BUCKETS]);
    // Token-count buckets: vLLM's build_1_2_5_buckets(max_model_len), here 256.
    expect(bucketBounds(f.get("vllm:request_prompt_tokens")!)).toEqual([1, 2, 5, 10, 20, 50, 100, 200]);
    expect(bucketBounds(f.get("vllm:request_generation_tokens")!)).toEqual([1, 2, 5, 10, 20, 50, 100, 200]);
    // vLLM's published lists, spelled out once more so a change to the constants is caught.
    expect(VLLM_TTFT_BUCKETS.length).toBe(22);
    expect(VLLM_TPOT_BUCKETS.length).toBe(19);
    expect(VLLM_REQUEST_LATENCY_BUCKETS.length).toBe(21);
    expect([
      VLLM_TTFT_BUCKETS[0],
      VLLM_TTFT_BUCKETS.at(-1),
      VLLM_TPOT_BUCKETS[0],
      VLLM_TPOT_BUCKETS.at(-1),
      VLLM_REQUEST_LATENCY_BUCKETS[0],
      VLLM_REQUEST_LATENCY_BUCKETS.at(-1),
    ]).toEqual([0.001, 2560, 0.01, 80, 0.3, 7680]);
    // headroom_* stays alongside.
    expect(f.get("headroom_http_requests_total")?.type).toBe("counter");
  });

  test("/v1/kv blocks_cached counts free cached blocks only (registered blocks in use are 'used')", async () => {
    const kv = async () =>
      (await (await fetch(`${s.url}/v1/kv`)).json()) as {
        blocks_used: number;
        blocks_cached: number;
        blocks_free: number;
        blocks_total: number;
      };
    expect((await kv()).blocks_cached).toBe(0); // nothing served yet
    const prompt = "One day a little bird flew over the big green hill and saw a shiny red ball. ".repeat(2);
    const r = await postJson(`${s.url}/v1/completions`, {
      model: NAME,
      prompt,
      max_tokens: 180,
      temperature: 0,
      ignore_eos: true,
      stream: true,
    });
    // While it runs, its prompt's full blocks are registered in the prefix cache but in use: never "cached (free)".
    const samples: { used: number; cached: number }[] = [];
    let done = false;
    const watch = (async () => {
      while (!done) {
        const k = await kv();
        samples.push({ used: k.blocks_used, cached: k.blocks_cached });
      }
    })();
    await r.text();
    done = true;
    await watch;
    expect(samples.filter((x) => x.used > 1).length).toBeGreaterThan(0);
    expect(samples.filter((x) => x.used > 0 && x.cached !== 0)).toEqual([]); // the last sample may see it finished
    const after = await kv();
    expect(after.blocks_used).toBe(0);
    expect(after.blocks_cached).toBeGreaterThan(1);
    expect(after.blocks_cached).toBeLessThanOrEqual(after.blocks_free);
  }, 60_000);

  test("counters and histograms move by exactly what was served", async () => {
    const before = await scrape();
    const usages = await Promise.all([complete("Once upon a time", 12), complete("The cat sat", 7), complete("A dog", 20)]);
    const after = await scrape();
    const d = (name: string, extra: Record<string, string> = {}) => v(after, name, extra) - v(before, name, extra);
    const prompt = usages.reduce((a, u) => a + u.prompt_tokens, 0);
    const gen = usages.reduce((a, u) => a + u.completion_tokens, 0);
    expect(gen).toBe(12 + 7 + 20);
    expect(d("vllm:prompt_tokens_total")).toBe(prompt);
    expect(d("vllm:generation_tokens_total")).toBe(gen);
    expect(d("vllm:request_success_total", { finished_reason: "length" })).toBe(3);
    expect(d("vllm:request_success_total", { finished_reason: "stop" })).toBe(0);
    expect(d("vllm:time_to_first_token_seconds_count")).toBe(3);
    expect(d("vllm:e2e_request_latency_seconds_count")).toBe(3);
    expect(d("vllm:request_time_per_output_token_seconds_count")).toBe(3);
    // One token per step: every token after a sequence's first is one inter-token interval.
    expect(d("vllm:inter_token_latency_seconds_count")).toBe(gen - 3);
    expect(d("vllm:time_per_output_token_seconds_count")).toBe(gen - 3);
    expect(d("vllm:time_per_output_token_seconds_sum")).toBeCloseTo(d("vllm:inter_token_latency_seconds_sum"), 9);
    expect(d("vllm:e2e_request_latency_seconds_sum")).toBeGreaterThan(d("vllm:time_to_first_token_seconds_sum"));
    expect(d("vllm:request_prompt_tokens_count")).toBe(3);
    expect(d("vllm:request_prompt_tokens_sum")).toBe(prompt);
    expect(d("vllm:request_generation_tokens_sum")).toBe(gen);
    expect(d("vllm:request_generation_tokens_bucket", { le: "10" })).toBe(1); // the 7-token one
    expect(d("vllm:request_generation_tokens_bucket", { le: "20" })).toBe(3);
    // Idle again.
    expect(v(after, "vllm:num_requests_running")).toBe(0);
    expect(v(after, "vllm:num_requests_waiting")).toBe(0);
    expect(v(after, "vllm:kv_cache_usage_perc")).toBe(0);
  }, 60_000);

  test("prefix-cache counters are the engine's (tokens), and a repeated prompt hits", async () => {
    const prompt = "Once upon a time there was a little girl who lived in a village near the forest. ".repeat(3);
    const before = await scrape();
    await complete(prompt, 4);
    await complete(prompt, 4);
    const after = await scrape();
    const kv = (await (await fetch(`${s.url}/v1/kv`)).json()) as { prefix_cache_queries: number; prefix_cache_hits: number };
    expect(v(after, "vllm:prefix_cache_queries_total")).toBe(kv.prefix_cache_queries);
    expect(v(after, "vllm:prefix_cache_hits_total")).toBe(kv.prefix_cache_hits);
    expect(v(after, "vllm:prefix_cache_hits_total")).toBeGreaterThan(v(before, "vllm:prefix_cache_hits_total"));
    expect(v(after, "vllm:prefix_cache_queries_total") - v(before, "vllm:prefix_cache_queries_total")).toBeGreaterThan(0);
  }, 60_000);

  test("gauges: running, waiting and KV usage while long generations run (max_num_seqs 2, three requests)", async () => {
    const ac = new AbortController();
    const streams = [0, 1, 2].map((i) =>
      postJson(`${s.url}/v1/completions`, {
        model: NAME,
        prompt: `Story ${i}:`,
        max_tokens: 240,
        temperature: 0,
        ignore_eos: true,
        stream: true,
      }),
    );
    let seen = { running: 0, waiting: 0, kv: 0, gpu: 0 };
    await waitFor(
      async () => {
        const f = await fetch(`${s.url}/metrics`, { signal: ac.signal }).then(async (r) => parsePrometheusText(await r.text()));
        seen = {
          running: v(f, "vllm:num_requests_running"),
          waiting: v(f, "vllm:num_requests_waiting"),
          kv: v(f, "vllm:kv_cache_usage_perc"),
          gpu: v(f, "vllm:gpu_cache_usage_perc"),
        };
        return seen.running === 2 && seen.waiting === 1;
      },
      30_000,
      "2 running and 1 waiting on /metrics",
    );
    expect(seen.kv).toBeGreaterThan(0);
    expect(seen.kv).toBeLessThanOrEqual(1);
    expect(seen.gpu).toBe(seen.kv);
    for (const r of await Promise.all(streams)) {
      expect(r.status).toBe(200);
      await r.text();
    }
    const f = await scrape();
    expect(v(f, "vllm:num_requests_running")).toBe(0);
    expect(v(f, "vllm:num_requests_waiting")).toBe(0);
  }, 90_000);
});
