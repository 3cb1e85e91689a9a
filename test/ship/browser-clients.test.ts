// Browser clients in headless Chromium (Debian `chromium` + playwright-core), against the real
// HTTP server: Swagger UI's "Try it out" on the generation routes, executed as shipped, answers
// 200 for the served model; and a page on another origin can call the API (bearer key included)
// only when --allowed-origins names its origin.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import type { Browser } from "playwright-core";
import { startTestServer, type TestServer } from "../server/helpers.ts";

const CHROMIUM = process.env.HEADROOM_CHROMIUM ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`skipped: browser client tests: ${CHROMIUM} not found (apt-get install -y chromium)`);

const KEY = "browser-clients-key";
let browser: Browser | null = null;
let s: TestServer | null = null;
// A second origin (another port) serving a page whose script calls the API.
let other: ReturnType<typeof Bun.serve> | null = null;

describe.skipIf(!haveChromium)("browser clients", () => {
  beforeAll(async () => {
    other = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Response("<!doctype html><title>app</title>", { headers: { "content-type": "text/html" } }),
    });
    s = await startTestServer({ options: { apiKey: KEY, servedModelName: "try-me", allowedOrigins: `http://127.0.0.1:${other.port}` } });
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close().catch(() => {});
    await s?.close();
    other?.stop(true);
  });

  test("Swagger 'Try it out' on both generation routes, executed as shipped, answers 200", async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 1000 } });
    try {
      await page.goto(`${s!.url}/swagger`);
      // Authorize with the API key, as a user would.
      await page.locator("button.authorize").first().click();
      await page.locator(".auth-container input").first().fill(KEY);
      await page.locator(".auth-btn-wrapper button.authorize").click();
      await page.locator("button.btn-done").click();
      for (const path of ["/v1/completions", "/v1/chat/completions"]) {
        const op = page.locator(".opblock-post", { has: page.locator(`.opblock-summary-path[data-path="${path}"]`) });
        await op.locator(".opblock-summary").first().click();
        await op.locator("button.try-out__btn").click();
        const body = await op.locator("textarea.body-param__text").inputValue();
        expect(JSON.parse(body).model).toBe("try-me");
        await op.locator("button.execute").click();
        const status = op.locator(".live-responses-table tr.response .response-col_status").first();
        await status.waitFor({ timeout: 20_000 });
        expect((await status.textContent())!.trim()).toBe("200");
      }
    } finally {
      await page.close();
    }
  }, 90_000);

  async function callFrom(origin: string): Promise<{ ok: boolean; status?: number; model?: string; error?: string }> {
    const page = await browser!.newPage();
    try {
      await page.goto(origin);
      return await page.evaluate(
        async ([url, key]) => {
          try {
            const r = await fetch(`${url}/v1/completions`, {
              method: "POST",
              headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
              body: JSON.stringify({ prompt: "hi", max_tokens: 2 }),
            });
            const j = (await r.json()) as { model: string };
            return { ok: true, status: r.status, model: j.model };
          } catch (e) {
            return { ok: false, error: String(e) };
          }
        },
        [s!.url, KEY] as const,
      );
    } finally {
      await page.close();
    }
  }

  test("a page on an allowed origin calls the API with its bearer key (preflight + CORS response)", async () => {
    expect(await callFrom(`http://127.0.0.1:${other!.port}/`)).toEqual({ ok: true, status: 200, model: "try-me" });
  }, 30_000);

  test("a page on another origin cannot (the browser blocks it)", async () => {
    // localhost ≠ 127.0.0.1 as an origin: same server, origin not in the list.
    const r = await callFrom(`http://localhost:${other!.port}/`);
    expect(r.ok).toBe(false);
    expect(r.error).toContain("Failed to fetch");
  }, 30_000);
});
