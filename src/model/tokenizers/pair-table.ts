// An open-addressing hash table from a pair of token ids to an int, in typed arrays: every
// candidate pair of every word asks for its merge rank, and a Map keyed by a "left right"
// string (or by a number beyond int32) costs far more per lookup. Grows by doubling.
export class PairTable {
  private left: Int32Array;
  private right: Int32Array;
  private value: Int32Array;
  private mask: number;
  private count = 0;

  constructor(capacity = 1024) {
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

  /** Sets (l, r) → v unless (l, r) is already present (the first value wins). */
  setIfAbsent(l: number, r: number, v: number): void {
    if ((this.count + 1) * 2 > this.left.length) this.grow();
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

  private grow(): void {
    const { left, right, value } = this;
    const size = left.length * 2;
    this.left = new Int32Array(size).fill(-1);
    this.right = new Int32Array(size);
    this.value = new Int32Array(size);
    this.mask = size - 1;
    this.count = 0;
    for (let i = 0; i < left.length; i++) if (left[i] !== -1) this.setIfAbsent(left[i]!, right[i]!, value[i]!);
  }
}
