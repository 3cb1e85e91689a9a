// Tool-call parsing on the exact text each real chat template writes for an assistant turn
// with tool calls (rendered here from ../shared/models/chat-templates): what a model trained on
// that template generates. Whole-text extraction and streaming (any chunking) must agree.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";

import { detectToolParser, type ToolParserName } from "../../src/frontend/tool-calls/formats.ts";
import { extractToolCalls, ToolCallStreamer, type ToolCall } from "../../src/frontend/tool-calls/parser.ts";
import { ChatTemplate, type ChatMessage } from "../../src/model/chat-template.ts";
import { MODELS_DIR } from "../model/helpers.ts";

const TEMPLATES = resolve(MODELS_DIR, "chat-templates");
const HAVE = existsSync(TEMPLATES);
if (!HAVE) console.warn(`[tool-calls] template cases skipped: ${TEMPLATES} not found`);

const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Weather now",
      parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } }, required: ["city"] },
    },
  },
];
const call = (id: string, city: string, days: number) => ({
  id,
  type: "function",
  function: { name: "get_weather", arguments: { city, days } },
});

interface Case {
  file: string;
  format: ToolParserName;
  calls: number;
  /** What ends the assistant turn in the render (the EOS the model would stop at). */
  end: string;
}
const CASES: Case[] = [
  { file: "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", format: "hermes", calls: 2, end: "<|im_end|>\n" },
  { file: "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", format: "hermes", calls: 2, end: "<|im_end|>\n" },
  { file: "Qwen-Qwen2.5-7B-Instruct.jinja", format: "hermes", calls: 2, end: "<|im_end|>\n" },
  { file: "Qwen-Qwen3-0.6B.jinja", format: "hermes", calls: 2, end: "<|im_end|>\n" },
  { file: "meta-llama-Llama-3.1-8B-Instruct.jinja", format: "llama3_json", calls: 1, end: "<|eot_id|>" },
  { file: "meta-llama-Llama-3.2-3B-Instruct.jinja", format: "llama3_json", calls: 1, end: "<|eot_id|>" },
  { file: "mistralai-Mistral-Nemo-Instruct-2407.jinja", format: "mistral", calls: 2, end: "</s>" },
];

/** The generated part of an assistant tool-call turn: full render minus the prompt's render. */
function generatedText(tmpl: ChatTemplate, c: Case): { text: string; expected: ToolCall[] } {
  const calls = [call("abcdefgh1", "Paris", 3), call("abcdefgh2", 'Rome, Italy "old" town', 1)].slice(0, c.calls);
  const user: ChatMessage[] = [{ role: "user", content: "Weather in Paris and Rome?" }];
  const prompt = tmpl.render(user, { addGenerationPrompt: true, tools });
  const full = tmpl.render([...user, { role: "assistant", content: "", tool_calls: calls }], { addGenerationPrompt: false, tools });
  // Mistral's template keeps no generation prompt: the assistant turn starts right after [/INST].
  const at = full.startsWith(prompt) ? prompt.length : full.lastIndexOf("[/INST]") + "[/INST]".length;
  let text = full.slice(at);
  expect(text.endsWith(c.end)).toBe(true);
  text = text.slice(0, text.length - c.end.length);
  return {
    text,
    expected: calls.map((k) => ({
      id: "",
      type: "function",
      function: { name: k.function.name, arguments: JSON.stringify(k.function.arguments) },
    })),
  };
}

const norm = (calls: ToolCall[]) => calls.map((k) => ({ name: k.function.name, args: JSON.parse(k.function.arguments) as unknown }));

/** Streams `text` in chunks of `size` characters and assembles the deltas as a client does. */
function streamed(format: ToolParserName, text: string, size: number) {
  const s = new ToolCallStreamer(format);
  let content = "";
  const calls: { id: string; name: string; args: string }[] = [];
  for (let i = 0; i < text.length; i += size) {
    const out = s.push(text.slice(i, i + size), i + size >= text.length);
    content += out.content;
    for (const d of out.toolCalls) {
      if (d.id !== undefined) {
        expect(d.index).toBe(calls.length);
        expect(d.type).toBe("function");
        calls.push({ id: d.id, name: d.function.name!, args: "" });
      }
      calls[d.index]!.args += d.function.arguments;
    }
  }
  return { content, calls };
}

