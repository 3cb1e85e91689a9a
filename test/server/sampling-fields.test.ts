// Request fields beyond OpenAI's basics (vLLM's min_tokens, skip_special_tokens,
// include_stop_str_in_output; OpenAI's logit_bias) over loopback HTTP: the text-side ones on
// the fake engine (byte tokens: exact strings), the sampling ones on the real engine and
// stories260K (the bias must move the real sampler).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

import { createEngine } from "../../src/engine/index.ts";
import { loadTextModel } from "../../src/frontend/text-model.ts";
import { defaultServeOptions, type ServeOptions } from "../../src/server/options.ts";
import { PASSAGE } from "./fake-engine.ts";
import { startTestServer, type TestServer } from "./helpers.ts";

const MODELS = process.env.HEADROOM_MODELS_DIR ?? resolve(import.meta.dir, "../../../shared/models");
const GGUF = resolve(MODELS, "stories260K/stories260K.gguf");
const HAVE = existsSync(GGUF);
if (!HAVE) console.warn("[sampling-fields] stories260K tests skipped: ../shared/models not found");

describe("include_stop_str_in_output (fake engine)", () => {
  let s: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    s = await startTestServer({ fake: { maxModelLen: 256 } });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "x", maxRetries: 0 });
  });
  afterAll(async () => await s.close());

  const create = (extra: Record<string, unknown>) =>
    client.completions.create({
      model: "fake-model",
      prompt: "x",
      max_tokens: 40,
      temperature: 0,
      ...extra,
    } as never) as unknown as Promise<OpenAI.Completion>;

  test("a stop string is kept at the end of the text, streamed and not", async () => {
    const at = PASSAGE.indexOf("little");
    expect((await create({ stop: ["little"] })).choices[0]!.text).toBe(PASSAGE.slice(0, at));
    const kept = await create({ stop: ["little"], include_stop_str_in_output: true });
    expect(kept.choices[0]!.text).toBe(PASSAGE.slice(0, at + "little".length));
    expect(kept.choices[0]!.finish_reason).toBe("stop");
    const stream = await client.completions.create({
      model: "fake-model",
      prompt: "x",
      max_tokens: 40,
      temperature: 0,
      stop: ["little"],
      stream: true,
      include_stop_str_in_output: true,
    } as never);
    let text = "";
    for await (const c of stream as unknown as AsyncIterable<OpenAI.Completion>) text += c.choices[0]?.text ?? "";
    expect(text).toBe(PASSAGE.slice(0, at + "little".length));
  });

  test("a stop token id's text is kept too", async () => {
    const u = "u".charCodeAt(0); // byte tokens: id = byte
    expect((await create({ stop_token_ids: [u] })).choices[0]!.text).toBe("Once ");
    expect((await create({ stop_token_ids: [u], include_stop_str_in_output: true })).choices[0]!.text).toBe("Once u");
  });
});

