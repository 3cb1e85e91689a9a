// bench/peer's arithmetic and plumbing that needs no llama.cpp build: repetition statistics,
// headroom ÷ llama.cpp ratios, greedy agreement, the HTTP workload (against a scripted SSE
// server), the HF re-layout of Q/K rows, argument parsing and the report tables.
import { afterAll, describe, expect, test } from "bun:test";

import { compareTexts, promptsForRun, runHttp, workloadPrompts } from "../../bench/peer/http.ts";
import { unpermute } from "../../bench/peer/models.ts";
import { renderPeerTables } from "../../bench/peer/render.ts";
import { parseArgs } from "../../bench/peer/run.ts";
import { agreement, compare, describeAgreement, spread } from "../../bench/peer/stats.ts";
import { percentiles } from "../../bench/serve/workload.ts";

describe("peer bench statistics", () => {
  test("min / median / max over repetitions (even count: mean of the middle two; non-finite dropped)", () => {
    expect(spread([3, 1, 2])).toMatchObject({ n: 3, min: 1, median: 2, max: 3 });
    expect(spread([4, 1, 3, 2])).toMatchObject({ n: 4, min: 1, median: 2.5, max: 4 });
    expect(spread([5, NaN, 1])).toMatchObject({ n: 2, min: 1, median: 3, max: 5 });
    expect(spread([]).n).toBe(0);
  });

  test("ratio = headroom median ÷ llama.cpp median; paired range from each repetition's pair", () => {
    const c = compare("decode", "tok/s", "higher", [10, 20, 30], [12, 18, 45]);
    expect(c.ratio).toBeCloseTo(18 / 20, 12);
    expect(c.pairedMin).toBeCloseTo(0.9, 12);
    expect(c.pairedMax).toBeCloseTo(1.5, 12);
    expect(c.headroomBetter).toBe(false);
    const lat = compare("ITL p99", "ms", "lower", [45, 50, 40], [90, 100, 80]);
    expect(lat.ratio).toBeCloseTo(2, 12);
    expect(lat.headroomBetter).toBe(false);
    expect(compare("TTFT", "ms", "lower", [100, 100, 100], [40, 50, 45]).headroomBetter).toBe(true);
  });

  test("greedy agreement: first differing index and the top-2 margins there", () => {
    expect(agreement([1, 2, 3], [1, 2, 3])).toEqual({ compared: 3, divergeAt: null });
    const a = agreement(
      [1, 2, 3, 4],
      [1, 2, 9, 4, 5],
      [
        [-1, -2],
        [-1, -3],
        [-0.5, -0.6],
        [-1, -2],
      ],
      [
        [-1, -2],
        [-1, -3],
        [-0.55, -0.58],
        [-1, -2],
      ],
    );
    expect(a.compared).toBe(4);
    expect(a.divergeAt).toBe(2);
    expect(a.margins!.llama).toBeCloseTo(0.1, 12);
    expect(a.margins!.headroom).toBeCloseTo(0.03, 12);
    expect(describeAgreement(a)).toContain("diverge at 2 of 4");
    expect(describeAgreement({ compared: 5, divergeAt: null })).toBe("agree (5/5)");
  });

  test("workload percentiles (bench/serve/workload.ts): nearest rank", () => {
    const p = percentiles(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(p).toMatchObject({ p50: 50, p90: 90, p99: 99 });
    expect(p.mean).toBeCloseTo(50.5, 12);
  });
});

describe("peer bench workload", () => {
  test("prompts: deterministic, BOS first, ordinary pieces only, distinct per request", () => {
    const w = { concurrency: 4, requests: 8, promptTokens: 16, maxTokens: 4 };
    const a = workloadPrompts(w, 32000);
    expect(workloadPrompts(w, 32000)).toEqual(a);
    expect(a).toHaveLength(8);
    for (const p of a) {
      expect(p).toHaveLength(16);
      expect(p[0]).toBe(1);
      for (const t of p.slice(1)) expect(t >= 259 && t < 32000).toBe(true);
    }
    expect(new Set(a.map((p) => p.join(","))).size).toBe(8);
  });

  // A scripted server speaking the SSE stream both servers send: one chunk per token, a usage chunk, [DONE].
  const seen: number[][] = [];
  const srv = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const body = (await req.json()) as { prompt: number[]; max_tokens: number; stream: boolean };
      seen.push(body.prompt);
      const enc = new TextEncoder();
      const n = body.max_tokens;
      const stream = new ReadableStream({
        async start(c) {
          for (let i = 0; i < n; i++) {
            c.enqueue(enc.encode(`data: ${JSON.stringify({ choices: [{ text: `t${body.prompt[1]}.${i} ` }] })}\n\n`));
            await Bun.sleep(1);
          }
          c.enqueue(enc.encode(`data: ${JSON.stringify({ choices: [], usage: { completion_tokens: n } })}\n\ndata: [DONE]\n\n`));
          c.close();
        },
      });
      return new Response(stream, { headers: { "content-type": "text/event-stream" } });
    },
  });
  afterAll(() => srv.stop(true));

  test("runHttp: every request's text kept in request order, usage counted", async () => {
    const w = { concurrency: 3, requests: 7, promptTokens: 8, maxTokens: 5 };
    const run = promptsForRun(w, 32000, 0);
    const prompts = run.prompts;
    const r = await runHttp(`http://127.0.0.1:${srv.port}`, "openai", w, run);
    expect(r.failed).toBe(0);
    expect(r.requests).toBe(7);
    expect(r.output_tokens).toBe(35);
    r.texts.forEach((t, i) => expect(t).toBe(Array.from({ length: 5 }, (_, k) => `t${prompts[i]![1]}.${k} `).join("")));
    expect(Number.isFinite(r.ttft_ms.p99) && Number.isFinite(r.itl_ms.p99)).toBe(true);
    expect(r.e2e_ms.p50).toBeGreaterThanOrEqual(r.ttft_ms.p50);
    // the warm-up went first, on prompts of its own (no measured prompt is cached by it)
    expect(seen.slice(0, 4).sort()).toEqual([...run.warmUp].sort());
    for (const p of run.prompts) expect(run.warmUp.some((q) => q.join() === p.join())).toBe(false);
  });

  test("promptsForRun: a fresh set per repetition (no prompt of one run appears in another)", () => {
    const w = { concurrency: 2, requests: 5, promptTokens: 16, maxTokens: 1 };
    const a = promptsForRun(w, 32000, 0);
    const b = promptsForRun(w, 32000, 1);
    expect(a.prompts.length).toBe(5);
    expect(a.warmUp.length).toBe(4);
    const keys = new Set([...a.prompts, ...a.warmUp].map((p) => p.join()));
    for (const p of [...b.prompts, ...b.warmUp]) expect(keys.has(p.join())).toBe(false);
    expect(promptsForRun(w, 32000, 1)).toEqual(b);
  });

  test("compareTexts counts identical outputs and the first different request", () => {
    expect(compareTexts(["a", "b", "c"], ["a", "x", "c"])).toEqual({ identical: 2, total: 3, firstDifferent: 1 });
    expect(compareTexts(["a"], ["a", "b"])).toEqual({ identical: 1, total: 1, firstDifferent: null });
  });
});

