// Block pool for the paged KV cache (vLLM v1's BlockPool / FreeKVCacheBlockQueue are the anchor).
//
// A block id is an index into every layer's K and V tensors `[num_blocks, block_size,
// num_kv_heads, head_dim]` owned by the model runner. The pool only does bookkeeping:
//  - ref counts (how many running requests use a block);
//  - a free queue in LRU order: a doubly linked list threaded through the block ids, so a
//    cached free block can be taken out of the middle in O(1) when a request hits it;
//  - prefix caching: a full block may carry a chained hash (parent hash, its token ids, an
//    optional extra key); `hash -> block` lets a later request reuse it. A freed cached block
//    keeps its hash on the free queue until it is reused for something else (eviction, LRU).
//
// Everything per block lives in typed arrays (ref counts, the queue's links, the hashes and
// the hash index: block-hash-table.ts), not in one JS object per block: a small model at
// --gpu-memory-utilization 0.99 of a large GPU has tens of millions of blocks, and as objects
// they cost ~74 B of JS heap each (and a major GC walks them all). Here a block costs 12 bytes
// (ref count + links), 17 more with prefix caching (its hash words and flag), and 8-16 bytes of
// index slots while it is registered, all outside the JS heap. KVCacheBlock is only a handle
// (id + pool) for the API's callers; the engine's paths (KVCacheManager) work on ids.

import { BlockHashTable, type BlockHash } from "./block-hash-table.ts";

export type { BlockHash } from "./block-hash-table.ts";

/** A view of one block of a pool: its id, and its ref count and hash read live from the pool. */
export class KVCacheBlock {
  constructor(
    readonly blockId: number,
    private readonly pool: BlockPool | null = null,
  ) {}

  get refCnt(): number {
    return this.pool ? this.pool.refCount(this.blockId) : 0;
  }

  /** Set only while the block is registered in the prefix cache. */
  get blockHash(): BlockHash | null {
    return this.pool ? this.pool.hashOf(this.blockId) : null;
  }
}

const NONE = -1;

/**
 * Free blocks in eviction order: the head is the next block handed out (least recently freed),
 * the tail the most recently freed. A doubly linked list over block ids in two Int32Arrays
 * (-1: not in the queue), with sentinel head/tail entries past the last id.
 */
export class FreeBlockQueue {
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly head: number;
  private readonly tail: number;
  private count = 0;

  /**
   * `blocks`: the blocks to queue, in order (handles: popLeft() returns them); a number n: ids
   * 0 .. n-1 in order, with handles made by `handle` (a bare KVCacheBlock when omitted).
   */
  constructor(
    blocks: readonly KVCacheBlock[] | number,
    private readonly handle: (id: number) => KVCacheBlock = (id) => new KVCacheBlock(id),
  ) {
    let capacity: number;
    if (typeof blocks === "number") capacity = blocks;
    else {
      capacity = 0;
      for (const b of blocks) capacity = Math.max(capacity, b.blockId + 1);
      const given = new Map(blocks.map((b) => [b.blockId, b]));
      const fallback = this.handle;
      this.handle = (id) => given.get(id) ?? fallback(id);
    }
    this.prev = new Int32Array(capacity + 2).fill(NONE);
    this.next = new Int32Array(capacity + 2).fill(NONE);
    this.head = capacity;
    this.tail = capacity + 1;
    this.next[this.head] = this.tail;
    this.prev[this.tail] = this.head;
    if (typeof blocks === "number") {
      // ids 0 .. n-1 linked in order, directly
      if (capacity > 0) {
        for (let i = 0; i < capacity; i++) {
          this.prev[i] = i - 1;
          this.next[i] = i + 1;
        }
        this.prev[0] = this.head;
        this.next[capacity - 1] = this.tail;
        this.next[this.head] = 0;
        this.prev[this.tail] = capacity - 1;
        this.count = capacity;
      }
    } else for (const b of blocks) this.appendId(b.blockId);
  }

  get length(): number {
    return this.count;
  }

  /** Takes the block at the head (LRU). Throws when empty. */
  popLeft(): KVCacheBlock {
    return this.handle(this.popLeftId());
  }

  popLeftId(): number {
    const id = this.next[this.head]!;
    if (id === this.tail) throw new Error("FreeBlockQueue.popLeft: no free blocks");
    this.unlink(id);
    return id;
  }

  /** O(1) removal of a block anywhere in the queue. */
  remove(b: KVCacheBlock): void {
    this.removeId(b.blockId);
  }

  removeId(id: number): void {
    if (!this.containsId(id)) throw new Error(`FreeBlockQueue.remove: block ${id} is not in the free queue`);
    this.unlink(id);
  }

  append(b: KVCacheBlock): void {
    this.appendId(b.blockId);
  }

  appendId(id: number): void {
    if (!(id >= 0 && id < this.head)) throw new RangeError(`FreeBlockQueue.append: block ${id} is outside the queue's 0..${this.head - 1}`);
    if (this.containsId(id)) throw new Error(`FreeBlockQueue.append: block ${id} is already in the free queue`);
    const last = this.prev[this.tail]!;
    this.next[last] = id;
    this.prev[id] = last;
    this.next[id] = this.tail;
    this.prev[this.tail] = id;
    this.count++;
  }

