// Where the tool calls are in a model's output text, per format (after vLLM's
// hermes_tool_parser.py, llama_tool_parser.py and mistral_tool_parser.py):
//   hermes       Hermes 2/3, Qwen 2.5/3:   text <tool_call>{"name": …, "arguments": {…}}</tool_call> …
//   llama3_json  Llama 3.1/3.2:            [<|python_tag|>]{"name": …, "parameters": {…}}[; {…}]
//   mistral      Mistral (Nemo, …):        text [TOOL_CALLS][{"name": …, "arguments": {…}}, …]
//                newer Mistral tokenizers:  text [TOOL_CALLS]name[ARGS]{…}[TOOL_CALLS]name[ARGS]{…}
// segment() works on the whole text so far; `final` is false while more text may come, and
// then text that may still turn into a tool-call marker is held back from the content.
import { jsonValueEnd, scanObject } from "./json-scan.ts";

export const TOOL_PARSERS = ["hermes", "llama3_json", "mistral"] as const;
export type ToolParserName = (typeof TOOL_PARSERS)[number];

export interface Segmented {
  /** Content text (not part of a tool call) that can be sent. */
  content: string;
  /** Source text of each tool-call JSON object, the last possibly incomplete. */
  calls: string[];
}

/** Length of the longest tail of `text` that is a proper prefix of `marker`. */
function heldPrefix(text: string, marker: string): number {
  for (let k = Math.min(marker.length - 1, text.length); k > 0; k--) if (text.endsWith(marker.slice(0, k))) return k;
  return 0;
}

/** Content up to the marker (or all of it, minus a possible partial marker at the end). */
function beforeMarker(text: string, marker: string, final: boolean): { content: string; at: number } {
  const at = text.indexOf(marker);
  if (at >= 0) return { content: text.slice(0, at), at };
  return { content: final ? text : text.slice(0, text.length - heldPrefix(text, marker)), at: -1 };
}

const TOOL_CALL_OPEN = "<tool_call>";
const TOOL_CALL_CLOSE = "</tool_call>";

function hermes(text: string, final: boolean): Segmented {
  const { content, at } = beforeMarker(text, TOOL_CALL_OPEN, final);
  const calls: string[] = [];
  let i = at;
  while (i >= 0) {
    const start = i + TOOL_CALL_OPEN.length;
    const close = text.indexOf(TOOL_CALL_CLOSE, start);
    // An unclosed last call (the model stopped at EOS right after the JSON) still counts.
    const body = close >= 0 ? text.slice(start, close) : text.slice(start);
    if (body.trim() !== "" || close >= 0) calls.push(body.trim());
    if (close < 0) break;
    i = text.indexOf(TOOL_CALL_OPEN, close + TOOL_CALL_CLOSE.length);
  }
  return { content, calls };
}

const PYTHON_TAG = "<|python_tag|>";

/** Consecutive JSON objects separated by ';' (Llama 3 may emit several calls that way). */
function objectsFrom(text: string, i: number, sep: string): string[] {
  const out: string[] = [];
  while (i < text.length) {
    while (i < text.length && (/\s/.test(text[i]!) || sep.includes(text[i]!))) i++;
    if (i >= text.length || text[i] !== "{") break;
    const end = jsonValueEnd(text, i);
    out.push(end < 0 ? text.slice(i) : text.slice(i, end));
    if (end < 0) break;
    i = end;
  }
  return out;
}

function llama3Json(text: string, final: boolean): Segmented {
  let i = 0;
  while (i < text.length && /\s/.test(text[i]!)) i++;
  const rest = text.slice(i);
  if (rest.startsWith(PYTHON_TAG)) i += PYTHON_TAG.length;
  else if (!final && (rest === "" || PYTHON_TAG.startsWith(rest))) return { content: "", calls: [] };
  while (i < text.length && /\s/.test(text[i]!)) i++;
  if (i >= text.length) return { content: final && !rest.startsWith(PYTHON_TAG) ? text : "", calls: [] };
  // Output that does not open with a JSON object is plain content (as in vLLM).
  if (text[i] !== "{") return { content: text, calls: [] };
  const first = scanObject(text, i);
  // A JSON object that is no tool call (no "name") is content too.
  if (first.invalid || (first.complete && !first.fields.has("name"))) return { content: text, calls: [] };
  return { content: "", calls: objectsFrom(text, i, ";") };
}

const TOOL_CALLS = "[TOOL_CALLS]";

const ARGS = "[ARGS]";

/**
 * Mistral's newer tokenizers (v11+: Mistral-Small 3.2, Magistral, Devstral) write each call as
 * [TOOL_CALLS]name[ARGS]{…}; rewritten here as the JSON object the older form has.
 */
function mistralV11(text: string, at: number): string[] {
  const calls: string[] = [];
  for (const part of text.slice(at).split(TOOL_CALLS).slice(1)) {
    const a = part.indexOf(ARGS);
    if (a < 0) {
      calls.push("{"); // name still arriving
      break;
    }
    const name = part.slice(0, a).trim();
    const argsStart = a + ARGS.length;
    const end = jsonValueEnd(part, argsStart);
    const args = (end < 0 ? part.slice(argsStart) : part.slice(argsStart, end)).trim();
    calls.push(`{"name": ${JSON.stringify(name)}, "arguments": ${args}${end < 0 ? "" : "}"}`);
  }
  return calls;
}

function mistral(text: string, final: boolean): Segmented {
  const { content, at } = beforeMarker(text, TOOL_CALLS, final);
  if (at < 0) return { content, calls: [] };
  let i = at + TOOL_CALLS.length;
  while (i < text.length && /\s/.test(text[i]!)) i++;
  if (i >= text.length) return { content, calls: [] };
  if (text[i] !== "[" && text[i] !== "{") return { content, calls: mistralV11(text, at) };
  if (text[i] === "[") i++;
  return { content, calls: objectsFrom(text, i, ",") };
}

export const SEGMENTERS: Record<ToolParserName, (text: string, final: boolean) => Segmented> = { hermes, llama3_json: llama3Json, mistral };

/** The format a chat template teaches its model, from the template's text; null if none is recognised. */
export function detectToolParser(templateSources: readonly string[]): ToolParserName | null {
  const all = templateSources.join("\n");
  if (all.includes(TOOL_CALLS)) return "mistral";
  if (all.includes(TOOL_CALL_OPEN)) return "hermes";
  if (all.includes(PYTHON_TAG) || (all.includes("<|eot_id|>") && all.includes('"parameters"'))) return "llama3_json";
  return null;
}
