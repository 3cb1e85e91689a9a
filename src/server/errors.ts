// OpenAI-shaped errors: {error: {message, type, param, code}}.

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | number | null };
}

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = "invalid_request_error",
    readonly param: string | null = null,
    readonly code: string | number | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
  body(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, "invalid_request_error", param, code);

export const queueFull = (message = "The server is at capacity (waiting queue full); retry later.", retryAfterS = 1) =>
  new ApiError(503, message, "server_overloaded", null, "queue_full", { "retry-after": String(retryAfterS) });

export function errorResponse(err: ApiError, extraHeaders: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(err.body()), {
    status: err.status,
    headers: { "content-type": "application/json", ...err.headers, ...extraHeaders },
  });
}

/**
 * Maps an error thrown by the engine to an API error. Recognised (duck-typed, so the engine
 * need not import server code): `code` or `name` of
 *  - "queue_full" / "QueueFullError"              → 503 + Retry-After
 *  - "invalid_request" / "prompt_too_long" / RangeError / "InvalidRequestError" → 400
 *  - "engine_dead" / "EngineDeadError"            → 503
 *  - "engine_error" (the engine died or hung mid-request; it is restarted) → 503 engine_error
 * Anything else is an internal error (500) — a bug or a crash, not bad input.
 */
export function fromEngineError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const err = e as { code?: unknown; name?: unknown; message?: unknown; retryAfter?: unknown } | null;
  const code = typeof err?.code === "string" ? err.code : "";
  const name = typeof err?.name === "string" ? err.name : "";
  const message = typeof err?.message === "string" ? err.message : String(e);
  if (code === "queue_full" || name === "QueueFullError") {
    const ra = typeof err?.retryAfter === "number" && err.retryAfter > 0 ? Math.ceil(err.retryAfter) : 1;
    return queueFull(message, ra);
  }
  if (code === "invalid_request" || code === "prompt_too_long" || name === "InvalidRequestError" || e instanceof RangeError)
    return new ApiError(400, message, "invalid_request_error", null, code || null);
  if (code === "engine_error") return new ApiError(503, message, "engine_error", null, "engine_error", { "retry-after": "1" });
  if (code === "engine_dead" || name === "EngineDeadError")
    return new ApiError(503, `The engine is not available: ${message}`, "service_unavailable", null, "engine_dead");
  return new ApiError(500, `Internal error: ${message}`, "internal_server_error", null, "internal_error");
}