describe.skipIf(!HAVE)("logit_bias, min_tokens, skip_special_tokens (real engine, stories260K)", () => {
  let s: TestServer;
  let client: OpenAI;
  const tok = HAVE ? loadTextModel(GGUF).tokenizer : null;
  beforeAll(async () => {
    const options: ServeOptions = {
      ...defaultServeOptions(),
      host: "127.0.0.1",
      port: 0,
      device: "cpu",
      deviceMemory: 256 * 2 ** 20,
      maxModelLen: 128,
      maxNumSeqs: 8,
      maxNumBatchedTokens: 128,
      model: GGUF,
      servedModelName: "stories",
    };
    const engine = createEngine(options);
    await engine.ready();
    s = await startTestServer({ engine, options });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "x", maxRetries: 0 });
  });
  afterAll(async () => await s?.close());

  const create = (extra: Record<string, unknown>) =>
    client.completions.create({
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 6,
      temperature: 0,
      ...extra,
    } as never) as unknown as Promise<OpenAI.Completion>;

  test("+100 forces a token, -100 bans the greedy one", async () => {
    const girl = tok!.encode(" girl", { addBos: false });
    const forced = await create({ logit_bias: { [String(girl[0])]: 100 }, logprobs: 0 });
    const piece = forced.choices[0]!.logprobs!.tokens![0]!;
    expect(forced.choices[0]!.logprobs!.tokens).toEqual(Array(6).fill(piece));
    expect(forced.choices[0]!.text).toBe(piece.repeat(6));
    expect(tok!.decode([girl[0]!])).toBe(piece.trim());
    const plain = await create({});
    const generated = (text: string) => tok!.encode("Once upon a time" + text).slice(tok!.encode("Once upon a time").length);
    const first = generated(plain.choices[0]!.text)[0]!;
    const banned = await create({ logit_bias: { [String(first)]: -100 } });
    expect(generated(banned.choices[0]!.text)[0]).not.toBe(first);
    expect(banned.choices[0]!.text).not.toBe(plain.choices[0]!.text);
    // Sampled (temperature 1) as well: the bias acts before sampling.
    const sampled = await create({ temperature: 1, seed: 3, logit_bias: { [String(girl[0])]: 100 } });
    expect(sampled.choices[0]!.text).toBe(piece.repeat(6));
  });

  test("min_tokens: a stop token id is banned until then", async () => {
    const girl = String(tok!.encode(" girl", { addBos: false })[0]);
    const stop = await create({ logit_bias: { [girl]: 100 }, stop_token_ids: [Number(girl)] });
    expect(stop.choices[0]!.finish_reason).toBe("stop");
    expect(stop.usage!.completion_tokens).toBe(1);
    const late = await create({ logit_bias: { [girl]: 100 }, stop_token_ids: [Number(girl)], min_tokens: 3 });
    expect(late.choices[0]!.finish_reason).toBe("stop");
    expect(late.usage!.completion_tokens).toBe(4);
  });

  test("echo + logprobs: the prompt's logprobs equal the sampled logprobs of the same tokens", async () => {
    const prompt = "Once upon a time";
    const first = await create({ prompt, max_tokens: 5, logprobs: 2 });
    const generated = first.choices[0]!.text;
    const lp1 = first.choices[0]!.logprobs!;
    // Score prompt + generated text as a prompt: its last 5 prompt logprobs are the sampled ones.
    const echo = await create({ prompt: prompt + generated, max_tokens: 1, logprobs: 2, echo: true });
    const lp2 = echo.choices[0]!.logprobs!;
    const n = tok!.encode(prompt + generated).length;
    expect(echo.usage!.prompt_tokens).toBe(n);
    expect(lp2.tokens).toHaveLength(n + 1);
    expect(lp2.token_logprobs![0]).toBeNull();
    expect(lp2.top_logprobs![0]).toBeNull();
    const tail = lp2.token_logprobs!.slice(n - 5, n) as number[];
    tail.forEach((v, i) => expect(v).toBeCloseTo(lp1.token_logprobs![i]!, 4));
    expect(lp2.tokens!.slice(n - 5, n)).toEqual(lp1.tokens!);
    expect(Object.keys(lp2.top_logprobs![n - 1]!).length).toBeGreaterThanOrEqual(1);
    // Offsets index the echoed text; the text is prompt + completion.
    const text = echo.choices[0]!.text;
    expect(text.startsWith(prompt + generated)).toBe(true);
    lp2.tokens!.forEach((t, i) => expect(text.slice(lp2.text_offset![i]!, lp2.text_offset![i]! + t.length)).toBe(t));
    // Streamed: the same logprobs, the echo in the first chunk.
    const stream = await client.completions.create({
      model: "stories",
      prompt: prompt + generated,
      max_tokens: 1,
      temperature: 0,
      logprobs: 2,
      echo: true,
      stream: true,
    });
    const got: (number | null)[] = [];
    let streamed = "";
    for await (const c of stream) {
      streamed += c.choices[0]?.text ?? "";
      got.push(...(c.choices[0]?.logprobs?.token_logprobs ?? []));
    }
    expect(streamed).toBe(text);
    expect(got).toEqual(lp2.token_logprobs!);
  });

  test("prompt logprobs of a prompt longer than a step's logits rows (chunked), next to other requests", async () => {
    const prompt = "Once upon a time there was a little girl named Lily. She loved to play outside in the park with her friends every day.";
    const [a, b] = await Promise.all([
      create({ prompt, max_tokens: 1, logprobs: 0, echo: true }),
      create({ prompt: "Lily", max_tokens: 4 }),
    ]);
    const n = tok!.encode(prompt).length;
    expect(n).toBeGreaterThan(8); // more than maxNumSeqs logits rows in one step
    const lps = a.choices[0]!.logprobs!.token_logprobs!;
    expect(lps).toHaveLength(n + 1);
    expect(lps.slice(1).every((v) => typeof v === "number" && v <= 0)).toBe(true);
    expect(b.choices[0]!.text.length).toBeGreaterThan(0);
    // The same prompt again, alone (its blocks are in the prefix cache, other chunk boundaries): the same logprobs.
    const again = await create({ prompt, max_tokens: 1, logprobs: 0, echo: true });
    const lps2 = again.choices[0]!.logprobs!.token_logprobs!;
    expect(lps2).toHaveLength(n + 1);
    lps2.slice(1).forEach((v, i) => expect(v!).toBeCloseTo(lps[i + 1]!, 3));
  });

  test("skip_special_tokens: false shows special tokens in the text", async () => {
    const bos = tok!.bosTokenId!;
    const hidden = await create({ logit_bias: { [String(bos)]: 100 }, max_tokens: 2 });
    expect(hidden.choices[0]!.text).toBe("");
    expect(hidden.usage!.completion_tokens).toBe(2);
    const shown = await create({ logit_bias: { [String(bos)]: 100 }, max_tokens: 2, skip_special_tokens: false });
    expect(shown.choices[0]!.text).toBe(tok!.decode([bos, bos], { skipSpecialTokens: false }));
    expect(shown.choices[0]!.text).toContain("<s>");
  });
});
