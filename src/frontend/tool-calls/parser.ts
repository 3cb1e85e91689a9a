// Tool calls out of generated text: whole (non-streaming) and incrementally (streaming), both
// from the same segmentation (formats.ts), so a stream's deltas add up to the non-streaming
// answer. Arguments are the source text of the model's arguments object.
import { scanObject } from "./json-scan.ts";
import { SEGMENTERS, type ToolParserName } from "./formats.ts";

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** One streamed piece of a tool call, as OpenAI streams them: id, type and name first, then argument fragments. */
export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: "function";
  function: { name?: string; arguments: string };
}

const ARG_KEYS = ["arguments", "parameters"] as const;
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Mistral's templates refuse ids that are not 9 alphanumerics; others get OpenAI's call_ prefix. */
export function newToolCallId(format: ToolParserName): string {
  const bytes = crypto.getRandomValues(new Uint8Array(format === "mistral" ? 9 : 24));
  const s = Array.from(bytes, (b) => ALNUM[b % ALNUM.length]).join("");
  return format === "mistral" ? s : `call_${s}`;
}

/** The arguments text: an object's source text, or a JSON string's content (some models quote it). */
function argumentsOf(fields: Map<string, { raw: string; complete: boolean }>): { text: string; complete: boolean } {
  for (const k of ARG_KEYS) {
    const v = fields.get(k);
    if (!v) continue;
    if (v.raw.startsWith('"')) return v.complete ? { text: JSON.parse(v.raw) as string, complete: true } : { text: "", complete: false };
    return { text: v.raw, complete: v.complete };
  }
  return { text: "", complete: false };
}

/** The name when its string is complete. */
function nameOf(fields: Map<string, { raw: string; complete: boolean }>): string | null {
  const v = fields.get("name");
  if (!v || !v.complete || !v.raw.startsWith('"')) return null;
  return JSON.parse(v.raw) as string;
}

export interface Extracted {
  content: string | null;
  toolCalls: ToolCall[];
}

/**
 * The whole output's content and tool calls. As in vLLM, output whose tool calls are not valid
 * JSON objects with a string name is returned as plain content.
 */
export function extractToolCalls(format: ToolParserName, text: string, maxCalls = Infinity): Extracted {
  const seg = SEGMENTERS[format](text, true);
  if (seg.calls.length === 0) return { content: text, toolCalls: [] };
  const toolCalls: ToolCall[] = [];
  for (const raw of seg.calls.slice(0, maxCalls)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      return { content: text, toolCalls: [] };
    }
    const scanned = scanObject(raw);
    const name = nameOf(scanned.fields);
    if (!parsed || typeof parsed !== "object" || name === null) return { content: text, toolCalls: [] };
    const args = argumentsOf(scanned.fields);
    toolCalls.push({ id: newToolCallId(format), type: "function", function: { name, arguments: args.complete ? args.text : "{}" } });
  }
  return { content: seg.content.trim() === "" ? null : seg.content, toolCalls };
}

/** Incremental tool-call parsing of one streamed choice. */
export class ToolCallStreamer {
  private text = "";
  private contentSent = 0;
  private readonly calls: { id: string; argsSent: number }[] = [];

  constructor(
    private readonly format: ToolParserName,
    /** parallel_tool_calls: false keeps only the first call. */
    private readonly maxCalls = Infinity,
  ) {}

  /** True once a tool call has started (its name was sent). */
  get calledTools(): boolean {
    return this.calls.length > 0;
  }

  /** Feeds new text (`final` on the last piece); returns the content and tool-call deltas to send. */
  push(delta: string, final: boolean): { content: string; toolCalls: ToolCallDelta[] } {
    this.text += delta;
    const seg = SEGMENTERS[this.format](this.text, final);
    const content = seg.content.length > this.contentSent ? seg.content.slice(this.contentSent) : "";
    this.contentSent = Math.max(this.contentSent, seg.content.length);
    const toolCalls: ToolCallDelta[] = [];
    seg.calls.slice(0, this.maxCalls).forEach((raw, index) => {
      const scanned = scanObject(raw);
      if (scanned.invalid) return;
      let call = this.calls[index];
      if (!call) {
        if (index > this.calls.length) return;
        const name = nameOf(scanned.fields);
        if (name === null) return;
        call = { id: newToolCallId(this.format), argsSent: 0 };
        this.calls.push(call);
        toolCalls.push({ index, id: call.id, type: "function", function: { name, arguments: "" } });
      }
      const args = argumentsOf(scanned.fields);
      // A call that closed without arguments gets "{}", as the non-streaming answer does.
      const text = scanned.complete && !args.complete ? "{}" : args.text;
      if (text.length > call.argsSent) {
        const piece = text.slice(call.argsSent);
        call.argsSent = text.length;
        const last = toolCalls[toolCalls.length - 1];
        if (last && last.index === index) last.function.arguments += piece;
        else toolCalls.push({ index, function: { arguments: piece } });
      }
    });
    return { content, toolCalls };
  }
}
