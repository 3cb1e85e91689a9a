// The report of kit/gpu-check.sh: report.md and report.json in OUT, from WORK/rows.tsv (one
// check per line: name, status, exit, seconds, command), the checks' logs and the benchmarks'
// JSON. The figures issue 16 asks for are pulled out next to their targets; the targets are
// reported, not asserted (a benchmark never fails the run; a check fails only on its own exit).
//   bun kit/report.ts WORK OUT GPU(0|1) TOTAL_S BUDGET_S [SANITIZER]
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

type Json = Record<string, unknown>;
const [work, out, gpu, total, budget, san] = process.argv.slice(2) as [string, string, string, string, string, string?];

const rows = readFileSync(join(work, "rows.tsv"), "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => {
    const [name, status, exit, seconds, command] = l.split("\t");
    return { name: name!, status: status!, exit: Number(exit), seconds: Number(seconds), command: command ?? "" };
  });
const readJson = (f: string): Json | null => {
  const p = join(work, f);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, "utf8")) as Json;
  } catch {
    return null;
  }
};
const tail = (name: string, n = 40) => {
  const p = join(work, "logs", `${name}.log`);
  if (!existsSync(p)) return "";
  return readFileSync(p, "utf8").split("\n").slice(-n).join("\n");
};

// ---- figures
const figures: Json = {};
const lines: string[] = [];
const att = readJson("attention.json");
if (att) {
  const t = att.target as { worst_ratio: number | null; met: boolean };
  const shape = att.shape as Json;
  const maxBlocks = Math.ceil(Number(shape.max_model_len) / Number(shape.block_size));
  const pre = ((att.prefill as Json | undefined)?.rows ?? []) as { tokens: number; tflops: number; of_peak: number }[];
  const prePeak = (att.prefill as Json | undefined)?.peak_tflops;
  figures.attention = {
    copy_gb_per_s: att.copy_gb_per_s,
    max_model_len: shape.max_model_len,
    max_blocks_per_seq: maxBlocks,
    worst_of_copy_batch16_ctx2k: t.worst_ratio,
    target: ">= 0.80",
    met: t.met,
    rows: att.attention,
    prefill: { peak_tflops: prePeak, target: ">= 0.50 of peak", rows: pre },
  };
  lines.push(
    `- decode attention at max_blocks_per_seq ${maxBlocks} (max_model_len ${shape.max_model_len}): worst ${t.worst_ratio === null ? "–" : `${(t.worst_ratio * 100).toFixed(1)} %`} ` +
      `of the D2D copy (${Number(att.copy_gb_per_s).toFixed(0)} GB/s) at batch >= 16, context >= 2k (target >= 80 %: ${t.met ? "met" : "NOT met"})`,
  );
  for (const r of pre)
    lines.push(
      `- prefill attention, ${r.tokens} tokens: ${r.tflops.toFixed(0)} TFLOP/s = ${(r.of_peak * 100).toFixed(1)} % of ${prePeak} (target >= 50 %: ${r.of_peak >= 0.5 ? "met" : "NOT met"})`,
    );
}
const gr = readJson("graphs.json");
if (gr) {
  const mem = gr.memory as Json;
  const cap = gr.capture as { model: string; graphs: number; captureMs: number }[];
  const ratio = mem.ratio_all_vs_largest_shared as number;
  figures.graphs = {
    ratio_all_vs_largest: ratio,
    target: "<= 1.2",
    met: ratio <= 1.2,
    capture: cap,
    per_graph_ratio: mem.ratio_all_vs_largest_per_graph,
  };
  lines.push(`- graph memory, all sizes / largest alone: ${ratio.toFixed(3)} (target <= 1.2: ${ratio <= 1.2 ? "met" : "NOT met"})`);
  for (const c of cap) lines.push(`- capture of the default list (${c.graphs} sizes, ${c.model}): ${c.captureMs.toFixed(0)} ms`);
}
const off = readJson("offload.json");
if (off) {
  const r = (
    off.rows as { fraction: number; step_over_bound: number; step_ms: number; bound_ms: number; bandwidth_gb_s: number | null }[]
  ).filter((x) => x.fraction > 0);
  const worst = r.length ? Math.max(...r.map((x) => x.step_over_bound)) : null;
  figures.offload = { worst_step_over_bound: worst, target: "<= 1.15", met: worst !== null && worst <= 1.15, rows: off.rows };
  if (worst !== null)
    lines.push(
      `- offload step / max(compute, bytes / H2D ${r[0]!.bandwidth_gb_s?.toFixed(1) ?? "?"} GB/s): worst ${worst.toFixed(2)} (target <= 1.15: ${worst <= 1.15 ? "met" : "NOT met"})`,
    );
}
const tr = readJson("torch-reference.json");
if (tr) {
  const res = tr.results as {
    model: string;
    max: number;
    mean: number;
    bound: number;
    torchMean: number | null;
    ratio: number | null;
    pass: boolean;
  }[];
  figures.torch_reference = res;
  for (const x of res)
    lines.push(
      `- torch reference ${x.model}: rel L2 vs fp32 max ${x.max.toExponential(2)} (bound ${x.bound}), mean ${x.mean.toExponential(2)}` +
        (x.torchMean !== null ? `, torch bf16 ${x.torchMean.toExponential(2)} (x${x.ratio!.toFixed(2)})` : "") +
        ` — ${x.pass ? "pass" : "FAIL"}`,
    );
}

// ---- write
const gpuLine = (() => {
  const p = tail("probe", 20);
  const m = /headroom: (.*)/.exec(p);
  return gpu === "1" ? (m?.[1] ?? "present (the probe did not open it)") : "none";
})();
const md: string[] = [
  "# headroom GPU check",
  "",
  `- date: ${new Date().toISOString()}`,
  `- gpu: ${gpuLine}`,
  `- compute-sanitizer: ${san || "not found"}`,
  `- total: ${total} s (budget ${budget} s)`,
  "",
  "| check | status | exit | seconds | command |",
  "|---|---|---|---|---|",
  ...rows.map((r) => `| ${r.name} | ${r.status} | ${r.exit} | ${r.seconds} | \`${r.command.replaceAll("|", "\\|")}\` |`),
  "",
  "## figures",
  "",
  ...(lines.length ? lines : ["- none (no GPU benchmark ran)"]),
];
for (const r of rows) md.push("", `## ${r.name} (${r.status})`, "", "```", tail(r.name), "```");
writeFileSync(join(out, "report.md"), `${md.join("\n")}\n`);
writeFileSync(
  join(out, "report.json"),
  `${JSON.stringify({ date: new Date().toISOString(), gpu: gpu === "1", device: gpuLine, sanitizer: san || null, total_s: Number(total), budget_s: Number(budget), checks: rows, figures }, null, 1)}\n`,
);
