// The memory dashboard (/dashboard) in headless Chromium (Debian `chromium` + playwright-core),
// against the real server and engine (demo model, CPU backend), with an API key configured.
// Checks: the page asks for the key and then shows exactly what GET /v1/memory and GET /v1/kv
// report, and the served model name; it updates while requests run (KV blocks in use,
// prefix-cache counters, throughput, TTFT/ITL from /metrics' vllm:* series); the KV "used" line
// has its own scale; it loads nothing from other origins. Screenshot: test-artifacts/dashboard.png.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import type { Engine } from "../../src/engine/api.ts";
import { createEngine } from "../../src/engine/index.ts";
import { startServer, type RunningServer } from "../../src/server/app.ts";
import { silentLogger } from "../../src/server/log.ts";
import { defaultServeOptions, type ServeOptions } from "../../src/server/options.ts";
import { parsePrometheusText, sampleValue } from "../util/prom-text.ts";

const ROOT = resolve(import.meta.dir, "../..");
const CHROMIUM = process.env.HEADROOM_CHROMIUM ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
const haveLib = existsSync(join(ROOT, "build/libheadroom_cpu.so"));
if (!haveChromium)
  console.warn(`skipped: dashboard browser test: ${CHROMIUM} not found (apt-get install -y chromium; .ci/run installs it)`);
if (!haveLib) console.warn("skipped: dashboard browser test: build/libheadroom_cpu.so not built (run `make`)");

const KEY = "dashboard-test-key";
const CATEGORIES = [
  "other_processes",
  "weights",
  "activations",
  "non_allocator",
  "graphs",
  "allocator_slack",
  "kv_used",
  "kv_free",
  "free",
] as const;

function fmtBytes(n: number): string {
  const a = Math.abs(n);
  if (a >= 2 ** 30) return (n / 2 ** 30).toFixed(2) + " GiB";
  if (a >= 2 ** 20) return (n / 2 ** 20).toFixed(1) + " MiB";
  if (a >= 2 ** 10) return (n / 2 ** 10).toFixed(1) + " KiB";
  return n + " B";
}

let engine: Engine | null = null;
let server: RunningServer | null = null;
let browser: Browser | null = null;
let page: Page | null = null;
let model = "";
const foreign: string[] = [];
const pageErrors: string[] = [];

const auth = { authorization: `Bearer ${KEY}` };
async function api<T>(path: string): Promise<T> {
  const r = await fetch(`${server!.url}${path}`, { headers: auth });
  expect(r.status).toBe(200);
  return (await r.json()) as T;
}
async function complete(prompt: string, maxTokens: number): Promise<void> {
  const r = await fetch(`${server!.url}/v1/completions`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true }),
  });
  expect(r.status).toBe(200);
  await r.json();
}
async function until(what: string, cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}
const attr = (sel: string, name: string) => page!.locator(sel).getAttribute(name);
const text = (sel: string) => page!.locator(sel).textContent();

interface Kv {
  blocks_used: number;
  blocks_total: number;
  blocks_cached: number;
  prefix_cache_hits: number;
  prefix_cache_queries: number;
}
interface Memory {
  breakdown: Record<string, number>;
  startup_line: string;
  suggestions: { text: string };
  snapshot: { total: number };
}

