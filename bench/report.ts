// bench/RESULTS.md generation: one section per benchmark, rendered from bench/out/<name>*.json.
//
// RESULTS.md is split into `## <name>` sections. Hand-written text is never touched: what the
// runner writes lives between markers inside the benchmark's section,
//   <!-- bench:<name>:begin --> … <!-- bench:<name>:end -->
// and is replaced only when that benchmark ran (or `--report-only` is asked for it). A section
// without markers gets the block appended at its end; a benchmark without a section gets a new one.
// Specific renderers below know the JSON of the existing benchmarks; any other JSON is rendered
// generically (scalars as a list, arrays of objects as tables), so a new benchmark needs nothing here.

import { renderPeerTables } from "./peer/render.ts";

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

export interface RunInfo {
  name: string;
  /** ISO date of the run. */
  date: string;
  machine: string;
  command: string;
  wallSeconds: number;
  /** JSON files (bench/out) by file name. */
  outputs: Record<string, Json>;
}

// ---------- formatting ----------

export function fmt(x: Json | undefined, digits = 4): string {
  if (x === undefined || x === null) return "–";
  if (typeof x === "number") {
    if (!Number.isFinite(x)) return String(x);
    if (Number.isInteger(x)) return Math.abs(x) >= 10_000 ? x.toLocaleString("en-US") : String(x);
    const a = Math.abs(x);
    const d = a >= 1000 ? 0 : Math.max(0, digits - 1 - Math.floor(Math.log10(a || 1)));
    return x.toLocaleString("en-US", { minimumFractionDigits: Math.min(d, 6), maximumFractionDigits: Math.min(d, 6) });
  }
  if (typeof x === "string" || typeof x === "boolean") return String(x);
  return JSON.stringify(x);
}

export function table(head: string[], rows: (string | number | Json | undefined)[][], align?: ("l" | "r")[]): string {
  const a = align ?? head.map((_, i) => (i === 0 ? "l" : "r"));
  const cell = (v: string | number | Json | undefined) => (typeof v === "string" ? v : fmt(v as Json)).replace(/\|/g, "\\|");
  return [
    `| ${head.join(" | ")} |`,
    `|${a.map((x) => (x === "r" ? "---:" : "---")).join("|")}|`,
    ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
  ].join("\n");
}

const isObj = (x: Json | undefined): x is Obj => typeof x === "object" && x !== null && !Array.isArray(x);
const num = (x: Json | undefined): number => (typeof x === "number" ? x : NaN);
const pct = (x: Json | undefined) => (Number.isFinite(num(x)) ? `${num(x).toFixed(1)}%` : "–");
const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}×` : "–");

/** Flattens nested objects of scalars to dotted keys. */
function flatten(o: Obj, prefix = "", out: Record<string, Json> = {}): Record<string, Json> {
  for (const [k, v] of Object.entries(o)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isObj(v)) flatten(v, key, out);
    else if (!Array.isArray(v)) out[key] = v;
  }
  return out;
}

/** Any JSON: top-level scalars and nested objects as a list, arrays of objects as tables. */
export function renderGeneric(json: Json, title?: string): string {
  const parts: string[] = [];
  if (title) parts.push(`\`${title}\``);
  if (!isObj(json)) return [...parts, "```json", JSON.stringify(json, null, 2), "```"].join("\n\n");
  const skip = new Set(["machine", "date", "bench"]);
  const scalars = Object.entries(flatten(Object.fromEntries(Object.entries(json).filter(([k]) => !skip.has(k)))));
  if (scalars.length)
    parts.push(
      table(
        ["field", "value"],
        scalars.map(([k, v]) => [k, v]),
      ),
    );
  for (const [k, v] of Object.entries(json)) {
    if (!Array.isArray(v) || v.length === 0) continue;
    const objs = v.filter(isObj).map((o) => flatten(o));
    if (objs.length === 0) continue;
    const cols = [...new Set(objs.flatMap((o) => Object.keys(o)))];
    parts.push(
      `${k}:\n\n${table(
        cols,
        objs.map((o) => cols.map((c) => o[c])),
      )}`,
    );
  }
  return parts.join("\n\n");
}

