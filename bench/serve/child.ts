// Child process of bench/serve/run.ts. Builds an engine (the fake one, or the real one through
// createEngine: its own process or a Worker, cfg.engineMode) and either serves it over HTTP or
// runs the workload directly on engine.generate.
//   bun bench/serve/child.ts serve  '<json config>'   → prints {"url": ...} then serves
//   bun bench/serve/child.ts direct '<json config>'   → prints the direct-run result JSON
import type { Engine } from "../../src/engine/api.ts";
import { startServer } from "../../src/server/app.ts";
import { loadTextModel } from "../../src/frontend/text-model.ts";
import { createEngine } from "../../src/engine/index.ts";
import { silentLogger } from "../../src/server/log.ts";
import { defaultServeOptions, parseServeOptions } from "../../src/server/options.ts";
import { FakeEngine } from "../../test/server/fake-engine.ts";
import { treeCpuUs } from "./cpu.ts";
import { runWorkload, type BenchConfig, type RequestTiming } from "./workload.ts";

const [mode, raw] = process.argv.slice(2);
const cfg = JSON.parse(raw ?? "{}") as BenchConfig;

async function makeEngine(): Promise<Engine> {
  if (cfg.engine === "fake") {
    const e = new FakeEngine({ stepMs: cfg.fakeStepMs, maxNumSeqs: cfg.concurrency, maxModelLen: 8192, blocksTotal: 1 << 20 });
    await e.ready();
    return e;
  }
  const options = parseServeOptions(cfg.serveArgs);
  const e = createEngine(options, {}, { mode: cfg.engineMode });
  await e.ready();
  return e;
}

const engine = await makeEngine();
// The engine takes token ids: tokenize here with the model's own tokenizer (the demo byte tokenizer for the fake engine).
const prompt = loadTextModel(cfg.engine === "real" ? parseServeOptions(cfg.serveArgs).model : null).tokenizer.encode(cfg.prompt);

if (mode === "direct") {
  let n = 0;
  const cpu0 = treeCpuUs(process.pid); // this process and the engine process, if any
  const result = await runWorkload(cfg, async (): Promise<RequestTiming> => {
    const t0 = performance.now();
    const times: number[] = [];
    let tokens = 0;
    const stream = engine.generate({
      requestId: `direct-${n++}`,
      promptTokenIds: prompt,
      params: {
        temperature: 0,
        topP: 1,
        topK: 0,
        minP: 0,
        maxTokens: cfg.maxTokens,
        stopTokenIds: [],
        ignoreEos: true,
        presencePenalty: 0,
        frequencyPenalty: 0,
        repetitionPenalty: 1,
      },
    });
    for await (const ev of stream) {
      if (ev.tokenIds.length > 0) {
        times.push(performance.now());
        tokens += ev.tokenIds.length;
      }
      if (ev.finishReason !== null) break;
    }
    return { start: t0, tokenTimes: times, tokens, end: performance.now(), ok: true };
  });
  const cpu = treeCpuUs(process.pid) - cpu0;
  process.stdout.write(JSON.stringify({ ...result, cpu_us: cpu }) + "\n");
  await engine.close();
  process.exit(0);
} else {
  const options = {
    ...defaultServeOptions(),
    ...(cfg.engine === "real" ? parseServeOptions(cfg.serveArgs) : {}),
    host: "127.0.0.1",
    port: 0,
  };
  const s = startServer({ engine, options, logger: silentLogger });
  await s.app.ctx.text.start();
  process.stdout.write(JSON.stringify({ url: s.url, promptTokens: prompt.length }) + "\n");
  process.on("SIGTERM", async () => {
    await s.stop(true);
    await engine.close();
    process.exit(0);
  });
}
