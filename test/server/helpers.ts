// Starts the real HTTP server on 127.0.0.1 with an ephemeral port over an engine.
// To run a suite against the real engine, replace the `new FakeEngine(...)` below with
// `await createEngine(options)` (src/server/engine-factory.ts) — nothing else changes.
import type { Engine } from "../../src/engine/api.ts";
import { startServer, type RunningServer } from "../../src/server/app.ts";
import { createLogger, silentLogger, type Logger } from "../../src/server/log.ts";
import { defaultServeOptions, type ServeOptions } from "../../src/server/options.ts";
import { FakeEngine, type FakeEngineOptions } from "./fake-engine.ts";

export interface TestServer {
  url: string;
  engine: FakeEngine;
  server: RunningServer;
  options: ServeOptions;
  logs: string[];
  close(): Promise<void>;
}

export async function startTestServer(
  args: { fake?: FakeEngineOptions; options?: Partial<ServeOptions>; engine?: Engine; waitReady?: boolean } = {},
): Promise<TestServer> {
  const options: ServeOptions = { ...defaultServeOptions(), host: "127.0.0.1", port: 0, ...args.options };
  const engine = (args.engine ?? new FakeEngine(args.fake)) as FakeEngine;
  if (args.waitReady !== false) await engine.ready();
  const logs: string[] = [];
  const logger: Logger = process.env.HEADROOM_TEST_LOGS ? createLogger("debug") : createLogger("debug", (l) => logs.push(l));
  const server = startServer({ engine, options, logger: logger ?? silentLogger });
  // The text side (tokenizer workers) loads in the background after listening.
  if (args.waitReady !== false) await server.app.ctx.text.start();
  return {
    url: server.url,
    engine,
    server,
    options,
    logs,
    close: async () => {
      await server.stop(true);
      await engine.close();
    },
  };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Reads an SSE body into its `data:` payloads (JSON-parsed, except "[DONE]"). */
export async function readSse(res: Response): Promise<unknown[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((b) => b.startsWith("data: "))
    .map((b) => b.slice(6))
    .map((d) => (d === "[DONE]" ? "[DONE]" : JSON.parse(d)));
}

export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs = 2000, what = "condition"): Promise<number> {
  const t0 = performance.now();
  while (!(await cond())) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(2);
  }
  return performance.now() - t0;
}
