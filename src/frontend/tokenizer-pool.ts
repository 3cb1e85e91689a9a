// A small pool of tokenizer workers (Bun Workers, tokenizer-worker.ts). Each loads the model's
// tokenizer and chat template itself; requests go to the worker with the fewest outstanding
// jobs, so a multi-MB prompt occupies one worker while short prompts keep flowing on the others.
import type { ChatMessage } from "../engine/api.ts";
import type { FromTokenizer, ToTokenizer } from "./tokenizer-protocol.ts";

interface Pending {
  resolve: (ids: Int32Array) => void;
  reject: (e: Error) => void;
}

class PoolWorker {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();
  readonly loaded: Promise<void>;

  constructor(model: string | null, onCrash: (e: Error) => void) {
    // In the single binary (src/ship/compile.ts) the worker is its own entry point under the root.
    const url = Bun.isStandaloneExecutable ? new URL("./frontend/tokenizer-worker.ts", import.meta.url) : new URL("./tokenizer-worker.ts", import.meta.url);
    this.worker = new Worker(url.href);
    // An idle pool never keeps the process alive (Bun's Worker has unref; the DOM typing lacks it).
    (this.worker as Worker & { unref?: () => void }).unref?.();
    let loadedOk!: () => void;
    let loadFailed!: (e: Error) => void;
    this.loaded = new Promise<void>((res, rej) => ((loadedOk = res), (loadFailed = rej)));
    this.loaded.catch(() => {});
    this.worker.onmessage = (e: MessageEvent<FromTokenizer>) => {
      const m = e.data;
      if (m.type === "loaded") return loadedOk();
      if (m.type === "load-failed") return loadFailed(new Error(m.message));
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.type === "done") p?.resolve(m.ids);
      else p?.reject(Object.assign(new Error(m.message), { name: m.name }));
    };
    this.worker.onerror = (e: ErrorEvent) => {
      const err = new Error(`tokenizer worker crashed: ${e.message}`);
      loadFailed(err);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      onCrash(err);
    };
    this.post({ type: "load", model });
  }

  post(m: ToTokenizer): void {
    this.worker.postMessage(m);
  }
}

export class TokenizerPool {
  private readonly workers: PoolWorker[];
  private nextId = 1;
  private failure: Error | null = null;
  /** Resolves when every worker has loaded the tokenizer; rejects with the first load error. */
  readonly ready: Promise<void>;

  constructor(model: string | null, size = 2) {
    if (!(size >= 1)) throw new RangeError(`tokenizer pool size must be >= 1 (got ${size})`);
    this.workers = Array.from({ length: size }, () => new PoolWorker(model, (e) => (this.failure ??= e)));
    this.ready = Promise.all(this.workers.map((w) => w.loaded)).then(() => {});
    this.ready.catch((e: Error) => (this.failure ??= e));
  }

  get error(): Error | null {
    return this.failure;
  }

  private run(make: (id: number) => ToTokenizer): Promise<Int32Array> {
    if (this.failure) return Promise.reject(this.failure);
    let w = this.workers[0]!;
    for (const x of this.workers) if (x.pending.size < w.pending.size) w = x;
    const id = this.nextId++;
    const target = w;
    return new Promise<Int32Array>((resolve, reject) => {
      target.pending.set(id, { resolve, reject });
      target.post(make(id));
    });
  }

  /** Token ids of `text` (BOS per the tokenizer's setting when addSpecialTokens). */
  encode(text: string, addSpecialTokens: boolean): Promise<Int32Array> {
    return this.run((id) => ({ type: "encode", id, text, addSpecialTokens }));
  }

  /** The chat template rendered with the generation prompt, tokenized. */
  chat(messages: ChatMessage[]): Promise<Int32Array> {
    return this.run((id) => ({ type: "chat", id, messages }));
  }

  /** Jobs queued or running (for tests and metrics). */
  get outstanding(): number {
    return this.workers.reduce((a, w) => a + w.pending.size, 0);
  }

  close(): void {
    const err = new Error("tokenizer pool closed");
    this.failure ??= err;
    for (const w of this.workers) {
      for (const p of w.pending.values()) p.reject(err);
      w.pending.clear();
      w.worker.terminate();
    }
  }
}
