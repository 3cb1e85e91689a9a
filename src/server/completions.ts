// POST /v1/completions (OpenAI legacy completions; non-streaming and SSE).
import { Elysia } from "elysia";
import type { TokenLogprob } from "../engine/api.ts";
import type { TextLogprob } from "../frontend/output-processor.ts";
import { promptLogprobStrings } from "../frontend/prompt-logprobs.ts";
import type { ServerContext } from "./context.ts";
import { rejectUnknownFields } from "./unknown-fields.ts";
import { badRequest } from "./errors.ts";
import {
  checkMinTokens,
  checkPromptChars,
  checkTokenIds,
  collect,
  fitMaxTokens,
  logitBias,
  makeJobs,
  newId,
  runJobs,
  samplingParams,
  stopStrings,
  sseResponse,
  tokenizationFailed,
  choiceChunks,
  startStream,
  usageOf,
  type ChoiceEvent,
} from "./generation.ts";
import { structuredSpec, withStructured } from "./structured-request.ts";
import { CompletionRequest, CompletionResponse, generationErrors, type CompletionLogprobs } from "./schemas.ts";

/** OpenAI completions logprobs for `lps`; text offsets are shifted by `echoLength` (the echoed prompt). */
export function completionLogprobs(lps: TextLogprob[], echoLength: number): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  for (const lp of lps) {
    out.tokens.push(lp.token);
    out.token_logprobs.push(lp.logprob);
    const top: Record<string, number> = {};
    for (const a of lp.top) if (!(a.token in top)) top[a.token] = a.logprob;
    if (lp.top.length === 0) top[lp.token] = lp.logprob;
    out.top_logprobs.push(top);
    out.text_offset.push(echoLength + lp.textOffset);
  }
  return out;
}

/** echo + logprobs: the prompt's logprobs (the first token has none: null), then the completion's. */
function echoLogprobs(
  ctx: ServerContext,
  promptIds: number[],
  prompt: (TokenLogprob | null)[] | null,
  completion: TextLogprob[],
  echoLength: number,
): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  for (const lp of promptLogprobStrings(ctx.text.tok, promptIds, prompt ?? [])) {
    out.tokens.push(lp.token);
    out.token_logprobs.push(lp.logprob);
    let top: Record<string, number> | null = null;
    if (lp.top !== null && lp.logprob !== null) {
      top = {};
      for (const a of lp.top) if (!(a.token in top)) top[a.token] = a.logprob;
      if (lp.top.length === 0) top[lp.token] = lp.logprob;
    }
    out.top_logprobs.push(top);
    out.text_offset.push(lp.textOffset);
  }
  const rest = completionLogprobs(completion, echoLength);
  out.tokens.push(...rest.tokens);
  out.token_logprobs.push(...rest.token_logprobs);
  out.top_logprobs.push(...rest.top_logprobs);
  out.text_offset.push(...rest.text_offset);
  return out;
}

