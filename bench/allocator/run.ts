// Builds and runs the caching-allocator benchmark (bench/allocator/bench_allocator.c) from the
// repository root: `bun bench/allocator/run.ts`. The C program prints the table and writes
// bench/out/allocator.json; this prints the headline figures from that JSON.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..", "..");
const r = spawnSync("make", ["--no-print-directory", "bench-allocator"], { cwd: root, stdio: "inherit" });
if (r.status !== 0) {
  console.error(`bench/allocator: make bench-allocator failed (status ${r.status})`);
  process.exit(1);
}
const out = JSON.parse(readFileSync(join(root, "bench/out/allocator.json"), "utf8")) as {
  pair_ns_median: Record<string, number>;
  decode_trace: { kv_growth: string; fragmentation: number }[];
};
const p = out.pair_ns_median;
console.log(
  `allocator: cached alloc+free pair ${p.allocator!.toFixed(1)} ns median vs malloc/free ${p.malloc!.toFixed(1)} ns ` +
    `(target < 150 ns); fragmentation ` +
    out.decode_trace.map((t) => `${t.kv_growth} ${t.fragmentation.toFixed(3)}`).join(", "),
);
