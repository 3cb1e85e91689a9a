// Request examples for Swagger UI's "Try it out". The committed document (openapi/openapi.json)
// carries MODEL_PLACEHOLDER as the model; the document served at /openapi.json has the served
// model name filled in, so the example body, sent as is, is answered with 200 (a literal
// "string", which Swagger would otherwise invent from the schema, is a 404 model_not_found).

export const MODEL_PLACEHOLDER = "<served-model-name>";

export const COMPLETION_EXAMPLE = { model: MODEL_PLACEHOLDER, prompt: "Once upon a time", max_tokens: 16, temperature: 0.7 };
export const CHAT_EXAMPLE = {
  model: MODEL_PLACEHOLDER,
  messages: [{ role: "user", content: "Tell me a short story." }],
  max_tokens: 32,
  temperature: 0.7,
};

/** A copy of `doc` with every example's model placeholder replaced by `model`. */
export function fillModelExamples<T>(doc: T, model: string): T {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== "object") return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = k === "model" && x === MODEL_PLACEHOLDER ? model : walk(x);
    return out;
  };
  return walk(doc) as T;
}
