// bench/structured: the per-step cost of structured outputs. Decode tok/s of a batch of 16 where
// every request follows a JSON schema (xgrammar matcher advanced per token, next-token bitmask
// computed between steps, staged to the device and applied to the logits by
// hr_op_apply_token_bitmask) against the same batch unconstrained, in the same run, the same
// engine and the same step loop as the engine worker (stepAsync(): the masks are computed between
// launching the forward pass and reading the logits back).
// Greedy in both arms, so the host sampler costs the same (a mask makes a sampled row's softmax
// cheaper, which would flatter the constrained arm). Both arms decode exactly `tokens` tokens per
// request: the schema (an array of at least `tokens` items) cannot complete earlier, the free arm
// ignores EOS. Arms alternate, best of 3.
// Usage: bun bench/structured/run.ts [--model synthetic:stories15m|path.gguf] [--tokens 64] [--batch 16]
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

import type { SamplingParams } from "../../src/engine/api.ts";
import { EngineCore } from "../../src/engine/engine-core.ts";
import { startEngine } from "../../src/engine/startup.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const MiB = 2 ** 20;
const STORIES = resolve(import.meta.dir, "../../../shared/models/stories260K/stories260K.gguf");
const models = opt("model", existsSync(STORIES) ? `${STORIES},synthetic:stories15m` : "synthetic:stories15m").split(",");
const TOKENS = Number(opt("tokens", "64"));
const BATCH = Number(opt("batch", "16"));

// Items are short objects, so every step is inside a different grammar state (keys, strings,
// integers, separators), not one long string.
const SCHEMA = {
  type: "array",
  minItems: TOKENS,
  items: {
    type: "object",
    properties: { id: { type: "integer" }, ok: { type: "boolean" }, tag: { enum: ["a", "b"] } },
    required: ["id", "ok", "tag"],
  },
};

interface Arm {
  tokS: number;
  steps: number;
  msPerStep: number;
  tokens: number;
}

async function run(model: string): Promise<{ model: string; vocab: number; free: Arm; constrained: Arm; slowdown: number }> {
  const s = startEngine(
    {
      model,
      device: "cpu",
      deviceMemory: 2 * 1024 * MiB,
      gpuMemoryUtilization: 0.9,
      kvCacheMemoryBytes: 256 * MiB,
      maxModelLen: 1024,
      maxNumSeqs: BATCH,
      maxNumBatchedTokens: 1024,
      blockSize: 16,
      enforceEager: true,
    } as Parameters<typeof startEngine>[0],
    () => {},
  );
  try {
    const core = new EngineCore(s, { maxNumSeqs: BATCH, maxWaiting: BATCH, servedModelName: null });
    const base: SamplingParams = {
      temperature: 0,
      topP: 1,
      topK: 0,
      minP: 0,
      seed: 1,
      maxTokens: TOKENS,
      stopTokenIds: [],
      ignoreEos: false,
      presencePenalty: 0,
      frequencyPenalty: 0,
      repetitionPenalty: 1,
    };
    let round = 0;
    const arm = async (constrained: boolean): Promise<Arm> => {
      round++;
      for (let i = 0; i < BATCH; i++) {
        const params: SamplingParams = constrained
          ? { ...base, structured: { type: "json_schema", schema: SCHEMA } }
          : { ...base, ignoreEos: true };
        await core.addAsync({ requestId: `r${round}-${i}`, promptTokenIds: [1, 10 + i, 20 + i, 30], params });
      }
      await core.stepAsync(); // prefill (not timed)
      let tokens = 0,
        steps = 0;
      const t0 = performance.now();
      while (core.hasWork()) {
        for (const e of await core.stepAsync()) tokens += e.tokenIds.length;
        steps++;
      }
      const sec = (performance.now() - t0) / 1000;
      return { tokS: tokens / sec, steps, msPerStep: (1000 * sec) / steps, tokens };
    };
    await arm(true); // warm-up: compiles the grammar (cached afterwards), JIT
    await arm(false);
    let free: Arm | null = null,
      con: Arm | null = null;
    for (let rep = 0; rep < 3; rep++) {
      const f = await arm(false);
      const c = await arm(true);
      if (!free || f.tokS > free.tokS) free = f;
      if (!con || c.tokS > con.tokS) con = c;
    }
    return { model, vocab: s.opened.config.vocabSize, free: free!, constrained: con!, slowdown: 1 - con!.tokS / free!.tokS };
  } finally {
    s.close();
  }
}

const rows = [];
for (const m of models) rows.push(await run(m));
console.log(`structured outputs, batch ${BATCH}, ${TOKENS} decode tokens per request (CPU backend)`);
console.log("model | vocab | free tok/s | constrained tok/s | ms/step free | ms/step constrained | slowdown");
for (const r of rows) {
  console.log(
    `${r.model.split("/").at(-1)} | ${r.vocab} | ${r.free.tokS.toFixed(0)} | ${r.constrained.tokS.toFixed(0)} | ${r.free.msPerStep.toFixed(2)} | ${r.constrained.msPerStep.toFixed(2)} | ${(100 * r.slowdown).toFixed(1)}%`,
  );
}
mkdirSync(resolve(import.meta.dir, "../out"), { recursive: true });
writeFileSync(resolve(import.meta.dir, "../out/structured.json"), JSON.stringify({ batch: BATCH, tokens: TOKENS, rows }, null, 2));
