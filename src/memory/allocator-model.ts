// A model of the caching allocator's segment policy (csrc/core/allocator.c, Notes [Sizes and
// pools], [Best fit], [Splitting and merging]) for a fresh allocator serving allocations that
// are not freed — what start-up does with weights and the activation arena. The planner uses
// it to predict allocated and reserved bytes exactly, without a device; a test checks it
// against the real allocator.

export const MIN_BLOCK = 512;
export const SMALL_SIZE = 1 << 20;
export const SMALL_BUFFER = 2 << 20;
export const LARGE_BUFFER = 20 << 20;
export const MIN_LARGE_ALLOC = 10 << 20;
export const ROUND_LARGE = 2 << 20;

export interface AllocatorFootprint {
  /** Sum of block sizes handed out (allocated_bytes). */
  allocated: number;
  /** Sum of segment sizes (reserved_bytes). */
  reserved: number;
  /** Block size of each allocation, in order. */
  blocks: number[];
}

export function roundRequest(bytes: number): number {
  return Math.max(MIN_BLOCK, Math.ceil(bytes / MIN_BLOCK) * MIN_BLOCK);
}

function segmentSize(rounded: number): number {
  if (rounded <= SMALL_SIZE) return SMALL_BUFFER;
  if (rounded < MIN_LARGE_ALLOC) return LARGE_BUFFER;
  return Math.ceil(rounded / ROUND_LARGE) * ROUND_LARGE;
}

/**
 * Simulates `sizes` allocated in order on a fresh allocator (default pool). `capacityBytes`
 * is the device memory the allocator may take: when a 20 MiB segment for a request below
 * 10 MiB does not fit, the allocator falls back to the request rounded up to 2 MiB. Throws
 * RangeError when an allocation cannot be served at all.
 */
export function simulateAllocations(sizes: readonly number[], capacityBytes = Number.POSITIVE_INFINITY): AllocatorFootprint {
  // Free blocks per kind; with no frees each segment has at most one free (tail) block.
  const free = { small: [] as number[], large: [] as number[] };
  let allocated = 0;
  let reserved = 0;
  const blocks: number[] = [];
  for (const size of sizes) {
    const rounded = roundRequest(size);
    const small = rounded <= SMALL_SIZE;
    const list = small ? free.small : free.large;
    // best fit: the smallest free block that fits
    let best = -1;
    for (let i = 0; i < list.length; i++) {
      if (list[i]! >= rounded && (best < 0 || list[i]! < list[best]!)) best = i;
    }
    let block: number;
    if (best < 0) {
      block = segmentSize(rounded);
      if (reserved + block > capacityBytes && !small && rounded < MIN_LARGE_ALLOC) block = Math.ceil(rounded / ROUND_LARGE) * ROUND_LARGE;
      if (reserved + block > capacityBytes) {
        throw new RangeError(`allocation ${blocks.length} of ${size} B needs a ${block} B segment; ${capacityBytes - reserved} B left`);
      }
      reserved += block;
      list.push(block);
      best = list.length - 1;
    }
    block = list[best]!;
    const rem = block - rounded;
    const split = small ? rem >= MIN_BLOCK : rem > SMALL_SIZE;
    const taken = split ? rounded : block;
    if (split) list[best] = rem;
    else list.splice(best, 1);
    allocated += taken;
    blocks.push(taken);
  }
  return { allocated, reserved, blocks };
}
