// bench/report.ts: RESULTS.md surgery keeps hand-written text and other benchmarks' blocks.
import { describe, expect, test } from "bun:test";
import { fmt, renderGeneric, renderRun, splitSections, upsertBlock } from "../../bench/report.ts";
import { discover } from "../../bench/run.ts";

const MD = `# Benchmark results

Preamble by hand.

## allocator

Hand-written figures: 56.2 ns.

## load

Hand-written load figures.
`;

describe("bench report", () => {
  test("a benchmark's block goes into its own section, after the hand-written text", () => {
    const md = upsertBlock(MD, "allocator", "### Latest\n\nA");
    expect(md).toContain("Hand-written figures: 56.2 ns.\n\n<!-- bench:allocator:begin -->\n### Latest\n\nA\n<!-- bench:allocator:end -->");
    expect(md).toContain("Preamble by hand.");
    expect(md).toContain("Hand-written load figures.");
    expect(md.indexOf("bench:allocator")).toBeLessThan(md.indexOf("## load"));
  });

  test("a second run replaces only its block", () => {
    let md = upsertBlock(MD, "allocator", "first");
    md = upsertBlock(md, "load", "load block");
    md = upsertBlock(md, "allocator", "second");
    expect(md).not.toContain("first");
    expect(md).toContain("second");
    expect(md).toContain("load block");
    expect(md.match(/bench:allocator:begin/g)).toHaveLength(1);
    expect(splitSections(md).map((s) => s.name)).toEqual([null, "allocator", "load"]);
  });

  test("a benchmark without a section gets a new one at the end", () => {
    const md = upsertBlock(MD, "graphs", "gpu figures");
    const s = splitSections(md);
    expect(s.at(-1)!.name).toBe("graphs");
    expect(s.at(-1)!.text).toContain("gpu figures");
  });

  test("generic rendering of an unknown JSON: scalars and row tables", () => {
    const text = renderGeneric({
      machine: "m",
      threads: 2,
      cfg: { a: 1.23456 },
      rows: [
        { x: 1, y: 0.5 },
        { x: 2, y: 0.25 },
      ],
    });
    expect(text).toContain("| threads | 2 |");
    expect(text).toContain("| cfg.a | 1.235 |");
    expect(text).toContain("| x | y |");
    expect(text).toContain("| 2 | 0.2500 |");
    expect(fmt(12345)).toBe("12,345");
  });

  test("renderRun falls back to the generic renderer when a specific one cannot read the JSON", () => {
    const text = renderRun({
      name: "allocator",
      date: "2026-01-01T00:00:00Z",
      machine: "M",
      command: "c",
      wallSeconds: 1,
      outputs: { "allocator.json": { changed: 1 } },
    });
    expect(text).toContain("| changed | 1 |");
    expect(text).toContain("Machine: M");
  });

  test("discovers the benchmarks in bench/", () => {
    const names = discover().map((s) => s.name);
    for (const n of ["allocator", "load", "serve"]) expect(names).toContain(n);
  });
});
