// The OpenAPI document: kept current, served, browsable offline, and good enough for a
// generated client (openapi-typescript + openapi-fetch) to compile and call the server.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { openapiText } from "../../src/server/openapi-doc.ts";
import { fillModelExamples, MODEL_PLACEHOLDER } from "../../src/server/openapi-examples.ts";
import { startTestServer, type TestServer } from "./helpers.ts";

const root = resolve(import.meta.dir, "../..");
const docPath = join(root, "openapi/openapi.json");

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ options: { apiKey: "k" } });
});
afterAll(async () => {
  await s.close();
});

describe("openapi document", () => {
  test("openapi/openapi.json is current (run `bun run openapi` to refresh)", async () => {
    const fresh = await openapiText();
    const onDisk = readFileSync(docPath, "utf8");
    if (onDisk !== fresh) throw new Error("openapi/openapi.json is stale: run `bun run openapi` and commit the result");
    expect(await openapiText()).toBe(fresh); // deterministic
  });

  test("served at /openapi.json; every route documented with request and response schemas", async () => {
    const res = await fetch(`${s.url}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<
        string,
        Record<string, { requestBody?: { content: Record<string, unknown> }; responses: Record<string, unknown>; security?: unknown }>
      >;
    };
    // The committed document, with the served model name in the request examples ("Try it out").
    const model = s.server.app.ctx.modelName();
    expect(doc).toEqual(fillModelExamples(JSON.parse(readFileSync(docPath, "utf8")), model));
    expect(JSON.stringify(doc)).not.toContain(MODEL_PLACEHOLDER);
    expect(doc.openapi).toMatch(/^3\.1/);
    expect(Object.keys(doc.paths).sort()).toEqual([
      "/detokenize",
      "/health",
      "/metrics",
      "/tokenize",
      "/v1/chat/completions",
      "/v1/completions",
      "/v1/kv",
      "/v1/memory",
      "/v1/memory/allocator",
      "/v1/memory/plan",
      "/v1/models",
      "/v1/models/{model}",
    ]);
    for (const p of ["/v1/completions", "/v1/chat/completions"]) {
      const op = doc.paths[p]!.post!;
      expect(Object.keys(op.requestBody!.content)).toEqual(["application/json"]);
      for (const code of ["200", "400", "401", "404", "413", "503"]) expect(op.responses[code]).toBeDefined();
      expect(op.security).toEqual([{ bearerAuth: [] }]);
    }
  });
});

describe("swagger UI", () => {
  test("/swagger works offline: no external URLs, assets served locally", async () => {
    const res = await fetch(`${s.url}/swagger`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("SwaggerUIBundle");
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/unpkg|jsdelivr|cdn\./);
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.sort()).toEqual(["/swagger/assets/swagger-ui-bundle.js", "/swagger/assets/swagger-ui.css"]);
    for (const r of refs) {
      const a = await fetch(`${s.url}${r}`);
      expect(a.status).toBe(200);
      expect(a.headers.get("content-type")).toMatch(r.endsWith(".js") ? /javascript/ : /text\/css/);
      expect((await a.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
    }
    expect(html).toContain('"url":"openapi.json"');
    expect((await fetch(`${s.url}/swagger/assets/../../package.json`)).status).toBe(404);
    expect((await fetch(`${s.url}/swagger/assets/index.html`)).status).toBe(404);
  });
});

describe("generated client", () => {
  test("openapi-typescript types + openapi-fetch: compiles (tsc, strict) and calls the server", async () => {
    const dir = mkdtempSync(join(tmpdir(), "headroom-client-"));
    try {
      symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
      const gen = Bun.spawnSync(
        [process.execPath, join(root, "node_modules/openapi-typescript/bin/cli.js"), docPath, "-o", join(dir, "schema.d.ts")],
        { cwd: dir },
      );
      if (gen.exitCode !== 0) throw new Error(`openapi-typescript failed: ${gen.stderr.toString()}`);
      writeFileSync(
        join(dir, "client.ts"),
        `import createClient from "openapi-fetch";
import type { paths } from "./schema.d.ts";

export async function run(baseUrl: string, key: string) {
  const client = createClient<paths>({ baseUrl, headers: { authorization: \`Bearer \${key}\` } });
  const models = await client.GET("/v1/models");
  const first: string | undefined = models.data?.data[0]?.id;
  const done = await client.POST("/v1/completions", { body: { prompt: "Hi", max_tokens: 4, temperature: 0 } });
  const text: string | undefined = done.data?.choices[0]?.text;
  const total: number | undefined = done.data?.usage.total_tokens;
  const chat = await client.POST("/v1/chat/completions", { body: { messages: [{ role: "user", content: "Hi" }], max_completion_tokens: 3 } });
  const content: string | null | undefined = chat.data?.choices[0]?.message.content;
  const bad = await client.POST("/v1/completions", { body: { prompt: "Hi", max_tokens: 100000 } });
  const errorMessage: string | undefined = bad.error?.error.message;
  const kv = await client.GET("/v1/kv");
  const blocks: number | undefined = kv.data?.blocks_total;
  // The memory routes are typed field by field (issue 13 item 4).
  const mem = await client.GET("/v1/memory");
  const weights: number | undefined = mem.data?.breakdown.weights;
  const offloading: boolean | undefined = mem.data?.offload.enabled;
  const graphSizes: number[] | undefined = mem.data?.graphs.sizes;
  const planKvBlocks: number | undefined = mem.data?.plan.kvBlocks;
  const alloc = await client.GET("/v1/memory/allocator");
  const reservedPeak: number | undefined = alloc.data?.stats.reservedBytes.peak;
  const firstBlockFree: boolean | undefined = alloc.data?.segments[0]?.blocks[0]?.allocated;
  const planned = await client.POST("/v1/memory/plan", { body: { model: "synthetic:110m", dtype: "float32", backend: "cpu", cpu_offload_gb: 0 } });
  const fits: boolean | undefined = planned.data?.plan.fits;
  const planLayers: number | undefined = planned.data?.model.layers;
  // @ts-expect-error breakdown categories are known
  void mem.data?.breakdown.nope;
  // @ts-expect-error dtype is one of the listed values
  void (() => client.POST("/v1/memory/plan", { body: { dtype: "int8" } }));
  const tok = await client.POST("/tokenize", { body: { prompt: "Hi", add_special_tokens: false } });
  const count: number | undefined = tok.data?.count;
  const detok = await client.POST("/detokenize", { body: { tokens: tok.data?.tokens ?? [] } });
  const back: string | undefined = detok.data?.prompt;
  const tools = await client.POST("/v1/chat/completions", {
    body: { messages: [{ role: "user", content: "Hi" }], tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }], tool_choice: "none", max_completion_tokens: 1 },
  });
  const finish: "stop" | "length" | "tool_calls" | "abort" | null | undefined = tools.data?.choices[0]?.finish_reason;
  const calls: { id: string; function: { name: string; arguments: string } }[] | undefined = tools.data?.choices[0]?.message.tool_calls;
  // @ts-expect-error max_tokens must be a number
  void (() => client.POST("/v1/completions", { body: { prompt: "Hi", max_tokens: "many" } }));
  // @ts-expect-error unknown route
  void (() => client.GET("/v1/nope"));
  return { first, text, total, content, errorMessage, status: bad.response.status, blocks, weights, offloading, graphSizes, planKvBlocks, reservedPeak, firstBlockFree, fits, planLayers, count, back, finish, calls: calls ?? null };
}
`,
      );
      writeFileSync(
        join(dir, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "ESNext",
            module: "Preserve",
            moduleResolution: "bundler",
            lib: ["ESNext", "DOM"],
            strict: true,
            noUncheckedIndexedAccess: true,
            noEmit: true,
            allowImportingTsExtensions: true,
            skipLibCheck: true,
            types: [],
          },
          files: ["client.ts", "schema.d.ts"],
        }),
      );
      const tsc = Bun.spawnSync([process.execPath, join(root, "node_modules/typescript/bin/tsc"), "-p", dir], { cwd: dir });
      if (tsc.exitCode !== 0) throw new Error(`generated client does not type-check:\n${tsc.stdout.toString()}${tsc.stderr.toString()}`);
      const mod = (await import(join(dir, "client.ts"))) as { run(u: string, k: string): Promise<Record<string, unknown>> };
      const r = await mod.run(s.url, "k");
      expect(r).toMatchObject({
        first: "fake-model",
        text: "Once",
        total: 7,
        status: 400,
        blocks: 4096,
        weights: 300e6,
        offloading: false,
        graphSizes: [],
        reservedPeak: 500e6,
        firstBlockFree: true,
        fits: true,
        planLayers: 12,
      });
      expect(r.planKvBlocks).toBeNumber();
      expect(r).toMatchObject({ count: 2, back: "Hi", finish: "length", calls: null });
      expect(typeof r.content).toBe("string");
      expect(String(r.errorMessage)).toContain("maximum context length");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
