// Issue 13 item 3: one options table. Serve flags, HEADROOM_* variables, the engine's options,
// `headroom plan` and POST /v1/memory/plan all come from src/options/table.ts, with the same
// validation; the HTTP plan's defaults are the running server's settings.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { planCommand } from "../../src/cli/plan.ts";
import { engineOptionsFrom } from "../../src/engine/index.ts";
import { PLAN_ROWS, planBodySchema, planField } from "../../src/memory/plan-options.ts";
import { OPTION_ROWS } from "../../src/options/table.ts";
import { defaultServeOptions, parseServeOptions } from "../../src/server/options.ts";
import { postJson, startTestServer, type TestServer } from "../server/helpers.ts";

/** `headroom plan` in this process: exit code and what it printed. */
function planCli(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => void out.push(a.join(" "));
  console.error = (...a: unknown[]) => void err.push(a.join(" "));
  try {
    const code = planCommand(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    [console.log, console.error] = [log, error];
  }
}
const SPEC = "synthetic:dim=64,hidden=176,layers=2,heads=4,kv_heads=2,vocab=300,ctx=512";

describe("the table", () => {
  test("one row per flag; every engine row reaches the engine", () => {
    const flags = OPTION_ROWS.map((r) => r.flag);
    expect(new Set(flags).size).toBe(flags.length);
    const o = parseServeOptions(
      ["--max-cudagraph-capture-size", "8", "--cpu-offload-trigger-percent", "50", "--dtype", "float32", "--served-model-name", "x"],
      {},
    );
    const e = engineOptionsFrom(o) as unknown as Record<string, unknown>;
    for (const r of OPTION_ROWS) {
      if (r.engine) expect({ key: r.key, v: e[r.key] }).toEqual({ key: r.key, v: (o as unknown as Record<string, unknown>)[r.key] });
      else expect(e[r.key]).toBeUndefined();
    }
    expect(e.maxCudagraphCaptureSize).toBe(8);
    // Request limits are checked once, in the frontend: the engine gets no waiting limit of its own.
    expect(e.maxWaiting).toBeUndefined();
  });

  test("the HTTP plan body is exactly the plan rows (+ config)", () => {
    const props = Object.keys(planBodySchema().properties).sort();
    expect(props).toEqual([...PLAN_ROWS.map(planField), "config"].sort());
    for (const f of [
      "dtype",
      "cpu_offload_gb",
      "cpu_offload_trigger_percent",
      "offload_prefetch_layers",
      "max_cudagraph_capture_size",
      "backend",
      "device_memory_bytes",
    ])
      expect(props).toContain(f);
  });
});

describe("headroom plan: the same flags and checks as serve", () => {
  test("every plan row is a flag of `headroom plan --help`, with serve's defaults", () => {
    const help = planCli(["--help"]).out;
    for (const r of PLAN_ROWS) expect(help).toContain(`--${r.flag}`);
    expect(help).toContain("default: 256"); // --max-num-seqs
  });

  test("values serve refuses, plan refuses with serve's message", () => {
    for (const [flag, value] of [
      ["max-num-seqs", "0"],
      ["block-size", "0"],
      ["block-size", "2048"],
      ["gpu-memory-utilization", "1.5"],
      ["offload-prefetch-layers", "0"],
      ["cpu-offload-gb", "-1"],
      ["max-model-len", "x"],
    ] as const) {
      const plan = planCli(["--model", SPEC, `--${flag}`, value]);
      expect({ flag, value, code: plan.code }).toEqual({ flag, value, code: 2 });
      let serveMessage = "";
      try {
        parseServeOptions([`--${flag}`, value], {});
      } catch (e) {
        serveMessage = (e as Error).message;
      }
      expect(serveMessage).not.toBe("");
      expect(plan.err).toContain(serveMessage);
    }
  });

  test("plan-only rows of the table work on the command line (capture cap, dtype, offload)", () => {
    const r = planCli([
      "--model",
      SPEC,
      "--device",
      "cuda",
      "--device-memory",
      "1GiB",
      "--max-cudagraph-capture-size",
      "4",
      "--dtype",
      "float16",
      "--cpu-offload-gb",
      "0.0001",
      "--json",
    ]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { inputs: { capture_sizes: number[] }; plan: { computeDtype: string; offloadLayers: number } };
    expect(j.inputs.capture_sizes).toEqual([1, 2, 4]);
    expect(j.plan.computeDtype).toBe("f16");
    expect(j.plan.offloadLayers).toBeGreaterThan(0);
  });
});

describe("POST /v1/memory/plan", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({
      options: { ...defaultServeOptions(), maxNumSeqs: 8, blockSize: 32, maxModelLen: 128, enforceEager: true },
    });
  });
  afterAll(async () => await s.close());
  const plan = (body: Record<string, unknown>) => postJson(`${s.url}/v1/memory/plan`, { model: SPEC, ...body });

  test("defaults are the running server's settings and device", async () => {
    const r = await plan({});
    expect(r.status).toBe(200);
    const j = (await r.json()) as { inputs: Record<string, unknown>; plan: { backend: string; computeDtype: string } };
    expect(j.inputs).toMatchObject({
      max_num_seqs: 8,
      block_size: 32,
      max_model_len: 128,
      capture_sizes: [],
      backend: "cpu",
      device_memory_bytes: 2 ** 30,
    });
    expect(j.plan.computeDtype).toBe("f32");
  });

  test("dtype, offload and capture fields are planned, not dropped", async () => {
    const j = (await (
      await plan({ backend: "cuda", dtype: "float16", cpu_offload_gb: 0.0001, enforce_eager: false, max_cudagraph_capture_size: 2 })
    ).json()) as {
      inputs: { capture_sizes: number[] };
      plan: { computeDtype: string; offloadLayers: number; offload: { mode: string } };
    };
    expect(j.plan.computeDtype).toBe("f16");
    expect(j.plan.offloadLayers).toBeGreaterThan(0);
    expect(j.plan.offload.mode).toBe("cpu-offload-gb");
    expect(j.inputs.capture_sizes).toEqual([1, 2]);
  });

  test("the same limits as the flags (400)", async () => {
    for (const body of [
      { max_num_seqs: 0 },
      { block_size: 2048 },
      { gpu_memory_utilization: 1.5 },
      { offload_prefetch_layers: 0 },
      { dtype: "int8" },
      { backend: "tpu" },
      { device_memory_bytes: 0 },
    ]) {
      const r = await plan(body);
      expect({ body, status: r.status }).toEqual({ body, status: 400 });
    }
  });
});
