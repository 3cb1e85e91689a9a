// A request field this server does not implement is a 400 naming it, never silently dropped:
// a client that sends e.g. `response_format` or `prediction` must learn that it had no effect.
// Checked on the top level of a request body before validation (the schema would otherwise
// strip it). Nested objects stay lenient: clients echo response messages back with extra
// fields (`refusal`, `annotations`) that carry nothing a template could use.
import type { TObject } from "@sinclair/typebox";
import { badRequest } from "./errors.ts";

export function rejectUnknownFields(schema: TObject) {
  const known = new Set(Object.keys(schema.properties));
  return ({ body }: { body: unknown }) => {
    if (!body || typeof body !== "object" || Array.isArray(body)) return;
    const unknown = Object.keys(body).filter((k) => !known.has(k));
    if (unknown.length > 0)
      throw badRequest(
        `Unsupported request field${unknown.length > 1 ? "s" : ""}: ${unknown.map((k) => `'${k}'`).join(", ")} (not implemented by this server; see /openapi.json for what is accepted).`,
        unknown[0]!,
        "unsupported_parameter",
      );
  };
}
