// GET /v1/kv — paged KV cache and scheduler state.
import { Elysia } from "elysia";
import type { ServerContext } from "./context.ts";
import { ErrorResponse, KvStats } from "./schemas.ts";

export function kvRoutes(ctx: ServerContext) {
  return new Elysia({ name: "headroom-kv" }).get(
    "/v1/kv",
    async () => {
      ctx.checkReady();
      const s = await ctx.engine.stats();
      return {
        block_size: s.blockSize,
        kv_cache_dtype: s.kvCacheDtype,
        bytes_per_block: s.kvBytesPerBlock,
        scales_from_checkpoint: s.kvScalesFromCheckpoint,
        blocks_total: s.blocksTotal,
        blocks_used: s.blocksUsed,
        blocks_free: s.blocksFree,
        blocks_cached: s.blocksCached,
        usage: s.blocksTotal > 0 ? s.blocksUsed / s.blocksTotal : 0,
        prefix_cache_queries: s.prefixCacheQueries,
        prefix_cache_hits: s.prefixCacheHits,
        prefix_cache_hit_rate: s.prefixCacheHitRate,
        running: s.running,
        waiting: s.waiting,
        preemptions: s.preemptions,
      };
    },
    {
      response: { 200: KvStats, 401: ErrorResponse, 503: ErrorResponse },
      detail: {
        tags: ["Memory"],
        summary: "KV cache blocks, prefix-cache hit rate, running/waiting sequences",
        security: [{ bearerAuth: [] }],
      },
    },
  );
}
