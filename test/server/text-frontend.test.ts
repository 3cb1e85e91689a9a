// Text lives in the frontend (the HTTP process), over real HTTP: stop strings end the text and
// abort the request in the engine, logprob records whose token contains "\n" validate (they used
// to fail the response schema: 500), the prompt-size limit answers 400 before tokenizing, a
// tokenizer that cannot load makes /health say so, and a multi-MB prompt being tokenized does not
// stall a concurrent stream.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";

import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { createEngine } from "../../src/engine/index.ts";
import { loadTextModel } from "../../src/frontend/text-model.ts";
import { defaultServeOptions, type ServeOptions } from "../../src/server/options.ts";
import { HAVE_MODELS, HF_DIR } from "../model/helpers.ts";
import { postJson, readSse, startTestServer, waitFor, type TestServer } from "./helpers.ts";

describe("stop strings and logprobs on the frontend (fake engine, demo byte tokenizer)", () => {
  let s: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    s = await startTestServer({ fake: { passage: "Once upon a time.\nThe end.\nMore\n" } });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none" });
  });
  afterAll(async () => await s.close());

  test("a stop string ends the text and aborts the request in the engine", async () => {
    const r = await postJson(
      `${s.url}/v1/completions`,
      { prompt: "x", stop: ["The end"], max_tokens: 200, temperature: 0 },
      { "x-request-id": "stop-1" },
    );
    expect(r.status).toBe(200);
    const body = (await r.json()) as { choices: { text: string; finish_reason: string }[]; usage: { completion_tokens: number } };
    expect(body.choices[0]!.text).toBe("Once upon a time.\n");
    expect(body.choices[0]!.finish_reason).toBe("stop");
    expect(body.usage.completion_tokens).toBe("Once upon a time.\nThe end".length);
    await waitFor(() => s.engine.aborted.includes("stop-1-0"), 2000, "the engine to see the abort");
    await waitFor(async () => (await s.engine.stats()).blocksUsed === 0, 2000, "blocks freed");
  });

  test("streaming: no chunk ever carries text past the stop string", async () => {
    const r = await postJson(`${s.url}/v1/chat/completions`, {
      messages: [{ role: "user", content: "hi" }],
      stop: "end.",
      max_tokens: 200,
      temperature: 0,
      stream: true,
    });
    const chunks = (await readSse(r)).filter((c) => c !== "[DONE]") as {
      choices: { delta: { content?: string }; finish_reason: string | null }[];
    }[];
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(text).toBe("Once upon a time.\nThe ");
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("stop");
  });

  test('logprobs whose tokens contain "\\n": 200 with the newline as a token and key (was a 500)', async () => {
    const r = await client.completions.create({ model: "fake-model", prompt: "x", max_tokens: 20, temperature: 0, logprobs: 2 });
    const lp = r.choices[0]!.logprobs!;
    expect(r.choices[0]!.text).toBe("Once upon a time.\nTh");
    expect(lp.tokens).toContain("\n");
    expect(lp.tokens!.join("")).toBe(r.choices[0]!.text);
    const nl = lp.tokens!.indexOf("\n");
    expect(Object.keys(lp.top_logprobs![nl]!)).toContain("\n");
    expect(lp.text_offset![nl]).toBe("Once upon a time.".length);
    const c = await client.chat.completions.create({
      model: "fake-model",
      messages: [{ role: "user", content: "x" }],
      max_tokens: 20,
      temperature: 0,
      logprobs: true,
      top_logprobs: 2,
    });
    expect(c.choices[0]!.logprobs!.content!.map((t) => t.token)).toContain("\n");
  });

  test("prompt-size limit: 400 before tokenizing, naming the limit", async () => {
    const q = await startTestServer({ options: { maxPromptChars: 200 } });
    try {
      for (const [route, body] of [
        ["/v1/completions", { prompt: "y".repeat(201) }],
        ["/v1/completions", { prompt: ["y".repeat(120), "z".repeat(120)] }],
        ["/v1/chat/completions", { messages: [{ role: "user", content: "y".repeat(201) }] }],
      ] as const) {
        const r = await postJson(`${q.url}${route}`, body);
        expect(r.status).toBe(400);
        const e = (await r.json()) as { error: { message: string; code: string; type: string } };
        expect(e.error.code).toBe("prompt_too_long");
        expect(e.error.type).toBe("invalid_request_error");
        expect(e.error.message).toContain("200 characters");
      }
      expect((await postJson(`${q.url}/v1/completions`, { prompt: "y".repeat(200), max_tokens: 1 })).status).toBe(200);
      expect(q.engine.requests.length).toBe(1);
    } finally {
      await q.close();
    }
  });
});

test("chat logprobs: a token that is part of a character reports its own raw bytes", async () => {
  const s = await startTestServer({ fake: { passage: "é!" } });
  try {
    const r = await postJson(`${s.url}/v1/chat/completions`, {
      messages: [{ role: "user", content: "x" }],
      max_tokens: 3,
      temperature: 0,
      logprobs: true,
      top_logprobs: 1,
    });
    expect(r.status).toBe(200);
    const body = (await r.json()) as {
      choices: { message: { content: string }; logprobs: { content: { token: string; bytes: number[] }[] } }[];
    };
    expect(body.choices[0]!.message.content).toBe("é!");
    expect(body.choices[0]!.logprobs.content.map((c) => c.bytes)).toEqual([[0xc3], [0xa9], [0x21]]);
    expect(body.choices[0]!.logprobs.content.flatMap((c) => c.bytes)).toEqual(Array.from(new TextEncoder().encode("é!")));
  } finally {
    await s.close();
  }
});

