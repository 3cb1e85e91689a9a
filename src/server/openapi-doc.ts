// The OpenAPI document, generated from the app itself (no engine, no listening socket).
import type { Engine } from "../engine/api.ts";
import { createApp } from "./app.ts";
import { silentLogger } from "./log.ts";
import { OPENAPI_PATH } from "./docs.ts";

const noEngine = (): never => {
  throw new Error("no engine: documentation only");
};
const docsOnlyEngine: Engine = {
  health: () => "starting",
  ready: noEngine,
  model: noEngine,
  generate: noEngine,
  stats: noEngine,
  memory: noEngine,
  allocator: noEngine,
  close: async () => {},
};

export async function openapiDocument(): Promise<Record<string, unknown>> {
  const { app } = createApp({ engine: docsOnlyEngine, logger: silentLogger });
  const res = await app.handle(new Request(`http://localhost${OPENAPI_PATH}`));
  if (!res.ok) throw new Error(`GET ${OPENAPI_PATH} answered ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

/** The exact text of openapi/openapi.json. */
export async function openapiText(): Promise<string> {
  return JSON.stringify(await openapiDocument(), null, 2) + "\n";
}
