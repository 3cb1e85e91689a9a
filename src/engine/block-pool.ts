// Block pool for the paged KV cache (vLLM v1's BlockPool / FreeKVCacheBlockQueue are the anchor).
//
// A block id is an index into every layer's K and V tensors `[num_blocks, block_size,
// num_kv_heads, head_dim]` owned by the model runner. The pool only does bookkeeping:
//  - ref counts (how many running requests use a block);
//  - a free queue in LRU order: a doubly linked list threaded through the blocks, so a cached
//    free block can be taken out of the middle in O(1) when a request hits it;
//  - prefix caching: a full block may carry a chained hash (parent hash, its token ids, an
//    optional extra key); `hash -> block` lets a later request reuse it. A freed cached block
//    keeps its hash on the free queue until it is reused for something else (eviction, LRU).

/** Chained block hash (128 bits: two independent 64-bit wyhash values). */
export type BlockHash = bigint;

export class KVCacheBlock {
  refCnt = 0;
  /** Set only while the block is registered in the prefix cache. */
  blockHash: BlockHash | null = null;
  /** Free-queue links (null when the block is not in the free queue). */
  prev: KVCacheBlock | null = null;
  next: KVCacheBlock | null = null;
  constructor(readonly blockId: number) {}
}

/**
 * Free blocks in eviction order: the head is the next block handed out (least recently freed),
 * the tail the most recently freed. Uses sentinel head/tail nodes (block id -1).
 */
export class FreeBlockQueue {
  private readonly head = new KVCacheBlock(-1);
  private readonly tail = new KVCacheBlock(-1);
  private count = 0;

  constructor(blocks: readonly KVCacheBlock[]) {
    this.head.next = this.tail;
    this.tail.prev = this.head;
    for (const b of blocks) this.append(b);
  }

  get length(): number {
    return this.count;
  }

  /** Takes the block at the head (LRU). Throws when empty. */
  popLeft(): KVCacheBlock {
    const b = this.head.next;
    if (b === null || b === this.tail) throw new Error("FreeBlockQueue.popLeft: no free blocks");
    this.unlink(b);
    return b;
  }

  /** O(1) removal of a block anywhere in the queue. */
  remove(b: KVCacheBlock): void {
    if (b.prev === null || b.next === null) throw new Error(`FreeBlockQueue.remove: block ${b.blockId} is not in the free queue`);
    this.unlink(b);
  }

  append(b: KVCacheBlock): void {
    if (b.prev !== null || b.next !== null) throw new Error(`FreeBlockQueue.append: block ${b.blockId} is already in the free queue`);
    const last = this.tail.prev as KVCacheBlock;
    last.next = b;
    b.prev = last;
    b.next = this.tail;
    this.tail.prev = b;
    this.count++;
  }

  contains(b: KVCacheBlock): boolean {
    return b.prev !== null && b.next !== null;
  }

  /** Free blocks from head (evicted first) to tail. */
  *[Symbol.iterator](): IterableIterator<KVCacheBlock> {
    let b = this.head.next;
    while (b !== null && b !== this.tail) {
      const next: KVCacheBlock | null = b.next;
      yield b;
      b = next;
    }
  }

  toIds(): number[] {
    return Array.from(this, (b) => b.blockId);
  }

