// /tokenize and /detokenize (vLLM's shapes) over loopback HTTP: the demo model's byte-level
// tokenizer (id = UTF-8 byte, BOS 256) makes every expected id list exact.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { postJson, startTestServer, type TestServer } from "./helpers.ts";

let s: TestServer;
const BOS = 256;
const bytes = (text: string) => Array.from(new TextEncoder().encode(text));

beforeAll(async () => {
  s = await startTestServer({ fake: { maxModelLen: 512 }, options: { apiKey: "k" } });
});
afterAll(async () => await s.close());

const auth = { authorization: "Bearer k" };
async function call(
  path: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> & { error?: { message: string; param: unknown } } }> {
  const r = await postJson(`${s.url}${path}`, body, auth);
  return { status: r.status, body: (await r.json()) as never };
}

describe("/tokenize and /detokenize", () => {
  test("prompt: with and without special tokens; token strings", async () => {
    expect((await call("/tokenize", { prompt: "héllo" })).body).toEqual({ count: 7, max_model_len: 512, tokens: [BOS, ...bytes("héllo")] });
    expect((await call("/tokenize", { model: "fake-model", prompt: "hi", add_special_tokens: false })).body).toEqual({
      count: 2,
      max_model_len: 512,
      tokens: bytes("hi"),
    });
    const strs = await call("/tokenize", { prompt: "ab", add_special_tokens: false, return_token_strs: true });
    expect(strs.body.token_strs).toEqual(["a", "b"]);
  });

  test("messages: exactly the tokens /v1/chat/completions counts as its prompt", async () => {
    const messages = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hello ✓" },
    ];
    const t = await call("/tokenize", { messages });
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "k", maxRetries: 0 });
    const r = await client.chat.completions.create({ model: "fake-model", messages: messages as never, max_tokens: 1 });
    expect(t.body.count).toBe(r.usage!.prompt_tokens);
    const noGen = await call("/tokenize", { messages, add_generation_prompt: false });
    expect(noGen.body.count as number).toBeLessThan(t.body.count as number);
    // Round trip through /detokenize: the rendered chat text (special tokens kept).
    const d = await call("/detokenize", { tokens: t.body.tokens });
    expect(d.body.prompt).toContain("Hello ✓");
  });

  test("detokenize: ids → text; multi-byte characters; out-of-vocabulary ids are a 400", async () => {
    expect((await call("/detokenize", { tokens: bytes("ünï ✓") })).body).toEqual({ prompt: "ünï ✓" });
    const bad = await call("/detokenize", { tokens: [1, 9999] });
    expect(bad.status).toBe(400);
    expect(bad.body.error?.param).toBe("tokens");
  });

  test("400s: neither or both of prompt/messages, chat fields on a prompt, unknown fields; 401 without the key; 404 for another model", async () => {
    const cases: [unknown, string][] = [
      [{}, "prompt"],
      [{ prompt: "x", messages: [{ role: "user", content: "x" }] }, "messages"],
      [{ prompt: "x", add_generation_prompt: true }, "add_generation_prompt"],
      [{ messages: [{ role: "user", content: "x" }], add_special_tokens: true }, "add_special_tokens"],
      [{ prompt: "x", foo: 1 }, "foo"],
    ];
    for (const [body, param] of cases) {
      const r = await call("/tokenize", body);
      expect({ body, status: r.status, param: r.body.error?.param }).toEqual({ body, status: 400, param });
    }
    expect((await postJson(`${s.url}/tokenize`, { prompt: "x" })).status).toBe(401);
    expect((await postJson(`${s.url}/detokenize`, { tokens: [1] })).status).toBe(401);
    expect((await call("/detokenize", { model: "other", tokens: [1] })).status).toBe(404);
  });
});
