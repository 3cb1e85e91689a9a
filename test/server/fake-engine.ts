// A small deterministic Engine for server tests and the serve benchmark. It follows the
// contract in src/engine/api.ts the way the real engine does:
//  - token ids only (text is the server's: the demo model's byte tokenizer maps id = UTF-8 byte
//    0..255, BOS = 256, EOS = 257, so the server's frontend detokenizes these ids);
//  - a step loop on a timer: each step admits waiting requests (up to maxNumSeqs running,
//    while KV blocks last), then every running request gets one token;
//  - KV blocks: ceil(tokens / blockSize) per running request, freed when it finishes or is
//    cancelled; cancellation (AbortSignal, or the consumer stopping) takes effect at the next
//    step and the stream ends with finishReason "abort";
//  - a waiting-queue limit: generate() throws {code: "queue_full"} on its first next();
//  - output: the UTF-8 bytes of a fixed passage, starting at an offset picked by the seed
//    (temperature > 0) or 0 (greedy), EOS after `eosAfter` tokens when set; stop token ids end
//    a request with "stop" (the stop token is the last id of that event).
import type {
  Engine,
  EngineHealth,
  EngineStats,
  GenerateRequest,
  ModelDescription,
  TokenEvent,
  TokenLogprob,
} from "../../src/engine/api.ts";
import { planFromRequest } from "../../src/memory/plan-request.ts";
import type { AllocatorReport, MemoryReport } from "../../src/memory/report-schema.ts";

export const BOS = 256;
export const EOS = 257;
export const PASSAGE = "Once upon a time, there was a little robot named Byte. It liked to count blocks — ünïcødé ✓ too. The end. ";

export interface FakeEngineOptions {
  id?: string;
  maxModelLen?: number;
  /** Milliseconds per step (0 = next macrotask). */
  stepMs?: number;
  maxNumSeqs?: number;
  /** Requests allowed to wait before generate() rejects with queue_full. */
  maxWaiting?: number;
  blocksTotal?: number;
  blockSize?: number;
  /** Start-up time before health() becomes "ready". */
  startupMs?: number;
  /** Emit EOS after this many tokens (unless ignoreEos). */
  eosAfter?: number;
  /** Fail start-up with this message. */
  startupError?: string;
  /** The text whose UTF-8 bytes are generated (default PASSAGE). */
  passage?: string;
}

interface Seq {
  req: GenerateRequest;
  tokens: number[];
  out: number[];
  blocks: number;
  offset: number;
  aborted: boolean;
  push: (ev: TokenEvent | Error) => void;
}

const enc = new TextEncoder();

function hash32(xs: number[], seed: number): number {
  let h = (2166136261 ^ seed) >>> 0;
  for (const x of xs) h = Math.imul(h ^ x, 16777619) >>> 0;
  return h;
}

/** The start-up plan the fake reports (computed once: it costs tens of ms). */
let fakePlan: MemoryReport["plan"] | undefined;

