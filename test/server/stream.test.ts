// Cancellation (client disconnects free KV blocks within an engine step) and concurrency.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { postJson, startTestServer, waitFor, type TestServer } from "./helpers.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ fake: { stepMs: 2, blocksTotal: 100_000, maxModelLen: 4096 } });
});
afterAll(async () => {
  await s.close();
});

const blocksUsed = async () => (await s.engine.stats()).blocksUsed;
const kv = async () => (await (await fetch(`${s.url}/v1/kv`)).json()) as { blocks_used: number; running: number; waiting: number };

describe("cancellation", () => {
  test("client aborts a stream mid-way: the engine sees the abort and blocks return to zero", async () => {
    const ac = new AbortController();
    const res = await fetch(`${s.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "cancel-me" },
      body: JSON.stringify({ messages: [{ role: "user", content: "x".repeat(100) }], max_tokens: 3000, stream: true }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    for (let i = 0; i < 5; i++) await reader.read();
    expect(await blocksUsed()).toBeGreaterThan(0);
    expect((await kv()).running).toBe(1);
    ac.abort();
    const ms = await waitFor(async () => (await blocksUsed()) === 0, 1000, "blocks to return to 0");
    expect(s.engine.aborted).toContain("cancel-me-0");
    expect(ms).toBeLessThan(500);
    const k = await kv();
    expect(k).toMatchObject({ blocks_used: 0, running: 0, waiting: 0 });
    await waitFor(() => s.server.app.ctx.inflight === 0, 1000, "server admission to drain");
  });

  test("client disconnects during a non-streaming request: cancelled too", async () => {
    const ac = new AbortController();
    const p = fetch(`${s.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "nonstream-cancel" },
      body: JSON.stringify({ prompt: "x", max_tokens: 3000, n: 2 }),
      signal: ac.signal,
    }).catch(() => null);
    await waitFor(async () => (await blocksUsed()) > 0, 1000, "request to start");
    ac.abort();
    await p;
    await waitFor(async () => (await blocksUsed()) === 0, 1000, "blocks to return to 0");
    expect(s.engine.aborted).toEqual(expect.arrayContaining(["nonstream-cancel-0", "nonstream-cancel-1"]));
  });

  test("openai client: breaking out of a stream (controller.abort) cancels the request", async () => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "x", maxRetries: 0 });
    const stream = await client.completions.create({ model: "fake-model", prompt: "x", max_tokens: 3000, stream: true });
    let n = 0;
    for await (const _ of stream) if (++n === 5) break;
    await waitFor(async () => (await blocksUsed()) === 0, 1000, "blocks to return to 0");
  });
});

describe("concurrency", () => {
  test("200 concurrent streaming requests: no error, every stream complete, no leaked block", async () => {
    const N = 200;
    const t0 = performance.now();
    const results = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const res = await postJson(`${s.url}/v1/${i % 2 ? "chat/completions" : "completions"}`, {
          ...(i % 2 ? { messages: [{ role: "user", content: `hello ${i}` }] } : { prompt: `hello ${i}` }),
          max_tokens: 16,
          seed: i,
          stream: true,
          stream_options: { include_usage: true },
        });
        const text = await res.text();
        return {
          status: res.status,
          done: text.trimEnd().endsWith("data: [DONE]"),
          error: text.includes('"error"'),
          usage: /"completion_tokens":16/.test(text),
        };
      }),
    );
    const ms = performance.now() - t0;
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    expect(results.filter((r) => !r.done || r.error || !r.usage)).toEqual([]);
    await waitFor(async () => (await blocksUsed()) === 0, 1000, "blocks to return to 0");
    expect(await kv()).toMatchObject({ blocks_used: 0, running: 0, waiting: 0 });
    await waitFor(() => s.server.app.ctx.inflight === 0, 1000, "server admission to drain");
    expect(ms).toBeLessThan(5000);
  });

  test("concurrent streams with half of the clients disconnecting: no leaked block", async () => {
    const N = 100;
    await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const ac = new AbortController();
        const res = await fetch(`${s.url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ prompt: `p${i}`, max_tokens: i % 2 ? 2000 : 8, stream: true }),
          signal: ac.signal,
        });
        const reader = res.body!.getReader();
        if (i % 2) {
          await reader.read();
          ac.abort();
        } else while (!(await reader.read()).done);
      }),
    );
    await waitFor(async () => (await blocksUsed()) === 0, 1000, "blocks to return to 0");
    await waitFor(() => s.server.app.ctx.inflight === 0, 1000, "server admission to drain");
  });
});
