// KV cache manager: maps requests to blocks of the pool (vLLM v1's KVCacheManager is the anchor).
// Kept apart from the scheduler: it knows nothing of budgets or queues, only of requests'
// token ids, how many of them are computed, and which blocks hold them.

import { BlockPool, hashBlockTokens, type BlockHash, type KVCacheBlock } from "./block-pool.ts";
import type { Request } from "./request.ts";

export interface KVCacheManagerOptions {
  numBlocks: number;
  /** Tokens per block (default 16). */
  blockSize?: number;
  /** Prefix caching (default true). */
  enablePrefixCaching?: boolean;
}

export interface ComputedBlocks {
  /** Cached blocks holding the longest prefix of the request's tokens (full blocks only). */
  blocks: KVCacheBlock[];
  /** blocks.length × blockSize. */
  numComputedTokens: number;
}

export interface KVCacheStats {
  numBlocks: number;
  blockSize: number;
  /** Blocks with ref count > 0. */
  usedBlocks: number;
  /** Blocks on the free queue (including cached ones that can still be hit). */
  freeBlocks: number;
  /** Blocks registered in the prefix cache (used or free). */
  cachedBlocks: number;
  /** Free blocks that still carry a cached hash. */
  cachedFreeBlocks: number;
  /** usedBlocks / numBlocks. */
  usage: number;
  /** Prefix-cache lookups counted in tokens: every admission adds the request's token count … */
  prefixCacheQueries: number;
  /** … and the number of those tokens served from the cache. */
  prefixCacheHits: number;
  /** hits / queries (0 when nothing was queried). */
  prefixCacheHitRate: number;
  /** Requests admitted (with a prefix lookup). */
  prefixCacheRequests: number;
  /** Cached blocks whose hash was dropped to reuse the block. */
  evictions: number;
}

export class KVCacheManager {
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly enablePrefixCaching: boolean;
  readonly pool: BlockPool;
  /** Per request: its block ids in token order (ids, not handles: see block-pool.ts). */
  private readonly reqBlocks = new Map<string, number[]>();
  /** Per request: how many of its leading blocks are registered in the prefix cache. */
  private readonly reqCachedBlocks = new Map<string, number>();
  private queries = 0;
  private hits = 0;
  private requests = 0;

  constructor(opts: KVCacheManagerOptions) {
    this.blockSize = opts.blockSize ?? 16;
    if (!Number.isInteger(this.blockSize) || this.blockSize < 1)
      throw new RangeError(`KVCacheManager: blockSize=${this.blockSize} must be an integer >= 1`);
    this.numBlocks = opts.numBlocks;
    this.enablePrefixCaching = opts.enablePrefixCaching ?? true;
    this.pool = new BlockPool(opts.numBlocks, this.enablePrefixCaching);
  }

  get numFreeBlocks(): number {
    return this.pool.numFreeBlocks;
  }

  /** Blocks needed to hold n tokens. */
  blocksFor(numTokens: number): number {
    return Math.ceil(numTokens / this.blockSize);
  }

  /** Extends request.blockHashes to cover every full block of its known tokens. */
  updateBlockHashes(request: Request): void {
    if (!this.enablePrefixCaching) return;
    const bs = this.blockSize;
    const hashes = request.blockHashes;
    const toks = request.allTokenIds;
    while ((hashes.length + 1) * bs <= toks.length) {
      const i = hashes.length;
      const parent = i === 0 ? null : (hashes[i - 1] as BlockHash);
      hashes.push(hashBlockTokens(parent, toks.slice(i * bs, (i + 1) * bs), request.cacheKey));
    }
  }

  /**
   * Longest cached prefix of a request that holds no blocks yet. Never covers the last token:
   * the request must compute at least one token to get logits. Does not change any state.
   */
  getComputedBlocks(request: Request): ComputedBlocks {
    if (!this.enablePrefixCaching || this.reqBlocks.has(request.requestId)) return { blocks: [], numComputedTokens: 0 };
    this.updateBlockHashes(request);
    const maxBlocks = Math.floor((request.numTokens - 1) / this.blockSize);
    const blocks: KVCacheBlock[] = [];
    for (let i = 0; i < maxBlocks; i++) {
      const h = request.blockHashes[i];
      if (h === undefined) break;
      const id = this.pool.getCachedBlockId(h);
      if (id < 0) break;
      blocks.push(this.pool.block(id));
    }
    return { blocks, numComputedTokens: blocks.length * this.blockSize };
  }

