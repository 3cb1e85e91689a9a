// tools / tool_choice / parallel_tool_calls of a chat request → how its output is parsed.
//   none      tools go to the chat template only; the output is plain content
//   auto      (default with tools) tool calls are parsed out of the output in the format of
//             --tool-call-parser (auto: the one the chat template teaches)
//   required, {type: "function", function: {name}}
//             enforced by a grammar (structured outputs, xgrammar): the output is a JSON array
//             of calls / the named function's arguments object (as vLLM does), read back by
//             src/frontend/tool-calls/forced.ts
import type { ToolParserName } from "../frontend/tool-calls/formats.ts";
import { detectToolParser } from "../frontend/tool-calls/formats.ts";
import { namedToolSchema, requiredToolsSchema } from "../frontend/tool-calls/forced.ts";
import type { StructuredSpec } from "../structured/spec.ts";
import type { ServerContext } from "./context.ts";
import { badRequest } from "./errors.ts";
import type { ChatCompletionRequest } from "./schemas.ts";

export interface ToolParsing {
  format: ToolParserName;
  /** parallel_tool_calls: false → 1. */
  maxCalls: number;
  /** required / named: the grammar that forces the calls, and the named function (null: required). */
  forced?: { spec: StructuredSpec; name: string | null };
}

/** The tool-call format this server parses: the flag, or the one the chat template shows. */
export function toolFormat(ctx: ServerContext): ToolParserName | null {
  const opt = ctx.options.toolCallParser;
  if (opt !== "auto") return opt;
  return detectToolParser(ctx.text.chatTemplateSources());
}

/** null: the output is not parsed for tool calls. */
export function toolParsing(ctx: ServerContext, body: ChatCompletionRequest): ToolParsing | null {
  const tools = body.tools ?? [];
  const choice = body.tool_choice ?? (tools.length > 0 ? "auto" : "none");
  if (tools.length === 0) {
    if (choice !== "none") throw badRequest("tool_choice needs tools.", "tool_choice");
    return null;
  }
  if (choice === "none") return null;
  if (typeof choice === "object") {
    const name = choice.function.name;
    if (!tools.some((t) => t.function.name === name))
      throw badRequest(`tool_choice names the function '${name}', which is not in tools.`, "tool_choice");
  }
  if (choice !== "auto") {
    const named = typeof choice === "object" ? tools.find((t) => t.function.name === choice.function.name)! : null;
    const schema = named ? namedToolSchema(named) : requiredToolsSchema(tools, body.parallel_tool_calls === false ? 1 : undefined);
    // The grammar enforces the parameters schema, strict or not.
    return {
      format: toolFormat(ctx) ?? "hermes",
      maxCalls: body.parallel_tool_calls === false ? 1 : Infinity,
      forced: { spec: { type: "json_schema", schema }, name: named ? named.function.name : null },
    };
  }
  // strict promises arguments valid against the schema: only a grammar could keep that promise.
  const strict = tools.findIndex((t) => t.function.strict === true);
  if (strict >= 0)
    throw badRequest(
      `tools[${strict}].function.strict: true is not enforced yet (it needs grammar-constrained decoding); leave it unset or false.`,
      `tools.${strict}.function.strict`,
      "unsupported_parameter",
    );
  const format = toolFormat(ctx);
  if (format === null)
    throw badRequest(
      'tool_choice "auto": the chat template shows no tool-call format this server can parse (hermes, llama3_json, mistral); start the server with --tool-call-parser, or pass tool_choice "none".',
      "tool_choice",
    );
  return { format, maxCalls: body.parallel_tool_calls === false ? 1 : Infinity };
}
