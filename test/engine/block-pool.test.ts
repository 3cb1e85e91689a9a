import { describe, expect, test } from "bun:test";
import { BlockPool, FreeBlockQueue, KVCacheBlock, hashBlockTokens } from "../../src/engine/block-pool.ts";
import { KVCacheManager } from "../../src/engine/kv-cache-manager.ts";
import { Request } from "../../src/engine/request.ts";

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
let rid = 0;
const req = (prompt: number[], cacheKey: string | null = null) =>
  new Request({ requestId: `r${rid++}`, promptTokenIds: prompt, cacheKey, sampling: { maxTokens: 1000 } });

describe("FreeBlockQueue", () => {
  test("LRU order, O(1) removal from the middle, append at tail", () => {
    const blocks = range(0, 6).map((i) => new KVCacheBlock(i));
    const q = new FreeBlockQueue(blocks);
    expect(q.toIds()).toEqual([0, 1, 2, 3, 4, 5]);
    q.remove(blocks[3]!);
    q.remove(blocks[0]!);
    expect(q.toIds()).toEqual([1, 2, 4, 5]);
    expect(q.length).toBe(4);
    expect(q.popLeft().blockId).toBe(1);
    q.append(blocks[3]!);
    q.append(blocks[0]!);
    expect(q.toIds()).toEqual([2, 4, 5, 3, 0]);
    expect(() => q.append(blocks[3]!)).toThrow();
    expect(() => q.remove(blocks[1]!)).toThrow();
    for (let i = 0; i < 5; i++) q.popLeft();
    expect(q.length).toBe(0);
    expect(() => q.popLeft()).toThrow();
  });
});

describe("BlockPool", () => {
  test("ref counts, free to tail in the given order, touch takes blocks off the queue", () => {
    const pool = new BlockPool(4);
    const a = pool.getNewBlocks(3);
    expect(a.map((b) => b.blockId)).toEqual([0, 1, 2]);
    expect(a.every((b) => b.refCnt === 1)).toBe(true);
    expect(pool.numFreeBlocks).toBe(1);
    expect(() => pool.getNewBlocks(2)).toThrow();
    pool.touch([a[1]!]);
    expect(a[1]!.refCnt).toBe(2);
    pool.freeBlocks([a[2]!, a[1]!, a[0]!]);
    expect(a[1]!.refCnt).toBe(1);
    expect(pool.freeQueue.toIds()).toEqual([3, 2, 0]);
    pool.freeBlocks([a[1]!]);
    expect(pool.freeQueue.toIds()).toEqual([3, 2, 0, 1]);
    expect(() => pool.freeBlocks([a[1]!])).toThrow(); // double free
    pool.touch([a[0]!]); // a free block re-used (e.g. a prefix hit)
    expect(pool.freeQueue.toIds()).toEqual([3, 2, 1]);
    expect(pool.usage).toBeCloseTo(0.25);
  });

  test("chained hashes: parent, tokens and extra key all matter; deterministic", () => {
    const t = range(0, 16);
    const h1 = hashBlockTokens(null, t);
    expect(hashBlockTokens(null, t)).toBe(h1);
    expect(hashBlockTokens(null, range(1, 17))).not.toBe(h1);
    expect(hashBlockTokens(null, t, "salt")).not.toBe(h1);
    expect(hashBlockTokens(h1, t)).not.toBe(h1);
    expect(hashBlockTokens(h1, t)).not.toBe(hashBlockTokens(hashBlockTokens(null, range(1, 17)), t));
    expect(h1 >= 0n && h1 < 1n << 128n).toBe(true);
  });

  test("cached free blocks keep their hash until evicted (LRU)", () => {
    const pool = new BlockPool(3);
    const b = pool.getNewBlocks(3);
    pool.cacheFullBlocks(b, [11n, 22n, 33n], 0, 3);
    expect(pool.numCachedBlocks).toBe(3);
    pool.freeBlocks([b[1]!, b[0]!, b[2]!]);
    expect(pool.numCachedFreeBlocks).toBe(3);
    expect(pool.getCachedBlock(22n)?.blockId).toBe(1);
    const n = pool.getNewBlocks(1); // evicts the LRU free block: block 1 (hash 22)
    expect(n[0]!.blockId).toBe(1);
    expect(n[0]!.blockHash).toBeNull();
    expect(pool.getCachedBlock(22n)).toBeNull();
    expect(pool.getCachedBlock(11n)?.blockId).toBe(0);
    expect(pool.numEvictions).toBe(1);
    expect(pool.numCachedFreeBlocks).toBe(2);
    expect(pool.resetPrefixCache()).toBe(false); // block 1 in use
    pool.freeBlocks(n);
    expect(pool.resetPrefixCache()).toBe(true);
    expect(pool.numCachedBlocks).toBe(0);
  });
});