// ---------- specific renderers (existing benchmarks) ----------

type Renderer = (outputs: Record<string, Json>) => string;

const renderers: Record<string, Renderer> = {
  allocator(out) {
    const j = out["allocator.json"] as Obj;
    const p = j.pair_ns_median as Obj;
    const labels: [string, string][] = [
      ["allocator", "caching allocator"],
      ["allocator_2000_live", "caching allocator, 2,000 other live blocks"],
      ["public_abi", "`hr_alloc`/`hr_free` through the public ABI"],
      ["malloc", "glibc `malloc`/`free` (baseline)"],
    ];
    const rows = labels.filter(([k]) => p[k] !== undefined).map(([k, l]) => [l, num(p[k]).toFixed(1), ratio(num(p[k]), num(p.malloc))]);
    const frag = ((j.decode_trace as Obj[]) ?? []).map((t) => [
      String(t.kv_growth),
      `${fmt(Math.round(num(t.peak_allocated) / 2 ** 20))} MiB`,
      `${fmt(Math.round(num(t.peak_reserved) / 2 ** 20))} MiB`,
      num(t.fragmentation).toFixed(3),
    ]);
    return [
      table(["case (ns per alloc+free pair, median)", "ns", "÷ malloc (same run)"], rows),
      table(["decode-like trace, KV growth", "peak allocated", "peak reserved", "fragmentation"], frag),
    ].join("\n\n");
  },

  matmul(out) {
    const j = out["matmul.json"] as Obj;
    const head = `ISA ${fmt(j.isa)}, ${fmt(j.threads)} threads; same-run ceilings: STREAM-like read ${fmt(j.stream_read_gbs)} GB/s, FMA loop ${fmt(j.peak_fma_loop_gflops)} GFLOP/s (theory ${fmt(j.peak_theory_gflops)}).`;
    const dec = ((j.decode as Obj[]) ?? []).map((r) => [
      `${r.n}×${r.k}, M=${r.m}`,
      r.cold_gbs,
      pct(r.pct_stream),
      r.hot_gbs,
      r.us_per_call,
      `${fmt(r.tokens_per_s_vs_m1)}×`,
    ]);
    const pre = ((j.prefill as Obj[]) ?? []).map((r) => [
      `${r.n}×${r.k}, M=${r.m}`,
      r.gflops,
      pct(r.pct_fma_loop),
      pct(r.pct_theory),
      num(r.naive_1t_gflops) > 0 ? r.naive_1t_gflops : "–",
      ratio(num(r.gflops), num(r.naive_1t_gflops)),
    ]);
    return [
      head,
      `Decode (GEMV-like, weight-streaming):\n\n${table(["N×K, M", "cold GB/s", "of read bw", "hot GB/s", "µs/call", "tok/s vs M=1"], dec)}`,
      `Prefill (GEMM):\n\n${table(["N×K, M", "GFLOP/s", "of FMA loop", "of theory", "naive 1-thread GFLOP/s", "÷ naive"], pre)}`,
    ].join("\n\n");
  },

  load(out) {
    const j = out["load.json"] as Obj;
    const rows = ((j.rows as Obj[]) ?? []).map((r) => [
      `${r.file_dtype} ${(num(r.file_bytes) / 2 ** 30).toFixed(3)} GiB`,
      `${fmt(num(r.read_cold_ms).toFixed(0))} ms`,
      `${fmt(num(r.load_cold_ms).toFixed(0))} ms`,
      `${num(r.load_over_read_cold).toFixed(2)}×`,
      `${fmt(num(r.read_warm_ms).toFixed(0))} ms`,
      `${fmt(num(r.load_warm_ms).toFixed(0))} ms`,
      `${num(r.load_over_read_warm).toFixed(2)}×`,
    ]);
    return table(["file", "read cold", "load cold", "load ÷ read", "read warm", "load warm", "load ÷ read"], rows);
  },

  serve(out) {
    const rows: (string | Json)[][] = [];
    const over: string[] = [];
    for (const [file, v] of Object.entries(out).sort()) {
      if (!isObj(v) || !isObj(v.direct)) continue;
      const c = v.config as Obj;
      const run = `${c.engine} engine, c=${c.concurrency}, ${c.requests} req × ${c.maxTokens} tok`;
      // direct/http: the baseline and the served path; *_process/*_inprocess: the engine-process
      // comparison (real engine only).
      const paths = [
        [
          "direct",
          isObj(v.direct_process) ? "direct (engine.generate), engine in-process (baseline)" : "direct (engine.generate, baseline)",
        ],
        ["direct_process", "direct (engine.generate), engine process"],
        ["http_inprocess", "HTTP + SSE, engine in-process"],
        ["http", isObj(v.direct_process) ? "HTTP + SSE, engine process (serve default)" : "HTTP + SSE"],
      ] as const;
      for (const [path, label] of paths) {
        const s = v[path] as Obj;
        if (!isObj(s)) continue;
        const p = (k: string) => {
          const q = s[k] as Obj;
          return `${num(q?.p50).toFixed(2)} / ${num(q?.p90).toFixed(2)} / ${num(q?.p99).toFixed(2)}`;
        };
        const cpuTok = num(s.cpu_us) / num(s.output_tokens);
        rows.push([
          run,
          label,
          `${(s.requests! as number) - num(s.failed)}/${s.requests}`,
          num(s.requests_per_s).toFixed(1),
          Math.round(num(s.output_tokens_per_s)),
          p("ttft_ms"),
          p("itl_ms"),
          Number.isFinite(cpuTok) ? cpuTok.toFixed(1) : "n/a",
        ]);
      }
      const o = v.overhead as Obj;
      if (isObj(o))
        over.push(
          `- ${run} (\`${file}\`): +${num(o.per_token_itl_us).toFixed(0)} µs mean ITL per streamed token, server CPU ${num(o.server_cpu_per_token_us).toFixed(1)} µs/token, throughput ${num(o.throughput_ratio_http_vs_direct).toFixed(2)}× direct.`,
        );
      if (isObj(o) && o.engine_process_itl_us !== undefined)
        over.push(
          `- ${run}: engine process vs in-process, per token: direct ${num(o.engine_process_itl_us).toFixed(0)} µs mean ITL, ${num(o.engine_process_cpu_per_token_us).toFixed(1)} µs CPU; HTTP ${num(o.engine_process_http_itl_us).toFixed(0)} µs mean ITL, ${num(o.engine_process_http_cpu_per_token_us).toFixed(1)} µs CPU.`,
        );
    }
    return [
      table(["run", "path", "ok", "req/s", "tok/s", "TTFT ms p50/p90/p99", "ITL ms p50/p90/p99", "CPU µs/token"], rows),
      over.join("\n"),
    ]
      .filter(Boolean)
      .join("\n\n");
  },

  structured(out) {
    const j = out["structured.json"] as Obj;
    const rows = ((j.rows as Obj[]) ?? []).map((r) => {
      const f = r.free as Obj,
        c = r.constrained as Obj;
      return [
        String(r.model).split("/").at(-1) ?? "",
        fmt(r.vocab),
        num(f.tokS).toFixed(0),
        num(c.tokS).toFixed(0),
        num(f.msPerStep).toFixed(2),
        num(c.msPerStep).toFixed(2),
        pct(100 * num(r.slowdown)),
      ];
    });
    return (
      `Batch ${fmt(j.batch)}, ${fmt(j.tokens)} decode tokens per request, greedy; every request constrained by a JSON schema vs none.\n\n` +
      table(["model", "vocab", "free tok/s", "constrained tok/s", "ms/step free", "ms/step constrained", "slowdown"], rows)
    );
  },
  peer(out) {
    return renderPeerTables(out["peer.json"] as Obj);
  },
  decode(out) {
    const j = out["decode.json"] as Obj;
    const rows = ((j.rows as Obj[]) ?? []).map((r) => [
      String(r.shape),
      `${(num(r.params) / 1e6).toFixed(1)} M`,
      num(r.bandwidthGBs).toFixed(2),
      num(r.matmulPeakGflops).toFixed(1),
      num(r.prefillTokS).toFixed(0),
      `${(100 * num(r.prefillOfPeak)).toFixed(0)}%`,
      num(r.decode1TokS).toFixed(1),
      num(r.decode1BoundTokS).toFixed(1),
      `${(100 * num(r.decode1OfBound)).toFixed(0)}%`,
      num(r.decode16TokS).toFixed(0),
      `${num(r.decode16OverDecode1).toFixed(2)}×`,
      num(r.engineDecode1TokS).toFixed(1),
    ]);
    return table(
      [
        "shape",
        "params",
        "bw GB/s",
        "matmul GFLOP/s",
        "prefill tok/s",
        "of peak",
        "decode b=1 tok/s",
        "bw bound",
        "of bound",
        "decode b=16 tok/s",
        "÷ b=1",
        "engine b=1 tok/s",
      ],
      rows,
    );
  },
};

