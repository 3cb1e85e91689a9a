// POST /tokenize and POST /detokenize, with vLLM's request and response shapes: a prompt (or a
// chat, rendered and tokenized exactly as /v1/chat/completions would) → {count, max_model_len,
// tokens}; token ids → {prompt}. Tokenizing runs on the tokenizer workers.
import { Elysia } from "elysia";
import { templateMessages, templateRequest } from "./chat-template-request.ts";
import { renderChat } from "./render-chat.ts";
import type { ServerContext } from "./context.ts";
import { badRequest } from "./errors.ts";
import { checkPromptChars, checkTokenIds, tokenizationFailed } from "./generation.ts";
import { DetokenizeRequest, DetokenizeResponse, ErrorResponse, TokenizeRequest, TokenizeResponse } from "./schemas.ts";
import { rejectUnknownFields } from "./unknown-fields.ts";

const errors = {
  400: ErrorResponse,
  401: ErrorResponse,
  404: ErrorResponse,
  413: ErrorResponse,
  500: ErrorResponse,
  503: ErrorResponse,
} as const;
const CHAT_ONLY = ["add_generation_prompt", "continue_final_message", "chat_template_kwargs", "tools"] as const;

async function tokenize(ctx: ServerContext, body: TokenizeRequest, signal: AbortSignal): Promise<number[]> {
  if ((body.prompt === undefined) === (body.messages === undefined))
    throw badRequest("Give exactly one of prompt and messages.", body.prompt === undefined ? "prompt" : "messages");
  if (body.prompt !== undefined) {
    for (const k of CHAT_ONLY) if (body[k] != null) throw badRequest(`${k} applies to messages, not to prompt.`, k);
    checkPromptChars(ctx, [body.prompt], "prompt");
    return Array.from(await ctx.text.encode(body.prompt, body.add_special_tokens ?? true, signal).catch(tokenizationFailed));
  }
  if (body.add_special_tokens != null)
    throw badRequest("add_special_tokens applies to prompt; messages are tokenized as /v1/chat/completions does.", "add_special_tokens");
  const chat = { ...body, messages: body.messages! };
  const messages = templateMessages(chat);
  const opts = templateRequest(chat);
  checkPromptChars(
    ctx,
    messages.map((m) => m.content),
    "messages",
  );
  return await renderChat(ctx, messages, opts, signal);
}

export function tokenizeRoutes(ctx: ServerContext) {
  return new Elysia({ name: "headroom-tokenize" })
    .post(
      "/tokenize",
      async ({ body, request }) => {
        ctx.checkReady();
        ctx.checkModel(body.model);
        const tokens = await tokenize(ctx, body, request.signal);
        const strs = body.return_token_strs ? { token_strs: tokens.map((id) => ctx.text.tok.idToToken(id) ?? "") } : {};
        return { count: tokens.length, max_model_len: ctx.maxModelLen(), tokens, ...strs };
      },
      {
        parse: "json",
        transform: rejectUnknownFields(TokenizeRequest),
        body: TokenizeRequest,
        response: { 200: TokenizeResponse, ...errors },
        detail: {
          tags: ["vLLM"],
          summary: "Tokenize a prompt or a chat",
          description: "vLLM's /tokenize: the token ids a prompt (or a chat, with the chat template) becomes.",
          security: [{ bearerAuth: [] }],
        },
      },
    )
    .post(
      "/detokenize",
      ({ body }) => {
        ctx.checkReady();
        ctx.checkModel(body.model);
        checkTokenIds(ctx, body.tokens, "tokens");
        return { prompt: ctx.text.tok.decode(body.tokens, { skipSpecialTokens: false }) };
      },
      {
        parse: "json",
        transform: rejectUnknownFields(DetokenizeRequest),
        body: DetokenizeRequest,
        response: { 200: DetokenizeResponse, ...errors },
        detail: {
          tags: ["vLLM"],
          summary: "Detokenize token ids",
          description: "vLLM's /detokenize: the text of token ids (special tokens kept).",
          security: [{ bearerAuth: [] }],
        },
      },
    );
}
