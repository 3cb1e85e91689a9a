// GET /health — 200 {status: "ok"} when the engine and the tokenizer are ready, 503 while
// starting or after either died.
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
      detail: { tags: ["Operations"], summary: "Readiness (503 while starting or after the engine died)" },
    },
  );
}
