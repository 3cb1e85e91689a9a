// Shared by /v1/completions and /v1/chat/completions: sampling parameters, the context-length
// check, admission, running n×prompts sequences on the engine with one AbortSignal, merging
// their event streams through the frontend's output processors (ids → text, stop strings: a
// match ends the sequence and aborts it in the engine), and the latency metrics.
import type { FinishReason, SamplingDefaults, SamplingParams, TokenLogprob } from "../engine/api.ts";
import type { OutputProcessorOptions, TextEvent, TextLogprob } from "../frontend/output-processor.ts";
import type { RequestInfo, ServerContext } from "./context.ts";
import { ApiError, badRequest, fromEngineError } from "./errors.ts";

export interface CommonSampling {
  n?: number | null;
  stop?: string | string[] | null;
  stop_token_ids?: number[] | null;
  seed?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  repetition_penalty?: number | null;
  ignore_eos?: boolean | null;
  min_tokens?: number | null;
  logit_bias?: Record<string, number> | null;
  skip_special_tokens?: boolean | null;
  include_stop_str_in_output?: boolean | null;
}

/** logit_bias as [token id, bias] pairs; an id outside the vocabulary is a 400. */
export function logitBias(ctx: ServerContext, body: CommonSampling): [number, number][] {
  const vocab = ctx.engine.model().vocabSize;
  return Object.entries(body.logit_bias ?? {}).map(([k, v]) => {
    const id = Number(k);
    if (!Number.isSafeInteger(id) || id >= vocab)
      throw badRequest(`logit_bias: token id ${k} is out of vocabulary (size ${vocab}).`, "logit_bias", "invalid_token_id");
    return [id, v];
  });
}

/** min_tokens must leave room within max_tokens. */
export function checkMinTokens(body: CommonSampling, maxTokens: number): void {
  if (body.min_tokens != null && body.min_tokens > maxTokens)
    throw badRequest(`min_tokens (${body.min_tokens}) must not exceed max_tokens (${maxTokens}).`, "min_tokens");
}

/** The request's stop strings (empty ones dropped); matched by the frontend, never sent to the engine. */
export function stopStrings(body: CommonSampling): string[] {
  const stop = body.stop == null ? [] : typeof body.stop === "string" ? [body.stop] : body.stop;
  return stop.filter((s) => s !== "");
}

/** `defaults`: the model's generation_config.json values, used where the request sets nothing. */
export function samplingParams(
  body: CommonSampling,
  maxTokens: number,
  logprobs: number | undefined,
  defaults: SamplingDefaults = {},
): SamplingParams {
  return {
    temperature: body.temperature ?? defaults.temperature ?? 1,
    topP: body.top_p ?? defaults.topP ?? 1,
    topK: body.top_k ?? defaults.topK ?? 0,
    minP: body.min_p ?? defaults.minP ?? 0,
    ...(body.seed != null ? { seed: body.seed } : {}),
    maxTokens,
    stopTokenIds: body.stop_token_ids ?? [],
    ignoreEos: body.ignore_eos ?? false,
    ...(logprobs !== undefined ? { logprobs } : {}),
    presencePenalty: body.presence_penalty ?? 0,
    frequencyPenalty: body.frequency_penalty ?? 0,
    repetitionPenalty: body.repetition_penalty ?? defaults.repetitionPenalty ?? 1,
    ...(body.min_tokens ? { minTokens: body.min_tokens } : {}),
  };
}

/**
 * vLLM's rule: prompt + max_tokens must fit in max_model_len. With no max_tokens
 * (`requested` undefined) the completion gets what is left. Returns the max_tokens to use.
 */
export function fitMaxTokens(ctx: ServerContext, promptLen: number, requested: number | undefined, param: string): number {
  const limit = ctx.maxModelLen();
  if (promptLen >= limit && requested === undefined)
    throw new ApiError(
      400,
      `This model's maximum context length is ${limit} tokens. However, your prompt has ${promptLen} tokens, which leaves no room for a completion. Please reduce the length of the prompt.`,
      "invalid_request_error",
      "messages",
      "context_length_exceeded",
    );
  const maxTokens = requested ?? limit - promptLen;
  if (promptLen + maxTokens > limit)
    throw new ApiError(
      400,
      `This model's maximum context length is ${limit} tokens. However, you requested ${promptLen + maxTokens} tokens (${promptLen} in the prompt, ${maxTokens} in the completion). Please reduce the length of the prompt or ${param}.`,
      "invalid_request_error",
      param,
      "context_length_exceeded",
    );
  return maxTokens;
}

