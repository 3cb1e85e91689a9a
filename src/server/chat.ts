// POST /v1/chat/completions (non-streaming and SSE).
import { Elysia } from "elysia";
import type { TextLogprob } from "../frontend/output-processor.ts";
import { ForcedToolCallStreamer, forcedToolCalls } from "../frontend/tool-calls/forced.ts";
import { extractToolCalls, newToolCallId, ToolCallStreamer, type ToolCallDelta } from "../frontend/tool-calls/parser.ts";
import { templateMessages, templateRequest } from "./chat-template-request.ts";
import type { ServerContext } from "./context.ts";
import { rejectUnknownFields } from "./unknown-fields.ts";
import { badRequest } from "./errors.ts";
import {
  checkMinTokens,
  checkPromptChars,
  collect,
  fitMaxTokens,
  logitBias,
  makeJobs,
  newId,
  runJobs,
  samplingParams,
  stopStrings,
  sseResponse,
  choiceChunks,
  startStream,
  usageOf,
  utf8Bytes,
  type ChoiceEvent,
} from "./generation.ts";
import { renderChat } from "./render-chat.ts";
import { compiledSpec, structuredSpec, withStructured } from "./structured-request.ts";
import { toolParsing } from "./tool-request.ts";
import { ChatCompletionRequest, ChatCompletionResponse, generationErrors, type ChatLogprobs } from "./schemas.ts";

export function chatLogprobs(lps: TextLogprob[], top: number): ChatLogprobs {
  return {
    content: lps.map((lp) => ({
      token: lp.token,
      logprob: lp.logprob,
      // a token that is part of a character has its own bytes (its string is U+FFFD)
      bytes: lp.bytes ?? utf8Bytes(lp.token),
      top_logprobs: lp.top.slice(0, top).map((a) => ({ token: a.token, logprob: a.logprob, bytes: a.bytes ?? utf8Bytes(a.token) })),
    })),
  };
}

