// Exact bytes over TCP: what fetch() cannot send (no/odd Host headers, half-sent bodies,
// chunked bodies of a chosen size). Resolves with everything the server sent before closing.
import net from "node:net";

export interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection (rather than our timeout). */
  closed: boolean;
  ms: number;
  /** ms until the first byte of the reply (Infinity when none came). */
  firstByteMs: number;
}

export function parseReply(text: string, closed: boolean, ms: number, firstByteMs = Infinity): RawReply {
  const end = text.indexOf("\r\n\r\n");
  const head = end >= 0 ? text.slice(0, end) : text;
  const [statusLine = "", ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(" ")[1] ?? 0), headers, body: end >= 0 ? text.slice(end + 4) : "", closed, ms, firstByteMs };
}

/** Sends `parts` (written in order, `gapMs` apart), then waits up to `waitMs` for the server to close. */
export function rawRequest(
  port: number,
  parts: (string | Uint8Array)[],
  opts: { waitMs?: number; gapMs?: number } = {},
): Promise<RawReply> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let data = "";
    let done = false;
    let firstByteMs = Infinity;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(parseReply(data, closed, performance.now() - t0, firstByteMs));
    };
    const sock = net.connect(port, "127.0.0.1", async () => {
      for (const p of parts) {
        if (done) return;
        sock.write(p);
        if (opts.gapMs) await Bun.sleep(opts.gapMs);
      }
    });
    sock.on("data", (b) => {
      if (data === "") firstByteMs = performance.now() - t0;
      data += b.toString("latin1");
    });
    sock.on("end", () => finish(true));
    sock.on("close", () => finish(true));
    sock.on("error", () => finish(true));
    const timer = setTimeout(() => finish(false), opts.waitMs ?? 3000);
  });
}

/** A GET with exactly these header lines (e.g. ["Host: ab"]); `Connection: close` added. */
export function rawGet(port: number, target: string, headerLines: string[], version = "HTTP/1.1"): Promise<RawReply> {
  return rawRequest(port, [`GET ${target} ${version}\r\n${[...headerLines, "Connection: close"].join("\r\n")}\r\n\r\n`]);
}
