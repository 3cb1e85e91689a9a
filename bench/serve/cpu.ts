// CPU time (utime + stime, µs) of a process and its descendants, from /proc (Linux; NaN
// elsewhere). The engine runs in a child process of the server, so a per-token CPU figure
// must count both.
import { readdirSync, readFileSync } from "node:fs";

const CLK_TCK = 100; // Linux user-space clock ticks per second

function ownCpuUs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const parts = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return ((Number(parts[11]) + Number(parts[12])) / CLK_TCK) * 1e6;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    } catch {
      // thread exited
    }
  }
  return out;
}

export function treeCpuUs(pid: number): number {
  try {
    let total = ownCpuUs(pid);
    for (const c of childrenOf(pid)) total += treeCpuUs(c);
    return total;
  } catch {
    return NaN;
  }
}