  contains(b: KVCacheBlock): boolean {
    return this.containsId(b.blockId);
  }

  containsId(id: number): boolean {
    return id >= 0 && id < this.head && this.next[id] !== NONE;
  }

  /** Free block ids from head (evicted first) to tail. */
  *ids(): IterableIterator<number> {
    let id = this.next[this.head]!;
    while (id !== this.tail) {
      const n = this.next[id]!;
      yield id;
      id = n;
    }
  }

  /** Free blocks from head (evicted first) to tail. */
  *[Symbol.iterator](): IterableIterator<KVCacheBlock> {
    for (const id of this.ids()) yield this.handle(id);
  }

  toIds(): number[] {
    return Array.from(this.ids());
  }

  private unlink(id: number): void {
    const p = this.prev[id]!;
    const n = this.next[id]!;
    this.next[p] = n;
    this.prev[n] = p;
    this.prev[id] = NONE;
    this.next[id] = NONE;
    this.count--;
  }
}

const SEED_A = 0x9e3779b97f4a7c15n;
const SEED_B = 0xc2b2ae3d27d4eb4fn;
const textEncoder = new TextEncoder();

/**
 * Hash of a full block: H(parent hash, token ids, extra key). 128 bits built from two wyhash
 * passes with different seeds over the same bytes (a collision would silently share KV, so 64
 * bits alone felt thin for a long-running server).
 */
export function hashBlockTokens(parent: BlockHash | null, tokenIds: ArrayLike<number>, extraKey: string | null = null): BlockHash {
  const extra = extraKey === null ? null : textEncoder.encode(extraKey);
  const n = tokenIds.length;
  // layout: [flags u32][n u32][parent lo, hi u64][tokens i32 × n][extra bytes]
  const byteLen = 8 + 16 + 4 * n + (extra === null ? 0 : extra.length);
  const buf = new ArrayBuffer(byteLen);
  const dv = new DataView(buf);
  dv.setUint32(0, (parent === null ? 0 : 1) | (extra === null ? 0 : 2), true);
  dv.setUint32(4, n, true);
  if (parent !== null) {
    dv.setBigUint64(8, BigInt.asUintN(64, parent), true);
    dv.setBigUint64(16, BigInt.asUintN(64, parent >> 64n), true);
  }
  for (let i = 0; i < n; i++) dv.setInt32(24 + 4 * i, tokenIds[i] as number, true);
  if (extra !== null) new Uint8Array(buf, 24 + 4 * n).set(extra);
  const a = Bun.hash.wyhash(buf, SEED_A);
  const b = Bun.hash.wyhash(buf, SEED_B);
  return (BigInt.asUintN(64, b) << 64n) | BigInt.asUintN(64, a);
}

export class BlockPool {
  readonly freeQueue: FreeBlockQueue;
  private readonly refs: Int32Array;
  /** hash <-> block (null without prefix caching). */
  private readonly index: BlockHashTable | null;
  /** Number of times a cached block was evicted (lost its hash to be reused). */
  numEvictions = 0;
  private cachedFree = 0;
  /** One handle per block, made on the first use of `blocks` (tests, debugging). */
  private handles: KVCacheBlock[] | null = null;