describe.skipIf(!HAVE)("tool calls in the formats real chat templates write", () => {
  for (const c of CASES) {
    test(c.file, () => {
      const source = readFileSync(resolve(TEMPLATES, c.file), "utf8");
      expect(detectToolParser([source])).toBe(c.format);
      const tmpl = new ChatTemplate(source, "<s>", "</s>", c.file);
      const { text, expected } = generatedText(tmpl, c);
      const got = extractToolCalls(c.format, text);
      expect(norm(got.toolCalls)).toEqual(norm(expected));
      for (const k of got.toolCalls) expect(k.id).toMatch(c.format === "mistral" ? /^[A-Za-z0-9]{9}$/ : /^call_[A-Za-z0-9]{24}$/);
      // Content: nothing but whitespace or Qwen3's empty think block.
      expect((got.content ?? "").replace("<think>\n\n</think>", "").trim()).toBe("");
      for (const size of [1, 2, 3, 7, 1000]) {
        const s = streamed(c.format, text, size);
        expect(s.calls.map((k) => k.args)).toEqual(got.toolCalls.map((k) => k.function.arguments));
        expect(s.calls.map((k) => k.name)).toEqual(got.toolCalls.map((k) => k.function.name));
        expect(s.content.trim()).toBe((got.content ?? "").trim());
      }
    });
  }
});

describe("tool-call parsing edge cases", () => {
  test("plain text is content in every format, streamed whole", () => {
    const text = "The weather is fine. {not a call} [x] <tool";
    for (const f of ["hermes", "llama3_json", "mistral"] as const) {
      expect(extractToolCalls(f, text)).toEqual({ content: text, toolCalls: [] });
      expect(streamed(f, text, 2)).toEqual({ content: text, calls: [] });
    }
  });

  test("hermes: content before the call; unclosed last call (stopped at EOS) counts", () => {
    const text = 'Let me check.\n<tool_call>\n{"name": "f", "arguments": {"a": [1, {"b": "}"}]}}';
    const got = extractToolCalls("hermes", text);
    expect(got.content).toBe("Let me check.\n");
    expect(got.toolCalls.map((k) => k.function)).toEqual([{ name: "f", arguments: '{"a": [1, {"b": "}"}]}' }]);
    const s = streamed("hermes", text, 1);
    expect(s.content).toBe("Let me check.\n");
    expect(s.calls.map((k) => k.args)).toEqual(['{"a": [1, {"b": "}"}]}']);
  });

  test("invalid JSON in a call: the whole output is content (as vLLM)", () => {
    const text = '<tool_call>\n{"name": "f", "arguments": {"a": }\n</tool_call>';
    expect(extractToolCalls("hermes", text)).toEqual({ content: text, toolCalls: [] });
  });

  test("llama3_json: <|python_tag|>, several calls separated by ';', a JSON answer without name is content", () => {
    const text = '<|python_tag|>{"name": "a", "parameters": {"x": 1}}; {"name": "b", "parameters": {}}';
    expect(extractToolCalls("llama3_json", text).toolCalls.map((k) => k.function)).toEqual([
      { name: "a", arguments: '{"x": 1}' },
      { name: "b", arguments: "{}" },
    ]);
    const json = '{"answer": 42}';
    expect(extractToolCalls("llama3_json", json)).toEqual({ content: json, toolCalls: [] });
    expect(streamed("llama3_json", json, 1)).toEqual({ content: json, calls: [] });
  });

  test("arguments given as a JSON string; a call without arguments gets {}", () => {
    const text = '[TOOL_CALLS][{"name": "f", "arguments": "{\\"q\\": 1}"}, {"name": "g"}]';
    expect(extractToolCalls("mistral", text).toolCalls.map((k) => k.function)).toEqual([
      { name: "f", arguments: '{"q": 1}' },
      { name: "g", arguments: "{}" },
    ]);
    expect(streamed("mistral", text, 3).calls.map((k) => k.args)).toEqual(['{"q": 1}', "{}"]);
  });

  test("mistral v11+: [TOOL_CALLS]name[ARGS]{…}, several calls, content before", () => {
    const text = 'Sure.[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]get_time[ARGS]{}';
    const got = extractToolCalls("mistral", text);
    expect(got.content).toBe("Sure.");
    expect(got.toolCalls.map((k) => k.function)).toEqual([
      { name: "get_weather", arguments: '{"city": "Paris"}' },
      { name: "get_time", arguments: "{}" },
    ]);
    for (const size of [1, 2, 5]) {
      const s = streamed("mistral", text, size);
      expect(s.content).toBe("Sure.");
      expect(s.calls.map((k) => [k.name, k.args])).toEqual([
        ["get_weather", '{"city": "Paris"}'],
        ["get_time", "{}"],
      ]);
    }
  });

  test("parallel_tool_calls: false keeps the first call", () => {
    const text = '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>{"name": "b", "arguments": {}}</tool_call>';
    expect(extractToolCalls("hermes", text, 1).toolCalls.map((k) => k.function.name)).toEqual(["a"]);
    const s = new ToolCallStreamer("hermes", 1);
    expect(s.push(text, true).toolCalls.map((d) => d.function.name)).toEqual(["a"]);
  });

  test("no format recognised in a template without tool markers", () => {
    expect(detectToolParser(["{% for m in messages %}{{ m.content }}{% endfor %}"])).toBeNull();
  });
});
