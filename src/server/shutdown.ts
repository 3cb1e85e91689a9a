// Graceful shutdown (SIGTERM/SIGINT): stop accepting, let in-flight requests finish for up to
// `timeoutMs`, then end the rest (the engine finishes them with finish_reason "abort", so each
// client still gets a complete JSON body or a final chunk + [DONE]), then stop the engine.
import type { Engine } from "../engine/api.ts";
import type { RunningServer } from "./app.ts";
import type { Logger } from "./log.ts";

/** After the timeout ended the remaining requests: time for their final bytes to go out. */
const FLUSH_MS = 5000;

export async function drainAndStop(server: RunningServer, engine: Engine, timeoutMs: number, log: Logger): Promise<{ ended: boolean }> {
  const ctx = server.app.ctx;
  ctx.draining = true; // /health 503, new generation requests 503
  log.info("draining", { in_flight_sequences: ctx.inflight, shutdown_timeout_s: timeoutMs / 1000 });
  // No new connections; idle keep-alive connections close now, busy ones after their response.
  const closed = server.server.stop(false);
  let ended = false;
  const timer = setTimeout(() => {
    ended = true;
    log.warn("shutdown timeout reached: ending in-flight requests", { in_flight_sequences: ctx.inflight });
    ctx.endInflight();
  }, timeoutMs);
  await Promise.race([closed, Bun.sleep(timeoutMs + FLUSH_MS)]);
  clearTimeout(timer);
  await server.stop(true); // whatever is still open after the flush time; the tokenizer workers
  await engine.close().catch(() => {});
  return { ended };
}
