// Server lifecycle over the fake engine: draining (src/server/shutdown.ts, context.ts) — /health
// and new requests answer 503, ending in-flight requests finishes them with "abort" and a
// complete response — and an engine that fails mid-call (engine_error) is a 503 in OpenAI's
// error shape on every route.
import { afterEach, describe, expect, test } from "bun:test";
import { fromEngineError } from "../../src/server/errors.ts";
import { FakeEngine } from "./fake-engine.ts";
import { postJson, readSse, startTestServer, waitFor, type TestServer } from "./helpers.ts";

let s: TestServer | null = null;
afterEach(async () => {
  await s?.close();
  s = null;
});

describe("draining", () => {
  test("/health 503 draining; new generation requests 503 server_shutting_down", async () => {
    s = await startTestServer();
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    s.server.app.ctx.draining = true;
    const h = await fetch(`${s.url}/health`);
    expect(h.status).toBe(503);
    expect(await h.json()).toEqual({ status: "draining" });
    const r = await postJson(`${s.url}/v1/completions`, { prompt: "hi", max_tokens: 3 });
    expect(r.status).toBe(503);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("server_shutting_down");
  });

  test("endInflight: a stream gets a final chunk with finish_reason abort and [DONE]; a non-stream a full body", async () => {
    s = await startTestServer({ fake: { stepMs: 5 } });
    const url = s.url;
    const stream = postJson(`${url}/v1/completions`, { prompt: "hi", max_tokens: 200, ignore_eos: true, stream: true });
    const whole = postJson(`${url}/v1/chat/completions`, {
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 200,
      ignore_eos: true,
    });
    // Both reached the engine and generated a few tokens (5 ms steps).
    await waitFor(() => s!.engine.requests.length === 2, 10_000, "both requests in the engine");
    await Bun.sleep(100);
    s.server.app.ctx.endInflight();
    const events = (await readSse(await stream)) as ({ choices: { finish_reason: string | null }[] } | "[DONE]")[];
    expect(events.at(-1)).toBe("[DONE]");
    const last = events.at(-2) as { choices: { finish_reason: string | null }[] };
    expect(last.choices[0]!.finish_reason).toBe("abort");
    const body = (await (await whole).json()) as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } };
    expect(body.choices[0]!.finish_reason).toBe("abort");
    expect(body.usage.completion_tokens).toBeGreaterThan(0);
    expect(body.usage.completion_tokens).toBeLessThan(200);
  });

  test("engine_error maps to 503 type/code engine_error", () => {
    const e = fromEngineError(Object.assign(new Error("The engine failed (signal SIGSEGV)"), { code: "engine_error" }));
    expect(e.status).toBe(503);
    expect(e.body().error).toMatchObject({ type: "engine_error", code: "engine_error", message: "The engine failed (signal SIGSEGV)" });
  });
});

describe("engine failure during a call", () => {
  test("a route whose engine call fails with engine_error answers 503 engine_error, not 500", async () => {
    class DyingEngine extends FakeEngine {
      override stats(): Promise<never> {
        return Promise.reject(
          Object.assign(new Error("The engine failed (signal SIGSEGV) and is restarting; the request was not completed."), {
            code: "engine_error",
          }),
        );
      }
    }
    s = await startTestServer({ engine: new DyingEngine() });
    const r = await fetch(`${s.url}/v1/kv`);
    expect(r.status).toBe(503);
    expect(((await r.json()) as { error: { type: string; code: string } }).error).toMatchObject({
      type: "engine_error",
      code: "engine_error",
    });
  });
});