describe.skipIf(!haveChromium || !haveLib)("dashboard in headless Chromium", () => {
  beforeAll(async () => {
    const options: ServeOptions = {
      ...defaultServeOptions(),
      host: "127.0.0.1",
      port: 0,
      device: "cpu",
      deviceMemory: 256 * 2 ** 20,
      apiKey: KEY,
    };
    engine = createEngine(options);
    await engine.ready();
    server = startServer({ engine, options, logger: silentLogger });
    await server.app.ctx.text.start();
    const models = (await api<{ data: { id: string }[] }>("/v1/models")).data;
    model = models[0]!.id;
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    page.on("request", (req) => {
      if (!req.url().startsWith(server!.url) && !req.url().startsWith("data:")) foreign.push(req.url());
    });
    page.on("pageerror", (e) => pageErrors.push(String(e)));
  }, 60_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await server?.stop(true);
    await engine?.close();
  });

  test("asks for the API key, then shows exactly what /v1/memory and /v1/kv report", async () => {
    const res = await page!.goto(`${server!.url}/dashboard?interval=150`);
    expect(res!.status()).toBe(200);
    expect(res!.headers()["content-security-policy"]).toContain("default-src 'none'");
    await page!.locator("#status-text", { hasText: "API key needed" }).waitFor({ timeout: 10_000 });
    await page!.fill("#apikey", KEY);
    await page!.click("#save-key");
    await page!.waitForFunction(() => Number(document.body.dataset.ticks ?? 0) >= 2, null, { timeout: 10_000 });
    expect(await page!.evaluate(() => localStorage.getItem("headroom.apiKey"))).toBe(KEY);

    const mem = await api<Memory>("/v1/memory");
    const kv = await api<Kv>("/v1/kv");
    const total = mem.snapshot.total;
    let sum = 0;
    for (const c of CATEGORIES) {
      const v = mem.breakdown[c]!;
      sum += v;
      expect(await attr(`#val-${c}`, "data-bytes")).toBe(String(v));
      expect(await text(`#val-${c}`)).toBe(fmtBytes(v));
      expect(await text(`#pct-${c}`)).toBe(`${((100 * v) / total).toFixed(1)}%`);
      expect(await attr(`#seg-${c}`, "data-bytes")).toBe(String(v));
    }
    expect(sum).toBe(total);
    // The bar's segments are as wide as their share of the device.
    const barWidth = (await page!.locator("#bar").boundingBox())!.width;
    const weightsWidth = (await page!.locator("#seg-weights").boundingBox())!.width;
    expect(Math.abs(weightsWidth - (barWidth - 2) * (mem.breakdown.weights! / total))).toBeLessThan(2);
    expect(await text("#startup-line")).toBe(mem.startup_line);
    expect(await text("#suggestion")).toBe(mem.suggestions.text);
    expect(await attr("#kv-used", "data-value")).toBe(String(kv.blocks_used));
    expect(await attr("#kv-used", "data-total")).toBe(String(kv.blocks_total));
    expect(await attr("#prefix-hits", "data-value")).toBe(String(kv.prefix_cache_hits));
    expect(await attr("#prefix-hits", "data-queries")).toBe(String(kv.prefix_cache_queries));
    expect(await text("#model")).toBe(model);
    expect(await page!.title()).toBe(`headroom · ${model}`);
  }, 40_000);

  test("updates while requests run: KV blocks in use, prefix-cache hits, charts", async () => {
    const before = await api<Kv>("/v1/kv");
    // A long shared prefix: the second round reuses the first round's cached blocks.
    const prefix = "The quick brown fox jumps over the lazy dog. ".repeat(8);
    let maxShownUsed = 0;
    let maxShownRate = 0;
    let ttftShown = false;
    let running = true;
    let shot = false;
    mkdirSync(join(ROOT, "test-artifacts"), { recursive: true });
    const watch = (async () => {
      while (running) {
        const v = Number((await attr("#kv-used", "data-value")) ?? 0);
        maxShownUsed = Math.max(maxShownUsed, v);
        maxShownRate = Math.max(maxShownRate, Number.parseFloat((await text("#gen-rate")) ?? "") || 0);
        ttftShown ||= /ms$/.test((await text("#ttft")) ?? "");
        if (!shot && v >= 16 && Number((await attr("#prefix-hits", "data-value")) ?? 0) > before.prefix_cache_hits) {
          // The picture under load (second round: KV blocks in use and prefix-cache hits) is the artifact.
          shot = true;
          await page!.screenshot({ path: join(ROOT, "test-artifacts/dashboard.png"), fullPage: true });
        }
        await Bun.sleep(40);
      }
    })();
    await Promise.all(Array.from({ length: 6 }, (_, i) => complete(prefix + `request ${i}`, 96)));
    await Promise.all(Array.from({ length: 6 }, (_, i) => complete(prefix + `again ${i}`, 48)));
    running = false;
    await watch;
    expect(maxShownUsed).toBeGreaterThan(0);
    expect(maxShownRate).toBeGreaterThan(0); // generation tokens/s while serving
    expect(ttftShown).toBe(true);

    // Idle again: the page converges to the API's figures.
    const kv = await api<Kv>("/v1/kv");
    expect(kv.prefix_cache_hits).toBeGreaterThan(before.prefix_cache_hits);
    expect(kv.prefix_cache_queries).toBeGreaterThan(before.prefix_cache_queries);
    await until(
      "the page to show the API's KV counters",
      async () =>
        (await attr("#prefix-hits", "data-value")) === String(kv.prefix_cache_hits) &&
        (await attr("#prefix-hits", "data-queries")) === String(kv.prefix_cache_queries) &&
        (await attr("#kv-used", "data-value")) === String(kv.blocks_used) &&
        (await attr("#kv-cached", "data-value")) === String(kv.blocks_cached),
    );
    const mem = await api<Memory>("/v1/memory");
    await until("the page to show the API's breakdown", async () => {
      for (const c of CATEGORIES) if ((await attr(`#val-${c}`, "data-bytes")) !== String(mem.breakdown[c])) return false;
      return true;
    });
    // Throughput and latency: the page's cumulative figures are /metrics' vllm:* series.
    const prom = parsePrometheusText(await (await fetch(`${server!.url}/metrics`)).text());
    const pv = (name: string) => sampleValue(prom, name, { model_name: model });
    await until(
      "the page to show /metrics' token and latency totals",
      async () =>
        (await attr("#gen-rate", "data-total")) === String(pv("vllm:generation_tokens_total")) &&
        (await attr("#ttft", "data-count")) === String(pv("vllm:time_to_first_token_seconds_count")) &&
        (await attr("#itl", "data-count")) === String(pv("vllm:inter_token_latency_seconds_count")),
    );
    expect(pv("vllm:time_to_first_token_seconds_count")).toBe(12);
    expect(Number(await attr("#ttft", "data-mean"))).toBeCloseTo(pv("vllm:time_to_first_token_seconds_sum") / 12, 9);
    const itlCount = pv("vllm:inter_token_latency_seconds_count");
    expect(Number(await attr("#itl", "data-mean"))).toBeCloseTo(pv("vllm:inter_token_latency_seconds_sum") / itlCount, 9);
    const genPoints = (await attr('#rate-chart polyline[data-series="generation"]', "points"))!
      .split(" ")
      .map((p) => Number(p.split(",")[1]));
    expect(Math.min(...genPoints)).toBeLessThan(Math.max(...genPoints));
    expect(await page!.locator('#latency-chart path[data-series="ttft"]').count()).toBe(1);
    expect(await page!.locator("#latency-chart circle").count()).toBeGreaterThan(1);

    // KV used has its own scale: its peak reaches at least 3/4 of the plot's height whatever the cached count.
    const usedTop = Number(await attr('#kv-chart polyline[data-series="used"]', "data-top"));
    const cachedTop = Number(await attr('#kv-chart polyline[data-series="cached"]', "data-top"));
    expect(usedTop).toBeLessThanOrEqual(Math.max(8, Math.ceil(maxShownUsed * 1.25)) + 1);
    expect(cachedTop).toBeGreaterThanOrEqual(kv.blocks_cached);
    // Cached (free) counts free blocks only: idle, every block is free, and cached ones are among them.
    expect(kv.blocks_used).toBe(0);
    expect(kv.blocks_cached).toBeGreaterThan(0);
    expect(kv.blocks_cached).toBeLessThanOrEqual(kv.blocks_total);

    // Charts: the series end at the current values; the used-blocks line went above zero.
    expect(await attr('#prefix-chart polyline[data-series="hits"]', "data-last")).toBe(String(kv.prefix_cache_hits));
    expect(await attr('#kv-chart polyline[data-series="cached"]', "data-last")).toBe(String(kv.blocks_cached));
    const usedPoints = (await attr('#kv-chart polyline[data-series="used"]', "points"))!.split(" ").map((p) => Number(p.split(",")[1]));
    expect(Math.min(...usedPoints)).toBeLessThan(Math.max(...usedPoints)); // not a flat line

    await page!.screenshot({ path: join(ROOT, `test-artifacts/dashboard${shot ? "-idle" : ""}.png`), fullPage: true });
    expect(foreign).toEqual([]);
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
