// GET /dashboard — a live memory dashboard: one static HTML page (src/server/dashboard.html, plain
// JS, no CDN, no build step; embedded as text so the single binary carries it) that polls
// GET /v1/memory and GET /v1/kv (with the API key typed into the page, kept in localStorage)
// and draws the device-memory breakdown, KV block usage and prefix-cache counters over time,
// and the start-up memory line.
import { Elysia } from "elysia";
import page from "./dashboard.html" with { type: "text" };

export const DASHBOARD_PATH = "/dashboard";

/** The page's HTML (a text import: a string at run time, typed as an HTML bundle by bun-types). */
export const dashboardHtml: string = page as unknown as string;

const HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-cache",
  // Everything is inline or same-origin: nothing is fetched from elsewhere.
  "content-security-policy":
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  // The page holds the API key: no other site may frame it (clickjacking).
  "x-frame-options": "DENY",
};

export function dashboardRoutes() {
  return new Elysia({ name: "headroom-dashboard" }).get(DASHBOARD_PATH, () => new Response(dashboardHtml, { headers: HEADERS }), {
    detail: { hide: true },
  });
}
