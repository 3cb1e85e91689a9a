// What a structured-output request asks for, in one serializable shape shared by the frontend
// (validation, compile cache) and the engine (matchers). The request fields that produce it
// (response_format, guided_*, structured_outputs) are parsed in src/server/structured-request.ts.

export type StructuredSpec =
  /** response_format {type: "json_object"}: any JSON object. */
  | { type: "json_object" }
  /** response_format json_schema / guided_json / structured_outputs.json. */
  | { type: "json_schema"; schema: Record<string, unknown> | boolean }
  /** guided_regex / structured_outputs.regex. */
  | { type: "regex"; pattern: string }
  /** guided_choice / structured_outputs.choice: exactly one of the strings. */
  | { type: "choice"; choices: string[] }
  /** guided_grammar / structured_outputs.grammar: an EBNF grammar (xgrammar / GBNF syntax). */
  | { type: "grammar"; grammar: string }
  /** An xgrammar structural tag (for tool calling: constrain only inside trigger tags). */
  | { type: "structural_tag"; tag: Record<string, unknown> };

/** A stable cache key (JSON of the spec; object key order as given). */
export function specKey(spec: StructuredSpec): string {
  return JSON.stringify(spec);
}

/** An EBNF string literal for `s` (xgrammar accepts C-style escapes, JSON's among them). */
export function ebnfString(s: string): string {
  return JSON.stringify(s);
}

/** The grammar of guided_choice: one of the strings, nothing else. */
export function choiceGrammar(choices: readonly string[]): string {
  return `root ::= ${choices.map(ebnfString).join(" | ")}`;
}
