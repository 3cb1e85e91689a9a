// The periodic stats line (--stats-interval): written while tokens flow or sequences wait/run,
// with throughput equal to the tokens served over the interval, then once more at 0 tokens/s,
// then silence while idle.
// Real engine (stories260K on CPU) so that the engine's token counts are the ones served.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { createEngine } from "../../src/engine/index.ts";
import { defaultServeOptions, type ServeOptions } from "../../src/server/options.ts";
import { postJson, startTestServer, type TestServer } from "./helpers.ts";

const GGUF = resolve(process.env.HEADROOM_MODELS_DIR ?? resolve(import.meta.dir, "../../../shared/models"), "stories260K/stories260K.gguf");
const HAVE = existsSync(GGUF);
if (!HAVE) console.warn("[stats-log] skipped: ../shared/models/stories260K not found");

let s: TestServer;
beforeAll(async () => {
  if (!HAVE) return;
  const options: ServeOptions = {
    ...defaultServeOptions(),
    host: "127.0.0.1",
    port: 0,
    device: "cpu",
    deviceMemory: 256 * 2 ** 20,
    model: GGUF,
    maxModelLen: 256,
    maxNumBatchedTokens: 256,
    statsInterval: 0.25,
  };
  const engine = createEngine(options);
  await engine.ready();
  s = await startTestServer({ engine, options });
}, 60_000);
afterAll(async () => await s?.close());

interface Line {
  msg: string;
  event?: string;
  prompt_tokens_per_s: number;
  generation_tokens_per_s: number;
  running: number;
  waiting: number;
  kv_cache_usage_pct: number;
  prefix_cache_hit_rate_pct: number;
  interval_s: number;
}
const statsLines = () => s.logs.map((l) => JSON.parse(l) as Line).filter((l) => l.event === "stats");

test.skipIf(!HAVE)(
  "stats lines while serving, one trailing idle line, then quiet",
  async () => {
    await Bun.sleep(700); // idle: nothing is written
    expect(statsLines()).toEqual([]);
    const rs = await Promise.all(
      [0, 1, 2].map(() =>
        postJson(`${s.url}/v1/completions`, { prompt: "Once upon a time", max_tokens: 200, ignore_eos: true, temperature: 0 }),
      ),
    );
    const usage = await Promise.all(
      rs.map(async (r) => ((await r.json()) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage),
    );
    await Bun.sleep(1200);
    const lines = statsLines();
    expect(lines.length).toBeGreaterThan(0);
    const first = lines[0]!;
    expect(first.msg).toMatch(
      /^Avg prompt throughput: \d+\.\d tokens\/s, Avg generation throughput: \d+\.\d tokens\/s, Running: \d+ reqs, Waiting: \d+ reqs, KV cache usage: \d+\.\d%, Prefix cache hit rate: \d+\.\d%$/,
    );
    // tokens/s × interval adds up to the tokens served (each line rounds to 0.1 tok/s).
    const gen = lines.reduce((a, l) => a + l.generation_tokens_per_s * l.interval_s, 0);
    const prompt = lines.reduce((a, l) => a + l.prompt_tokens_per_s * l.interval_s, 0);
    const served = usage.reduce((a, u) => a + u.completion_tokens, 0);
    expect(Math.abs(gen - served)).toBeLessThan(0.1 * lines.length + 1);
    expect(Math.abs(prompt - usage.reduce((a, u) => a + u.prompt_tokens, 0))).toBeLessThan(0.1 * lines.length + 1);
    const last = lines.at(-1)!;
    expect([last.generation_tokens_per_s, last.prompt_tokens_per_s, last.running, last.waiting]).toEqual([0, 0, 0, 0]);
    const n = lines.length;
    await Bun.sleep(800);
    expect(statsLines().length).toBe(n);
  },
  20_000,
);
