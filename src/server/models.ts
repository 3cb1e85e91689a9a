// GET /v1/models, GET /v1/models/:model
import { Elysia, t } from "elysia";
import type { ServerContext } from "./context.ts";
import { ApiError } from "./errors.ts";
import { ErrorResponse, ModelCard, ModelList } from "./schemas.ts";

export function modelsRoutes(ctx: ServerContext) {
  const card = () => {
    ctx.checkReady(); // the engine knows its model only once loaded
    const m = ctx.engine.model();
    return {
      id: ctx.modelName(),
      object: "model" as const,
      created: ctx.created,
      owned_by: "headroom",
      root: ctx.options.model ?? m.id,
      max_model_len: ctx.maxModelLen(),
      random_weights: m.randomWeights,
    };
  };
  return new Elysia({ name: "headroom-models" })
    .get("/v1/models", () => ({ object: "list" as const, data: [card()] }), {
      response: { 200: ModelList, 401: ErrorResponse, 503: ErrorResponse },
      detail: { tags: ["OpenAI"], summary: "List models", security: [{ bearerAuth: [] }] },
    })
    .get(
      "/v1/models/:model",
      ({ params }) => {
        const c = card();
        if (params.model !== c.id)
          throw new ApiError(404, `The model '${params.model}' does not exist.`, "invalid_request_error", "model", "model_not_found");
        return c;
      },
      {
        params: t.Object({ model: t.String() }, { additionalProperties: false }),
        response: { 200: ModelCard, 401: ErrorResponse, 404: ErrorResponse, 503: ErrorResponse },
        detail: { tags: ["OpenAI"], summary: "Retrieve a model", security: [{ bearerAuth: [] }] },
      },
    );
}
