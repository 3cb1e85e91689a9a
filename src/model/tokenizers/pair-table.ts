// An open-addressing hash table from a pair of token ids to a merge rank, in typed arrays: a
// BPE vocabulary has up to ~500k merges and every candidate pair of every word is looked up,
// so this beats a Map keyed by strings (or by non-int32 numbers) at both build and lookup.
export class PairTable {
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly value: Int32Array;
  private readonly mask: number;
  private count = 0;

  constructor(capacity: number) {
    let size = 1024;
    while (size < capacity * 2) size *= 2;
    this.left = new Int32Array(size).fill(-1);
    this.right = new Int32Array(size);
    this.value = new Int32Array(size);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count;
  }

  private slot(l: number, r: number): number {
    let h = Math.imul(l, 0x9e3779b1) ^ Math.imul(r + 0x7f4a7c15, 0x85ebca77);
    h ^= h >>> 15;
    return h & this.mask;
  }

  /** Sets (l, r) → v unless (l, r) is already present (the first rank wins). */
  setIfAbsent(l: number, r: number, v: number): void {
    for (let i = this.slot(l, r); ; i = (i + 1) & this.mask) {
      const k = this.left[i]!;
      if (k === -1) {
        this.left[i] = l;
        this.right[i] = r;
        this.value[i] = v;
        this.count++;
        return;
      }
      if (k === l && this.right[i] === r) return;
    }
  }

  get(l: number, r: number): number | undefined {
    for (let i = this.slot(l, r); ; i = (i + 1) & this.mask) {
      const k = this.left[i]!;
      if (k === -1) return undefined;
      if (k === l && this.right[i] === r) return this.value[i];
    }
  }
}