  private unlink(b: KVCacheBlock): void {
    const p = b.prev as KVCacheBlock;
    const n = b.next as KVCacheBlock;
    p.next = n;
    n.prev = p;
    b.prev = null;
    b.next = null;
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
  readonly blocks: readonly KVCacheBlock[];
  readonly freeQueue: FreeBlockQueue;
  private readonly cached = new Map<BlockHash, KVCacheBlock>();
  /** Number of times a cached block was evicted (lost its hash to be reused). */
  numEvictions = 0;
  private cachedFree = 0;

  constructor(
    readonly numBlocks: number,
    readonly enableCaching = true,
  ) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) throw new RangeError(`BlockPool: numBlocks=${numBlocks} must be an integer >= 1`);
    const blocks: KVCacheBlock[] = [];
    for (let i = 0; i < numBlocks; i++) blocks.push(new KVCacheBlock(i));
    this.blocks = blocks;
    this.freeQueue = new FreeBlockQueue(blocks);
  }

  get numFreeBlocks(): number {
    return this.freeQueue.length;
  }

  /** Blocks registered in the prefix cache (in use or free). */
  get numCachedBlocks(): number {
    return this.cached.size;
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
    return this.cached.get(hash) ?? null;
  }

  /**
   * Hands out n blocks from the head of the free queue (ref count 1), evicting their cached
   * hashes. Throws when fewer than n blocks are free (callers check numFreeBlocks first).
   */
  getNewBlocks(n: number): KVCacheBlock[] {
    if (n > this.freeQueue.length) throw new Error(`BlockPool.getNewBlocks: asked for ${n} blocks, ${this.freeQueue.length} free`);
    const out: KVCacheBlock[] = [];
    for (let i = 0; i < n; i++) {
      const b = this.freeQueue.popLeft();
      if (b.refCnt !== 0) throw new Error(`BlockPool: block ${b.blockId} on the free queue has ref count ${b.refCnt}`);
      this.evict(b);
      b.refCnt = 1;
      out.push(b);
    }
    return out;
  }

  /** A request starts using these (cached) blocks: take them off the free queue, ref count +1. */
  touch(blocks: readonly KVCacheBlock[]): void {
    for (const b of blocks) {
      if (b.refCnt === 0) {
        this.freeQueue.remove(b);
        if (b.blockHash !== null) this.cachedFree--;
      }
      b.refCnt++;
    }
  }

  /**
   * Ref count −1; blocks reaching 0 go to the free queue tail in the given order, so pass the
   * blocks that should be evicted first first (a request's blocks are freed tail-first).
   */
  freeBlocks(ordered: readonly KVCacheBlock[]): void {
    for (const b of ordered) {
      if (b.refCnt <= 0) throw new Error(`BlockPool.freeBlocks: block ${b.blockId} freed with ref count ${b.refCnt}`);
      b.refCnt--;
      if (b.refCnt === 0) {
        this.freeQueue.append(b);
        if (b.blockHash !== null) this.cachedFree++;
      }
    }
  }

  /**
   * Registers full blocks in the prefix cache. `blocks[i]` holds tokens hashed by `hashes[i]`;
   * blocks [from, to) are registered. A block whose hash is already served by another block is
   * left uncached (it is a duplicate and will simply be recycled when freed).
   */
  cacheFullBlocks(blocks: readonly KVCacheBlock[], hashes: readonly BlockHash[], from: number, to: number): void {
    if (!this.enableCaching) return;
    for (let i = from; i < to; i++) {
      const b = blocks[i];
      const h = hashes[i];
      if (b === undefined || h === undefined) throw new Error(`BlockPool.cacheFullBlocks: no block/hash at index ${i}`);
      if (b.blockHash !== null) {
        if (b.blockHash !== h) throw new Error(`BlockPool.cacheFullBlocks: block ${b.blockId} already has another hash`);
        continue;
      }
      if (this.cached.has(h)) continue;
      b.blockHash = h;
      this.cached.set(h, b);
    }
  }

  /** Drops one block's cache entry (its K/V will not be written after all). */
  uncacheBlock(b: KVCacheBlock): void {
    if (b.blockHash === null) return;
    if (this.cached.get(b.blockHash) === b) this.cached.delete(b.blockHash);
    b.blockHash = null;
    if (b.refCnt === 0) this.cachedFree--;
  }

  /** Forgets every cached hash. Only allowed when no block is in use (returns false otherwise). */
  resetPrefixCache(): boolean {
    if (this.freeQueue.length !== this.numBlocks) return false;
    for (const b of this.blocks) b.blockHash = null;
    this.cached.clear();
    this.cachedFree = 0;
    return true;
  }

  /** Called on blocks just taken off the free queue. */
  private evict(b: KVCacheBlock): void {
    if (b.blockHash === null) return;
    this.cachedFree--;
    if (this.cached.get(b.blockHash) === b) this.cached.delete(b.blockHash);
    b.blockHash = null;
    this.numEvictions++;
  }
}
