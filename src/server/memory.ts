// GET /v1/memory, GET /v1/memory/allocator — the engine's reports (typed: src/memory/report-schema.ts).
// POST /v1/memory/plan — the planner (src/memory/planner.ts), no device needed. Its fields are
// the option rows marked `plan` (src/memory/plan-options.ts); what a request leaves out is this
// server's setting, and its device's backend and size.
import { Elysia } from "elysia";
import { planBodySchema, planRequestFrom, planValuesFromBody } from "../memory/plan-options.ts";
import { openPlanModel, planFromRequest, PlanRequestError, type PlanModelConfig } from "../memory/plan-request.ts";
import { resolvePlanModel, unreadableModel } from "../memory/plan-source.ts";
import type { PlanBackend } from "../memory/planner.ts";
import { AllocatorReport, MemoryReport, PlanResponseSchema } from "../memory/report-schema.ts";
import { isSyntheticSpec } from "../model/synthetic.ts";
import type { ServerContext } from "./context.ts";
import { badRequest } from "./errors.ts";
import { ErrorResponse } from "./schemas.ts";

const PlanBody = planBodySchema();

/** The backend and device size of this server, when the engine can say (else the flags'). */
async function serverDevice(ctx: ServerContext): Promise<{ backend: PlanBackend; bytes: number | null }> {
  const flagged: PlanBackend = ctx.options.device === "cpu" ? "cpu" : "cuda";
  if (ctx.engine.health() !== "ready") return { backend: flagged, bytes: ctx.options.deviceMemory };
  const d = (await ctx.engine.memory()).device;
  return { backend: d.backend === "cpu" ? "cpu" : "cuda", bytes: d.total_bytes };
}

/** The model config a plan request may use (plan-source.ts says which); errors quote nothing from files. */
function planModelConfig(ctx: ServerContext, model: string | null | undefined): PlanModelConfig {
  const path = resolvePlanModel(model, {
    servedModel: ctx.options.model,
    servedNames: ctx.engine.health() === "ready" ? [ctx.modelName(), ctx.engine.model().id] : [],
    modelsDir: ctx.options.modelsDir,
  });
  try {
    return openPlanModel(path);
  } catch (e) {
    if (isSyntheticSpec(path)) throw new PlanRequestError((e as Error).message); // the client's own text
    throw unreadableModel(model ?? "(the served model)");
  }
}

export function memoryRoutes(ctx: ServerContext) {
  return new Elysia({ name: "headroom-memory" })
    .get(
      "/v1/memory",
      async () => {
        ctx.checkReady();
        return await ctx.engine.memory();
      },
      {
        response: { 200: MemoryReport, 401: ErrorResponse, 503: ErrorResponse },
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
        response: { 200: AllocatorReport, 401: ErrorResponse, 503: ErrorResponse },
        detail: { tags: ["Memory"], summary: "Caching allocator stats and segment/block snapshot", security: [{ bearerAuth: [] }] },
      },
    )
    .post(
      "/v1/memory/plan",
      async ({ body }) => {
        const fields = body as Record<string, unknown>;
        const config = fields.config as Record<string, unknown> | undefined;
        try {
          const device = await serverDevice(ctx);
          const req = planRequestFrom(planValuesFromBody(fields), {
            options: ctx.options,
            backend: device.backend,
            deviceMemoryBytes: device.bytes,
          });
          if (req.deviceMemoryBytes === null)
            throw new PlanRequestError("give device_memory_bytes (this server's device size is not known yet)");
          const modelConfig = config ? undefined : planModelConfig(ctx, req.model);
          return planFromRequest({ ...req, model: undefined, modelConfig, config, deviceMemoryBytes: req.deviceMemoryBytes });
        } catch (e) {
          throw badRequest(`cannot plan: ${(e as Error).message}`, config ? "config" : "model");
        }
      },
      {
        body: PlanBody,
        parse: "json", // documents application/json; the bounded reader in app.ts parses first
        response: { 200: PlanResponseSchema, 400: ErrorResponse, 401: ErrorResponse, 413: ErrorResponse },
        detail: {
          tags: ["Memory"],
          summary: "What-if memory plan: weights, activation arena, KV blocks, concurrency, offload (defaults: this server's settings)",
          security: [{ bearerAuth: [] }],
        },
      },
    );
}