export function completionsRoutes(ctx: ServerContext) {
  return new Elysia({ name: "headroom-completions" }).post(
    "/v1/completions",
    async ({ body, request }) => {
      const info = ctx.info(request);
      ctx.checkReady();
      const model = ctx.checkModel(body.model);
      if (body.suffix) throw badRequest("suffix is not supported.", "suffix");
      const n = body.n ?? 1;
      if (body.best_of != null && body.best_of !== n)
        throw badRequest(`best_of (${body.best_of}) must equal n (${n}); best_of sampling is not supported.`, "best_of");

      const p = body.prompt;
      let texts: (string | null)[];
      let prompts: number[][];
      if (typeof p === "string") texts = [p];
      else if (p.length > 0 && typeof p[0] === "string") texts = p as string[];
      else texts = [];
      if (texts.length > 0) {
        checkPromptChars(ctx, texts as string[], "prompt");
        // On the tokenizer workers: a huge prompt blocks neither this thread nor the engine.
        const encoded = await Promise.all(texts.map((s) => ctx.text.encode(s ?? "", true, request.signal))).catch(tokenizationFailed);
        prompts = encoded.map((ids) => Array.from(ids));
      } else {
        prompts = typeof p[0] === "number" ? [p as number[]] : (p as number[][]);
        texts = prompts.map(() => null);
        for (const ids of prompts) checkTokenIds(ctx, ids, "prompt");
      }
      if (body.echo && texts.some((s) => s === null)) throw badRequest("echo is only supported for text prompts.", "echo");
      for (const ids of prompts) if (ids.length === 0) throw badRequest("The prompt is empty.", "prompt");

      const logprobs = body.logprobs ?? undefined;
      const defaults = ctx.engine.model().samplingDefaults ?? {};
      const structured = await structuredSpec(ctx, body);
      const bias = logitBias(ctx, body);
      const output = { skipSpecialTokens: body.skip_special_tokens ?? true, includeStopStr: body.include_stop_str_in_output ?? false };
      const jobs = makeJobs(
        prompts,
        n,
        (ids) => {
          const maxTokens = fitMaxTokens(ctx, ids.length, body.max_tokens ?? defaults.maxTokens ?? 16, "max_tokens");
          checkMinTokens(body, maxTokens);
          return withStructured(
            {
              ...samplingParams(body, maxTokens, logprobs, defaults),
              ...(bias.length ? { logitBias: bias } : {}),
              // echo + logprobs: the engine scores the prompt tokens too.
              ...(body.echo && logprobs !== undefined ? { promptLogprobs: logprobs } : {}),
            },
            structured,
          );
        },
        stopStrings(body),
        output,
      );
      const id = newId("cmpl");
      const created = Math.floor(Date.now() / 1000);
      const echoText = (index: number) => (body.echo ? (texts[Math.floor(index / n)] ?? "") : "");

      const ac = new AbortController();
      const onAbort = () => ac.abort();
      request.signal.addEventListener("abort", onAbort, { once: true });
      const events = runJobs(ctx, info, jobs, ac.signal);

      if (!body.stream) {
        try {
          const results = await collect(jobs, events, logprobs !== undefined);
          const res: CompletionResponse = {
            id,
            object: "text_completion",
            created,
            model,
            choices: results.map((r) => ({
              index: r.index,
              text: echoText(r.index) + r.text,
              logprobs: r.logprobs
                ? body.echo
                  ? echoLogprobs(ctx, prompts[r.promptIndex]!, r.promptLogprobs, r.logprobs, echoText(r.index).length)
                  : completionLogprobs(r.logprobs, 0)
                : null,
              finish_reason: r.finishReason,
            })),
            usage: usageOf(
              prompts.map((ids, i) => results.find((r) => r.promptIndex === i)?.promptTokens || ids.length),
              results.map((r) => r.completionTokens),
            ),
          };
          return res;
        } finally {
          request.signal.removeEventListener("abort", onAbort);
        }
      }

      const includeUsage = body.stream_options?.include_usage === true;
      const { first, rest } = await startStream(events);
      const completion = new Map<number, number>();
      const promptTokens = new Map<number, number>();
      async function* chunks(): AsyncGenerator<object> {
        const base = { id, object: "text_completion" as const, created, model };
        const extra = includeUsage ? { usage: null } : {};
        // With logprobs the echo goes out with the first event, next to the prompt's logprobs.
        const echoWithFirst = body.echo === true && logprobs !== undefined;
        const echoed = new Set<number>();
        if (body.echo && !echoWithFirst)
          for (const j of jobs) {
            yield { ...base, choices: [{ index: j.index, text: echoText(j.index), logprobs: null, finish_reason: null }], ...extra };
          }
        const one = (ce: ChoiceEvent) => {
          const { index, ev } = ce;
          completion.set(index, Math.max(completion.get(index) ?? 0, ev.completionTokens));
          if (ev.promptTokens > 0) promptTokens.set(jobs[index]!.promptIndex, ev.promptTokens);
          const withEcho = echoWithFirst && !echoed.has(index);
          if (!withEcho && ev.text === "" && !ev.logprobs?.length && ev.finishReason === null) return null;
          echoed.add(index);
          const lps =
            logprobs === undefined
              ? null
              : withEcho
                ? echoLogprobs(ctx, jobs[index]!.promptTokenIds, ev.promptLogprobs ?? null, ev.logprobs ?? [], echoText(index).length)
                : completionLogprobs(ev.logprobs ?? [], echoText(index).length);
          return {
            ...base,
            choices: [{ index, text: (withEcho ? echoText(index) : "") + ev.text, logprobs: lps, finish_reason: ev.finishReason }],
            ...extra,
          };
        };
        yield* choiceChunks(
          first,
          rest,
          one,
          () =>
            includeUsage
              ? {
                  ...base,
                  choices: [],
                  usage: usageOf(
                    prompts.map((ids, i) => promptTokens.get(i) ?? ids.length),
                    [...completion.values()],
                  ),
                }
              : null,
          () => request.signal.removeEventListener("abort", onAbort),
        );
      }
      // Elysia passes a Response through untouched; the cast only satisfies its handler typing
      // (which does not accept Promise<Response | T>).
      return sseResponse(ctx, info, chunks(), () => ac.abort()) as unknown as CompletionResponse;
    },
    {
      parse: "json",
      transform: rejectUnknownFields(CompletionRequest),
      body: CompletionRequest,
      response: { 200: CompletionResponse, ...generationErrors },
      detail: {
        tags: ["OpenAI"],
        summary: "Create a completion",
        description: "OpenAI-compatible text completion. `stream: true` returns server-sent events ending with `data: [DONE]`.",
        security: [{ bearerAuth: [] }],
      },
    },
  );
}
