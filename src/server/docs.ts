// OpenAPI document (@elysiajs/openapi) at /openapi.json and Swagger UI at /swagger, with the
// Swagger UI assets served from node_modules/swagger-ui-dist (works offline, no CDN).
import { openapi } from "@elysiajs/openapi";
import { Elysia, t } from "elysia";
import pkg from "../../package.json";
import { embedded } from "../native/embedded.ts";

export const OPENAPI_PATH = "/openapi.json";
export const SWAGGER_PATH = "/swagger";
const ASSETS = `${SWAGGER_PATH}/assets`;

const ASSET_FILES: Record<string, string> = {
  "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
  "swagger-ui.css": "text/css; charset=utf-8",
};

function assetPath(file: string): string | null {
  const embeddedPath = embedded.swagger[file]; // the single binary (src/ship/compile.ts)
  if (embeddedPath !== undefined) return embeddedPath;
  try {
    return Bun.resolveSync(`swagger-ui-dist/${file}`, import.meta.dir);
  } catch {
    return null;
  }
}

export function openapiPlugin() {
  return openapi({
    path: SWAGGER_PATH,
    specPath: OPENAPI_PATH,
    provider: "swagger-ui",
    swagger: { cdn: `${ASSETS}/swagger-ui-bundle.js`, theme: `${ASSETS}/swagger-ui.css`, autoDarkMode: true },
    exclude: { paths: [`${ASSETS}/:file`] },
    documentation: {
      info: {
        title: "headroom",
        version: pkg.version,
        description:
          "LLM inference server with exact device-memory management. OpenAI-compatible generation routes, memory and KV introspection, Prometheus metrics.",
      },
      tags: [
        { name: "OpenAI", description: "OpenAI-compatible routes" },
        { name: "vLLM", description: "vLLM-compatible routes (/tokenize, /detokenize)" },
        { name: "Memory", description: "Device memory, allocator and KV cache" },
        { name: "Operations", description: "Health and metrics" },
      ],
      components: {
        securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", description: "The server's --api-key (only when set)" } },
      },
    },
  });
}

export function swaggerAssets() {
  return new Elysia({ name: "headroom-swagger-assets" }).get(
    `${ASSETS}/:file`,
    ({ params, status }) => {
      const type = ASSET_FILES[params.file];
      const path = type ? assetPath(params.file) : null;
      if (!type || !path) return status(404, "not found");
      return new Response(Bun.file(path), { headers: { "content-type": type, "cache-control": "public, max-age=86400" } });
    },
    { params: t.Object({ file: t.String() }, { additionalProperties: false }), detail: { hide: true } },
  );
}
