// Structured-output request fields -> one StructuredSpec (src/structured/spec.ts), compiled in
// the frontend before the engine sees the request: an invalid schema, regex or grammar is a
// 400 naming the field and xgrammar's message. Accepted forms (vLLM's and OpenAI's):
//   response_format {type: "json_object"} | {type: "json_schema", json_schema: {name, schema, strict}}
//   structured_outputs {json | regex | choice | grammar | json_object | structural_tag}
//   guided_json | guided_regex | guided_choice | guided_grammar (vLLM's older names)
import type { SamplingParams } from "../engine/api.ts";
import type { StructuredSpec } from "../structured/spec.ts";
import { GrammarError } from "../structured/xgrammar.ts";
import type { ServerContext } from "./context.ts";
import { badRequest } from "./errors.ts";

export interface StructuredFields {
  response_format?: {
    type: string;
    json_schema?: { name: string; schema?: Record<string, unknown> | null; strict?: boolean | null } | null;
  } | null;
  structured_outputs?: {
    json?: string | Record<string, unknown> | null;
    regex?: string | null;
    choice?: string[] | null;
    grammar?: string | null;
    json_object?: boolean | null;
    structural_tag?: string | null;
    disable_any_whitespace?: boolean | null;
    disable_additional_properties?: boolean | null;
    whitespace_pattern?: string | null;
  } | null;
  guided_json?: string | Record<string, unknown> | null;
  guided_regex?: string | null;
  guided_choice?: string[] | null;
  guided_grammar?: string | null;
  guided_decoding_backend?: string | null;
  guided_whitespace_pattern?: string | null;
  ignore_eos?: boolean | null;
}

/** A JSON schema given as an object or as JSON text. */
function schemaOf(v: string | Record<string, unknown>, param: string): Record<string, unknown> {
  if (typeof v !== "string") return v;
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch (e) {
    throw badRequest(`${param} is not valid JSON: ${(e as Error).message}`, param, "invalid_json_schema");
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
    throw badRequest(`${param} must be a JSON schema object`, param, "invalid_json_schema");
  return parsed as Record<string, unknown>;
}

function tagOf(text: string, param: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw badRequest(`${param} must be a JSON object (an xgrammar structural tag)`, param);
}

/** The request's structured-output constraint and the field it came from, or null. */
export function structuredSpecOf(body: StructuredFields): { spec: StructuredSpec; param: string } | null {
  const found: { spec: StructuredSpec; param: string }[] = [];
  const rf = body.response_format;
  if (rf && rf.type === "json_object") found.push({ spec: { type: "json_object" }, param: "response_format" });
  if (rf && rf.type === "json_schema") {
    const js = rf.json_schema;
    if (!js)
      throw badRequest("response_format.json_schema is required when response_format.type is 'json_schema'", "response_format.json_schema");
    // OpenAI: a missing schema means any JSON object is fine.
    found.push({
      spec: js.schema ? { type: "json_schema", schema: js.schema } : { type: "json_object" },
      param: "response_format.json_schema.schema",
    });
  }
  const so = body.structured_outputs;
  if (so) {
    for (const k of ["disable_any_whitespace", "disable_additional_properties", "whitespace_pattern"] as const) {
      if (so[k] != null && so[k] !== false)
        throw badRequest(`structured_outputs.${k} is not supported`, `structured_outputs.${k}`, "unsupported_parameter");
    }
    if (so.json != null)
      found.push({ spec: { type: "json_schema", schema: schemaOf(so.json, "structured_outputs.json") }, param: "structured_outputs.json" });
    if (so.regex != null) found.push({ spec: { type: "regex", pattern: so.regex }, param: "structured_outputs.regex" });
    if (so.choice != null) found.push({ spec: { type: "choice", choices: so.choice }, param: "structured_outputs.choice" });
    if (so.grammar != null) found.push({ spec: { type: "grammar", grammar: so.grammar }, param: "structured_outputs.grammar" });
    if (so.json_object === true) found.push({ spec: { type: "json_object" }, param: "structured_outputs.json_object" });
    if (so.structural_tag != null)
      found.push({
        spec: { type: "structural_tag", tag: tagOf(so.structural_tag, "structured_outputs.structural_tag") },
        param: "structured_outputs.structural_tag",
      });
  }
  if (body.guided_json != null)
    found.push({ spec: { type: "json_schema", schema: schemaOf(body.guided_json, "guided_json") }, param: "guided_json" });
  if (body.guided_regex != null) found.push({ spec: { type: "regex", pattern: body.guided_regex }, param: "guided_regex" });
  if (body.guided_choice != null) found.push({ spec: { type: "choice", choices: body.guided_choice }, param: "guided_choice" });
  if (body.guided_grammar != null) found.push({ spec: { type: "grammar", grammar: body.guided_grammar }, param: "guided_grammar" });
  if (body.guided_whitespace_pattern != null)
    throw badRequest("guided_whitespace_pattern is not supported", "guided_whitespace_pattern", "unsupported_parameter");
  const backend = body.guided_decoding_backend;
  if (backend != null && backend !== "xgrammar" && backend !== "auto")
    throw badRequest(
      `guided_decoding_backend '${backend}' is not available: this server uses xgrammar`,
      "guided_decoding_backend",
      "unsupported_parameter",
    );
  if (found.length > 1)
    throw badRequest(`Only one structured-output constraint per request; got ${found.map((f) => f.param).join(", ")}`, found[1]!.param);
  const one = found[0];
  if (!one) return null;
  if (body.ignore_eos === true)
    throw badRequest("ignore_eos cannot be combined with structured outputs (the grammar ends the output)", "ignore_eos");
  return one;
}

/**
 * Parses and compiles (frontend cache) the request's constraint; undefined when there is none.
 * A grammar xgrammar refuses is a 400 naming the field.
 */
export async function structuredSpec(ctx: ServerContext, body: StructuredFields): Promise<StructuredSpec | undefined> {
  const found = structuredSpecOf(body);
  if (!found) return undefined;
  return await compiledSpec(ctx, found.spec, found.param);
}

/**
 * Compiles `spec` in the frontend (cached) and returns it, or throws a 400 naming `param`. The
 * entry point for other features that constrain a request, e.g. tool calls: build a
 * {type: "json_schema"} or {type: "structural_tag"} spec, pass it here, then attach it to the
 * sampling parameters with withStructured().
 */
export async function compiledSpec(ctx: ServerContext, spec: StructuredSpec, param: string): Promise<StructuredSpec> {
  try {
    await ctx.text.compileGrammar(spec, ctx.engine.model().vocabSize);
  } catch (e) {
    if (e instanceof GrammarError) throw badRequest(`${param}: ${e.message}`, param, "invalid_grammar");
    throw e;
  }
  return spec;
}

/** `params` with the constraint attached (sent to the engine with the sampling parameters). */
export function withStructured(params: SamplingParams, spec: StructuredSpec | undefined): SamplingParams {
  return spec ? { ...params, structured: spec } : params;
}
