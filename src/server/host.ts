// The Host header, checked before routing. Bun builds `request.url` from it, so a missing or
// odd Host gives URLs that do not parse ("/v1/kv") or that put path characters in the
// authority; such requests get a 400 instead of reaching the router.
import { ApiError } from "./errors.ts";

// RFC 3986 host (reg-name of unreserved characters, IPv4, or a bracketed IPv6 literal) and an
// optional port. Percent-encoding and sub-delims are legal but no client sends them here.
const HOST = /^(?:[A-Za-z0-9\-._~]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/;

export function isValidHost(host: string | null): host is string {
  return host !== null && HOST.test(host);
}

/** null when the request's Host is usable, else the 400 to send. */
export function hostProblem(req: Request): ApiError | null {
  const host = req.headers.get("host");
  const bad = (why: string) =>
    new ApiError(400, `${why}; send 'Host: <name>[:port]'.`, "invalid_request_error", null, "invalid_host", { connection: "close" });
  if (host === null || host === "") return bad("The request has no Host header");
  if (!isValidHost(host)) return bad("The Host header is malformed");
  // Bun should have built an absolute http URL from it; anything else never reaches the router.
  if (!/^https?:\/\//.test(req.url) || !URL.canParse(req.url)) return bad("The request target is malformed");
  return null;
}