export class FakeEngine implements Engine {
  readonly o: Required<Omit<FakeEngineOptions, "eosAfter" | "startupError" | "passage">> &
    Pick<FakeEngineOptions, "eosAfter" | "startupError">;
  private state: EngineHealth = "starting";
  private readyP: Promise<void>;
  private waiting: Seq[] = [];
  private running: Seq[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly passage: number[];
  private generated = 0;
  private prompted = 0;
  private steps = 0;
  private recent: { t: number; n: number }[] = [];
  /** Request ids whose AbortSignal fired (for tests). */
  readonly aborted: string[] = [];
  /** Every request received (for tests). */
  readonly requests: GenerateRequest[] = [];

  constructor(opts: FakeEngineOptions = {}) {
    this.passage = Array.from(enc.encode(opts.passage ?? PASSAGE));
    this.o = {
      id: opts.id ?? "fake-model",
      maxModelLen: opts.maxModelLen ?? 256,
      stepMs: opts.stepMs ?? 1,
      maxNumSeqs: opts.maxNumSeqs ?? 256,
      maxWaiting: opts.maxWaiting ?? 1024,
      blocksTotal: opts.blocksTotal ?? 4096,
      blockSize: opts.blockSize ?? 16,
      startupMs: opts.startupMs ?? 0,
      eosAfter: opts.eosAfter,
      startupError: opts.startupError,
    };
    this.readyP = new Promise<void>((resolve, reject) => {
      setTimeout(() => {
        if (this.o.startupError) {
          this.state = "dead";
          reject(new Error(this.o.startupError));
        } else {
          this.state = "ready";
          resolve();
        }
      }, this.o.startupMs);
    });
    this.readyP.catch(() => {});
  }

  health(): EngineHealth {
    return this.state;
  }
  ready(): Promise<void> {
    return this.readyP;
  }
  /** Test hook: the engine process died. */
  kill(): void {
    this.state = "dead";
    for (const s of [...this.waiting, ...this.running]) s.push(Object.assign(new Error("engine died"), { code: "engine_dead" }));
    this.waiting = [];
    this.running = [];
  }

  model(): ModelDescription {
    return { id: this.o.id, maxModelLen: this.o.maxModelLen, vocabSize: 258, randomWeights: true };
  }

  generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<TokenEvent> {
    return {
      [Symbol.asyncIterator]: () => this.stream(req, signal),
    };
  }

  private async *stream(req: GenerateRequest, signal?: AbortSignal): AsyncGenerator<TokenEvent> {
    if (this.state !== "ready") throw Object.assign(new Error(`engine is ${this.state}`), { code: "engine_dead" });
    if (this.waiting.length >= this.o.maxWaiting)
      throw Object.assign(new Error(`waiting queue is full (${this.waiting.length} waiting, limit ${this.o.maxWaiting})`), {
        code: "queue_full",
      });
    if (req.promptTokenIds.length + req.params.maxTokens > this.o.maxModelLen)
      throw Object.assign(
        new Error(`prompt (${req.promptTokenIds.length}) + max_tokens (${req.params.maxTokens}) > max_model_len (${this.o.maxModelLen})`),
        { code: "prompt_too_long" },
      );
    this.requests.push(req);
    const queue: (TokenEvent | Error)[] = [];
    let wake: (() => void) | null = null;
    const t = req.params.temperature;
    const seed = req.params.seed ?? Math.floor(Math.random() * 2 ** 31);
    const seq: Seq = {
      req,
      tokens: [...req.promptTokenIds],
      out: [],
      blocks: 0,
      offset: t === 0 ? 0 : hash32(req.promptTokenIds, seed) % this.passage.length,
      aborted: false,
      push: (ev) => {
        queue.push(ev);
        const w = wake;
        wake = null;
        w?.();
      },
    };
    const onAbort = () => {
      seq.aborted = true;
      this.aborted.push(req.requestId);
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    this.waiting.push(seq);
    this.schedule();
    try {
      for (;;) {
        if (queue.length === 0) await new Promise<void>((r) => (wake = r));
        const ev = queue.shift()!;
        if (ev instanceof Error) throw ev;
        yield ev;
        if (ev.finishReason !== null) return;
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      // Consumer stopped early (client gone, or the server matched a stop string): cancel (takes
      // effect at the next step), recorded like a signalled abort.
      if (!seq.aborted && (this.running.includes(seq) || this.waiting.includes(seq))) this.aborted.push(req.requestId);
      seq.aborted = true;
    }
  }

  private schedule(): void {
    if (this.timer !== null || this.state !== "ready") return;
    if (this.waiting.length === 0 && this.running.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.step();
      this.schedule();
    }, this.o.stepMs);
  }

  private blocksUsed(): number {
    return this.running.reduce((a, s) => a + s.blocks, 0);
  }

  private finish(s: Seq, reason: "stop" | "length" | "abort"): void {
    s.push({
      requestId: s.req.requestId,
      tokenIds: [],
      finishReason: reason,
      promptTokens: s.req.promptTokenIds.length,
      completionTokens: s.out.length,
    });
  }

  private step(): void {
    this.steps++;
    // Cancelled requests leave first (their blocks return now, within one step).
    for (const list of [this.waiting, this.running])
      for (const s of list.filter((x) => x.aborted)) {
        list.splice(list.indexOf(s), 1);
        s.blocks = 0;
        this.finish(s, "abort");
      }
    // Admit.
    while (this.waiting.length > 0 && this.running.length < this.o.maxNumSeqs) {
      const s = this.waiting[0]!;
      const need = Math.ceil((s.tokens.length + 1) / this.o.blockSize);
      if (this.blocksUsed() + need > this.o.blocksTotal) break;
      this.waiting.shift();
      s.blocks = need;
      this.prompted += s.tokens.length;
      this.running.push(s);
    }
    // Decode one token each.
    const now = performance.now();
    let produced = 0;
    for (const s of [...this.running]) {
      const p = s.req.params;
      let id: number;
      if (this.o.eosAfter !== undefined && s.out.length >= this.o.eosAfter && !p.ignoreEos) id = EOS;
      else id = this.passage[(s.offset + s.out.length) % this.passage.length]!;
      s.out.push(id);
      s.tokens.push(id);
      produced++;
      const need = Math.ceil(s.tokens.length / this.o.blockSize);
      if (need > s.blocks) s.blocks = need;
      let logprobs: TokenLogprob[] | undefined;
      if (p.logprobs !== undefined) {
        const top = [];
        for (let k = 0; k < p.logprobs; k++) top.push({ tokenId: k === 0 ? id : (id + k) % 256, logprob: -0.25 - k });
        logprobs = [{ tokenId: id, logprob: -0.25, top }];
      }
      let reason: "stop" | "length" | null = null;
      if (id === EOS || p.stopTokenIds.includes(id)) reason = "stop";
      else if (s.out.length >= p.maxTokens) reason = "length";
      if (reason !== null) {
        this.running.splice(this.running.indexOf(s), 1);
        s.blocks = 0;
      }
      s.push({
        requestId: s.req.requestId,
        tokenIds: [id],
        logprobs,
        finishReason: reason,
        promptTokens: s.req.promptTokenIds.length,
        completionTokens: s.out.length,
      });
    }
    this.generated += produced;
    this.recent.push({ t: now, n: produced });
    while (this.recent.length > 0 && now - this.recent[0]!.t > 1000) this.recent.shift();
  }

  async stats(): Promise<EngineStats> {
    const used = this.blocksUsed();
    const now = performance.now();
    const window = this.recent.filter((r) => now - r.t <= 1000);
    return {
      running: this.running.length,
      waiting: this.waiting.length,
      blocksTotal: this.o.blocksTotal,
      blocksUsed: used,
      blocksFree: this.o.blocksTotal - used,
      blocksCached: 0,
      blockSize: this.o.blockSize,
      kvCacheDtype: "f32",
      kvBytesPerBlock: 0,
      kvScalesFromCheckpoint: 0,
      prefixCacheQueries: 0,
      prefixCacheHits: 0,
      prefixCacheHitRate: 0,
      generatedTokens: this.generated,
      promptTokens: this.prompted,
      tokensPerSecond: window.reduce((a, r) => a + r.n, 0),
      preemptions: 0,
      steps: this.steps,
    };
  }

  /** A memory report shaped like the real engine's, with numbers that add up. */
  async memory(): Promise<MemoryReport> {
    const total = 1 << 30;
    const perBlock = this.o.blockSize * 64;
    const kvMapped = this.o.blocksTotal * perBlock;
    const kvUsed = this.running.reduce((a, q) => a + q.blocks, 0) * perBlock;
    const [weights, activations, graphs, reserved, allocated] = [300e6, 50e6, 12e6, 500e6, 450e6];
    const used = reserved + kvMapped + graphs;
    const plan = (fakePlan ??= planFromRequest({ model: "synthetic:stories15m", backend: "cpu", deviceMemoryBytes: total }).plan);
    return {
      device: { name: "fake", backend: "cpu", total_bytes: total },
      snapshot: {
        timestamp: 1_700_000_000_000,
        total,
        free: total - used,
        used,
        allocator_reserved: reserved,
        allocator_allocated: allocated,
        allocator_peak: allocated + activations,
        kv_mapped: kvMapped,
        non_allocator: graphs,
      },
      profile: {
        weights,
        peak_activation: activations,
        non_allocator_increase: 0,
        cuda_graph: graphs,
        allocator_slack: reserved - allocated,
        non_kv_total: weights + activations + graphs + reserved - allocated,
        requested: total * 0.9,
        kv_budget: kvMapped,
        profile_time_ms: 10,
        profile_skipped: false,
        baseline_used: 0,
        baseline_free: total,
      },
      breakdown: {
        other_processes: 0,
        weights,
        activations,
        non_allocator: 0,
        graphs,
        allocator_slack: reserved - allocated,
        kv_used: kvUsed,
        kv_free: kvMapped - kvUsed,
        free: total - used,
      },
      kv: {
        blocks: this.o.blocksTotal,
        block_size: this.o.blockSize,
        bytes_per_block: perBlock,
        tokens: this.o.blocksTotal * this.o.blockSize,
        mapped_bytes: kvMapped,
        max_concurrency: 1,
        max_model_len: this.o.maxModelLen,
      },
      suggestions: {
        kv_cache_memory_bytes_fits_request: kvMapped,
        kv_cache_memory_bytes_full_device: kvMapped * 2,
        safety_margin_bytes: 0,
        text: "fake",
      },
      offload: { enabled: false, layers_on_device: 6, layers_in_host_memory: 0, reason: "fits" },
      graphs: { enabled: false, reason: "fake engine", sizes: [], per_graph_bytes: [], total_bytes: 0, pool_reserved: 0, capture_ms: 0 },
      plan,
      plan_mismatches: [],
      startup_line: "fake engine: no device",
    };
  }

  async allocator(): Promise<AllocatorReport> {
    const g = (current: number) => ({ current, peak: current, allocated: current, freed: 0 });
    return {
      stats: {
        allocatedBytes: g(450e6),
        reservedBytes: g(500e6),
        activeBytes: g(450e6),
        segment: g(1),
        numAllocRetries: 0,
        numOoms: 0,
        numAllocs: 3,
        limit: 0,
      },
      segments: [
        {
          address: "0x1000",
          size: 500e6,
          pool: 0,
          blocks: [
            { address: "0x1000", size: 450e6, allocated: true },
            { address: "0x1ad28bc0", size: 50e6, allocated: false },
          ],
        },
      ],
    };
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.state = "dead";
  }
}
