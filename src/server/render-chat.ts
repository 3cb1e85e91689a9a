// Chat messages -> prompt token ids through the model's chat template, on a tokenizer worker
// (shared by /v1/chat/completions and /tokenize).
import type { ChatMessage, ChatTemplateRequest } from "../engine/api.ts";
import type { ServerContext } from "./context.ts";
import { ApiError } from "./errors.ts";
import { tokenizationFailed } from "./generation.ts";

/**
 * The chat template rendered and tokenized on a tokenizer worker. A template that refuses the
 * conversation (raise_exception: roles out of order, …) is the client's error: 400.
 */
export async function renderChat(
  ctx: ServerContext,
  messages: ChatMessage[],
  opts: ChatTemplateRequest,
  signal: AbortSignal,
): Promise<number[]> {
  try {
    return Array.from(await ctx.text.chat(messages, opts, signal));
  } catch (e) {
    if ((e as { code?: unknown }).code === "engine_dead" || (e as Error).name === "AbortError") tokenizationFailed(e);
    throw new ApiError(
      400,
      `The chat template cannot render these messages: ${e instanceof Error ? e.message : String(e)}`,
      "invalid_request_error",
      "messages",
      "chat_template_error",
    );
  }
}
