// The HTTP server: an Elysia 1.4 app over an `Engine` (src/engine/api.ts).
//
//   const h = createApp({ engine, options });          // Elysia app + fetch handler
//   const s = await startServer({ engine, options });  // listening (port 0 = ephemeral)
//
// Request flow: fetch() (Host check → 400, request id, metrics, access log) → Elysia: onRequest
// (Content-Length limit → 413) → routing → parse stage: API key on /v1 routes (auth.ts), then
// the body read with size/time/depth bounds (body.ts; 413/408/400) → transform: API key again
// for body-less routes → TypeBox validation (→ 400 in OpenAI's error shape) → route → onError
// (OpenAI error bodies).
import { Elysia, ValidationError } from "elysia";
import { Value } from "@sinclair/typebox/value";
import type { TSchema } from "@sinclair/typebox";
import type { Server } from "bun";
import type { Engine } from "../engine/api.ts";
import { TextFrontend } from "../frontend/text-frontend.ts";
import { apiKeyGuard, checkApiKey, isProtectedRoute } from "./auth.ts";
import { bodyTooLarge, parseJsonBody } from "./body.ts";
import { chatRoutes } from "./chat.ts";
import { completionsRoutes } from "./completions.ts";
import { ServerContext } from "./context.ts";
import { dashboardRoutes } from "./dashboard.ts";
import { CorsPolicy } from "./cors.ts";
import { OPENAPI_PATH, openapiPlugin, swaggerAssets } from "./docs.ts";
import { homeRoutes } from "./home.ts";
import { fillModelExamples } from "./openapi-examples.ts";
import { ApiError, errorResponse, fromEngineError } from "./errors.ts";
import { healthRoutes } from "./health.ts";
import { hostProblem } from "./host.ts";
import { kvRoutes } from "./kv.ts";
import { createLogger, type Logger } from "./log.ts";
import { memoryRoutes } from "./memory.ts";
import { metricsRoutes } from "./metrics.ts";
import { modelsRoutes } from "./models.ts";
import { defaultServeOptions, type ServeOptions } from "./options.ts";
import { StatsLogger } from "./stats-log.ts";
import { ServerMetrics } from "./telemetry.ts";
import { tokenizeRoutes } from "./tokenize.ts";

export interface CreateAppArgs {
  engine: Engine;
  /** Missing fields take the defaults of `headroom serve`. */
  options?: Partial<ServeOptions>;
  logger?: Logger;
  /** The text side; default: loaded from options.model by startServer (createApp alone does not start it). */
  text?: TextFrontend;
}

const KNOWN_ROUTES = new Set([
  "/",
  "/v1/completions",
  "/v1/chat/completions",
  "/tokenize",
  "/detokenize",
  "/v1/models",
  "/v1/memory",
  "/v1/memory/allocator",
  "/v1/kv",
  "/health",
  "/metrics",
  "/openapi.json",
  "/swagger",
  "/dashboard",
]);
const GENERATION_ROUTES = new Set(["/v1/completions", "/v1/chat/completions"]);

export function routeLabel(path: string): string {
  if (KNOWN_ROUTES.has(path)) return path;
  if (path.startsWith("/v1/models/")) return "/v1/models/{model}";
  if (path.startsWith("/swagger/assets/")) return "/swagger/assets";
  return "other";
}

function requestId(header: string | null): string {
  if (header && /^[A-Za-z0-9._:@-]{1,128}$/.test(header)) return header;
  return crypto.randomUUID();
}