describe("peer bench model files", () => {
  // convert_hf_to_gguf.py: w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2).reshape(rows, cols)
  function permuteRef(w: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
    const hd = rows / nHead;
    const out = new Float32Array(w.length);
    for (let h = 0; h < nHead; h++)
      for (let two = 0; two < 2; two++)
        for (let j = 0; j < hd / 2; j++) {
          const src = h * hd + two * (hd / 2) + j; // [h, two, j]
          const dst = h * hd + j * 2 + two; // [h, j, two]
          for (let c = 0; c < cols; c++) out[dst * cols + c] = w[src * cols + c]!;
        }
    return out;
  }

  test("unpermute undoes llama.cpp's Q/K row permutation", () => {
    const rows = 24,
      cols = 5,
      heads = 3;
    const hf = Float32Array.from({ length: rows * cols }, (_, i) => i * 0.5 - 7);
    expect([...unpermute(permuteRef(hf, rows, cols, heads), rows, cols, heads)]).toEqual([...hf]);
    // head 0, head_dim 8: GGUF row 1 is HF row 4 (the first row of the second half)
    const g = permuteRef(hf, rows, cols, heads);
    expect([...g.subarray(cols, 2 * cols)]).toEqual([...hf.subarray(4 * cols, 5 * cols)]);
  });
});

describe("peer bench CLI and report", () => {
  test("arguments: defaults, --quick, validation", () => {
    const d = parseArgs([]);
    expect(d.formats).toEqual(["F32", "F16", "Q8_0", "Q4_K_M"]);
    expect(d.reps).toBe(3);
    expect(d.threads).toBe(2);
    expect(parseArgs(["--quick"]).formats).toEqual(["F32", "Q4_K_M"]);
    expect(parseArgs(["--quick", "--formats", "q8_0"]).formats).toEqual(["Q8_0"]);
    expect(parseArgs(["--budgets", "64,128"]).budgets).toEqual([64, 128]);
    expect(parseArgs(["--variants", "--step-time-factor 3; --step-time-factor 0  --max-num-batched-tokens 128;"]).variants).toEqual([
      ["--step-time-factor", "3"],
      ["--step-time-factor", "0", "--max-num-batched-tokens", "128"],
    ]);
    expect(parseArgs(["--no-kernels"]).kernels).toBe(false);
    expect(() => parseArgs(["--reps", "2"])).toThrow(/>= 3/);
    expect(() => parseArgs(["--formats", "Q2_K"])).toThrow(/not one of/);
    expect(() => parseArgs(["--bogus"])).toThrow(/unknown argument/);
  });

  test("tables: medians with ranges, the ratio and which system is better", () => {
    const j = JSON.parse(
      JSON.stringify({
        machine: "cpu, 2 cores",
        pinning: "2 threads each",
        reps: 3,
        load_average_start: [1, 1, 1],
        load_average_end: [2, 2, 2],
        llama_cpp: { commit: "80fb11ac73e66d89eae2c6a91d8a77428fa733ed", node_llama_cpp_release: "v0.4.0" },
        model: { shape: "s110m" },
        greedy_tokens: 64,
        greedy_prompt_tokens: 32,
        formats: [
          {
            format: "F32",
            fileBytes: 512 * 2 ** 20,
            comparisons: [compare("prefill 128 tokens", "tok/s", "higher", [100, 110, 90], [130, 120, 125])],
            greedy: { text: "agree (64/64)" },
            hfVsGguf: { compared: 64, divergeAt: null },
            llamaSettings: { flash_attn: true, type_k: "f16", type_v: "f16", n_batch: 2048, n_ubatch: 512, n_threads: 2 },
            loadAverages: [1.5, 1.6, 1.7],
          },
          { format: "Q8_0", fileBytes: 2 ** 27, error: "headroom could not run this file: x", comparisons: [], loadAverages: [] },
        ],
        http: null,
      }),
    );
    const md = renderPeerTables(j);
    expect(md).toContain("| prefill 128 tokens | 100.0 (90.0–110.0) | 125.0 (120.0–130.0) | 1.25× (1.09–1.39) | headroom |");
    expect(md).toContain("agree (64/64)");
    expect(md).toContain("headroom could not run this file");
    expect(md).toContain("1.50, 1.60, 1.70");
  });
});
