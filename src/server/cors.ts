// CORS for browser clients on other origins (--allowed-origins). Off by default: without the
// flag no response carries CORS headers, so browsers keep the same-origin rule. With it,
// preflights (OPTIONS + Access-Control-Request-Method) are answered here, before auth: a
// browser never sends Authorization on a preflight, so /v1's bearer check would refuse it.

/** Headers a browser client may send; authorization must be named (a "*" does not cover it). */
export const CORS_ALLOW_HEADERS = "authorization, content-type, x-request-id";
export const CORS_ALLOW_METHODS = "GET, POST, OPTIONS";
/** Response headers a page's script may read. */
export const CORS_EXPOSE_HEADERS = "x-request-id, retry-after";
const MAX_AGE_S = "600";

export class CorsPolicy {
  private readonly any: boolean;
  private readonly origins: Set<string>;

  /** `spec`: "*" or a comma-separated list of origins (scheme://host[:port]); null = CORS off. */
  constructor(spec: string | null) {
    const parts = (spec ?? "")
      .split(",")
      .map((s) => s.trim().replace(/\/+$/, ""))
      .filter((s) => s !== "");
    this.any = parts.includes("*");
    this.origins = new Set(parts.filter((p) => p !== "*").map((p) => p.toLowerCase()));
  }

  get enabled(): boolean {
    return this.any || this.origins.size > 0;
  }

  /** The Access-Control-Allow-Origin value for this request's Origin, or null (no CORS headers). */
  allowOrigin(origin: string | null): string | null {
    if (origin === null || !this.enabled) return null;
    if (this.any) return "*";
    return this.origins.has(origin.toLowerCase()) ? origin : null;
  }

  /** A CORS preflight this policy answers (204, or 403 without CORS headers for other origins); null = not one. */
  preflight(req: Request): Response | null {
    if (!this.enabled || req.method !== "OPTIONS" || req.headers.get("access-control-request-method") === null) return null;
    const allowed = this.allowOrigin(req.headers.get("origin"));
    if (allowed === null) return new Response(null, { status: 403, headers: { vary: "Origin" } });
    return new Response(null, {
      status: 204,
      headers: {
        "access-control-allow-origin": allowed,
        "access-control-allow-methods": CORS_ALLOW_METHODS,
        "access-control-allow-headers": CORS_ALLOW_HEADERS,
        "access-control-max-age": MAX_AGE_S,
        vary: "Origin",
      },
    });
  }

  /** Adds the CORS headers of an actual (non-preflight) response in place. */
  decorate(req: Request, headers: Headers): void {
    if (!this.enabled) return;
    headers.append("vary", "Origin");
    const allowed = this.allowOrigin(req.headers.get("origin"));
    if (allowed === null) return;
    headers.set("access-control-allow-origin", allowed);
    headers.set("access-control-expose-headers", CORS_EXPOSE_HEADERS);
  }
}