/**
 * The prompt-size limit, checked before tokenizing (tokenizing costs time on a worker even when
 * the result is then refused as too long): characters over all texts of the request.
 */
export function checkPromptChars(ctx: ServerContext, texts: readonly string[], param: string): void {
  const limit = ctx.options.maxPromptChars;
  let n = 0;
  for (const t of texts) n += t.length;
  if (n > limit)
    throw new ApiError(
      400,
      `The prompt is too long: ${n} characters; the limit is ${limit} characters (see --max-prompt-chars).`,
      "invalid_request_error",
      param,
      "prompt_too_long",
    );
}

/**
 * Rethrows a tokenization error; one for a request whose client left before its tokenization
 * started becomes 499 (nobody reads it, and it is no server error).
 */
export function tokenizationFailed(e: unknown): never {
  if (e instanceof Error && e.name === "AbortError")
    throw new ApiError(
      499,
      "The client closed the request before its prompt was tokenized.",
      "invalid_request_error",
      null,
      "client_closed_request",
    );
  throw e;
}

export function checkTokenIds(ctx: ServerContext, ids: number[], param: string): void {
  const vocab = ctx.engine.model().vocabSize;
  for (const id of ids)
    if (id >= vocab) throw badRequest(`Token id ${id} is out of vocabulary (size ${vocab}).`, param, "invalid_token_id");
}

export interface SeqJob {
  /** Choice index in the response. */
  index: number;
  /** Index of the prompt this choice belongs to. */
  promptIndex: number;
  promptTokenIds: number[];
  params: SamplingParams;
  /** Stop strings (frontend side). */
  stop: string[];
  /** More output-processor options (special tokens in the text, ...). */
  output: Partial<OutputProcessorOptions>;
}

export interface ChoiceEvent {
  index: number;
  ev: TextEvent;
}

export interface ChoiceResult {
  index: number;
  promptIndex: number;
  text: string;
  tokenIds: number[];
  logprobs: TextLogprob[] | null;
  /** With SamplingParams.promptLogprobs: the engine's prompt logprobs (ids and values). */
  promptLogprobs: (TokenLogprob | null)[] | null;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
}

/** n choices per prompt; with a seed, choice j of a prompt uses seed + j so choices differ. */
export function makeJobs(
  prompts: number[][],
  n: number,
  params: (prompt: number[]) => SamplingParams,
  stop: string[],
  output: Partial<OutputProcessorOptions> = {},
): SeqJob[] {
  const jobs: SeqJob[] = [];
  prompts.forEach((p, pi) => {
    const base = params(p);
    for (let j = 0; j < n; j++) {
      const ps = { ...base, stopTokenIds: [...base.stopTokenIds] };
      if (base.seed !== undefined) ps.seed = base.seed + j;
      jobs.push({ index: pi * n + j, promptIndex: pi, promptTokenIds: p, params: ps, stop: [...stop], output });
    }
  });
  return jobs;
}

/**
 * Runs every job on the engine and yields their events merged in arrival order. One
 * AbortController covers all of them: aborted when `clientSignal` aborts (client gone), when
 * the consumer stops early (return/throw) or when one sequence fails. Admission is released
 * when every engine stream has ended (so the in-flight count matches the engine).
 */