export function chatRoutes(ctx: ServerContext) {
  return new Elysia({ name: "headroom-chat" }).post(
    "/v1/chat/completions",
    async ({ body, request }) => {
      const info = ctx.info(request);
      ctx.checkReady();
      const model = ctx.checkModel(body.model);
      const n = body.n ?? 1;
      const messages = templateMessages(body);
      const templateOpts = templateRequest(body);
      const tools = toolParsing(ctx, body);
      if (body.top_logprobs != null && body.logprobs !== true) throw badRequest("top_logprobs requires logprobs: true.", "top_logprobs");
      checkPromptChars(
        ctx,
        messages.map((m) => m.content),
        "messages",
      );
      const prompt = await renderChat(ctx, messages, templateOpts, request.signal);
      const requested = body.max_completion_tokens ?? body.max_tokens ?? undefined;
      const param = body.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens";
      const logprobs = body.logprobs === true ? (body.top_logprobs ?? 0) : undefined;
      const defaults = ctx.engine.model().samplingDefaults ?? {};
      const fitted = fitMaxTokens(ctx, prompt.length, requested, param);
      // generation_config.json's max_new_tokens bounds a completion whose length the request leaves open.
      const maxTokens = requested === undefined && defaults.maxTokens !== undefined ? Math.min(fitted, defaults.maxTokens) : fitted;
      const responseFormat = await structuredSpec(ctx, body);
      const forced = tools?.forced ?? null;
      if (forced && responseFormat)
        throw badRequest(
          `tool_choice ${forced.name === null ? '"required"' : "naming a function"} cannot be combined with response_format / structured outputs (both constrain the output).`,
          "tool_choice",
        );
      // tool_choice required / named: the grammar forces the calls (as vLLM does).
      const structured = forced ? await compiledSpec(ctx, forced.spec, "tool_choice") : responseFormat;
      // Tool-call markers can be special tokens ([TOOL_CALLS], <|python_tag|>): kept in the text the parser reads.
      const output = {
        skipSpecialTokens: tools ? false : (body.skip_special_tokens ?? true),
        includeStopStr: body.include_stop_str_in_output ?? false,
      };
      checkMinTokens(body, maxTokens);
      const bias = logitBias(ctx, body);
      const params = withStructured(
        { ...samplingParams(body, maxTokens, logprobs, defaults), ...(bias.length ? { logitBias: bias } : {}) },
        structured,
      );
      const jobs = makeJobs([prompt], n, () => params, stopStrings(body), output);
      const id = newId("chatcmpl");
      const created = Math.floor(Date.now() / 1000);

      const ac = new AbortController();
      const onAbort = () => ac.abort();
      request.signal.addEventListener("abort", onAbort, { once: true });
      const events = runJobs(ctx, info, jobs, ac.signal);

      if (!body.stream) {
        try {
          const results = await collect(jobs, events, logprobs !== undefined);
          const res: ChatCompletionResponse = {
            id,
            object: "chat.completion",
            created,
            model,
            choices: results.map((r) => {
              const parsed = !tools
                ? null
                : forced
                  ? {
                      content: null,
                      toolCalls: forcedToolCalls(r.text, forced.name, () => newToolCallId(tools.format)).slice(0, tools.maxCalls),
                    }
                  : extractToolCalls(tools.format, r.text, tools.maxCalls);
              const called = parsed !== null && parsed.toolCalls.length > 0;
              return {
                index: r.index,
                message: called
                  ? { role: "assistant" as const, content: parsed.content, refusal: null, tool_calls: parsed.toolCalls }
                  : { role: "assistant" as const, content: r.text, refusal: null },
                logprobs: r.logprobs ? chatLogprobs(r.logprobs, logprobs ?? 0) : null,
                // OpenAI: a turn that ends in tool calls finishes with "tool_calls".
                // A named function is what the client asked for: "stop", as OpenAI answers.
                finish_reason: called && r.finishReason === "stop" && forced?.name == null ? ("tool_calls" as const) : r.finishReason,
              };
            }),
            usage: usageOf(
              [results[0]?.promptTokens || prompt.length],
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
      let promptTokens = prompt.length;
      type Streamer = {
        push(delta: string, final: boolean): { content: string; toolCalls: ToolCallDelta[] };
        readonly calledTools: boolean;
      };
      const newStreamer = (): Streamer => {
        if (!forced) return new ToolCallStreamer(tools!.format, tools!.maxCalls);
        const f = new ForcedToolCallStreamer(forced.name, () => newToolCallId(tools!.format));
        return {
          push: (d) => ({ content: "", toolCalls: f.push(d).filter((x) => x.index < tools!.maxCalls) }),
          get calledTools() {
            return f.calledTools;
          },
        };
      };
      const streamers = new Map(tools ? jobs.map((j) => [j.index, newStreamer()] as const) : []);
      async function* chunks(): AsyncGenerator<object> {
        const base = { id, object: "chat.completion.chunk" as const, created, model, system_fingerprint: null };
        const extra = includeUsage ? { usage: null } : {};
        for (const j of jobs)
          yield {
            ...base,
            choices: [{ index: j.index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }],
            ...extra,
          };
        const one = (ce: ChoiceEvent) => {
          const { index, ev } = ce;
          completion.set(index, Math.max(completion.get(index) ?? 0, ev.completionTokens));
          if (ev.promptTokens > 0) promptTokens = ev.promptTokens;
          const streamer = streamers.get(index);
          const parsed = streamer ? streamer.push(ev.text, ev.finishReason !== null) : { content: ev.text, toolCalls: [] };
          if (parsed.content === "" && parsed.toolCalls.length === 0 && !ev.logprobs?.length && ev.finishReason === null) return null;
          const delta = {
            ...(parsed.content !== "" ? { content: parsed.content } : {}),
            ...(parsed.toolCalls.length > 0 ? { tool_calls: parsed.toolCalls } : {}),
          };
          return {
            ...base,
            choices: [
              {
                index,
                delta,
                logprobs: logprobs !== undefined && ev.logprobs?.length ? chatLogprobs(ev.logprobs, logprobs) : null,
                finish_reason: streamer?.calledTools && ev.finishReason === "stop" && forced?.name == null ? "tool_calls" : ev.finishReason,
              },
            ],
            ...extra,
          };
        };
        yield* choiceChunks(
          first,
          rest,
          one,
          () => (includeUsage ? { ...base, choices: [], usage: usageOf([promptTokens], [...completion.values()]) } : null),
          () => request.signal.removeEventListener("abort", onAbort),
        );
      }
      // Elysia passes a Response through untouched; the cast only satisfies its handler typing
      // (which does not accept Promise<Response | T>).
      return sseResponse(ctx, info, chunks(), () => ac.abort()) as unknown as ChatCompletionResponse;
    },
    {
      parse: "json",
      transform: rejectUnknownFields(ChatCompletionRequest),
      body: ChatCompletionRequest,
      response: { 200: ChatCompletionResponse, ...generationErrors },
      detail: {
        tags: ["OpenAI"],
        summary: "Create a chat completion",
        description:
          "OpenAI-compatible chat completion (the model's chat template is applied). `stream: true` returns server-sent events ending with `data: [DONE]`.",
        security: [{ bearerAuth: [] }],
      },
    },
  );
}
