// The official `openai` npm client against the real server over loopback HTTP.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { PASSAGE } from "./fake-engine.ts";
import { postJson, readSse, startTestServer, type TestServer } from "./helpers.ts";

let s: TestServer;
let client: OpenAI;

beforeAll(async () => {
  s = await startTestServer({ fake: { id: "fake-model", maxModelLen: 256 } });
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
afterAll(async () => {
  await s.close();
});

describe("openai client", () => {
  test("models.list and models.retrieve", async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(["fake-model"]);
    expect(list.data[0]!.object).toBe("model");
    const m = await client.models.retrieve("fake-model");
    expect(m.id).toBe("fake-model");
  });

  test("completions: greedy, exact shape and usage", async () => {
    const r = await client.completions.create({ model: "fake-model", prompt: "Hello", max_tokens: 8, temperature: 0 });
    expect(r.id).toMatch(/^cmpl-[0-9a-f]{32}$/);
    expect(r.object).toBe("text_completion");
    expect(r.model).toBe("fake-model");
    expect(typeof r.created).toBe("number");
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0]!.index).toBe(0);
    expect(r.choices[0]!.text).toBe(PASSAGE.slice(0, 8));
    expect(r.choices[0]!.finish_reason).toBe("length");
    expect(r.choices[0]!.logprobs).toBeNull();
    // "Hello" = 5 bytes + BOS
    expect(r.usage).toEqual({ prompt_tokens: 6, completion_tokens: 8, total_tokens: 14 });
  });

  test("completions: list prompt × n, seed reproducible, choices differ", async () => {
    const req = { model: "fake-model", prompt: ["a", "bb"], max_tokens: 6, n: 3, temperature: 1, seed: 7 };
    const r = await client.completions.create(req);
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(new Set(r.choices.map((c) => c.text)).size).toBeGreaterThan(1);
    const again = await client.completions.create(req);
    expect(again.choices.map((c) => c.text)).toEqual(r.choices.map((c) => c.text));
    expect(r.usage).toEqual({ prompt_tokens: 2 + 3, completion_tokens: 36, total_tokens: 41 });
  });

  test("completions: token-id prompt, echo, stop string and list", async () => {
    const ids = await client.completions.create({ model: "fake-model", prompt: [256, 72, 105], max_tokens: 4, temperature: 0 });
    expect(ids.choices[0]!.text).toBe("Once");
    expect(ids.usage?.prompt_tokens).toBe(3);
    const echo = await client.completions.create({ model: "fake-model", prompt: "Hi ", echo: true, max_tokens: 4, temperature: 0 });
    expect(echo.choices[0]!.text).toBe("Hi Once");
    const stop = await client.completions.create({ model: "fake-model", prompt: "x", stop: "time", max_tokens: 50, temperature: 0 });
    expect(stop.choices[0]!.text).toBe("Once upon a ");
    expect(stop.choices[0]!.finish_reason).toBe("stop");
    const stops = await client.completions.create({
      model: "fake-model",
      prompt: "x",
      stop: ["zzz", "upon"],
      max_tokens: 50,
      temperature: 0,
    });
    expect(stops.choices[0]!.text).toBe("Once ");
  });

  test("completions: logprobs", async () => {
    const r = await client.completions.create({ model: "fake-model", prompt: "x", max_tokens: 3, logprobs: 2, temperature: 0 });
    const lp = r.choices[0]!.logprobs!;
    expect(lp.tokens).toEqual(["O", "n", "c"]);
    expect(lp.token_logprobs).toEqual([-0.25, -0.25, -0.25]);
    expect(lp.text_offset).toEqual([0, 1, 2]);
    expect(Object.keys(lp.top_logprobs![0]!)).toHaveLength(2);
    expect(s.engine.requests.at(-1)!.params.logprobs).toBe(2);
  });

  test("sampling parameters reach the engine", async () => {
    await client.completions.create({
      model: "fake-model",
      prompt: "x",
      max_tokens: 2,
      temperature: 0.7,
      top_p: 0.9,
      seed: 11,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      // vLLM extensions pass through the client as extra body fields
      ...({ top_k: 5, min_p: 0.1, repetition_penalty: 1.2, stop_token_ids: [3], ignore_eos: true } as object),
    });
    const p = s.engine.requests.at(-1)!.params;
    expect(p).toMatchObject({
      temperature: 0.7,
      topP: 0.9,
      topK: 5,
      minP: 0.1,
      seed: 11,
      maxTokens: 2,
      presencePenalty: 0.5,
      frequencyPenalty: -0.5,
      repetitionPenalty: 1.2,
      stopTokenIds: [3],
      ignoreEos: true,
    });
  });

  test("completions: streaming with include_usage", async () => {
    const stream = await client.completions.create({
      model: "fake-model",
      prompt: "x",
      max_tokens: 10,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: unknown;
    let finish: string | undefined;
    for await (const c of stream) {
      expect(c.object).toBe("text_completion");
      expect(c.id).toMatch(/^cmpl-/);
      for (const ch of c.choices) {
        text += ch.text;
        if (ch.finish_reason) finish = ch.finish_reason;
      }
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe(PASSAGE.slice(0, 10));
    expect(finish).toBe("length");
    expect(usage).toEqual({ prompt_tokens: 2, completion_tokens: 10, total_tokens: 12 });
  });

  test("chat: non-streaming shape, max_completion_tokens, logprobs", async () => {
    const r = await client.chat.completions.create({
      model: "fake-model",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: [{ type: "text", text: "Hi" }] },
      ],
      max_completion_tokens: 5,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
    });
    expect(r.id).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
    expect(r.object).toBe("chat.completion");
    expect(r.choices[0]!.message.role).toBe("assistant");
    expect(r.choices[0]!.message.content).toBe("Once ");
    expect(r.choices[0]!.finish_reason).toBe("length");
    const lp = r.choices[0]!.logprobs!.content!;
    expect(lp).toHaveLength(5);
    expect(lp[0]!.token).toBe("O");
    expect(lp[0]!.bytes).toEqual([79]);
    expect(lp[0]!.top_logprobs).toHaveLength(3);
    // The frontend renders the served model's chat template (the demo model's ChatML fallback).
    const prompt = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
    expect(r.usage).toEqual({ prompt_tokens: prompt.length + 1, completion_tokens: 5, total_tokens: prompt.length + 6 });
  });

  test("chat: streaming (role first, content deltas, finish, usage), n = 2", async () => {
    const stream = await client.chat.completions.create({
      model: "fake-model",
      messages: [{ role: "user", content: "Tell me" }],
      max_tokens: 12,
      n: 2,
      seed: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    const text = ["", ""];
    const roles: (string | undefined)[] = [];
    const finish: (string | null)[] = [null, null];
    let usage: { completion_tokens: number } | null | undefined;
    for await (const c of stream) {
      expect(c.object).toBe("chat.completion.chunk");
      for (const ch of c.choices) {
        if (ch.delta.role) roles[ch.index] = ch.delta.role;
        text[ch.index] += ch.delta.content ?? "";
        if (ch.finish_reason) finish[ch.index] = ch.finish_reason;
      }
      if (c.usage) usage = c.usage;
    }
    expect(roles).toEqual(["assistant", "assistant"]);
    expect(finish).toEqual(["length", "length"]);
    expect(new TextEncoder().encode(text[0]).length).toBeLessThanOrEqual(12);
    expect(text[0]).not.toBe(text[1]);
    expect(usage!.completion_tokens).toBe(24);
  });

  test("chat: stream terminates with data: [DONE] and streams UTF-8 whole", async () => {
    // Greedy from offset 0 through the multi-byte part of the passage.
    const res = await postJson(`${s.url}/v1/chat/completions`, {
      messages: [{ role: "user", content: "x" }],
      max_tokens: 100,
      temperature: 0,
      stream: true,
    });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = await readSse(res);
    expect(events.at(-1)).toBe("[DONE]");
    const text = events
      .slice(0, -1)
      .map((e) => (e as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? "")
      .join("");
    expect(text).not.toContain("\uFFFD");
    expect(PASSAGE.startsWith(text)).toBe(true);
  });

  test("stream error after headers arrives as an error chunk, not a broken stream", async () => {
    const res = await postJson(`${s.url}/v1/completions`, { prompt: "x", max_tokens: 200, temperature: 0, stream: true });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    s.engine.kill();
    let rest = "";
    const dec = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += dec.decode(value);
    }
    expect(rest).toContain('"error"');
    expect(rest.trimEnd().endsWith("data: [DONE]")).toBe(true);
    // Replace the dead engine for any later test in this file.
    await s.close();
    s = await startTestServer();
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
});
