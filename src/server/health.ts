// GET /health — 200 {status: "ok"} when the engine and the tokenizer are ready; 503 {status}
// while starting, restarting (the engine died or hung), dead (restarts gave up, or the tokenizer
// failed), or while the server drains (SIGTERM).
import { Elysia } from "elysia";
import type { ServerContext } from "./context.ts";
import { Health } from "./schemas.ts";

export function healthRoutes(ctx: ServerContext) {
  return new Elysia({ name: "headroom-health" }).get(
    "/health",
    ({ status }) => {
      const h = ctx.health();
      if (h === "ready") return { status: "ok" as const };
      return status(503, { status: h });
    },
    {
      response: { 200: Health, 503: Health },
      detail: {
        tags: ["Operations"],
        summary: "Readiness (503 while the engine is starting, restarting or dead, and while the server drains)",
      },
    },
  );
}