/** The generated block's body for one benchmark run. */
export function renderRun(run: RunInfo): string {
  const lines = [
    `### Latest \`bun run bench\` run`,
    "",
    `- Machine: ${run.machine}`,
    `- Date: ${run.date.slice(0, 16).replace("T", " ")} UTC; command \`${run.command}\` (${run.wallSeconds.toFixed(1)} s); JSON: ${
      Object.keys(run.outputs)
        .map((f) => `\`bench/out/${f}\``)
        .join(", ") || "none"
    }.`,
    "",
  ];
  let body = "";
  const r = renderers[run.name];
  if (r) {
    try {
      body = r(run.outputs);
    } catch (e) {
      body = "";
      lines.push(`<!-- specific renderer failed (${(e as Error).message}); generic rendering -->`, "");
    }
  }
  if (!body)
    body =
      Object.entries(run.outputs)
        .map(([f, j]) => renderGeneric(j, f))
        .join("\n\n") || "(the benchmark wrote no JSON)";
  return [...lines, body].join("\n");
}

// ---------- RESULTS.md surgery ----------

const begin = (n: string) => `<!-- bench:${n}:begin -->`;
const end = (n: string) => `<!-- bench:${n}:end -->`;

interface Section {
  name: string | null; // null: the preamble before the first `## `
  text: string;
}

