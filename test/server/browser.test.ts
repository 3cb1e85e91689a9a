// Browser and operator conveniences over real HTTP: CORS (--allowed-origins), the landing
// page at /, and Swagger's "Try it out" examples filled with the served model name.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CORS_ALLOW_HEADERS, CorsPolicy } from "../../src/server/cors.ts";
import { defaultServeOptions, OptionsError, parseServeOptions } from "../../src/server/options.ts";
import { MODEL_PLACEHOLDER } from "../../src/server/openapi-examples.ts";
import { postJson, startTestServer, type TestServer } from "./helpers.ts";

const APP = "https://app.example.com";
const KEY = "browser-key";

function preflight(url: string, origin: string, headers = "authorization, content-type"): Promise<Response> {
  return fetch(url, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": headers },
  });
}

describe("CORS off (default)", () => {
  let s: TestServer;
  beforeAll(async () => (s = await startTestServer()));
  afterAll(async () => await s.close());

  test("no CORS headers anywhere; a preflight is not answered", async () => {
    const r = await fetch(`${s.url}/v1/models`, { headers: { origin: APP } });
    expect(r.status).toBe(200);
    expect(r.headers.get("access-control-allow-origin")).toBeNull();
    const p = await preflight(`${s.url}/v1/completions`, APP);
    expect(p.headers.get("access-control-allow-origin")).toBeNull();
    expect(p.headers.get("access-control-allow-methods")).toBeNull();
  });
});