describe("KVCacheManager", () => {
  test("a repeated prompt prefix reuses blocks (ref count 2) and the hit rate is reported", () => {
    const kv = new KVCacheManager({ numBlocks: 10, blockSize: 16 });
    const prompt = range(100, 140); // 40 tokens: 2 full blocks + 8
    const a = req(prompt);
    expect(kv.getComputedBlocks(a).numComputedTokens).toBe(0);
    expect(kv.allocateSlots(a, 40)).not.toBeNull();
    a.numComputedTokens = 40;
    expect(kv.blockTable(a)).toEqual([0, 1, 2]);
    const b = req([...prompt.slice(0, 35), 7, 7, 7, 7, 7]);
    const hit = kv.getComputedBlocks(b);
    expect(hit.numComputedTokens).toBe(32);
    expect(hit.blocks.map((x) => x.blockId)).toEqual([0, 1]);
    expect(kv.allocateSlots(b, 40 - 32, hit.blocks)).not.toBeNull();
    b.numComputedTokens = 40;
    expect(kv.blockTable(b)).toEqual([0, 1, 3]);
    expect(kv.getBlocks(a)[0]!.refCnt).toBe(2);
    expect(kv.getBlocks(a)[2]!.refCnt).toBe(1);
    const s = kv.stats();
    expect(s.prefixCacheQueries).toBe(80);
    expect(s.prefixCacheHits).toBe(32);
    expect(s.prefixCacheHitRate).toBeCloseTo(0.4);
    expect(s.prefixCacheRequests).toBe(2);
    expect(s.usedBlocks).toBe(4);
    expect(s.freeBlocks).toBe(6);
    expect(s.cachedBlocks).toBe(2);
    // a different cache key never shares
    const c = req(prompt, "other-adapter");
    expect(kv.getComputedBlocks(c).numComputedTokens).toBe(0);
  });

  test("never a cached hit for the last prompt token", () => {
    const kv = new KVCacheManager({ numBlocks: 10, blockSize: 16 });
    const prompt = range(0, 32);
    const a = req(prompt);
    kv.allocateSlots(a, 32);
    a.numComputedTokens = 32;
    expect(kv.stats().cachedBlocks).toBe(2);
    const b = req(prompt);
    expect(kv.getComputedBlocks(b).numComputedTokens).toBe(16); // not 32: one token must be computed
    const c = req([...prompt, 5]);
    expect(kv.getComputedBlocks(c).numComputedTokens).toBe(32);
  });

  test("freed blocks stay hittable; new allocations evict the least recently freed, tail blocks first", () => {
    const kv = new KVCacheManager({ numBlocks: 4, blockSize: 4 });
    const a = req(range(0, 13)); // blocks 0,1,2 full + 3 partial
    kv.allocateSlots(a, 13);
    a.numComputedTokens = 13;
    kv.free(a);
    // freed tail-first: partial block 3, then 2, 1, 0
    expect(kv.pool.freeQueue.toIds()).toEqual([3, 2, 1, 0]);
    expect(kv.stats().cachedFreeBlocks).toBe(3);
    const b = req(range(0, 13));
    expect(kv.getComputedBlocks(b).numComputedTokens).toBe(12);
    // an unrelated request needing 2 blocks takes block 3 (uncached) and block 2 (evicting it)
    const c = req(range(50, 58));
    expect(kv.allocateSlots(c, 8)).not.toBeNull();
    expect(kv.blockTable(c)).toEqual([3, 2]);
    expect(kv.stats().evictions).toBe(1);
    const hit = kv.getComputedBlocks(b);
    expect(hit.numComputedTokens).toBe(8); // block 2's prefix entry is gone
    expect(kv.allocateSlots(b, 5, hit.blocks)).toBeNull(); // needs 1 new block, 0 free once its 2 hits leave the queue
    expect(kv.hasBlocks(b)).toBe(false); // nothing changed
    expect(kv.numFreeBlocks).toBe(2);
    kv.free(c);
    expect(kv.allocateSlots(b, 5, hit.blocks)).not.toBeNull();
    expect(kv.blockTable(b).slice(0, 2)).toEqual([0, 1]);
  });

  test("blocks registered for tokens that were never computed are not kept in the cache", () => {
    const kv = new KVCacheManager({ numBlocks: 8, blockSize: 4 });
    const a = req(range(0, 10));
    kv.allocateSlots(a, 10); // registers blocks 0, 1 as full
    a.numComputedTokens = 5; // only block 0 is really computed (e.g. preempted in the step that scheduled the rest)
    expect(kv.stats().cachedBlocks).toBe(2);
    kv.free(a);
    expect(kv.stats().cachedBlocks).toBe(1);
    expect(kv.stats().cachedFreeBlocks).toBe(1);
    expect(kv.getComputedBlocks(req(range(0, 10))).numComputedTokens).toBe(4);
  });

  test("block table and slot mapping", () => {
    const kv = new KVCacheManager({ numBlocks: 8, blockSize: 4, enablePrefixCaching: false });
    const filler = req(range(0, 5));
    kv.allocateSlots(filler, 5); // takes blocks 0,1
    const a = req(range(0, 6));
    kv.allocateSlots(a, 6);
    expect(kv.blockTable(a)).toEqual([2, 3]);
    expect(Array.from(kv.slotMapping(a, 2, 4))).toEqual([10, 11, 12, 13]);
    a.numComputedTokens = 6;
    a.appendOutputToken(1);
    a.appendOutputToken(1);
    a.appendOutputToken(1);
    expect(kv.allocateSlots(a, 1)).toEqual([]); // position 6 fits in block 3
    a.numComputedTokens = 7;
    expect(kv.allocateSlots(a, 2)!.map((b) => b.blockId)).toEqual([4]);
    expect(() => kv.slotMapping(a, 12, 1)).toThrow();
    expect(kv.stats().cachedBlocks).toBe(0);
  });

  test("randomized operations keep every invariant", () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const bs = 4;
    const kv = new KVCacheManager({ numBlocks: 24, blockSize: bs });
    const prefixes = [range(0, 9), range(100, 111), range(200, 204)];
    const live: Request[] = [];
    const check = () => {
      const pool = kv.pool;
      const inQueue = new Set(pool.freeQueue.toIds());
      expect(inQueue.size).toBe(pool.numFreeBlocks);
      const refs = new Map<number, number>();
      for (const r of live) {
        const ids = kv.blockTable(r);
        expect(new Set(ids).size).toBe(ids.length); // no block twice in one request
        expect(ids.length).toBeGreaterThanOrEqual(Math.ceil(r.numComputedTokens / bs));
        for (const id of ids) refs.set(id, (refs.get(id) ?? 0) + 1);
      }
      let cachedFree = 0;
      for (const b of pool.blocks) {
        expect(b.refCnt).toBe(refs.get(b.blockId) ?? 0);
        expect(inQueue.has(b.blockId)).toBe(b.refCnt === 0); // never in use and free at once
        if (b.refCnt > 1) expect(b.blockHash).not.toBeNull(); // only cached full blocks are shared
        if (b.blockHash !== null) {
          expect(pool.getCachedBlock(b.blockHash)).toBe(b);
          if (b.refCnt === 0) cachedFree++;
        }
      }
      const s = kv.stats();
      expect(s.usedBlocks + s.freeBlocks).toBe(s.numBlocks);
      expect(s.usedBlocks).toBe(refs.size);
      expect(s.cachedFreeBlocks).toBe(cachedFree);
      expect(s.cachedBlocks).toBe(pool.blocks.filter((b) => b.blockHash !== null).length);
      expect(s.prefixCacheHits).toBeLessThanOrEqual(s.prefixCacheQueries);
      // shared blocks hold the same tokens in every request that holds them
      const shared = new Map<number, string>();
      for (const r of live) {
        kv.blockTable(r).forEach((id, i) => {
          if (refs.get(id)! < 2) return;
          const key = r.allTokenIds.slice(i * bs, (i + 1) * bs).join(",");
          const prev = shared.get(id);
          if (prev !== undefined) expect(key).toBe(prev);
          shared.set(id, key);
        });
      }
    };
    // Fake KV contents: what a runner would have written at each slot.
    const content = new Int32Array(24 * bs).fill(-1);
    const compute = (r: Request, n: number) => {
      const slots = kv.slotMapping(r, r.numComputedTokens, n);
      slots.forEach((slot, i) => (content[slot] = r.allTokenIds[r.numComputedTokens + i]!));
      r.numComputedTokens += n;
    };
    let hitsSeen = 0;
    for (let it = 0; it < 3000; it++) {
      const op = rnd(11);
      if (op < 3 && live.length < 8) {
        const r = req([...prefixes[rnd(3)]!, ...range(0, rnd(6)).map(() => rnd(3))]);
        const hit = kv.getComputedBlocks(r);
        // a hit must point at blocks whose K/V really hold this request's tokens
        hit.blocks.forEach((b, i) => {
          expect(Array.from(content.subarray(b.blockId * bs, (b.blockId + 1) * bs))).toEqual(r.allTokenIds.slice(i * bs, (i + 1) * bs));
        });
        const n = 1 + rnd(r.numTokens - hit.numComputedTokens);
        if (kv.allocateSlots(r, n, hit.blocks) !== null) {
          r.numComputedTokens = hit.numComputedTokens;
          compute(r, n);
          if (hit.numComputedTokens > 0) hitsSeen++;
          live.push(r);
        } else {
          expect(kv.hasBlocks(r)).toBe(false);
        }
      } else if (op < 8 && live.length > 0) {
        const r = live[rnd(live.length)]!;
        if (r.numComputedTokens === r.numTokens) r.appendOutputToken(rnd(3)); // decode
        const n = 1 + rnd(r.numTokens - r.numComputedTokens);
        const before = kv.numFreeBlocks;
        if (kv.allocateSlots(r, n) !== null) compute(r, n);
        else expect(kv.numFreeBlocks).toBe(before);
      } else if (op < 9 && live.length > 0) {
        // scheduled but preempted before the step ran: blocks allocated, nothing written, freed
        const i = rnd(live.length);
        const r = live[i]!;
        if (r.numComputedTokens === r.numTokens) r.appendOutputToken(rnd(3));
        kv.allocateSlots(r, r.numTokens - r.numComputedTokens);
        kv.free(r);
        live.splice(i, 1);
      } else if (live.length > 0) {
        const i = rnd(live.length);
        kv.free(live[i]!);
        live.splice(i, 1);
      }
      check();
    }
    expect(hitsSeen).toBeGreaterThan(10);
    expect(kv.stats().evictions).toBeGreaterThan(0);
    for (const r of live) kv.free(r);
    live.length = 0;
    check();
    expect(kv.numFreeBlocks).toBe(24);
  });
});
