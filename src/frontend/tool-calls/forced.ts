// tool_choice "required" and {type: "function", function: {name}}, as vLLM implements them: the
// output is constrained by a JSON schema (structured outputs) and then read as tool calls.
//   named     the output IS the arguments object of that function
//   required  the output is a JSON array [{"name": …, "parameters": {…}}, …] (at least one)
// The schemas go to the grammar engine; the readers turn the constrained text into calls.
import { jsonValueEnd, scanObject } from "./json-scan.ts";
import type { ToolCall, ToolCallDelta } from "./parser.ts";

export interface ToolDef {
  type: "function";
  function: { name: string; parameters?: Record<string, unknown> | null };
}

const ANY_OBJECT = { type: "object" };

/** The JSON schema of a named tool choice: the function's parameters. */
export function namedToolSchema(tool: ToolDef): Record<string, unknown> {
  return tool.function.parameters ?? ANY_OBJECT;
}

/** The JSON schema of tool_choice "required": a non-empty array of calls of the given tools. */
export function requiredToolsSchema(tools: readonly ToolDef[], maxItems?: number): Record<string, unknown> {
  return {
    type: "array",
    minItems: 1,
    // parallel_tool_calls: false → exactly one call, in the grammar itself.
    ...(maxItems !== undefined ? { maxItems } : {}),
    items: {
      type: "object",
      anyOf: tools.map((t) => ({
        properties: { name: { type: "string", enum: [t.function.name] }, parameters: namedToolSchema(t) },
        required: ["name", "parameters"],
      })),
    },
  };
}

/** Calls in the constrained output of "required" (complete objects of the array, in order). */
function requiredCalls(text: string): { name: string | null; args: string; complete: boolean }[] {
  const out: { name: string | null; args: string; complete: boolean }[] = [];
  let i = text.indexOf("[");
  if (i < 0) return out;
  i++;
  while (i < text.length) {
    while (i < text.length && /[\s,]/.test(text[i]!)) i++;
    if (text[i] !== "{") break;
    const end = jsonValueEnd(text, i);
    const raw = end < 0 ? text.slice(i) : text.slice(i, end);
    const f = scanObject(raw).fields;
    const n = f.get("name");
    const p = f.get("parameters");
    out.push({
      name: n?.complete ? (JSON.parse(n.raw) as string) : null,
      args: p?.raw ?? "",
      complete: end >= 0 && (p?.complete ?? false),
    });
    if (end < 0) break;
    i = end;
  }
  return out;
}

/** Reads a whole constrained output as tool calls (`name` set: the named-function form). */
export function forcedToolCalls(text: string, name: string | null, newId: () => string): ToolCall[] {
  if (name !== null) return [{ id: newId(), type: "function", function: { name, arguments: text.trim() } }];
  return requiredCalls(text)
    .filter((c) => c.name !== null && c.complete)
    .map((c) => ({ id: newId(), type: "function" as const, function: { name: c.name!, arguments: c.args } }));
}

/** Streams a constrained output as tool-call deltas (the grammar guarantees the shape). */
export class ForcedToolCallStreamer {
  private text = "";
  private readonly sent: { argsSent: number }[] = [];

  constructor(
    private readonly name: string | null,
    private readonly newId: () => string,
  ) {}

  push(delta: string): ToolCallDelta[] {
    this.text += delta;
    const calls = this.name !== null ? [{ name: this.name, args: this.text.trimStart(), complete: false }] : requiredCalls(this.text);
    const out: ToolCallDelta[] = [];
    calls.forEach((c, index) => {
      let s = this.sent[index];
      if (!s) {
        if (c.name === null || index > this.sent.length) return;
        s = { argsSent: 0 };
        this.sent.push(s);
        out.push({ index, id: this.newId(), type: "function", function: { name: c.name, arguments: "" } });
      }
      if (c.args.length > s.argsSent) {
        const piece = c.args.slice(s.argsSent);
        s.argsSent = c.args.length;
        const last = out[out.length - 1];
        if (last && last.index === index) last.function.arguments += piece;
        else out.push({ index, function: { arguments: piece } });
      }
    });
    return out;
  }

  get calledTools(): boolean {
    return this.sent.length > 0;
  }
}
