// /v1/chat/completions request fields that shape the chat template render, checked and
// converted the way vLLM does: tool call arguments (JSON text in the API) reach the template as
// objects; add_generation_prompt defaults to true and cannot be combined with
// continue_final_message; tools are given to the template (tool_choice is checked in
// tool-request.ts).
import type { ChatMessage, ChatTemplateRequest } from "../engine/api.ts";
import { RESERVED_TEMPLATE_VARIABLES } from "../model/chat-template.ts";
import { badRequest } from "./errors.ts";
import type { ChatCompletionRequest } from "./schemas.ts";

type MessageIn = ChatCompletionRequest["messages"][number];

function textContent(m: MessageIn, i: number): string {
  // content may be left out only by an assistant message that carries tool calls (as in OpenAI's API).
  if (m.content === undefined && !(m.role === "assistant" && m.tool_calls))
    throw badRequest(`messages[${i}].content is required.`, `messages.${i}.content`);
  if (m.content === null || m.content === undefined) return "";
  if (typeof m.content === "string") return m.content;
  return m.content
    .map((part, j) => {
      if (part.type !== "text" || typeof part.text !== "string")
        throw badRequest(
          `messages[${i}].content[${j}]: only parts of type 'text' with a 'text' field are supported (got '${part.type}').`,
          `messages[${i}].content`,
        );
      return part.text;
    })
    .join("");
}

/** The messages as chat templates expect them. */
export function templateMessages(body: Pick<ChatCompletionRequest, "messages">): ChatMessage[] {
  return body.messages.map((m, i) => {
    const out: ChatMessage = { role: m.role, content: textContent(m, i) };
    if (m.name != null) out.name = m.name;
    if (m.tool_call_id != null) out.tool_call_id = m.tool_call_id;
    if (m.reasoning_content != null) out.reasoning_content = m.reasoning_content;
    if (m.tool_calls != null) {
      if (m.role !== "assistant")
        throw badRequest(`messages[${i}].tool_calls: only assistant messages have tool calls.`, `messages[${i}].tool_calls`);
      out.tool_calls = m.tool_calls.map((c, j) => {
        let args: unknown;
        try {
          args = JSON.parse(c.function.arguments);
        } catch (e) {
          throw badRequest(
            `messages[${i}].tool_calls[${j}].function.arguments is not valid JSON: ${(e as Error).message}`,
            `messages[${i}].tool_calls`,
          );
        }
        return { id: c.id, type: c.type, function: { name: c.function.name, arguments: args } };
      });
    }
    return out;
  });
}

/** add_generation_prompt, continue_final_message, tools and chat_template_kwargs, checked. */
export function templateRequest(
  body: Pick<ChatCompletionRequest, "messages" | "add_generation_prompt" | "continue_final_message" | "tools" | "chat_template_kwargs">,
): ChatTemplateRequest {
  const addGenerationPrompt = body.add_generation_prompt ?? true;
  const continueFinalMessage = body.continue_final_message ?? false;
  if (addGenerationPrompt && continueFinalMessage)
    throw badRequest(
      "Cannot set both `continue_final_message` and `add_generation_prompt` to true (set add_generation_prompt: false).",
      "continue_final_message",
    );
  if (continueFinalMessage && body.messages[body.messages.length - 1]?.role !== "assistant")
    throw badRequest(
      "continue_final_message needs the last message to be the assistant's (the text to continue).",
      "continue_final_message",
    );
  const tools = body.tools ?? null;
  const kwargs = body.chat_template_kwargs ?? {};
  for (const k of RESERVED_TEMPLATE_VARIABLES)
    if (Object.hasOwn(kwargs, k))
      throw badRequest(`chat_template_kwargs.${k} is set by the server; use the request field instead.`, "chat_template_kwargs");
  return { addGenerationPrompt, continueFinalMessage, tools: tools && tools.length > 0 ? tools : null, kwargs };
}