export function splitSections(md: string): Section[] {
  const out: Section[] = [];
  const lines = md.split("\n");
  let cur: Section = { name: null, text: "" };
  const buf: string[] = [];
  const flush = () => {
    cur.text = buf.join("\n");
    out.push(cur);
    buf.length = 0;
  };
  for (const l of lines) {
    const m = /^## +(.+?)\s*$/.exec(l);
    if (m) {
      flush();
      cur = { name: m[1]!.replace(/`/g, "").trim(), text: "" };
    }
    buf.push(l);
  }
  flush();
  return out;
}

/** Replaces (or adds) the generated block of benchmark `name`, leaving everything else as it is. */
export function upsertBlock(md: string, name: string, block: string): string {
  const wrapped = `${begin(name)}\n${block.trim()}\n${end(name)}`;
  const b = md.indexOf(begin(name));
  const e = md.indexOf(end(name));
  if (b >= 0 && e > b) return md.slice(0, b) + wrapped + md.slice(e + end(name).length);
  const sections = splitSections(md);
  const i = sections.findIndex((s) => s.name !== null && s.name.split(/\s/)[0]!.toLowerCase() === name.toLowerCase());
  if (i >= 0) {
    const s = sections[i]!;
    s.text = `${s.text.trimEnd()}\n\n${wrapped}\n`;
  } else {
    const last = sections[sections.length - 1]!;
    last.text = last.text.trimEnd() + "\n";
    sections.push({ name, text: `## ${name}\n\n${wrapped}\n` });
  }
  return sections.map((s) => s.text.trimEnd()).join("\n\n") + "\n";
}
