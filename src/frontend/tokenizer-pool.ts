// A small pool of tokenizer workers (Bun Workers, tokenizer-worker.ts). Each loads the model's
// tokenizer and chat template itself. Jobs wait in one FIFO queue and go to whichever worker is
// free, one at a time: a multi-MB prompt occupies one worker while short prompts keep flowing on
// the others, and a job whose client has gone away (AbortSignal) is dropped before it starts.
import type { ChatMessage, ChatTemplateRequest } from "../engine/api.ts";
import type { FromTokenizer, ToTokenizer } from "./tokenizer-protocol.ts";

type JobMessage =
  | { type: "encode"; text: string; addSpecialTokens: boolean }
  | { type: "chat"; messages: ChatMessage[]; opts: ChatTemplateRequest };

interface Job {
  message: JobMessage;
  signal?: AbortSignal;
  resolve: (ids: Int32Array) => void;
  reject: (e: Error) => void;
}

class PoolWorker {
  readonly worker: Worker;
  /** The job this worker is running (one at a time). */
  current: { id: number; job: Job } | null = null;
  readonly loaded: Promise<void>;

  constructor(model: string | null, chatTemplate: string | null, onDone: (w: PoolWorker) => void, onCrash: (e: Error) => void) {
    // In the single binary (src/ship/compile.ts) the worker is its own entry point under the root.
    const url = Bun.isStandaloneExecutable
      ? new URL("./frontend/tokenizer-worker.ts", import.meta.url)
      : new URL("./tokenizer-worker.ts", import.meta.url);
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
      const cur = this.current;
      if (!cur || cur.id !== m.id) return;
      this.current = null;
      if (m.type === "done") cur.job.resolve(m.ids);
      else cur.job.reject(Object.assign(new Error(m.message), { name: m.name }));
      onDone(this);
    };
    this.worker.onerror = (e: ErrorEvent) => {
      const err = new Error(`tokenizer worker crashed: ${e.message}`);
      loadFailed(err);
      this.current?.job.reject(err);
      this.current = null;
      onCrash(err);
    };
    this.post({ type: "load", model, chatTemplate });
  }

  post(m: ToTokenizer): void {
    this.worker.postMessage(m);
  }
}

export class TokenizerPool {
  private readonly workers: PoolWorker[];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private failure: Error | null = null;
  /** Resolves when every worker has loaded the tokenizer; rejects with the first load error. */
  readonly ready: Promise<void>;

  /** `chatTemplate`: --chat-template (a file or the template text); null = the model's own. */
  constructor(model: string | null, size = 2, chatTemplate: string | null = null) {
    if (!(size >= 1)) throw new RangeError(`tokenizer pool size must be >= 1 (got ${size})`);
    this.workers = Array.from(
      { length: size },
      () =>
        new PoolWorker(
          model,
          chatTemplate,
          () => this.dispatch(),
          (e) => this.fail(e),
        ),
    );
    this.ready = Promise.all(this.workers.map((w) => w.loaded)).then(() => this.dispatch());
    this.ready.catch((e: Error) => this.fail(e));
  }

  get error(): Error | null {
    return this.failure;
  }

  private fail(e: Error): void {
    // code engine_dead: the server answers 503 (the text side is down), not a client error.
    this.failure ??= Object.assign(e, { code: "engine_dead" });
    for (const j of this.queue.splice(0)) j.reject(this.failure);
  }

  /** Starts queued jobs on free workers (after the pool loaded), skipping abandoned ones. */
  private dispatch(): void {
    for (const w of this.workers) {
      if (w.current) continue;
      let job: Job | undefined;
      while ((job = this.queue.shift()) && job.signal?.aborted) job.reject(abortError());
      if (!job) return;
      const id = this.nextId++;
      w.current = { id, job };
      w.post({ ...job.message, id });
    }
  }

  private run(message: JobMessage, signal?: AbortSignal): Promise<Int32Array> {
    if (this.failure) return Promise.reject(this.failure);
    if (signal?.aborted) return Promise.reject(abortError());
    return new Promise<Int32Array>((resolve, reject) => {
      const job: Job = { message, signal, resolve, reject };
      this.queue.push(job);
      // Leaves the queue at once when its client goes away (a started job runs to the end).
      signal?.addEventListener(
        "abort",
        () => {
          const i = this.queue.indexOf(job);
          if (i >= 0) this.queue.splice(i, 1), reject(abortError());
        },
        { once: true },
      );
      this.ready.then(
        () => this.dispatch(),
        () => {},
      );
    });
  }

  /** Token ids of `text` (BOS per the tokenizer's setting when addSpecialTokens). */
  encode(text: string, addSpecialTokens: boolean, signal?: AbortSignal): Promise<Int32Array> {
    return this.run({ type: "encode", text, addSpecialTokens }, signal);
  }

  /** The chat template rendered (generation prompt, tools, kwargs per `opts`), tokenized. */
  chat(messages: ChatMessage[], opts: ChatTemplateRequest = {}, signal?: AbortSignal): Promise<Int32Array> {
    return this.run({ type: "chat", messages, opts }, signal);
  }

  /** Jobs waiting or running (for tests and metrics). */
  get outstanding(): number {
    return this.queue.length + this.workers.filter((w) => w.current).length;
  }

  close(): void {
    this.fail(new Error("tokenizer pool closed"));
    for (const w of this.workers) {
      w.current?.job.reject(this.failure!);
      w.current = null;
      w.worker.terminate();
    }
  }
}

function abortError(): Error {
  return Object.assign(new Error("the request was cancelled before its tokenization started"), { name: "AbortError" });
}