describe("CORS with --allowed-origins list", () => {
  let s: TestServer;
  beforeAll(async () => (s = await startTestServer({ options: { allowedOrigins: `${APP}, http://localhost:3000`, apiKey: KEY } })));
  afterAll(async () => await s.close());

  test("preflight from an allowed origin: 204 with methods and headers (authorization included), before auth", async () => {
    const p = await preflight(`${s.url}/v1/chat/completions`, APP);
    expect(p.status).toBe(204);
    expect(p.headers.get("access-control-allow-origin")).toBe(APP);
    expect(p.headers.get("access-control-allow-methods")!.split(/,\s*/)).toEqual(expect.arrayContaining(["GET", "POST", "OPTIONS"]));
    const allowed = p.headers.get("access-control-allow-headers")!.split(/,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(["authorization", "content-type"]));
    expect(p.headers.get("access-control-allow-headers")).toBe(CORS_ALLOW_HEADERS);
    expect(p.headers.get("vary")).toContain("Origin");
  });

  test("actual requests from an allowed origin carry the origin back, also on errors and streams", async () => {
    const ok = await postJson(
      `${s.url}/v1/completions`,
      { prompt: "hi", max_tokens: 2 },
      { origin: "http://localhost:3000", authorization: `Bearer ${KEY}` },
    );
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe("http://localhost:3000");
    expect(ok.headers.get("access-control-expose-headers")).toContain("x-request-id");
    await ok.json();
    const unauth = await fetch(`${s.url}/v1/models`, { headers: { origin: APP } });
    expect(unauth.status).toBe(401);
    expect(unauth.headers.get("access-control-allow-origin")).toBe(APP); // the page can read the error
    const stream = await postJson(
      `${s.url}/v1/completions`,
      { prompt: "hi", max_tokens: 2, stream: true },
      { origin: APP, authorization: `Bearer ${KEY}` },
    );
    expect(stream.headers.get("access-control-allow-origin")).toBe(APP);
    await stream.text();
  });

  test("other origins get no CORS headers (preflight refused, responses unreadable to their pages)", async () => {
    const p = await preflight(`${s.url}/v1/completions`, "https://evil.example.net");
    expect(p.status).toBe(403);
    expect(p.headers.get("access-control-allow-origin")).toBeNull();
    expect(p.headers.get("access-control-allow-headers")).toBeNull();
    const r = await fetch(`${s.url}/v1/models`, { headers: { origin: "https://evil.example.net", authorization: `Bearer ${KEY}` } });
    expect(r.status).toBe(200);
    expect(r.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("CORS with --allowed-origins '*'", () => {
  let s: TestServer;
  beforeAll(async () => (s = await startTestServer({ options: { allowedOrigins: "*" } })));
  afterAll(async () => await s.close());

  test("any origin: allow-origin *", async () => {
    const p = await preflight(`${s.url}/v1/completions`, "https://anything.test");
    expect(p.status).toBe(204);
    expect(p.headers.get("access-control-allow-origin")).toBe("*");
    const r = await fetch(`${s.url}/health`, { headers: { origin: "https://anything.test" } });
    expect(r.headers.get("access-control-allow-origin")).toBe("*");
  });
});

describe("landing page and Swagger examples", () => {
  let s: TestServer;
  beforeAll(async () => (s = await startTestServer({ options: { apiKey: KEY, servedModelName: "my<model>" } })));
  afterAll(async () => await s.close());

  test("GET / is a small HTML page (no auth) naming the served model and linking the dashboard, docs, models and health", async () => {
    const r = await fetch(`${s.url}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/html");
    const html = await r.text();
    expect(html).toContain('<code id="model">my&lt;model&gt;</code>'); // escaped
    const hrefs = [...html.matchAll(/href="([^"]+)"/g)].map((m) => m[1]!);
    expect(hrefs).toEqual(expect.arrayContaining(["/dashboard", "/swagger", "/v1/models", "/health", "/openapi.json"]));
    for (const h of ["/dashboard", "/swagger", "/health", "/openapi.json"]) expect((await fetch(`${s.url}${h}`)).status).toBe(200);
    expect((await fetch(`${s.url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } })).status).toBe(200);
  });

  test("/openapi.json: the request examples name the served model; POSTed as is they return 200", async () => {
    const doc = (await (await fetch(`${s.url}/openapi.json`)).json()) as {
      paths: Record<string, { post?: { requestBody: { content: Record<string, { schema: { example?: Record<string, unknown> } }> } } }>;
    };
    for (const path of ["/v1/completions", "/v1/chat/completions"]) {
      const example = doc.paths[path]!.post!.requestBody.content["application/json"]!.schema.example!;
      expect(example.model).toBe("my<model>");
      const r = await postJson(`${s.url}${path}`, example, { authorization: `Bearer ${KEY}` });
      expect(r.status).toBe(200);
      const body = (await r.json()) as { model: string; choices: unknown[] };
      expect(body.model).toBe("my<model>");
      expect(body.choices.length).toBe(1);
    }
  });

  test("the committed document keeps the placeholder (it does not depend on a model)", async () => {
    const committed = await Bun.file(new URL("../../openapi/openapi.json", import.meta.url)).json();
    expect(JSON.stringify(committed)).toContain(JSON.stringify(MODEL_PLACEHOLDER));
  });
});

describe("flags", () => {
  test("--allowed-origins and --stats-interval parse from flags and the environment", () => {
    const o = parseServeOptions(["--allowed-origins", "https://a.test,http://localhost:3000", "--stats-interval=2.5"]);
    expect(o.allowedOrigins).toBe("https://a.test,http://localhost:3000");
    expect(o.statsInterval).toBe(2.5);
    const d = parseServeOptions([], { HEADROOM_ALLOWED_ORIGINS: "*", HEADROOM_STATS_INTERVAL: "0" });
    expect([d.allowedOrigins, d.statsInterval]).toEqual(["*", 0]);
    expect([defaultServeOptions().allowedOrigins, defaultServeOptions().statsInterval]).toEqual([null, 10]);
    expect(() => parseServeOptions(["--stats-interval", "-1"])).toThrow(OptionsError);
  });

  test("origins match exactly (scheme, host, port), case-insensitively, ignoring a trailing slash", () => {
    const p = new CorsPolicy("https://App.example.com/ , http://localhost:3000");
    expect(p.allowOrigin("https://app.example.com")).toBe("https://app.example.com");
    expect(p.allowOrigin("http://localhost:3000")).toBe("http://localhost:3000");
    for (const o of [
      "http://app.example.com",
      "https://app.example.com:8443",
      "http://localhost:3001",
      "https://evil.app.example.com",
      "null",
    ])
      expect(p.allowOrigin(o)).toBeNull();
    expect(new CorsPolicy(null).enabled).toBe(false);
    expect(new CorsPolicy(" , ").enabled).toBe(false);
  });
});
