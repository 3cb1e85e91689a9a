// GET /v1/memory, GET /v1/memory/allocator — the engine's payloads, passed through.
// POST /v1/memory/plan — the planner (src/memory/planner.ts), no device needed.
import { Elysia, t } from "elysia";
import { openPlanModel, planFromRequest, PlanRequestError, type PlanModelConfig } from "../memory/plan-request.ts";
import { resolvePlanModel, unreadableModel } from "../memory/plan-source.ts";
import { isSyntheticSpec } from "../model/synthetic.ts";
import type { ServerContext } from "./context.ts";
import { badRequest } from "./errors.ts";
import { AllocatorPayload, ErrorResponse, MemoryPayload } from "./schemas.ts";

const PlanBody = t.Object(
  {
    model: t.Optional(t.String({ description: "HF folder, .gguf file or synthetic:… spec on the server (default: the served model's config)" })),
    config: t.Optional(t.Record(t.String(), t.Unknown(), { description: "an HF config.json object", additionalProperties: false })),
    backend: t.Optional(t.Union([t.Literal("cuda"), t.Literal("cpu")])),
    device_memory_bytes: t.Integer({ minimum: 1 }),
    gpu_memory_utilization: t.Optional(t.Number({ exclusiveMinimum: 0, maximum: 1 })),
    max_model_len: t.Optional(t.Integer({ minimum: 2 })),
    max_num_seqs: t.Optional(t.Integer({ minimum: 1 })),
    max_num_batched_tokens: t.Optional(t.Integer({ minimum: 1 })),
    block_size: t.Optional(t.Integer({ minimum: 1, maximum: 1024 })),
    cudagraph_capture_sizes: t.Optional(t.Array(t.Integer({ minimum: 1 }))),
    enforce_eager: t.Optional(t.Boolean()),
    kv_cache_memory_bytes: t.Optional(t.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

const PlanResponse = t.Object(
  {
    model: t.Record(t.String(), t.Unknown(), { additionalProperties: false }),
    inputs: t.Record(t.String(), t.Unknown(), { additionalProperties: false }),
    plan: t.Record(t.String(), t.Unknown(), { additionalProperties: false }),
  },
  { additionalProperties: false },
);

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
    )
    .post(
      "/v1/memory/plan",
      ({ body }) => {
        try {
          // Only the served model, synthetic specs, inline configs and --models-dir files.
          let modelConfig: PlanModelConfig | undefined;
          if (!body.config) {
            const path = resolvePlanModel(body.model, {
              servedModel: ctx.options.model,
              servedNames: ctx.engine.health() === "ready" ? [ctx.modelName(), ctx.engine.model().id] : [],
              modelsDir: ctx.options.modelsDir,
            });
            try {
              modelConfig = openPlanModel(path);
            } catch (e) {
              if (isSyntheticSpec(path)) throw new PlanRequestError((e as Error).message);
              throw unreadableModel(body.model ?? "(the served model)");
            }
          }
          const r = planFromRequest({
            modelConfig,
            config: body.config,
            backend: body.backend,
            deviceMemoryBytes: body.device_memory_bytes,
            gpuMemoryUtilization: body.gpu_memory_utilization,
            maxModelLen: body.max_model_len,
            maxNumSeqs: body.max_num_seqs,
            maxNumBatchedTokens: body.max_num_batched_tokens,
            blockSize: body.block_size,
            cudagraphCaptureSizes: body.cudagraph_capture_sizes,
            enforceEager: body.enforce_eager,
            kvCacheMemoryBytes: body.kv_cache_memory_bytes,
          });
          return { model: r.model, inputs: r.inputs, plan: r.plan as unknown as Record<string, unknown> };
        } catch (e) {
          throw badRequest(`cannot plan: ${(e as Error).message}`, body.config ? "config" : "model");
        }
      },
      {
        body: PlanBody,
        parse: "json", // documents application/json; the bounded reader in app.ts parses first
        response: { 200: PlanResponse, 400: ErrorResponse, 401: ErrorResponse },
        detail: {
          tags: ["Memory"],
          summary: "What-if memory plan: weights, activation arena, KV blocks, concurrency, offload",
          security: [{ bearerAuth: [] }],
        },
      },
    );
}
