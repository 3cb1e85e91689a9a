// A quantized file served over real HTTP gives llama.cpp's greedy tokens: the Q4_K_M file of the
// oracle rows (stories260K zero-padded, llama-quantize's mixture) loaded by the real server
// (engine worker, CPU backend, the weights kept quantized), /v1/completions at temperature 0 for
// MIN_COMPARED_STEPS tokens, against node-llama-cpp's greedy continuation of the same prompt.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { createEngine } from "../../src/engine/index.ts";
import { defaultServeOptions, type ServeOptions } from "../../src/server/options.ts";
import { HAVE_MODELS, MODELS_DIR } from "../model/helpers.ts";
import { postJson, startTestServer, type TestServer } from "../server/helpers.ts";
import { writePaddedStoriesAs } from "../util/quant-models.ts";
import { MIN_COMPARED_STEPS, QUANT_PROMPTS, QUANT_ROWS, QUANT_TOL, TOP_K } from "./cases.ts";
import type { Continuation } from "./compare.ts";
import { loadOracle, openInLlamaCpp } from "./llama-cpp.ts";

const oracle = await loadOracle();
const skip = typeof oracle === "string" ? oracle : !HAVE_MODELS ? `../shared/models not found (${MODELS_DIR})` : null;
if (skip) console.warn(`[oracle: serve quantized] skipped: ${skip}`);

const MiB = 2 ** 20;
const PROMPT = QUANT_PROMPTS[QUANT_ROWS.find((r) => r.mix === "Q4_K_M")!.prompt]!; // the oracle row's prompt
const STEPS = MIN_COMPARED_STEPS;

describe.skipIf(skip !== null)("a Q4_K_M file served over HTTP continues as llama.cpp does", () => {
  const tmp = mkdtempSync(join(tmpdir(), "headroom-serve-quant-"));
  const path = join(tmp, "stories260K-padded-Q4_K_M.gguf");
  let server: TestServer;
  let ref: { ids: number[]; run: Continuation; text: string };

  beforeAll(async () => {
    if (typeof oracle === "string") throw new Error(oracle);
    writePaddedStoriesAs(join(MODELS_DIR, "stories260K/stories260K.gguf"), path, "Q4_K_M");
    const llama = await openInLlamaCpp(oracle, path, 256);
    try {
      const ids = llama.tokenize(PROMPT);
      const run = await llama.greedy([llama.model.tokens.bos as number, ...ids], STEPS, TOP_K);
      ref = { ids, run, text: llama.model.detokenize([...ids, ...run.tokens].map((t) => t as never)) };
    } finally {
      await llama.dispose();
    }
    const options: ServeOptions = {
      ...defaultServeOptions(),
      host: "127.0.0.1",
      port: 0,
      model: path,
      servedModelName: "q4km",
      device: "cpu",
      deviceMemory: 256 * MiB,
      maxModelLen: 256,
      maxNumSeqs: 4,
      maxNumBatchedTokens: 256,
    };
    const engine = createEngine(options);
    await engine.ready();
    server = await startTestServer({ engine, options });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test(`/v1/completions, temperature 0, ${STEPS} tokens: llama.cpp's greedy text and chosen-token logprobs`, async () => {
    const res = await postJson(`${server.url}/v1/completions`, {
      model: "q4km",
      prompt: PROMPT,
      max_tokens: STEPS,
      temperature: 0,
      logprobs: 1,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      choices: { text: string; finish_reason: string; logprobs: { token_logprobs: number[] } }[];
      usage: { prompt_tokens: number; completion_tokens: number };
    };
    const choice = body.choices[0]!;
    expect(body.usage).toMatchObject({ prompt_tokens: ref.ids.length + 1, completion_tokens: STEPS }); // BOS + prompt
    expect(choice.finish_reason).toBe("length");
    // llama.cpp's detokenization of prompt + greedy ids is the prompt plus the served text
    expect(PROMPT + choice.text).toBe(ref.text);
    const lp = choice.logprobs.token_logprobs;
    expect(lp.length).toBe(STEPS);
    let worst = 0;
    lp.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - ref.run.top[i]![0]!.logprob))));
    console.log(
      `[oracle] served Q4_K_M: ${STEPS} tokens equal to llama.cpp's, max |Δ logprob| of the chosen tokens ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThanOrEqual(QUANT_TOL.Q4_K_M!);
  });
});
