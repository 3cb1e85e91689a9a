// The engine core in its own process, over Bun's IPC channel (Bun.spawn `ipc`).
//
// Why this channel: Bun frames each message itself (structured-clone serialization, so
// numbers and typed arrays travel without JSON text), the channel closing is the child's
// `disconnect`, and it works the same from the single binary, which re-executes itself as
// `headroom __engine` (cli.ts). A round trip costs tens of µs, once per step for all running
// requests together (one `events` message per step), not per token of each request.
import { fileURLToPath } from "node:url";
import type { FromWorker } from "./protocol.ts";
import type { EngineTransport, TransportFactory } from "./transport.ts";

/** argv that starts an engine process from this server (source tree or single binary). */
export function engineCommand(): string[] {
  if (Bun.isStandaloneExecutable) return [process.execPath, "__engine"];
  return [process.execPath, fileURLToPath(new URL("./engine-main.ts", import.meta.url))];
}

async function pumpLines(stream: ReadableStream<Uint8Array>, line: (s: string) => void): Promise<void> {
  const dec = new TextDecoder();
  let buf = "";
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        line(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    }
  } catch {
    // the process is gone; onExit reports why
  }
  if (buf) line(buf);
}

export const processTransport: TransportFactory = (h, start) => {
  let exited = false;
  const proc = Bun.spawn(engineCommand(), {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, HEADROOM_ENGINE_START: String(start) },
    serialization: "advanced",
    ipc: (m) => {
      if (!exited) h.onMessage(m as FromWorker);
    },
    onExit: (_p, code, signal) => {
      exited = true;
      h.onExit(signal ? `signal ${signal}` : `exit code ${code}`);
    },
  });
  const out = (s: string) => h.onOutput?.(s);
  void pumpLines(proc.stdout, out);
  void pumpLines(proc.stderr, out);
  const t: EngineTransport = {
    send: (m) => {
      if (exited) return;
      try {
        proc.send(m);
      } catch {
        // died between the check and the send: onExit follows
      }
    },
    kill: () => {
      if (!exited) proc.kill("SIGKILL");
    },
  };
  return t;
};