test.skipIf(!HAVE_MODELS)("the model's chat template renders in the frontend; one that refuses the conversation is a 400", async () => {
  // stories260K-hf's tokenizer with a Llama-2-style template that insists on alternating roles
  const dir = mkdtempSync(join(tmpdir(), "headroom-tmpl-"));
  for (const f of ["config.json", "tokenizer.json"]) copyFileSync(join(HF_DIR, f), join(dir, f));
  const cfg = JSON.parse(readFileSync(join(HF_DIR, "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
  cfg.chat_template =
    "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}" +
    "{{ '[' + m['role'] + '] ' + m['content'] + '\\n' }}{% endfor %}{{ '[assistant] ' }}";
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(cfg));
  const s = await startTestServer({ options: { model: dir } });
  try {
    const ok = await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: "user", content: "Hi" }], max_tokens: 1 });
    expect(ok.status).toBe(200);
    const tok = loadTextModel(dir).tokenizer;
    expect(s.engine.requests.at(-1)!.promptTokenIds).toEqual(tok.encode("[user] Hi\n[assistant] "));
    const bad = await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: "assistant", content: "Hi" }] });
    expect(bad.status).toBe(400);
    const e = (await bad.json()) as { error: { message: string; code: string; param: string } };
    expect(e.error.code).toBe("chat_template_error");
    expect(e.error.param).toBe("messages");
    expect(e.error.message).toContain("roles must alternate");
  } finally {
    await s.close();
  }
});

test("a tokenizer that cannot load: /health 503 dead, generation 503 naming the tokenizer", async () => {
  const s = await startTestServer({ options: { model: "/nonexistent/model.gguf" }, waitReady: false });
  try {
    await s.engine.ready();
    await s.server.app.ctx.text.start().catch(() => {});
    const h = await fetch(`${s.url}/health`);
    expect(h.status).toBe(503);
    expect(await h.json()).toEqual({ status: "dead" });
    const r = await postJson(`${s.url}/v1/completions`, { prompt: "x" });
    expect(r.status).toBe(503);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/tokenizer.*nonexistent/);
  } finally {
    await s.close();
  }
});

describe("a multi-MB prompt being tokenized does not stall a running stream (real engine, demo model)", () => {
  test("inter-token gaps of a concurrent stream stay far below the tokenization time", async () => {
    const big = "Once upon a time, there was a little girl named Lily. She loved to play outside. ".repeat(15000); // ~1.2 MB
    // The reference: how long this prompt takes to tokenize (here, blocking this thread once).
    const tok = loadTextModel(null).tokenizer;
    const t0 = performance.now();
    const n = tok.encode(big).length;
    const tokenizeMs = performance.now() - t0;
    expect(n).toBe(big.length + 1);

    const options: ServeOptions = {
      ...defaultServeOptions(),
      host: "127.0.0.1",
      port: 0,
      model: null,
      device: "cpu",
      deviceMemory: 128 * 2 ** 20,
      maxModelLen: 2048,
      maxNumSeqs: 4,
      maxPromptChars: 8 * 2 ** 20,
    };
    const engine = createEngine(options);
    await engine.ready();
    const s = await startTestServer({ engine, options });
    try {
      const ac = new AbortController();
      const res = await fetch(`${s.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "x", max_tokens: 2000, ignore_eos: true, stream: true }),
        signal: ac.signal,
      });
      const reader = res.body!.getReader();
      const arrivals: number[] = [];
      let reading = true;
      const pump = (async () => {
        while (reading) {
          const r = await reader.read().catch(() => ({ done: true as const, value: undefined }));
          if (r.done) break;
          arrivals.push(performance.now());
        }
      })();
      await waitFor(() => arrivals.length >= 10, 10_000, "the stream to start");

      const h0 = performance.now();
      const huge = await postJson(`${s.url}/v1/completions`, { prompt: big, max_tokens: 1 });
      const h1 = performance.now();
      // Tokenized (on a worker), then refused: far longer than the context.
      expect(huge.status).toBe(400);
      expect(((await huge.json()) as { error: { code: string } }).error.code).toBe("context_length_exceeded");
      reading = false;
      ac.abort();
      await pump;

      const during = arrivals.filter((t) => t >= h0 && t <= h1);
      let maxGap = 0;
      for (let i = 1; i < arrivals.length; i++)
        if (arrivals[i]! > h0 && arrivals[i - 1]! < h1) maxGap = Math.max(maxGap, arrivals[i]! - arrivals[i - 1]!);
      console.log(
        `[text-frontend] tokenize ${tokenizeMs.toFixed(0)} ms; huge request ${(h1 - h0).toFixed(0)} ms; ${during.length} chunks meanwhile; max gap ${maxGap.toFixed(1)} ms`,
      );
      // The huge request really took about the tokenization time, and the stream kept flowing
      // meanwhile (tokenizing on the HTTP thread or in the engine stalls it for all of that time).
      expect(h1 - h0).toBeGreaterThan(tokenizeMs / 3);
      expect(during.length).toBeGreaterThan(5);
      // A stall would be one gap as long as the whole tokenization as it ran in the server (h1 - h0;
      // under load it runs longer than the solo measurement), so bound the gap by a fraction of it.
      expect(maxGap).toBeLessThan(Math.max(tokenizeMs, h1 - h0) / 5);
    } finally {
      await s.close();
    }
  }, 120_000);
});