export async function* runJobs(
  ctx: ServerContext,
  info: RequestInfo,
  jobs: SeqJob[],
  clientSignal: AbortSignal | undefined,
): AsyncGenerator<ChoiceEvent> {
  const release = ctx.admit(jobs.length);
  const ac = new AbortController();
  const onClientAbort = () => ac.abort(new Error("client disconnected"));
  if (clientSignal?.aborted) onClientAbort();
  clientSignal?.addEventListener("abort", onClientAbort);
  // Shutdown timeout: the engine ends these sequences with finish_reason "abort", and the
  // response still completes (final chunk + [DONE], or the whole JSON body).
  const onDrain = () => ac.abort(new Error("server shutting down"));
  if (ctx.drainSignal.aborted) onDrain();
  ctx.drainSignal.addEventListener("abort", onDrain);

  type Item = { index: number; ev?: TextEvent; err?: unknown; end?: true };
  const queue: Item[] = [];
  let wake: (() => void) | null = null;
  const push = (it: Item) => {
    queue.push(it);
    const w = wake;
    wake = null;
    w?.();
  };
  const m = ctx.metrics;
  let open = jobs.length;
  const firstOfPrompt = new Set<SeqJob>();
  const seenPrompts = new Set<number>();
  for (const j of jobs) if (!seenPrompts.has(j.promptIndex)) seenPrompts.add(j.promptIndex), firstOfPrompt.add(j);
  const pumps = jobs.map(async (job) => {
    let last = info.start;
    let firstAt = 0;
    let generated = 0;
    let first = true;
    try {
      const text = ctx.text.processor(job.promptTokenIds, { ...job.output, stop: job.stop, logprobs: job.params.logprobs !== undefined });
      const stream = ctx.engine.generate(
        { requestId: `${info.id}-${job.index}`, promptTokenIds: job.promptTokenIds, params: job.params },
        ac.signal,
      );
      // Leaving this loop before the engine finished (a stop string matched) aborts the request there.
      for await (const engineEv of stream) {
        const ev = text.process(engineEv);
        if (ev === null) break;
        const k = ev.tokenIds.length;
        if (k > 0) {
          const now = performance.now();
          if (first) {
            m.firstToken((now - info.start) / 1000);
            firstAt = now;
            first = false;
          } else for (let i = 0; i < k; i++) m.interToken((now - last) / 1000 / k);
          last = now;
          generated += k;
          m.generationTokens.inc({}, k);
        }
        push({ index: job.index, ev });
        if (ev.finishReason !== null) {
          if (firstOfPrompt.has(job)) m.promptTokens.inc({}, ev.promptTokens || job.promptTokenIds.length);
          m.finished(
            ev.finishReason,
            (performance.now() - info.start) / 1000,
            generated > 0 ? (last - firstAt) / 1000 : 0,
            generated,
            job.promptTokenIds.length,
          );
          break;
        }
      }
    } catch (err) {
      push({ index: job.index, err });
    } finally {
      push({ index: job.index, end: true });
    }
  });
  void Promise.allSettled(pumps).then(() => {
    clientSignal?.removeEventListener("abort", onClientAbort);
    ctx.drainSignal.removeEventListener("abort", onDrain);
    release();
  });

  const finished = new Set<number>();
  try {
    while (open > 0) {
      if (queue.length === 0) await new Promise<void>((r) => (wake = r));
      const it = queue.shift()!;
      if (it.err !== undefined) throw fromEngineError(it.err);
      if (it.end) {
        open--;
        if (!finished.has(it.index)) {
          // The engine ended a stream without a finish reason: report it as aborted.
          finished.add(it.index);
          if (!ac.signal.aborted) ctx.log.warn("engine stream ended without finish_reason", { request_id: info.id, index: it.index });
          yield {
            index: it.index,
            ev: { tokenIds: [], text: "", finishReason: "abort", stopReason: null, promptTokens: 0, completionTokens: 0 },
          };
        }
        continue;
      }
      if (it.ev) {
        if (it.ev.finishReason !== null) finished.add(it.index);
        yield { index: it.index, ev: it.ev };
      }
    }
  } finally {
    if (open > 0) ac.abort(new Error("response closed"));
  }
}

