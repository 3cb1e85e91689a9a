// generation_config.json over the real server and engine (stories260K HF folder copied to a
// temp dir): an eos_token_id listed only there ends generation with finish_reason "stop", and
// its temperature / max_new_tokens become request defaults; --generation-config none ignores it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { createEngine } from "../../src/engine/index.ts";
import { EngineCore } from "../../src/engine/engine-core.ts";
import { startEngine } from "../../src/engine/startup.ts";
import { defaultServeOptions, type ServeOptions } from "../../src/server/options.ts";
import { engineOptions, greedyParams } from "../engine/engine-helpers.ts";
import { HAVE_MODELS, HF_DIR, warnIfNoModels } from "../model/helpers.ts";
import { postJson, startTestServer, type TestServer } from "./helpers.ts";

warnIfNoModels("generation-config");

const PROMPT = "Once upon a time";

// Two servers share the simulated CPU device in the last test: each takes under half.
async function serve(model: string, over: Partial<ServeOptions> = {}): Promise<TestServer> {
  const options: ServeOptions = {
    ...defaultServeOptions(),
    host: "127.0.0.1",
    port: 0,
    device: "cpu",
    deviceMemory: 256 * 2 ** 20,
    gpuMemoryUtilization: 0.45,
    maxModelLen: 256,
    maxNumSeqs: 4,
    maxNumBatchedTokens: 256,
    model,
    ...over,
  };
  const engine = createEngine(options);
  await engine.ready();
  return startTestServer({ engine, options });
}

interface Completion {
  choices: { text: string; finish_reason: string }[];
  usage: { completion_tokens: number };
}

describe.skipIf(!HAVE_MODELS)("generation_config.json", () => {
  const dir = mkdtempSync(join(tmpdir(), "headroom-genconfig-"));
  const greedyIds: number[] = [];
  let greedyText = "";
  let stopAt = -1; // index in greedyIds of the token named as an extra eos id
  let prefixText = "";
  let s: TestServer;

  beforeAll(async () => {
    cpSync(HF_DIR, dir, { recursive: true });
    // Reference: greedy ids straight from the engine core (no generation config yet).
    const started = startEngine(engineOptions(dir));
    try {
      const core = new EngineCore(started, { maxNumSeqs: 4, maxWaiting: 8, servedModelName: null });
      const prompt = started.opened.tokenizer.encode(PROMPT);
      core.add({ requestId: "ref", promptTokenIds: prompt, params: greedyParams(20) });
      while (core.hasWork()) for (const e of core.step()) greedyIds.push(...e.tokenIds);
      // The first token from the 5th on that did not occur before: generation must stop exactly there.
      stopAt = greedyIds.findIndex((id, i) => i >= 4 && !greedyIds.slice(0, i).includes(id));
      const tok = started.opened.tokenizer;
      greedyText = tok.decode(greedyIds);
      prefixText = tok.decode(greedyIds.slice(0, stopAt));
    } finally {
      started.close();
    }
    expect(stopAt).toBeGreaterThan(3);
    writeFileSync(
      join(dir, "generation_config.json"),
      JSON.stringify({ bos_token_id: 1, eos_token_id: [2, greedyIds[stopAt]], temperature: 0.0, max_new_tokens: 12, do_sample: false }),
    );
    s = await serve(dir);
  });
  afterAll(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("an eos id listed only in generation_config.json stops generation (finish_reason stop)", async () => {
    const r = (await (await postJson(`${s.url}/v1/completions`, { prompt: PROMPT, max_tokens: 20, temperature: 0 })).json()) as Completion;
    expect(r.choices[0]!.finish_reason).toBe("stop");
    expect(r.choices[0]!.text).toBe(prefixText);
    expect(r.usage.completion_tokens).toBe(stopAt + 1);
  });

  test("ignore_eos also ignores generation_config's eos ids", async () => {
    const r = (await (
      await postJson(`${s.url}/v1/completions`, { prompt: PROMPT, max_tokens: 20, temperature: 0, ignore_eos: true })
    ).json()) as Completion;
    expect(r.choices[0]!.finish_reason).toBe("length");
    expect(r.choices[0]!.text).toBe(greedyText);
  });

  test("temperature and max_new_tokens become defaults; the request's own values win", async () => {
    // No temperature: generation_config's 0.0 makes it greedy, so it stops at the same token.
    const a = (await (await postJson(`${s.url}/v1/completions`, { prompt: PROMPT, max_tokens: 20 })).json()) as Completion;
    expect(a.choices[0]!.text).toBe(prefixText);
    // No max_tokens: max_new_tokens (12) bounds the completion (stop ids off to see it).
    const b = (await (await postJson(`${s.url}/v1/completions`, { prompt: PROMPT, ignore_eos: true })).json()) as Completion;
    expect(b.usage.completion_tokens).toBe(12);
    expect(b.choices[0]!.finish_reason).toBe("length");
    const c = (await (await postJson(`${s.url}/v1/completions`, { prompt: PROMPT, ignore_eos: true, max_tokens: 3 })).json()) as Completion;
    expect(c.usage.completion_tokens).toBe(3);
  });

  test("--generation-config none: the file is ignored", async () => {
    const t = await serve(dir, { generationConfig: "none" });
    try {
      const r = (await (
        await postJson(`${t.url}/v1/completions`, { prompt: PROMPT, max_tokens: 20, temperature: 0 })
      ).json()) as Completion;
      expect(r.choices[0]!.finish_reason).toBe("length");
      expect(r.choices[0]!.text).toBe(greedyText);
    } finally {
      await t.close();
    }
  });
});
