// Markdown tables of a peer run, from its JSON (bench/out/peer.json): printed by run.ts and
// rendered into bench/RESULTS.md by bench/report.ts.
import { fmtRatio, fmtSpread, type Comparison } from "./stats.ts";

// biome-ignore lint/suspicious/noExplicitAny: the JSON of a run, read field by field
type J = Record<string, any>;

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

function row(c: Comparison, digits: number, label = c.metric): string[] {
  return [
    label,
    fmtSpread(c.llama, digits),
    fmtSpread(c.headroom, digits),
    fmtRatio(c),
    Number.isFinite(c.ratio) ? (c.headroomBetter ? "headroom" : "llama.cpp") : "–",
  ];
}

const loads = (xs: number[] | undefined) => (xs ?? []).map((x) => (Number.isFinite(x) ? x.toFixed(2) : "?")).join(", ");

export function renderPeerTables(j: J): string {
  const parts: string[] = [];
  const la = (x: number[] | undefined) => (x ? x.map((v) => v.toFixed(2)).join(" / ") : "?");
  parts.push(
    `llama.cpp ${String(j.llama_cpp?.commit ?? "?").slice(0, 12)} (node-llama-cpp ${j.llama_cpp?.node_llama_cpp_release ?? "?"}) vs headroom, ` +
      `${j.machine}; ${j.pinning}; ${j.reps} repetitions alternating which system goes first${j.quick ? " (--quick)" : ""}. ` +
      `Load average 1/5/15 min: ${la(j.load_average_start)} at start, ${la(j.load_average_end)} at the end. ` +
      `Cells: median (min–max) over the repetitions; the ratio is headroom ÷ llama.cpp of the medians, in brackets the range of the ` +
      `ratios of each repetition's back-to-back pair. Model: ${j.model?.shape}.`,
  );
  for (const f of (j.formats ?? []) as J[]) {
    const head = `**${f.format}** (${(f.fileBytes / 2 ** 20).toFixed(0)} MiB file)`;
    if (f.error) {
      parts.push(`${head}: ${f.error}`);
      continue;
    }
    const s = f.llamaSettings ?? {};
    const rows = (f.comparisons as Comparison[]).map((c) => row(c, 1));
    const greedy = f.greedy
      ? `greedy ${j.greedy_tokens} tokens after a ${j.greedy_prompt_tokens}-token prompt: ${f.greedy.text}`
      : "no greedy check";
    const dq = f.greedyDequantized
      ? `; llama.cpp on the file dequantized to F32 vs headroom on ${f.format}: ${f.greedyDequantized.text}`
      : "";
    const hf = f.hfVsGguf
      ? `; headroom from the HF folder vs the GGUF: ${f.hfVsGguf.divergeAt === null ? `agree (${f.hfVsGguf.compared}/${f.hfVsGguf.compared})` : `diverge at ${f.hfVsGguf.divergeAt}`}`
      : "";
    parts.push(
      `${head} — ${greedy}${dq}${hf}. llama.cpp settings (its defaults): flash_attn ${s.flash_attn}, KV ${s.type_k}/${s.type_v}, n_batch ${s.n_batch}, n_ubatch ${s.n_ubatch}, ${s.n_threads} threads. ` +
        `Load average per repetition: ${loads(f.loadAverages)}.\n\n` +
        table(["tok/s", "llama.cpp", "headroom", "headroom ÷ llama.cpp", "better"], rows),
    );
  }
  const h = j.http as J | null;
  if (h) {
    const w = h.workload;
    const rows = (h.comparisons as Comparison[]).map((c) => row(c, c.unit === "ms" ? 1 : 1, `${c.metric} (${c.unit})`));
    const o = h.outputs;
    parts.push(
      `**HTTP** (F32 file): ${w.concurrency} concurrent streaming clients, ${w.requests} requests, ${w.promptTokens}-token prompts (distinct, token ids), ` +
        `${w.maxTokens} tokens each (greedy, ignore_eos), streamed from llama-server's /completion and headroom's /v1/completions. Outputs of the last repetition: ${o.identical}/${o.total} requests identical` +
        `${o.firstDifferent === null ? "" : ` (first different: request ${o.firstDifferent})`}. Load average per repetition: ${loads(h.loadAverages)}.\n` +
        `\`${h.llamaArgv.map((a: string) => a.split("/").at(-1)).join(" ")}\` vs \`headroom ${h.headroomArgv
          .slice(h.headroomArgv.indexOf("serve"))
          .map((a: string) => a.split("/").at(-1))
          .join(" ")}\`\n\n` +
        table(["HTTP", "llama.cpp", "headroom", "headroom ÷ llama.cpp", "better"], rows),
    );
    if ((h.variants ?? []).length) {
      const l = (h.comparisons as Comparison[]).find((c) => c.metric.includes("inter-token p99"));
      const lt = (h.comparisons as Comparison[]).find((c) => c.metric.includes("TTFT"));
      const tp = (h.comparisons as Comparison[]).find((c) => c.metric.includes("throughput"));
      const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
      const x = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}×` : "–");
      const row = (label: string, r: J[]) => {
        const [t, ttft, p99] = [
          med(r.map((y) => y.output_tokens_per_s)),
          med(r.map((y) => y.ttft_ms.p50)),
          med(r.map((y) => y.itl_ms.p99)),
        ];
        return [
          label,
          t.toFixed(1),
          x(t, tp?.llama.median),
          ttft.toFixed(0),
          x(ttft, lt?.llama.median),
          med(r.map((y) => y.itl_ms.p50)).toFixed(0),
          p99.toFixed(0),
          x(p99, l?.llama.median),
        ];
      };
      parts.push(
        `headroom serve with other settings, in the same repetitions (medians; ratios to llama-server's medians):\n\n` +
          table(
            ["headroom serve", "tok/s", "÷ llama", "TTFT p50 ms", "÷ llama", "ITL p50 ms", "ITL p99 ms", "÷ llama"],
            [
              row("(defaults)", h.runs.headroom as J[]),
              ...(h.variants as J[]).map((v) => row(`\`${(v.args as string[]).join(" ")}\``, v.runs as J[])),
            ],
          ),
      );
    }
    if ((h.budgets ?? []).length) {
      const l = (h.comparisons as Comparison[]).find((c) => c.metric.includes("inter-token p99"));
      const lt = (h.comparisons as Comparison[]).find((c) => c.metric.includes("TTFT"));
      const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
      parts.push(
        `headroom serve at other chunked-prefill budgets (--max-num-batched-tokens; same workload, ${h.budgets[0].runs.length} run(s) each; llama-server's medians: ` +
          `TTFT p50 ${lt?.llama.median.toFixed(0)} ms, inter-token p99 ${l?.llama.median.toFixed(0)} ms):\n\n` +
          table(
            ["budget", "tok/s", "TTFT p50 ms", "ITL p50 ms", "ITL p99 ms", "ITL p99 ÷ llama-server"],
            (h.budgets as J[]).map((b) => {
              const r = b.runs as J[];
              const p99 = med(r.map((x) => x.itl_ms.p99));
              return [
                String(b.budget),
                med(r.map((x) => x.output_tokens_per_s)).toFixed(1),
                med(r.map((x) => x.ttft_ms.p50)).toFixed(0),
                med(r.map((x) => x.itl_ms.p50)).toFixed(0),
                p99.toFixed(0),
                l ? `${(p99 / l.llama.median).toFixed(2)}×` : "–",
              ];
            }),
          ),
      );
    }
  }
  return parts.join("\n\n");
}
