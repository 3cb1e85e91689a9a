// tool_choice "required" / named: the JSON schemas handed to the grammar engine (checked with
// structure) and the readers of the constrained output, whole and streamed.
import { describe, expect, test } from "bun:test";
import {
  ForcedToolCallStreamer,
  forcedToolCalls,
  namedToolSchema,
  requiredToolsSchema,
  type ToolDef,
} from "../../src/frontend/tool-calls/forced.ts";

const tools: ToolDef[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
    },
  },
  { type: "function", function: { name: "get_time" } },
];
let n = 0;
const id = () => `call_${n++}`;

function streamAll(name: string | null, text: string, size: number) {
  const s = new ForcedToolCallStreamer(name, id);
  const calls: { name: string; args: string }[] = [];
  for (let i = 0; i < text.length; i += size)
    for (const d of s.push(text.slice(i, i + size))) {
      if (d.id) calls.push({ name: d.function.name!, args: "" });
      calls[d.index]!.args += d.function.arguments;
    }
  return calls;
}

describe("forced tool calls", () => {
  test("schemas: named = the parameters; required = a non-empty array of {name, parameters} per tool", () => {
    expect(namedToolSchema(tools[0]!)).toBe(tools[0]!.function.parameters!);
    expect(namedToolSchema(tools[1]!)).toEqual({ type: "object" });
    expect(requiredToolsSchema(tools)).toEqual({
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        anyOf: [
          {
            properties: { name: { type: "string", enum: ["get_weather"] }, parameters: tools[0]!.function.parameters! },
            required: ["name", "parameters"],
          },
          {
            properties: { name: { type: "string", enum: ["get_time"] }, parameters: { type: "object" } },
            required: ["name", "parameters"],
          },
        ],
      },
    });
  });

  test("named: the whole output is the arguments, streamed as it comes", () => {
    const text = '{"city": "Paris"}';
    expect(forcedToolCalls(text, "get_weather", id).map((c) => c.function)).toEqual([{ name: "get_weather", arguments: text }]);
    for (const size of [1, 4, 100]) expect(streamAll("get_weather", text, size)).toEqual([{ name: "get_weather", args: text }]);
  });

  test("required: every array element is a call; streamed deltas add up", () => {
    const text = '[{"name": "get_weather", "parameters": {"city": "Pa]ris"}}, {"name": "get_time", "parameters": {}}]';
    const whole = forcedToolCalls(text, null, id).map((c) => ({ name: c.function.name, args: c.function.arguments }));
    expect(whole).toEqual([
      { name: "get_weather", args: '{"city": "Pa]ris"}' },
      { name: "get_time", args: "{}" },
    ]);
    for (const size of [1, 3, 200]) expect(streamAll(null, text, size)).toEqual(whole);
  });
});