function validationMessage(e: ValidationError): { message: string; param: string | null } {
  const first = e.valueError ?? e.all[0];
  const path = first && "path" in first && typeof first.path === "string" ? first.path : "";
  const param = path.replace(/^\//, "").replace(/\//g, ".") || null;
  let what = first && "message" in first && typeof first.message === "string" ? first.message : "invalid value";
  // TypeBox says "Expected union value" for nullable/union fields (Elysia also wraps integers in
  // a union with a numeric-string transform): explain with the leaf types instead.
  const schema = first && "schema" in first ? (first.schema as TSchema) : undefined;
  if (schema && (schema as { anyOf?: unknown }).anyOf && first && "value" in first) {
    const leaves: TSchema[] = [];
    const walk = (s: TSchema) => {
      const any = (s as { anyOf?: TSchema[] }).anyOf;
      if (any) any.forEach(walk);
      else if (typeof s.type === "string") leaves.push(s);
    };
    walk(schema);
    const v = first.value;
    const typeOf = Array.isArray(v) ? "array" : v === null ? "null" : typeof v;
    const same = leaves.filter((l) => (l.type === "integer" ? "number" : l.type) === typeOf);
    if (same.length === 1) what = Value.Errors(same[0]!, v).First()?.message ?? what;
    else {
      const types = [...new Set(leaves.map((l) => String(l.type)))];
      what = `Expected ${types.length > 1 ? "one of " + types.join(", ") : types[0]}`;
    }
  }
  const where = e.type === "body" ? "request body" : e.type;
  const value = first && "value" in first ? first.value : undefined;
  let shown = "";
  try {
    if (value !== undefined) {
      const s = JSON.stringify(value);
      shown = s !== undefined ? ` (got ${s.length > 80 ? s.slice(0, 77) + "..." : s})` : "";
    }
  } catch {}
  return { message: param ? `Invalid ${where} field '${param}': ${what}${shown}.` : `Invalid ${where}: ${what}${shown}.`, param };
}

/** The served /openapi.json with the served model name in its request examples (Swagger's "Try it out"). */
async function withServedModelExamples(res: Response, model: string | null): Promise<Response> {
  if (model === null) return res;
  const doc = fillModelExamples(await res.json(), model);
  const headers = new Headers(res.headers);
  headers.delete("content-length");
  return new Response(JSON.stringify(doc), { status: res.status, headers });
}

export function createApp(args: CreateAppArgs) {
  const options: ServeOptions = { ...defaultServeOptions(), ...args.options };
  const log = args.logger ?? createLogger(options.logLevel);
  const text =
    args.text ?? new TextFrontend({ model: options.model, chatTemplate: options.chatTemplate, workers: options.tokenizerWorkers });
  // The metrics' model_name label is read when observed: the engine's model id is known only once it is ready.
  let ctxRef: ServerContext | null = null;
  const maxModelLenOr2048 = () => {
    try {
      return ctxRef?.maxModelLen() ?? 2048;
    } catch {
      return 2048;
    }
  };
  const ctx = new ServerContext(
    args.engine,
    options,
    log,
    new ServerMetrics(() => ctxRef?.modelNameIfKnown() ?? null, maxModelLenOr2048),
    text,
  );
  ctxRef = ctx;
  const cors = new CorsPolicy(options.allowedOrigins);
  const limit = options.maxRequestBodyBytes;

  // standardHostname: false — Elysia otherwise finds the path by searching for "/" from the
  // 12th character of the URL, i.e. it assumes a Host of 4+ characters ("Host: ab" turned
  // /x/v1/kv into /v1/kv, "Host: api" made every path unroutable).
  const app = new Elysia({ name: "headroom", handler: { standardHostname: false } })
    .use(openapiPlugin())
    .onRequest(({ request }) => {
      let info = ctx.requests.get(request);
      if (!info) {
        info = {
          id: requestId(request.headers.get("x-request-id")),
          start: performance.now(),
          route: routeLabel(new URL(request.url).pathname),
        };
        ctx.requests.set(request, info);
      }
      const cl = request.headers.get("content-length");
      if (cl !== null && Number(cl) > limit) throw bodyTooLarge(`${cl} bytes`, limit);
    })
    .use(apiKeyGuard(options.apiKey))
    // Every body is JSON; read it here, bounded, before validation sees it.
    .onParse({ as: "global" }, async ({ request, route }) => {
      const info = ctx.info(request);
      const body = await parseJsonBody(request, {
        maxBytes: limit,
        deadline: info.start + options.requestBodyTimeout * 1000,
        timeoutS: options.requestBodyTimeout,
      });
      // Generation requests may wait in the queue (and stream) longer than Bun's idle timeout, but
      // only once their body is in: a body that stops arriving must still time out.
      if (GENERATION_ROUTES.has(route)) info.noIdleTimeout?.();
      return body;
    })
    .onError(({ code, error, request }) => {
      const info = ctx.info(request);
      let err: ApiError;
      const cause = error instanceof Error ? error.cause : undefined;
      if (error instanceof ApiError) err = error;
      else if (cause instanceof ApiError) err = cause;
      else if (error instanceof ValidationError && error.type !== "response") {
        const { message, param } = validationMessage(error);
        err = new ApiError(400, message, "invalid_request_error", param, "invalid_parameter");
      } else if (code === "PARSE") {
        const why = cause instanceof Error ? `: ${cause.message}` : "";
        err = new ApiError(400, `The request body is not valid JSON${why}`, "invalid_request_error", null, "invalid_json");
      } else if (error instanceof Error && (error as { code?: unknown }).code === "engine_error")
        err = fromEngineError(error); // engine died mid-call
      else if (code === "NOT_FOUND") {
        const url = new URL(request.url);
        err = new ApiError(404, `Not found: ${request.method} ${url.pathname}`, "invalid_request_error", null, "not_found");
        // Unknown /v1 paths answer 401 without the key too: which routes exist is not for strangers.
        if (isProtectedRoute(url.pathname)) {
          try {
            checkApiKey(options.apiKey, request);
          } catch (e) {
            err = e as ApiError;
          }
        }
      } else {
        const message = error instanceof Error ? error.message : String(error);
        log.error("internal error", {
          request_id: info.id,
          code: String(code),
          error: message,
          stack: error instanceof Error ? error.stack : undefined,
        });
        err = new ApiError(500, `Internal error (request ${info.id}): ${message}`, "internal_server_error", null, "internal_error");
      }
      if (err.status >= 400 && err.status < 500 && err.status !== 404)
        log.debug("request rejected", { request_id: info.id, status: err.status, error: err.message });
      return errorResponse(err);
    })
    .use(homeRoutes(ctx))
    .use(healthRoutes(ctx))
    .use(metricsRoutes(ctx))
    .use(modelsRoutes(ctx))
    .use(completionsRoutes(ctx))
    .use(chatRoutes(ctx))
    .use(tokenizeRoutes(ctx))
    .use(memoryRoutes(ctx))
    .use(kvRoutes(ctx))
    .use(swaggerAssets())
    .use(dashboardRoutes());

  /** Bun.serve fetch handler: request id, per-route metrics and the access log around app.handle. */
  async function fetch(req: Request, server?: Server<unknown>): Promise<Response> {
    const start = performance.now();
    const id = requestId(req.headers.get("x-request-id"));
    const badHost = hostProblem(req);
    const path = badHost ? "" : new URL(req.url).pathname;
    const route = badHost ? "other" : routeLabel(path);
    ctx.requests.set(req, { id, start, route, noIdleTimeout: server ? () => server.timeout(req, 0) : undefined });
    let res: Response;
    try {
      // CORS preflights are answered before auth (browsers never send credentials on them).
      res = badHost ? errorResponse(badHost) : (cors.preflight(req) ?? (await app.handle(req)));
      if (route === OPENAPI_PATH && res.status === 200) res = await withServedModelExamples(res, ctx.modelNameIfKnown());
    } catch (e) {
      log.error("unhandled error", { request_id: id, error: e instanceof Error ? e.message : String(e) });
      res = errorResponse(new ApiError(500, `Internal error (request ${id})`, "internal_server_error", null, "internal_error"));
    }
    const decorate = (h: Headers) => {
      h.set("x-request-id", id);
      cors.decorate(req, h);
    };
    try {
      decorate(res.headers);
    } catch {
      res = new Response(res.body, { status: res.status, statusText: res.statusText, headers: new Headers(res.headers) });
      decorate(res.headers);
    }
    const ms = performance.now() - start;
    ctx.metrics.requests.inc({ route, method: req.method, status: String(res.status) });
    ctx.metrics.requestLatency.observe(ms / 1000, { route });
    const quiet = route === "/metrics" || route === "/health" || route.startsWith("/swagger");
    const fields = { request_id: id, method: req.method, path, status: res.status, ms: Math.round(ms * 100) / 100 };
    if (quiet) log.debug("request", fields);
    else log.info("request", fields);
    return res;
  }

  return { app, ctx, options, log, fetch };
}

export type HeadroomApp = ReturnType<typeof createApp>;

export interface RunningServer {
  url: string;
  port: number;
  hostname: string;
  app: HeadroomApp;
  server: Server<unknown>;
  /** Stops listening (in-flight streams are closed when `force`) and the tokenizer workers. Does not close the engine. */
  stop(force?: boolean): Promise<void>;
}

/** createApp + Bun.serve. `options.port` 0 picks an ephemeral port. */
export function startServer(args: CreateAppArgs): RunningServer {
  const h = createApp(args);
  const server = Bun.serve({
    hostname: h.options.host,
    port: h.options.port,
    // Content-Length above the limit gets our JSON 413 (onRequest); Bun's limit (its own plain
    // 413, checked before our handler runs, hence the margin) is the backstop for chunked bodies.
    maxRequestBodySize: h.options.maxRequestBodyBytes + 1024 * 1024,
    idleTimeout: 60,
    fetch: (req, srv) => h.fetch(req, srv),
    error(e) {
      h.log.error("server error", { error: e.message });
      return errorResponse(new ApiError(500, "Internal error", "internal_server_error", null, "internal_error"));
    },
  });
  const stats = new StatsLogger(h.ctx.engine, h.log, h.options.statsInterval);
  stats.start();
  // Tokenizer workers load in the background; /health says "starting" until they are ready.
  h.ctx.text.start().catch((e: Error) => h.log.error("tokenizer failed to load", { error: e.message }));
  const hostname = server.hostname ?? h.options.host;
  const port = server.port ?? h.options.port;
  const urlHost = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    hostname,
    app: h,
    server,
    stop: async (force = true) => {
      stats.stop();
      await server.stop(force);
      h.ctx.text.close();
    },
  };
}