/** Collects a whole (non-streaming) generation. */
export async function collect(jobs: SeqJob[], events: AsyncIterable<ChoiceEvent>, wantLogprobs: boolean): Promise<ChoiceResult[]> {
  const results = new Map<number, ChoiceResult>();
  for (const j of jobs)
    results.set(j.index, {
      index: j.index,
      promptIndex: j.promptIndex,
      text: "",
      tokenIds: [],
      logprobs: wantLogprobs ? [] : null,
      promptLogprobs: null,
      finishReason: "abort",
      promptTokens: j.promptTokenIds.length,
      completionTokens: 0,
    });
  for await (const { index, ev } of events) {
    const r = results.get(index)!;
    r.text += ev.text;
    r.tokenIds.push(...ev.tokenIds);
    if (r.logprobs && ev.logprobs) r.logprobs.push(...ev.logprobs);
    if (ev.promptLogprobs) r.promptLogprobs = ev.promptLogprobs;
    if (ev.promptTokens > 0) r.promptTokens = ev.promptTokens;
    r.completionTokens = Math.max(r.completionTokens, ev.completionTokens, r.tokenIds.length);
    if (ev.finishReason !== null) r.finishReason = ev.finishReason;
  }
  return [...results.values()].sort((a, b) => a.index - b.index);
}

/** Usage: prompt tokens once per prompt, completion tokens over every choice. */
export function usageOf(
  promptLens: number[],
  completionTokens: number[],
): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  const p = promptLens.reduce((a, b) => a + b, 0);
  const c = completionTokens.reduce((a, b) => a + b, 0);
  return { prompt_tokens: p, completion_tokens: c, total_tokens: p + c };
}

export function newId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().replace(/-/g, "")}`;
}

const enc = new TextEncoder();
export const utf8Bytes = (s: string): number[] => Array.from(enc.encode(s));

/** Starts a generation and waits for its first event, so that errors before any output
 *  (queue full, engine errors) become proper HTTP statuses. Returns the first event and the
 *  iterator positioned after it. */
export async function startStream(
  events: AsyncGenerator<ChoiceEvent>,
): Promise<{ first: ChoiceEvent | undefined; rest: AsyncGenerator<ChoiceEvent> }> {
  const r = await events.next();
  return { first: r.done ? undefined : r.value, rest: events };
}

/**
 * One SSE chunk per choice event (`first`, then the rest; `one` may return null to skip an
 * event), then the closing chunk `last()` if any. Always runs `cleanup` and closes the event
 * stream, also when the client goes away mid-stream.
 */
export async function* choiceChunks(
  first: ChoiceEvent | undefined,
  rest: AsyncGenerator<ChoiceEvent>,
  one: (ce: ChoiceEvent) => object | null,
  last: () => object | null,
  cleanup: () => void,
): AsyncGenerator<object> {
  try {
    if (first) {
      const c = one(first);
      if (c) yield c;
    }
    for await (const ce of rest) {
      const c = one(ce);
      if (c) yield c;
    }
    const l = last();
    if (l) yield l;
  } finally {
    cleanup();
    await rest.return(undefined);
  }
}

/**
 * A text/event-stream Response over `chunks` (objects are JSON-encoded; the stream ends with
 * `data: [DONE]`). Cancelling the body (client gone) stops the source generator, which aborts
 * the engine requests. An error after the headers are sent becomes an `error` chunk.
 */
export function sseResponse(ctx: ServerContext, info: RequestInfo, chunks: AsyncGenerator<object>, abort: () => void): Response {
  const encoder = new TextEncoder();
  let closed = false;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await chunks.next();
        if (closed) return;
        if (r.done) {
          controller.enqueue(encoder.encode("data: [DONE]\n\n"));
          closed = true;
          controller.close();
          return;
        }
        controller.enqueue(encoder.encode(`data: ${JSON.stringify(r.value)}\n\n`));
      } catch (e) {
        if (closed) return;
        const err = fromEngineError(e);
        ctx.log.error("stream failed", { request_id: info.id, status: err.status, error: err.message });
        controller.enqueue(encoder.encode(`data: ${JSON.stringify(err.body())}\n\ndata: [DONE]\n\n`));
        closed = true;
        controller.close();
      }
    },
    async cancel() {
      closed = true;
      ctx.log.info("client disconnected; cancelling", { request_id: info.id });
      abort();
      void chunks.return(undefined).catch(() => {});
    },
  });
  return new Response(stream, {
    status: 200,
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" },
  });
}
