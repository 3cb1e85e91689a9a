// GET /v1/memory, GET /v1/memory/allocator — the engine's payloads, passed through.
// POST /v1/memory/plan — the planner (src/memory/planner.ts), no device needed.
import { Elysia, t } from "elysia";
import { planFromRequest } from "../memory/plan-request.ts";
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
        if (!body.model && !body.config) {
          const served = ctx.options.model;
          if (!served) throw badRequest("give `model` or `config`: the served model is the built-in demo model", "model");
          body = { ...body, model: served };
        }
        try {
          const r = planFromRequest({
            model: body.model,
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
        response: { 200: PlanResponse, 400: ErrorResponse, 401: ErrorResponse },
        detail: {
          tags: ["Memory"],
          summary: "What-if memory plan: weights, activation arena, KV blocks, concurrency, offload",
          security: [{ bearerAuth: [] }],
        },
      },
    );
}
