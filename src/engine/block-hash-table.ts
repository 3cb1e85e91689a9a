// The prefix cache's index: block hash (128 bits) -> block id, for a pool of up to billions of
// tokens without one JS object per entry. Open addressing with linear probing over an
// Int32Array of block ids; the keys are not copied into the table but read from the blocks'
// own hash words (4 × u32 per block id, in a typed array), so a registered block costs 16
// bytes of hash + 1 byte of flag + 4-8 bytes of table slots. The table doubles when half full
// (amortized O(1) inserts) and deletes by backward shift (no tombstones: probe lengths stay
// short however many blocks are evicted and re-registered).

/** Chained block hash (128 bits: two independent 64-bit wyhash values). */
export type BlockHash = bigint;

const EMPTY = -1;
const MIN_CAPACITY = 64;

export class BlockHashTable {
  /** Per block id: its hash as two u64 (lo, hi); valid where `has` is 1. */
  private readonly lohi: BigUint64Array;
  private readonly words: Uint32Array;
  private readonly has: Uint8Array;
  private slots: Int32Array;
  private mask: number;
  private count = 0;
  // Scratch for splitting a key into 4 u32 words without allocating.
  private readonly key64 = new BigUint64Array(2);
  private readonly key32 = new Uint32Array(this.key64.buffer);
  /** Table slots inspected by get / set / delete, and the calls (probes / ops: the mean probe length). */
  probes = 0;
  ops = 0;

  constructor(readonly numBlocks: number) {
    this.lohi = new BigUint64Array(2 * numBlocks);
    this.words = new Uint32Array(this.lohi.buffer);
    this.has = new Uint8Array(numBlocks);
    this.slots = new Int32Array(MIN_CAPACITY).fill(EMPTY);
    this.mask = MIN_CAPACITY - 1;
  }

  /** Registered blocks. */
  get size(): number {
    return this.count;
  }

  /** Bytes of the typed arrays (the per-block words and flags, and the table). */
  get bytes(): number {
    return this.lohi.byteLength + this.has.byteLength + this.slots.byteLength;
  }

  /** Whether block `id` is registered (it then has a hash). */
  hasHash(id: number): boolean {
    return this.has[id] === 1;
  }

  /** The hash block `id` is registered under, or null. */
  hashOf(id: number): BlockHash | null {
    if (this.has[id] !== 1) return null;
    return (this.lohi[2 * id + 1]! << 64n) | this.lohi[2 * id]!;
  }

  /** Whether block `id` is registered under exactly `h`. */
  isHashOf(id: number, h: BlockHash): boolean {
    if (this.has[id] !== 1) return false;
    this.split(h);
    return this.matches(id);
  }

  /** The block registered under `h`, or -1. */
  get(h: BlockHash): number {
    this.split(h);
    this.ops++;
    let i = this.key32[0]! & this.mask;
    for (;;) {
      this.probes++;
      const id = this.slots[i]!;
      if (id === EMPTY) return -1;
      if (this.matches(id)) return id;
      i = (i + 1) & this.mask;
    }
  }

  /** Registers block `id` (unregistered) under `h` (not registered by another block: callers check get(h) first). */
  set(h: BlockHash, id: number): void {
    if (this.has[id] === 1) throw new Error(`BlockHashTable.set: block ${id} is already registered`);
    if (2 * (this.count + 1) > this.slots.length) this.grow();
    this.split(h);
    const o = 4 * id;
    const k = this.key32;
    this.words[o] = k[0]!;
    this.words[o + 1] = k[1]!;
    this.words[o + 2] = k[2]!;
    this.words[o + 3] = k[3]!;
    this.has[id] = 1;
    this.insert(id);
    this.count++;
  }

  /** Unregisters block `id` (no-op when it is not registered). */
  delete(id: number): void {
    if (this.has[id] !== 1) return;
    this.ops++;
    const mask = this.mask;
    const slots = this.slots;
    let i = this.words[4 * id]! & mask;
    for (;;) {
      this.probes++;
      if (slots[i] === id) break;
      if (slots[i] === EMPTY) throw new Error(`BlockHashTable.delete: block ${id} is flagged but not in the table`);
      i = (i + 1) & mask;
    }
    // Backward shift: move later entries of the run into the hole when their home allows it.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const k = slots[j]!;
      if (k === EMPTY) break;
      this.probes++;
      const home = this.words[4 * k]! & mask;
      // k may fill the hole at i unless its home lies cyclically in (i, j].
      const homeInRun = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!homeInRun) {
        slots[i] = k;
        i = j;
      }
    }
    slots[i] = EMPTY;
    this.has[id] = 0;
    this.count--;
  }

  /** Unregisters every block. */
  clear(): void {
    this.has.fill(0);
    this.slots = new Int32Array(MIN_CAPACITY).fill(EMPTY);
    this.mask = MIN_CAPACITY - 1;
    this.count = 0;
  }

  /** key32 = the 4 u32 words of h (little end first); one BigInt shift, no other allocation. */
  private split(h: BlockHash): void {
    this.key64[0] = h; // wraps modulo 2^64: the low half
    this.key64[1] = h >> 64n;
  }

  private matches(id: number): boolean {
    const w = this.words;
    const k = this.key32;
    const o = 4 * id;
    return w[o] === k[0] && w[o + 1] === k[1] && w[o + 2] === k[2] && w[o + 3] === k[3];
  }

  private insert(id: number): void {
    this.ops++;
    let i = this.words[4 * id]! & this.mask;
    for (;;) {
      this.probes++;
      if (this.slots[i] === EMPTY) {
        this.slots[i] = id;
        return;
      }
      i = (i + 1) & this.mask;
    }
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Int32Array(old.length * 2).fill(EMPTY);
    this.mask = this.slots.length - 1;
    for (let i = 0; i < old.length; i++) {
      const id = old[i]!;
      if (id === EMPTY) continue;
      let j = this.words[4 * id]! & this.mask;
      while (this.slots[j] !== EMPTY) j = (j + 1) & this.mask;
      this.slots[j] = id;
    }
  }
}
