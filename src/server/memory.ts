// GET /v1/memory, GET /v1/memory/allocator — the engine's payloads, passed through.
// (POST /v1/memory/plan arrives with the planner in src/memory/planner.ts.)
import { Elysia } from "elysia";
import type { ServerContext } from "./context.ts";
import { AllocatorPayload, ErrorResponse, MemoryPayload } from "./schemas.ts";

export function memoryRoutes(ctx: ServerContext) {
  return new Elysia({ name: "headroom-memory" })
    .get(
      "/v1/memory",
      async () => {
        ctx.checkReady();
        return await ctx.engine.memory();
      },
      {
        response: { 200: MemoryPayload, 401: ErrorResponse, 503: ErrorResponse },
        detail: {
          tags: ["Memory"],
          summary: "Device memory: snapshot, start-up profile, breakdown, suggestions",
          security: [{ bearerAuth: [] }],
        },
      },
    )
    .get(
      "/v1/memory/allocator",
      async () => {
        ctx.checkReady();
        return await ctx.engine.allocator();
      },
      {
        response: { 200: AllocatorPayload, 401: ErrorResponse, 503: ErrorResponse },
        detail: { tags: ["Memory"], summary: "Caching allocator stats and segment/block snapshot", security: [{ bearerAuth: [] }] },
      },
    );
}
