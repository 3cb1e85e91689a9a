// Start-up progress (weights loading, profiling, graph capture): a redrawn bar when stdout is a
// terminal, JSON log lines otherwise. The engine factory receives `onProgress`.
import type { Logger } from "./log.ts";

export interface StartupProgress {
  /** e.g. "load_weights", "profile", "capture_graphs", "kv_cache". */
  stage: string;
  done: number;
  total: number;
  /** "bytes" | "layers" | "graphs" | … (display only). */
  unit?: string;
  message?: string;
}

export type ProgressHook = (p: StartupProgress) => void;

function fmt(v: number, unit?: string): string {
  if (unit === "bytes") {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (v >= 1024 && i < u.length - 1) (v /= 1024), i++;
    return `${v.toFixed(i ? 1 : 0)} ${u[i]}`;
  }
  return `${v}${unit ? " " + unit : ""}`;
}

export function createProgress(
  log: Logger,
  out: { isTTY?: boolean; write(s: string): unknown } = process.stdout,
): ProgressHook & { end(): void } {
  let stage = "";
  let lastLog = 0;
  let drawn = false;
  const hook = ((p: StartupProgress) => {
    const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
    if (out.isTTY) {
      const width = 30;
      const filled = Math.round(frac * width);
      const bar = "█".repeat(filled) + "░".repeat(width - filled);
      out.write(
        `\r\x1b[2K${p.stage.padEnd(16)} ${bar} ${(frac * 100).toFixed(0).padStart(3)}%  ${fmt(p.done, p.unit)} / ${fmt(p.total, p.unit)}${p.message ? "  " + p.message : ""}`,
      );
      drawn = true;
      if (p.done >= p.total) {
        out.write("\n");
        drawn = false;
      }
    } else {
      const now = performance.now();
      if (p.stage !== stage || p.done >= p.total || now - lastLog > 2000) {
        log.info("startup progress", { stage: p.stage, done: p.done, total: p.total, unit: p.unit, message: p.message });
        lastLog = now;
      }
    }
    stage = p.stage;
  }) as ProgressHook & { end(): void };
  hook.end = () => {
    if (drawn) out.write("\n");
    drawn = false;
  };
  return hook;
}
