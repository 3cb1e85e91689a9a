// Graph sets (the "graphs" section of headroom.h): one captured decode step per batch size,
// all sharing one private allocator pool and the caller's static buffers. CPU: op lists
// replayed inside C; CUDA: cudaGraphExec per size.
import type { Device } from "./device.ts";

/** hr_graph_info layout. */
const G = {
  SIZE: 0,
  CAPTURED: 1,
  NUM_OPS: 2,
  POOL_BYTES: 3,
  EXEC_BYTES: 4,
  BYTES: 5,
  HOST_BYTES: 6,
  CAPTURE_NS: 7,
  REPLAYS: 8,
  COUNT: 9,
} as const;
/** hr_graph_set_info layout. */
const S = {
  NUM_SIZES: 0,
  NUM_CAPTURED: 1,
  POOL: 2,
  POOL_RESERVED: 3,
  POOL_ALLOCATED: 4,
  EXEC_BYTES: 5,
  TOTAL_BYTES: 6,
  HOST_BYTES: 7,
  CAPTURE_NS: 8,
  RECORDS_OPS: 9,
  COUNT: 10,
} as const;

export interface GraphInfo {
  size: number;
  captured: boolean;
  /** CPU: recorded ops; CUDA: nodes of the captured graph. */
  numOps: number;
  /** Growth of the set's pool during this graph's capture. */
  poolBytes: number;
  /** Device bytes of the executable (CUDA free-memory drop of instantiate + upload; 0 on CPU). */
  execBytes: number;
  /** poolBytes + execBytes. */
  bytes: number;
  /** Host bytes of the op list (CPU). */
  hostBytes: number;
  captureMs: number;
  replays: number;
}

export interface GraphSetInfo {
  numSizes: number;
  numCaptured: number;
  pool: bigint;
  poolReserved: number;
  poolAllocated: number;
  execBytes: number;
  /** poolReserved + execBytes: the device memory of the whole set. */
  totalBytes: number;
  hostBytes: number;
  captureMs: number;
  /** true: op-list graphs (CPU); false: backend graphs (CUDA). */
  recordsOps: boolean;
}

export class GraphSet {
  private readonly out = new BigInt64Array(Math.max(G.COUNT, S.COUNT));
  private alive = true;

  private constructor(
    readonly dev: Device,
    readonly handle: bigint,
    /** Ascending. */
    readonly sizes: readonly number[],
  ) {}

  static create(dev: Device, sizes: readonly number[]): GraphSet {
    const arr = BigInt64Array.from(sizes.map((s) => BigInt(s)));
    const out = new BigUint64Array(1);
    dev.lib.check(dev.lib.sym.hr_graph_set_create(dev.handle, arr, arr.length, out), "hr_graph_set_create");
    return new GraphSet(
      dev,
      out[0]!,
      [...sizes].sort((a, b) => a - b),
    );
  }

  private check(status: number, call: string): void {
    if (status !== 0) this.dev.lib.check(status, call);
  }

  /** Captures `size`: every op `record` issues becomes part of the graph (aborted if it throws). */
  capture(size: number, record: () => void): GraphInfo {
    this.check(this.dev.lib.sym.hr_graph_capture_begin(this.dev.handle, this.handle, size), "hr_graph_capture_begin");
    try {
      record();
    } catch (e) {
      this.dev.lib.sym.hr_graph_capture_abort(this.dev.handle, this.handle);
      throw e;
    }
    this.check(this.dev.lib.sym.hr_graph_capture_end(this.dev.handle, this.handle), "hr_graph_capture_end");
    return this.info(size);
  }

  replay(size: number): void {
    this.check(this.dev.lib.sym.hr_graph_replay(this.dev.handle, this.handle, size), "hr_graph_replay");
  }

  /** Smallest captured size >= batch, or 0 (run eagerly). */
  select(batch: number): number {
    this.check(this.dev.lib.sym.hr_graph_select(this.dev.handle, this.handle, batch, this.out), "hr_graph_select");
    return Number(this.out[0]);
  }

  info(size: number): GraphInfo {
    const o = this.out;
    this.check(this.dev.lib.sym.hr_graph_info(this.dev.handle, this.handle, size, o, G.COUNT), "hr_graph_info");
    return {
      size: Number(o[G.SIZE]),
      captured: o[G.CAPTURED] === 1n,
      numOps: Number(o[G.NUM_OPS]),
      poolBytes: Number(o[G.POOL_BYTES]),
      execBytes: Number(o[G.EXEC_BYTES]),
      bytes: Number(o[G.BYTES]),
      hostBytes: Number(o[G.HOST_BYTES]),
      captureMs: Number(o[G.CAPTURE_NS]) / 1e6,
      replays: Number(o[G.REPLAYS]),
    };
  }

  setInfo(): GraphSetInfo {
    const o = this.out;
    this.check(this.dev.lib.sym.hr_graph_set_info(this.dev.handle, this.handle, o, S.COUNT), "hr_graph_set_info");
    return {
      numSizes: Number(o[S.NUM_SIZES]),
      numCaptured: Number(o[S.NUM_CAPTURED]),
      pool: BigInt.asUintN(64, o[S.POOL]!),
      poolReserved: Number(o[S.POOL_RESERVED]),
      poolAllocated: Number(o[S.POOL_ALLOCATED]),
      execBytes: Number(o[S.EXEC_BYTES]),
      totalBytes: Number(o[S.TOTAL_BYTES]),
      hostBytes: Number(o[S.HOST_BYTES]),
      captureMs: Number(o[S.CAPTURE_NS]) / 1e6,
      recordsOps: o[S.RECORDS_OPS] === 1n,
    };
  }

  destroy(): void {
    if (!this.alive) return;
    this.check(this.dev.lib.sym.hr_graph_set_destroy(this.dev.handle, this.handle), "hr_graph_set_destroy");
    this.alive = false;
  }
}
