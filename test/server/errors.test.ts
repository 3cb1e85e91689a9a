// Every error case: OpenAI error bodies, the right status, never a 500 for bad input.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { postJson, startTestServer, type TestServer } from "./helpers.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({ fake: { maxModelLen: 64 }, options: { maxRequestBodyBytes: 64 * 1024 } });
});
afterAll(async () => {
  await s.close();
});

async function expectError(res: Response, status: number, match?: RegExp, param?: string | null) {
  const body = (await res.json()) as { error: { message: string; type: string; param: unknown; code: unknown } };
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/json");
  expect(typeof body.error.message).toBe("string");
  expect(typeof body.error.type).toBe("string");
  expect("param" in body.error && "code" in body.error).toBe(true);
  if (match) expect(body.error.message).toMatch(match);
  if (param !== undefined) expect(body.error.param).toBe(param);
  return body.error;
}

describe("invalid input → 400 with OpenAI error bodies", () => {
  test("malformed JSON, empty body, non-object body", async () => {
    await expectError(await postJson(`${s.url}/v1/completions`, '{"prompt": '), 400, /not valid JSON/);
    await expectError(await postJson(`${s.url}/v1/chat/completions`, ""), 400);
    await expectError(await postJson(`${s.url}/v1/completions`, "[1,2]"), 400);
    await expectError(await postJson(`${s.url}/v1/completions`, "null"), 400);
  });

  test("wrong types and out-of-range values name the field", async () => {
    const cases: [unknown, string][] = [
      [{ prompt: "x", max_tokens: -1 }, "max_tokens"],
      [{ prompt: "x", max_tokens: 0 }, "max_tokens"],
      // (numeric strings such as "5" are coerced, as pydantic's lax mode does in vLLM)
      [{ prompt: "x", max_tokens: "five" }, "max_tokens"],
      [{ prompt: "x", max_tokens: 1.5 }, "max_tokens"],
      [{ prompt: 5 }, "prompt"],
      [{ prompt: [] }, "prompt"],
      [{ prompt: [1, -2] }, "prompt"],
      [{ prompt: "x", temperature: 3 }, "temperature"],
      [{ prompt: "x", top_p: 0 }, "top_p"],
      [{ prompt: "x", n: 0 }, "n"],
      [{ prompt: "x", n: [2] }, "n"],
      [{ prompt: "x", logprobs: 21 }, "logprobs"],
      [{ prompt: "x", stop: 3 }, "stop"],
      [{ prompt: "x", stream: "yes" }, "stream"],
      [{ prompt: "x", presence_penalty: 9 }, "presence_penalty"],
      [{ max_tokens: 3 }, "prompt"],
    ];
    for (const [body, param] of cases) {
      const res = await postJson(`${s.url}/v1/completions`, body);
      if (res.status !== 400) throw new Error(`${JSON.stringify(body)} → ${res.status}`);
      const e = await expectError(res, 400);
      expect({ body, param: e.param }).toEqual({ body, param });
    }
    const chat: [unknown, string | null][] = [
      [{ messages: [] }, "messages"],
      [{ messages: "hi" }, "messages"],
      [{ messages: [{ role: "wizard", content: "x" }] }, "messages.0.role"],
      [{ messages: [{ role: "user" }] }, "messages.0.content"],
      [{ messages: [{ role: "user", content: "x" }], top_logprobs: 3 }, "top_logprobs"],
      [{ messages: [{ role: "user", content: [{ type: "image_url" }] }] }, "messages[0].content"],
      [{ messages: [{ role: "user", content: "x" }], max_completion_tokens: -4 }, "max_completion_tokens"],
    ];
    for (const [body, param] of chat) {
      const e = await expectError(await postJson(`${s.url}/v1/chat/completions`, body), 400);
      expect({ body, param: String(e.param).startsWith(String(param)) }).toEqual({ body, param: true });
    }
  });

  test("a top-level field the server does not implement is a 400 naming it; extra message fields are ignored", async () => {
    const e = await expectError(
      await postJson(`${s.url}/v1/chat/completions`, {
        messages: [{ role: "user", content: "x" }],
        max_tokens: 2,
        prediction: { type: "content" },
        foo: [1],
      }),
      400,
      /'prediction', 'foo'/,
      "prediction",
    );
    expect(e.code).toBe("unsupported_parameter");
    await expectError(
      await postJson(`${s.url}/v1/completions`, { prompt: "x", max_tokens: 2, logit_bias: {}, stream: false, bar: null }),
      400,
      /Unsupported request field: 'bar'/,
      "bar",
    );
    const r = await postJson(`${s.url}/v1/chat/completions`, {
      messages: [{ role: "assistant", content: "y", refusal: null, extra: 1 }],
      max_tokens: 1,
    });
    expect(r.status).toBe(200);
  });

  test("min_tokens, logit_bias: checked against max_tokens and the vocabulary", async () => {
    await expectError(
      await postJson(`${s.url}/v1/completions`, { prompt: "x", max_tokens: 2, min_tokens: 3 }),
      400,
      /min_tokens \(3\) must not exceed max_tokens \(2\)/,
      "min_tokens",
    );
    await expectError(
      await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: "user", content: "x" }], logit_bias: { "999999": 1 } }),
      400,
      /out of vocabulary/,
      "logit_bias",
    );
    await expectError(await postJson(`${s.url}/v1/completions`, { prompt: "x", logit_bias: { "1": 101 } }), 400, /logit_bias/);
    await expectError(await postJson(`${s.url}/v1/completions`, { prompt: "x", logit_bias: { abc: 1 } }), 400, /logit_bias/);
  });

  test("unsupported combinations are 400, not 500", async () => {
    await expectError(await postJson(`${s.url}/v1/completions`, { prompt: "x", suffix: "y" }), 400, /suffix/);
    await expectError(await postJson(`${s.url}/v1/completions`, { prompt: "x", best_of: 3 }), 400, /best_of/);
    await expectError(await postJson(`${s.url}/v1/completions`, { prompt: [1, 2], echo: true }), 400, /echo/);
    await expectError(await postJson(`${s.url}/v1/completions`, { prompt: [1, 999999] }), 400, /out of vocabulary/, "prompt");
  });

  test("prompt longer than max_model_len: 400 stating both lengths (prompt + max_tokens, as vLLM)", async () => {
    const e = await expectError(await postJson(`${s.url}/v1/completions`, { prompt: "x".repeat(60), max_tokens: 10 }), 400);
    expect(e.message).toContain("maximum context length is 64 tokens");
    expect(e.message).toContain("you requested 71 tokens (61 in the prompt, 10 in the completion)");
    expect(e.code).toBe("context_length_exceeded");
    const chat = await expectError(
      await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: "user", content: "y".repeat(80) }] }),
      400,
      /maximum context length is 64 tokens/,
    );
    expect(chat.message).toContain("prompt has");
    // Fits exactly: 4 + 60 = 64.
    const ok = await postJson(`${s.url}/v1/completions`, { prompt: "abc", max_tokens: 60, temperature: 0 });
    expect(ok.status).toBe(200);
  });

  test("unknown model → 404; unknown route → 404; wrong method → 404", async () => {
    const e = await expectError(await postJson(`${s.url}/v1/completions`, { model: "gpt-4", prompt: "x" }), 404, /gpt-4/, "model");
    expect(e.code).toBe("model_not_found");
    await expectError(await postJson(`${s.url}/v1/chat/completions`, { model: "nope", messages: [{ role: "user", content: "x" }] }), 404);
    await expectError(await fetch(`${s.url}/v1/models/gpt-4`), 404);
    await expectError(await fetch(`${s.url}/v1/nothing`), 404);
    await expectError(await fetch(`${s.url}/v1/completions`), 404);
  });

  test("oversized body → 413", async () => {
    const big = JSON.stringify({ prompt: "x".repeat(100 * 1024) });
    await expectError(await postJson(`${s.url}/v1/completions`, big), 413, /too large/);
    // The server still answers afterwards.
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });

  test("fuzz: random junk bodies never produce a 500", async () => {
    const junk: unknown[] = [
      "{}",
      "[]",
      "true",
      "1",
      '"str"',
      '{"prompt":{}}',
      '{"prompt":[[]]}',
      '{"prompt":[[1],["a"]]}',
      '{"prompt":"x","stop":[1]}',
      '{"prompt":"x","stream_options":5}',
      '{"prompt":"x","seed":1e400}',
      '{"prompt":"x","max_tokens":1e20}',
      '{"prompt":"x","n":1000}',
      "\u0000\u0001",
      '{"prompt":"\\ud800"}',
      { messages: [{ role: "user", content: null }], max_tokens: 2 },
      { messages: [{ role: "user", content: [{ type: "text" }] }] },
    ];
    for (const body of junk) {
      for (const route of ["/v1/completions", "/v1/chat/completions"]) {
        const res = await postJson(`${s.url}${route}`, body);
        const text = await res.text();
        expect({ route, body, status: res.status < 500 ? "ok" : res.status }).toEqual({ route, body, status: "ok" });
        if (res.status >= 400) expect(JSON.parse(text).error.message).toBeString();
      }
    }
  });
});