  /**
   * Makes room for `numNewTokens` more tokens after the request's computed ones (plus the
   * `newComputedBlocks` prefix hit on admission). Returns the newly allocated blocks, or null
   * (and changes nothing) when the pool cannot supply them.
   */
  allocateSlots(
    request: Request,
    numNewTokens: number,
    newComputedBlocks: readonly KVCacheBlock[] = [],
    numLookaheadTokens = 0,
  ): KVCacheBlock[] | null {
    if (!Number.isInteger(numNewTokens) || numNewTokens < 0) throw new RangeError(`allocateSlots: numNewTokens=${numNewTokens}`);
    const id = request.requestId;
    const existing = this.reqBlocks.get(id);
    if (existing !== undefined && newComputedBlocks.length > 0) {
      throw new Error(`allocateSlots: request ${id} already holds blocks; prefix hits are only for admission`);
    }
    const held = existing?.length ?? 0;
    const numComputed = request.numComputedTokens + newComputedBlocks.length * this.blockSize;
    const totalTokens = numComputed + numNewTokens + numLookaheadTokens;
    const numRequired = this.blocksFor(totalTokens);
    const numNew = Math.max(0, numRequired - held - newComputedBlocks.length);
    // Hit blocks with ref count 0 sit on the free queue: touching them takes them off it.
    let evictableHits = 0;
    for (const b of newComputedBlocks) if (this.pool.refCount(b.blockId) === 0) evictableHits++;
    if (numNew > this.pool.numFreeBlocks - evictableHits) return null;

    let blocks = existing;
    if (blocks === undefined) {
      blocks = [];
      this.reqBlocks.set(id, blocks);
      this.reqCachedBlocks.set(id, newComputedBlocks.length);
      if (this.enablePrefixCaching) {
        this.requests++;
        this.queries += request.numTokens;
        this.hits += newComputedBlocks.length * this.blockSize;
      }
    }
    for (const b of newComputedBlocks) {
      this.pool.touchId(b.blockId);
      blocks.push(b.blockId);
    }
    const first = blocks.length;
    this.pool.getNewBlockIds(numNew, blocks);

    if (this.enablePrefixCaching) {
      // Blocks are registered as soon as their tokens are scheduled (the runner writes a layer's
      // K/V for the whole batch before that layer's attention reads it).
      this.updateBlockHashes(request);
      const numFull = Math.floor(Math.min(numComputed + numNewTokens, request.numTokens) / this.blockSize);
      const done = this.reqCachedBlocks.get(id) ?? 0;
      if (numFull > done) {
        this.pool.cacheFullBlockIds(blocks, request.blockHashes, done, numFull);
        this.reqCachedBlocks.set(id, numFull);
      }
    }
    const fresh: KVCacheBlock[] = [];
    for (let i = first; i < blocks.length; i++) fresh.push(this.pool.block(blocks[i]!));
    return fresh;
  }

  /**
   * Releases every block of the request (tail blocks first, so they are evicted first). Blocks
   * registered in the prefix cache for tokens beyond `request.numComputedTokens` (scheduled in a
   * step that will not run for it, e.g. a request preempted in the step that scheduled it) lose
   * their cache entry, since their K/V is never written.
   */
  free(request: Request): void {
    const blocks = this.reqBlocks.get(request.requestId);
    if (blocks === undefined) return;
    const registered = this.reqCachedBlocks.get(request.requestId) ?? 0;
    this.reqBlocks.delete(request.requestId);
    this.reqCachedBlocks.delete(request.requestId);
    for (let i = blocks.length - 1; i >= 0; i--) this.pool.freeId(blocks[i]!);
    const valid = Math.floor(request.numComputedTokens / this.blockSize);
    for (let i = valid; i < registered && i < blocks.length; i++) {
      const id = blocks[i]!;
      if (this.pool.refCount(id) === 0) this.pool.uncacheId(id);
    }
  }

  hasBlocks(request: Request): boolean {
    return this.reqBlocks.has(request.requestId);
  }

  /** The request's blocks as handles (a new array of handles each call). */
  getBlocks(request: Request): readonly KVCacheBlock[] {
    return (this.reqBlocks.get(request.requestId) ?? []).map((id) => this.pool.block(id));
  }

  /** Block ids of the request, in token order (a copy). */
  blockTable(request: Request): number[] {
    return (this.reqBlocks.get(request.requestId) ?? []).slice();
  }

  /**
   * Slot index (blockId × blockSize + offset) of tokens [start, start + count) of the request,
   * written into `out` at `outOffset` (a new Int32Array when omitted).
   */
  slotMapping(request: Request, start: number, count: number, out?: Int32Array, outOffset = 0): Int32Array {
    const blocks = this.reqBlocks.get(request.requestId) ?? [];
    const dst = out ?? new Int32Array(count);
    const bs = this.blockSize;
    for (let i = 0; i < count; i++) {
      const pos = start + i;
      const id = blocks[Math.floor(pos / bs)];
      if (id === undefined) throw new Error(`slotMapping: request ${request.requestId} has no block for position ${pos}`);
      dst[outOffset + i] = id * bs + (pos % bs);
    }
    return dst;
  }

  /** Drops all cached hashes; refused (false) while any block is in use. */
  resetPrefixCache(): boolean {
    return this.pool.resetPrefixCache();
  }

  stats(): KVCacheStats {
    const free = this.pool.numFreeBlocks;
    return {
      numBlocks: this.numBlocks,
      blockSize: this.blockSize,
      usedBlocks: this.numBlocks - free,
      freeBlocks: free,
      cachedBlocks: this.pool.numCachedBlocks,
      cachedFreeBlocks: this.pool.numCachedFreeBlocks,
      usage: (this.numBlocks - free) / this.numBlocks,
      prefixCacheQueries: this.queries,
      prefixCacheHits: this.hits,
      prefixCacheHitRate: this.queries === 0 ? 0 : this.hits / this.queries,
      prefixCacheRequests: this.requests,
      evictions: this.pool.numEvictions,
    };
  }
}
