// Operations: metrics, request ids and structured logs, memory/KV routes, options, progress.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createProgress } from "../../src/server/progress.ts";
import {
  defaultServeOptions,
  envName,
  OptionsError,
  parseBytes,
  parseServeOptions,
  SERVE_FLAGS,
  serveHelp,
} from "../../src/server/options.ts";
import { silentLogger } from "../../src/server/log.ts";
import { numericLeaves, pickLeaf, RESERVED_KEYS } from "../../src/server/telemetry.ts";
import { postJson, startTestServer, type TestServer } from "./helpers.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ options: { servedModelName: "my-model" } });
});
afterAll(async () => {
  await s.close();
});

describe("metrics", () => {
  test("Prometheus text: request counters, latency/TTFT/ITL histograms, tokens, KV, allocator, graph memory", async () => {
    await postJson(`${s.url}/v1/completions`, { model: "my-model", prompt: "hi", max_tokens: 5 });
    const st = await postJson(`${s.url}/v1/completions`, { prompt: "hi", max_tokens: 5, stream: true });
    await st.text();
    await postJson(`${s.url}/v1/completions`, { prompt: 1 });
    const res = await fetch(`${s.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    const text = await res.text();
    // Every sample line is `name{labels} value`; every family has HELP and TYPE.
    for (const line of text.split("\n").filter((l) => l && !l.startsWith("#")))
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.e+-]+|NaN|[+-]Inf$/);
    const value = (re: RegExp) => Number(new RegExp("^" + re.source, "m").exec(text)?.[1]);
    expect(value(/headroom_http_requests_total\{route="\/v1\/completions",method="POST",status="200"\} (\S+)/)).toBe(2);
    expect(value(/headroom_http_requests_total\{route="\/v1\/completions",method="POST",status="400"\} (\S+)/)).toBe(1);
    expect(value(/headroom_generation_tokens_total (\S+)/)).toBe(10);
    expect(value(/headroom_prompt_tokens_total (\S+)/)).toBe(6);
    expect(value(/headroom_time_to_first_token_seconds_count (\S+)/)).toBe(2);
    expect(value(/headroom_inter_token_latency_seconds_count (\S+)/)).toBe(8);
    expect(value(/headroom_e2e_request_latency_seconds_count (\S+)/)).toBe(2);
    expect(value(/headroom_request_success_total\{finish_reason="length"\} (\S+)/)).toBe(2);
    expect(text).toContain('headroom_http_request_duration_seconds_bucket{route="/v1/completions",le="+Inf"}');
    expect(value(/headroom_kv_blocks\{state="total"\} (\S+)/)).toBe(4096);
    expect(value(/headroom_kv_blocks\{state="used"\} (\S+)/)).toBe(0);
    expect(value(/headroom_allocator_reserved_bytes (\S+)/)).toBe(500e6);
    expect(value(/headroom_allocator_allocated_bytes (\S+)/)).toBe(450e6);
    expect(value(/headroom_cuda_graph_memory_bytes (\S+)/)).toBe(12e6);
    expect(value(/headroom_memory\{path="profile.weights"\} (\S+)/)).toBe(300e6);
    expect(text).toMatch(/headroom_preemptions_total 0/);
    expect(text).toMatch(/headroom_tokens_per_second \d/);
    expect(text).toMatch(/headroom_engine_up 1/);
  });

  test("memory-key lookup tolerates naming variants", () => {
    expect(pickLeaf(numericLeaves({ snapshot: { allocatorReserved: 7 } }), RESERVED_KEYS)).toBe(7);
    expect(pickLeaf(numericLeaves({ allocator: { reserved_bytes: { current: 9, peak: 10 } } }), RESERVED_KEYS)).toBe(9);
  });
});

describe("request ids and logs", () => {
  test("x-request-id is honoured (and reaches the engine) or generated; logs are JSON lines with it", async () => {
    const r1 = await postJson(`${s.url}/v1/completions`, { prompt: "x", max_tokens: 1 }, { "x-request-id": "abc-123" });
    expect(r1.headers.get("x-request-id")).toBe("abc-123");
    expect(s.engine.requests.at(-1)!.requestId).toBe("abc-123-0");
    const r2 = await fetch(`${s.url}/v1/models`);
    expect(r2.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const r3 = await fetch(`${s.url}/v1/models`, { headers: { "x-request-id": "bad id with spaces" } });
    expect(r3.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const e = await postJson(`${s.url}/v1/completions`, "{", { "x-request-id": "err-1" });
    expect(e.headers.get("x-request-id")).toBe("err-1");
    const lines = s.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const l of lines) {
      expect(typeof l.ts).toBe("string");
      expect(typeof l.level).toBe("string");
      expect(typeof l.msg).toBe("string");
    }
    expect(lines.find((l) => l.request_id === "abc-123" && l.msg === "request")).toMatchObject({
      method: "POST",
      path: "/v1/completions",
      status: 200,
    });
    expect(lines.find((l) => l.request_id === "err-1" && l.msg === "request")).toMatchObject({ status: 400 });
  });
});

describe("models, memory and KV routes", () => {
  test("served model name is used and accepted", async () => {
    const m = (await (await fetch(`${s.url}/v1/models`)).json()) as { data: { id: string; root: string; max_model_len: number }[] };
    expect(m.data[0]).toMatchObject({ id: "my-model", root: "fake-model", max_model_len: 256 });
    const r = (await (await postJson(`${s.url}/v1/completions`, { model: "my-model", prompt: "x", max_tokens: 1 })).json()) as {
      model: string;
    };
    expect(r.model).toBe("my-model");
  });

  test("/v1/memory and /v1/memory/allocator return the engine's payloads", async () => {
    expect(await (await fetch(`${s.url}/v1/memory`)).json()).toEqual(await s.engine.memory());
    expect(await (await fetch(`${s.url}/v1/memory/allocator`)).json()).toEqual(await s.engine.allocator());
  });

  test("/v1/kv", async () => {
    const k = await (await fetch(`${s.url}/v1/kv`)).json();
    expect(k).toEqual({
      block_size: 16,
      blocks_total: 4096,
      blocks_used: 0,
      blocks_free: 4096,
      blocks_cached: 0,
      usage: 0,
      prefix_cache_queries: 0,
      prefix_cache_hits: 0,
      prefix_cache_hit_rate: 0,
      running: 0,
      waiting: 0,
      preemptions: 0,
      kv_cache_dtype: "f32",
      bytes_per_block: 0,
      scales_from_checkpoint: 0,
    });
  });
});

describe("serve options", () => {
  test("defaults, flags (--x v, --x=v, --flag, --no-flag), env vars, flag over env", () => {
    expect(parseServeOptions([], {})).toEqual(defaultServeOptions());
    const o = parseServeOptions(
      [
        "--port",
        "9000",
        "--gpu-memory-utilization=0.5",
        "--enforce-eager",
        "--kv-cache-memory-bytes",
        "2GiB",
        "--cudagraph-capture-sizes",
        "8,1,2",
        "--max-model-len",
        "4096",
        "--device",
        "cpu",
        "--device-memory",
        "512M",
      ],
      { HEADROOM_PORT: "1", HEADROOM_API_KEY: "k", HEADROOM_SERVED_MODEL_NAME: "m", HEADROOM_CPU_OFFLOAD_GB: "1.5" },
    );
    expect(o).toMatchObject({
      port: 9000,
      gpuMemoryUtilization: 0.5,
      enforceEager: true,
      kvCacheMemoryBytes: 2 * 1024 ** 3,
      cudagraphCaptureSizes: [1, 2, 8],
      maxModelLen: 4096,
      device: "cpu",
      deviceMemory: 512e6,
      apiKey: "k",
      servedModelName: "m",
      cpuOffloadGb: 1.5,
    });
    expect(parseServeOptions(["--no-enforce-eager"], { HEADROOM_ENFORCE_EAGER: "true" }).enforceEager).toBe(false);
    expect(parseServeOptions(["--enforce-eager", "false"], {}).enforceEager).toBe(false);
    expect(parseBytes("1.5KiB")).toBe(1536);
  });

  test("bad values fail with a clear message", () => {
    const bad: [string[], RegExp][] = [
      [["--gpu-memory-utilization", "1.5"], /must be <= 1/],
      [["--gpu-memory-utilization", "0"], /must be > 0/],
      [["--port", "x"], /integer/],
      [["--device", "tpu"], /one of auto, cpu, cuda/],
      [["--max-num-seqs"], /needs a value/],
      [["--max-num-sqes", "3"], /unknown flag --max-num-sqes \(did you mean --max-num-seqs\?\)/],
      [["--kv-cache-memory-bytes", "lots"], /byte size/],
      [["--cudagraph-capture-sizes", "1,0"], /positive integers/],
      [["serve"], /unexpected argument/],
    ];
    for (const [argv, re] of bad) expect(() => parseServeOptions(argv, {})).toThrow(re);
    expect(() => parseServeOptions([], { HEADROOM_BLOCK_SIZE: "big" })).toThrow(OptionsError);
  });

  test("--help lists every flag with its default and environment variable", () => {
    const help = serveHelp();
    for (const f of SERVE_FLAGS) {
      expect(help).toContain(`--${f.flag}`);
      expect(help).toContain(envName(f.flag));
    }
    expect(help).toContain("default: 0.9");
    for (const f of [
      "model",
      "host",
      "port",
      "device",
      "device-memory",
      "gpu-memory-utilization",
      "kv-cache-memory-bytes",
      "max-model-len",
      "max-num-seqs",
      "max-num-batched-tokens",
      "block-size",
      "enforce-eager",
      "cudagraph-capture-sizes",
      "api-key",
      "served-model-name",
      "max-waiting",
      "cpu-offload-gb",
      "cpu-offload-trigger-percent",
      "offload-prefetch-layers",
      "log-level",
    ])
      expect(SERVE_FLAGS.some((s) => s.flag === f)).toBe(true);
  });

  test("cli: serve --help, bad flag exit code, missing engine message", async () => {
    const run = (args: string[]) =>
      Bun.spawnSync([process.execPath, "src/cli.ts", ...args], {
        cwd: `${import.meta.dir}/../..`,
        env: { ...process.env, HEADROOM_PORT: "0" },
      });
    const help = run(["serve", "--help"]);
    expect(help.exitCode).toBe(0);
    expect(help.stdout.toString()).toContain("--gpu-memory-utilization");
    const bad = run(["serve", "--nope"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString()).toContain("unknown flag --nope");
    expect(run(["frobnicate"]).exitCode).toBe(2);
  }, 20_000); // three `bun src/cli.ts` processes
});

describe("progress display", () => {
  test("TTY: redrawn bar; not a TTY: JSON log lines per stage", () => {
    let tty = "";
    const p = createProgress(silentLogger, { isTTY: true, write: (x: string) => (tty += x) });
    p({ stage: "load_weights", done: 512, total: 1024, unit: "bytes" });
    p({ stage: "load_weights", done: 1024, total: 1024, unit: "bytes" });
    p.end();
    expect(tty).toContain("\r\x1b[2K");
    expect(tty).toContain("100%");
    expect(tty).toContain("1.0 KiB / 1.0 KiB");
    const logged: unknown[] = [];
    const log = { ...silentLogger, info: (m: string, f?: unknown) => logged.push([m, f]) };
    const q = createProgress(log, { isTTY: false, write: () => {} });
    q({ stage: "load_weights", done: 1, total: 2 });
    q({ stage: "capture_graphs", done: 1, total: 4, unit: "graphs" });
    q({ stage: "capture_graphs", done: 4, total: 4, unit: "graphs" });
    expect(logged).toHaveLength(3);
  });
});