describe("auth", () => {
  let a: TestServer;
  beforeAll(async () => {
    a = await startTestServer({ options: { apiKey: "sekret" } });
  });
  afterAll(async () => {
    await a.close();
  });

  test("every /v1 route needs the bearer key; /health and /metrics do not", async () => {
    for (const [method, path] of [
      ["GET", "/v1/models"],
      ["POST", "/v1/completions"],
      ["POST", "/v1/chat/completions"],
      ["GET", "/v1/memory"],
      ["GET", "/v1/memory/allocator"],
      ["GET", "/v1/kv"],
      ["GET", "/v1/nope"],
    ] as const) {
      const none = await fetch(`${a.url}${path}`, { method, body: method === "POST" ? "{}" : undefined });
      const e = await expectError(none, 401, /API key/);
      expect(e.code).toBe("invalid_api_key");
      expect(none.headers.get("www-authenticate")).toBe("Bearer");
      await expectError(await fetch(`${a.url}${path}`, { method, headers: { authorization: "Bearer wrong" } }), 401, /Incorrect/);
    }
    const ok = await fetch(`${a.url}/v1/models`, { headers: { authorization: "Bearer sekret" } });
    expect(ok.status).toBe(200);
    expect((await fetch(`${a.url}/health`)).status).toBe(200);
    expect((await fetch(`${a.url}/metrics`)).status).toBe(200);
  });

  test("openai client: AuthenticationError without the key, works with it", async () => {
    const bad = new OpenAI({ baseURL: `${a.url}/v1`, apiKey: "nope", maxRetries: 0 });
    const err = await bad.models.list().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    const good = new OpenAI({ baseURL: `${a.url}/v1`, apiKey: "sekret", maxRetries: 0 });
    const r = await good.completions.create({ model: "fake-model", prompt: "x", max_tokens: 2 });
    expect(r.choices).toHaveLength(1);
  });
});

