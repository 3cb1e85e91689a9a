// Request bodies, read once and bounded before anything interprets them:
//   - size: `--max-request-body-bytes` counted while reading, so chunked bodies (no
//     Content-Length) are held to the same limit (413);
//   - time: the whole body must arrive within `--request-body-timeout` seconds of the request
//     (408), so a client that stops sending cannot hold a connection (and its fd) forever;
//   - JSON nesting depth: a linear scan before JSON.parse and TypeBox validation, whose cost on
//     deeply nested values is quadratic (and recursive: "Maximum call stack size exceeded").
import { ApiError } from "./errors.ts";

/** Deepest `[`/`{` nesting a request body may have (our schemas need at most 5). */
export const MAX_JSON_DEPTH = 32;

export interface BodyLimits {
  maxBytes: number;
  /** Absolute time (performance.now() ms) by which the body must have arrived. */
  deadline: number;
  timeoutS: number;
}

export const bodyTooLarge = (got: string, limit: number) =>
  new ApiError(
    413,
    `Request body is too large (${got}; the limit is ${limit} bytes, see --max-request-body-bytes).`,
    "invalid_request_error",
    null,
    "request_too_large",
    { connection: "close" },
  );

const bodyTimeout = (s: number) =>
  new ApiError(
    408,
    `The request body did not arrive within ${s} s (see --request-body-timeout).`,
    "invalid_request_error",
    null,
    "request_timeout",
    { connection: "close" },
  );

/** Reads the whole body, failing fast (413/408) instead of buffering or waiting without bound. */
export async function readBodyBounded(req: Request, limits: BodyLimits): Promise<Uint8Array> {
  const body = req.body;
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(bodyTimeout(limits.timeoutS)), Math.max(0, limits.deadline - performance.now()));
  });
  try {
    for (;;) {
      const r = await Promise.race([reader.read(), expired]);
      if (r.done) break;
      total += r.value.byteLength;
      if (total > limits.maxBytes) throw bodyTooLarge(`more than ${limits.maxBytes} bytes`, limits.maxBytes);
      chunks.push(r.value);
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * Deepest array/object nesting of a JSON text, stopping as soon as it passes `limit`. One pass,
 * no recursion: brackets inside strings (escapes included) do not count.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** The body as JSON: bounded read, depth check, then JSON.parse (errors are 400s in OpenAI's shape). */
export async function parseJsonBody(req: Request, limits: BodyLimits): Promise<unknown> {
  const bytes = await readBodyBounded(req, limits);
  const text = new TextDecoder().decode(bytes);
  if (text.trim() === "")
    throw new ApiError(400, "The request body is empty; send a JSON object.", "invalid_request_error", null, "invalid_json");
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH))
    throw new ApiError(
      400,
      `The request body nests arrays/objects deeper than ${MAX_JSON_DEPTH} levels.`,
      "invalid_request_error",
      null,
      "json_too_deep",
    );
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `The request body is not valid JSON: ${(e as Error).message}`, "invalid_request_error", null, "invalid_json");
  }
}
