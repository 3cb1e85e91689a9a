// GET / — a small landing page for someone who opens the server's address in a browser: the
// served model and links to the dashboard, the API docs, /v1/models and /health. No auth (it
// shows nothing /v1/models would not) and no script.
import { Elysia } from "elysia";
import pkg from "../../package.json";
import type { ServerContext } from "./context.ts";
import { DASHBOARD_PATH } from "./dashboard.ts";
import { OPENAPI_PATH, SWAGGER_PATH } from "./docs.ts";

const HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-cache",
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
};

export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

export function homeHtml(ctx: ServerContext): string {
  const model = ctx.modelNameIfKnown();
  const health = ctx.health();
  const auth = ctx.options.apiKey !== null ? ` <small>(needs <code>Authorization: Bearer &lt;key&gt;</code>)</small>` : "";
  const link = (href: string, label: string, what: string, extra = "") =>
    `<li><a href="${href}" id="link-${label.replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "")}">${escapeHtml(label)}</a> — ${what}${extra}</li>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>headroom · ${escapeHtml(model ?? "starting")}</title>
<style>
  body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; background: #f7f7f9; color: #1f2330; }
  main { max-width: 720px; margin: 48px auto; padding: 0 24px; }
  h1 { font-size: 24px; margin: 0 0 4px; } h1 span { color: #6b7080; font-weight: 400; }
  .model { font-size: 17px; margin: 12px 0 20px; } .model code { background: #e9ebf3; border-radius: 6px; padding: 2px 8px; }
  ul { padding-left: 20px; } li { margin: 6px 0; } a { color: #3f4bc4; }
  code { font: 13px ui-monospace, "DejaVu Sans Mono", Menlo, monospace; }
  .muted { color: #6b7080; font-size: 13px; }
</style>
</head>
<body>
<main>
  <h1>headroom <span>${escapeHtml(pkg.version)}</span></h1>
  <p class="muted">LLM inference server with exact device-memory management · status <span id="health">${health}</span></p>
  <p class="model">Serving <code id="model">${model === null ? "(engine starting)" : escapeHtml(model)}</code></p>
  <ul>
    ${link(DASHBOARD_PATH, "Dashboard", "device memory, KV cache, throughput and latency, live")}
    ${link(SWAGGER_PATH, "API docs", 'Swagger UI; "Try it out" works against this server', ` (document: <a href="${OPENAPI_PATH}">${OPENAPI_PATH}</a>)`)}
    ${link("/v1/models", "/v1/models", "the served model (OpenAI format)", auth)}
    ${link("/health", "/health", "readiness")}
    ${link("/metrics", "/metrics", "Prometheus metrics (headroom_* and vLLM-compatible vllm:*)")}
  </ul>
  <p class="muted">OpenAI clients: <code>baseURL = "http://&lt;this address&gt;/v1"</code></p>
</main>
</body>
</html>
`;
}

export function homeRoutes(ctx: ServerContext) {
  return new Elysia({ name: "headroom-home" }).get("/", () => new Response(homeHtml(ctx), { headers: HEADERS }), {
    detail: { hide: true },
  });
}