describe("capacity and engine state → 503", () => {
  test("server-side admission: max_num_seqs + max_waiting, Retry-After", async () => {
    const q = await startTestServer({ fake: { stepMs: 5 }, options: { maxNumSeqs: 2, maxWaiting: 1 } });
    try {
      const streams = await Promise.all(
        [0, 1, 2].map(() => postJson(`${q.url}/v1/completions`, { prompt: "x", max_tokens: 100, stream: true })),
      );
      expect(streams.map((r) => r.status)).toEqual([200, 200, 200]);
      const res = await postJson(`${q.url}/v1/completions`, { prompt: "x", max_tokens: 2 });
      const e = await expectError(res, 503, /capacity/);
      expect(e.code).toBe("queue_full");
      expect(res.headers.get("retry-after")).toBe("1");
      // n counts as n sequences.
      for (const r of streams) await r.body!.cancel();
    } finally {
      await q.close();
    }
  });

  test("engine-side waiting limit (engine throws queue_full) → 503 + Retry-After; the openai client sees a 503", async () => {
    const q = await startTestServer({ fake: { stepMs: 5, maxNumSeqs: 1, maxWaiting: 1 } });
    try {
      const first = await postJson(`${q.url}/v1/completions`, { prompt: "x", max_tokens: 100, stream: true });
      const second = postJson(`${q.url}/v1/completions`, { prompt: "x", max_tokens: 2 });
      await Bun.sleep(20);
      const res = await postJson(`${q.url}/v1/completions`, { prompt: "x", max_tokens: 2 });
      const e = await expectError(res, 503, /waiting queue is full/);
      expect(e.code).toBe("queue_full");
      expect(res.headers.get("retry-after")).toBe("1");
      const c = new OpenAI({ baseURL: `${q.url}/v1`, apiKey: "x", maxRetries: 0 });
      const err = await c.completions.create({ model: "fake-model", prompt: "x", max_tokens: 1 }).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
      await first.body!.cancel();
      expect((await second).status).toBe(200);
    } finally {
      await q.close();
    }
  });

  test("health is 503 while starting, 200 when ready, 503 after the engine died; generation 503 meanwhile", async () => {
    const h = await startTestServer({ fake: { startupMs: 1500 }, waitReady: false });
    try {
      const r0 = await fetch(`${h.url}/health`);
      expect(r0.status).toBe(503);
      expect(await r0.json()).toEqual({ status: "starting" });
      const g = await postJson(`${h.url}/v1/completions`, { prompt: "x" });
      await expectError(g, 503, /starting/);
      await expectError(await fetch(`${h.url}/v1/models`), 503, /starting/);
      await expectError(await fetch(`${h.url}/v1/kv`), 503, /starting/);
      expect((await fetch(`${h.url}/metrics`)).status).toBe(200);
      expect(g.headers.get("retry-after")).toBe("1");
      await h.engine.ready();
      const r1 = await fetch(`${h.url}/health`);
      expect(r1.status).toBe(200);
      expect(await r1.json()).toEqual({ status: "ok" });
      h.engine.kill();
      const r2 = await fetch(`${h.url}/health`);
      expect(r2.status).toBe(503);
      expect(await r2.json()).toEqual({ status: "dead" });
      await expectError(await postJson(`${h.url}/v1/completions`, { prompt: "x" }), 503, /stopped/);
    } finally {
      await h.close();
    }
  });
});
