// --api-key: every /v1 route, and vLLM's /tokenize and /detokenize (outside /v1, they expose
// the model too), require `Authorization: Bearer <key>`.
//
// The decision is made on the route Elysia matched (`route`, its pattern), in the transform
// stage: after routing, before body validation and the handler. Deciding from the URL text
// instead lets any difference between that text and the router's reading of it (short Host
// headers, double slashes, prefixes like /x/v1/kv) skip the check.
import { timingSafeEqual } from "node:crypto";
import { Elysia } from "elysia";
import { ApiError } from "./errors.ts";

/** Whether a matched route pattern is guarded by the API key. */
export function isProtectedRoute(route: string): boolean {
  return route === "/v1" || route.startsWith("/v1/") || route === "/tokenize" || route === "/detokenize";
}

function sameSecret(a: string, b: string): boolean {
  const h = (s: string) => new Bun.CryptoHasher("sha256").update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

/** Throws the 401 for a request without the right key; nothing when `apiKey` is null. */
export function checkApiKey(apiKey: string | null, request: Request): void {
  if (apiKey === null) return;
  const m = /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "");
  if (m && sameSecret(m[1]!.trim(), apiKey)) return;
  throw new ApiError(
    401,
    m ? "Incorrect API key provided." : "Missing API key: send 'Authorization: Bearer <key>'.",
    "invalid_request_error",
    null,
    "invalid_api_key",
    { "www-authenticate": "Bearer" },
  );
}

/**
 * The guard, as global hooks on every route registered after it: in the parse stage for routes
 * with a body (so an unauthenticated body is never read) and in the transform stage for all.
 */
export function apiKeyGuard(apiKey: string | null) {
  const guard = ({ route, request }: { route: string; request: Request }) => {
    if (isProtectedRoute(route)) checkApiKey(apiKey, request);
  };
  return new Elysia({ name: "headroom-api-key" })
    .onParse({ as: "global" }, (c) => {
      guard(c);
      return undefined; // not a parser: the body parser (src/server/body.ts) runs next
    })
    .onTransform({ as: "global" }, guard);
}
