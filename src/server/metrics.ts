// GET /metrics — Prometheus text exposition: headroom_* and vLLM-compatible vllm:* (vllm-metrics.ts).
import { Elysia, t } from "elysia";
import type { ServerContext } from "./context.ts";

export function metricsRoutes(ctx: ServerContext) {
  return new Elysia({ name: "headroom-metrics" }).get(
    "/metrics",
    async ({ set }) => {
      set.headers["content-type"] = "text/plain; version=0.0.4; charset=utf-8";
      return await ctx.metrics.scrape(ctx.engine, ctx.inflight);
    },
    {
      response: { 200: t.String({ description: "Prometheus text format 0.0.4" }) },
      detail: {
        tags: ["Operations"],
        summary: "Prometheus metrics",
        description:
          "headroom_* families and vLLM-compatible vllm:* families (names, types, buckets and model_name label as vLLM v1), for vLLM Grafana dashboards and inference gateways.",
      },
    },
  );
}