  constructor(
    readonly numBlocks: number,
    readonly enableCaching = true,
  ) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) throw new RangeError(`BlockPool: numBlocks=${numBlocks} must be an integer >= 1`);
    if (numBlocks > 2 ** 30) throw new RangeError(`BlockPool: numBlocks=${numBlocks} exceeds 2^30 (use larger blocks)`);
    this.refs = new Int32Array(numBlocks);
    this.index = enableCaching ? new BlockHashTable(numBlocks) : null;
    this.freeQueue = new FreeBlockQueue(numBlocks, (id) => this.block(id));
  }

  /**
   * Every block as a handle, in id order. Makes numBlocks objects on its first use: for tests
   * and debugging, not for the engine (which works on ids).
   */
  get blocks(): readonly KVCacheBlock[] {
    this.handles ??= Array.from({ length: this.numBlocks }, (_, id) => new KVCacheBlock(id, this));
    return this.handles;
  }

  /** The handle of block `id` (the one in `blocks` once that was made). */
  block(id: number): KVCacheBlock {
    return this.handles?.[id] ?? new KVCacheBlock(id, this);
  }

  refCount(id: number): number {
    return this.refs[id]!;
  }

  /** The hash block `id` is registered under in the prefix cache, or null. */
  hashOf(id: number): BlockHash | null {
    return this.index ? this.index.hashOf(id) : null;
  }

  /** Bytes of the pool's typed arrays (ref counts, free-queue links, prefix-cache index). */
  get hostBytes(): number {
    return this.refs.byteLength + 2 * 4 * (this.numBlocks + 2) + (this.index?.bytes ?? 0);
  }

  /** The prefix-cache index's probe statistics (mean probes per operation = probes / ops). */
  get indexProbes(): { probes: number; ops: number } {
    return { probes: this.index?.probes ?? 0, ops: this.index?.ops ?? 0 };
  }

  get numFreeBlocks(): number {
    return this.freeQueue.length;
  }

  /** Blocks registered in the prefix cache (in use or free). */
  get numCachedBlocks(): number {
    return this.index?.size ?? 0;
  }

  /** Free blocks that still carry a cached hash (reusable by a prefix hit, evictable). */
  get numCachedFreeBlocks(): number {
    return this.cachedFree;
  }

  /** Fraction of blocks in use (ref count > 0). */
  get usage(): number {
    return 1 - this.freeQueue.length / this.numBlocks;
  }

  getCachedBlock(hash: BlockHash): KVCacheBlock | null {
    const id = this.getCachedBlockId(hash);
    return id < 0 ? null : this.block(id);
  }

  /** The block registered under `hash`, or -1. */
  getCachedBlockId(hash: BlockHash): number {
    return this.index ? this.index.get(hash) : -1;
  }

  /**
   * Hands out n blocks from the head of the free queue (ref count 1), evicting their cached
   * hashes. Throws when fewer than n blocks are free (callers check numFreeBlocks first).
   */
  getNewBlocks(n: number): KVCacheBlock[] {
    const ids: number[] = [];
    this.getNewBlockIds(n, ids);
    return ids.map((id) => this.block(id));
  }

  /** getNewBlocks by id: appends the n ids to `out`. */
  getNewBlockIds(n: number, out: number[]): void {
    if (n > this.freeQueue.length) throw new Error(`BlockPool.getNewBlocks: asked for ${n} blocks, ${this.freeQueue.length} free`);
    for (let i = 0; i < n; i++) {
      const id = this.freeQueue.popLeftId();
      if (this.refs[id] !== 0) throw new Error(`BlockPool: block ${id} on the free queue has ref count ${this.refs[id]}`);
      this.evict(id);
      this.refs[id] = 1;
      out.push(id);
    }
  }

  /** A request starts using these (cached) blocks: take them off the free queue, ref count +1. */
  touch(blocks: readonly KVCacheBlock[]): void {
    for (const b of blocks) this.touchId(b.blockId);
  }

  touchId(id: number): void {
    if (this.refs[id] === 0) {
      this.freeQueue.removeId(id);
      if (this.index?.hasHash(id)) this.cachedFree--;
    }
    this.refs[id]!++;
  }

  /**
   * Ref count −1; blocks reaching 0 go to the free queue tail in the given order, so pass the
   * blocks that should be evicted first first (a request's blocks are freed tail-first).
   */
  freeBlocks(ordered: readonly KVCacheBlock[]): void {
    for (const b of ordered) this.freeId(b.blockId);
  }

  freeId(id: number): void {
    const r = this.refs[id]!;
    if (r <= 0) throw new Error(`BlockPool.freeBlocks: block ${id} freed with ref count ${r}`);
    this.refs[id] = r - 1;
    if (r === 1) {
      this.freeQueue.appendId(id);
      if (this.index?.hasHash(id)) this.cachedFree++;
    }
  }

  /**
   * Registers full blocks in the prefix cache. `blocks[i]` holds tokens hashed by `hashes[i]`;
   * blocks [from, to) are registered. A block whose hash is already served by another block is
   * left uncached (it is a duplicate and will simply be recycled when freed).
   */
  cacheFullBlocks(blocks: readonly KVCacheBlock[], hashes: readonly BlockHash[], from: number, to: number): void {
    this.cacheFullBlockIds(
      blocks.map((b) => b.blockId),
      hashes,
      from,
      to,
    );
  }

  cacheFullBlockIds(ids: readonly number[], hashes: readonly BlockHash[], from: number, to: number): void {
    const index = this.index;
    if (!index) return;
    for (let i = from; i < to; i++) {
      const id = ids[i];
      const h = hashes[i];
      if (id === undefined || h === undefined) throw new Error(`BlockPool.cacheFullBlocks: no block/hash at index ${i}`);
      if (index.hasHash(id)) {
        if (!index.isHashOf(id, h)) throw new Error(`BlockPool.cacheFullBlocks: block ${id} already has another hash`);
        continue;
      }
      if (index.get(h) >= 0) continue;
      index.set(h, id);
    }
  }

  /** Drops one block's cache entry (its K/V will not be written after all). */
  uncacheBlock(b: KVCacheBlock): void {
    this.uncacheId(b.blockId);
  }

  uncacheId(id: number): void {
    if (!this.index?.hasHash(id)) return;
    this.index.delete(id);
    if (this.refs[id] === 0) this.cachedFree--;
  }

  /** Forgets every cached hash. Only allowed when no block is in use (returns false otherwise). */
  resetPrefixCache(): boolean {
    if (this.freeQueue.length !== this.numBlocks) return false;
    this.index?.clear();
    this.cachedFree = 0;
    return true;
  }

  /** Called on blocks just taken off the free queue. */
  private evict(id: number): void {
    if (!this.index?.hasHash(id)) return;
    this.cachedFree--;
    this.index.delete(id);
    this.numEvictions++;
  }
}
