// Helpers for test/ship: spawn a headroom process, collect its JSON log lines, find its URL.
import type { Subprocess } from "bun";

export interface Spawned {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  lines: string[];
  /** Resolves with the URL from the "listening" log line. */
  url: Promise<string>;
  exited: Promise<number>;
  kill(): Promise<void>;
}

export function spawnHeadroom(cmd: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}): Spawned {
  const proc = Bun.spawn(cmd, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env } as Record<string, string>,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const lines: string[] = [];
  let found: (u: string) => void;
  let failed: (e: Error) => void;
  const url = new Promise<string>((res, rej) => {
    found = res;
    failed = rej;
  });
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    let buf = "";
    const reader = stream.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        try {
          const j = JSON.parse(line) as { msg?: string; url?: string };
          if (j.msg === "listening" && j.url) found(j.url);
        } catch {}
      }
    }
    if (buf) lines.push(buf);
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  const exited = proc.exited.then((code) => {
    failed(new Error(`process exited with ${code} before listening:\n${lines.join("\n")}`));
    return code;
  });
  return {
    proc,
    lines,
    url,
    exited,
    kill: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      await Promise.race([proc.exited, Bun.sleep(5000)]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    },
  };
}

export async function waitHealthy(url: string, timeoutMs = 30_000): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    try {
      const r = await fetch(`${url}/health`);
      if (r.status === 200) return;
    } catch {}
    if (performance.now() - t0 > timeoutMs) throw new Error(`${url}/health not 200 after ${timeoutMs} ms`);
    await Bun.sleep(50);
  }
}
