// The HTTP row: the same streaming workload against each server (bench/serve/workload.ts's
// bounded runner and statistics): `requests` greedy completions, at most `concurrency` in
// flight, request i with its own random prompt of token ids (so neither server reuses a cached
// prefix: each repetition gets its own prompts, see promptsForRun), max_tokens with ignore_eos, streamed (see Endpoint). Each request's
// text is kept so the two servers' outputs can be compared request by request.
import { runWorkload, type BenchConfig, type RequestTiming, type Summary } from "../serve/workload.ts";

export interface HttpWorkload {
  concurrency: number;
  requests: number;
  promptTokens: number;
  maxTokens: number;
}

export interface HttpResult extends Summary {
  /** Completion text of request i. */
  texts: string[];
  /** Why requests failed (the first few). */
  errors: string[];
}

/**
 * Token ids both systems are told never to produce (logit bias -100, the same request field on
 * both): the control tokens (llama.cpp's ignore_eos bans EOS while headroom's only keeps going)
 * and the 256 byte tokens (a lone byte is invalid UTF-8, and llama-server's output parser then
 * fails the request with HTTP 500 "does not match the expected Content-only format").
 */
export const BANNED_IDS: readonly number[] = Array.from({ length: 259 }, (_, i) => i);
export const BAN_BIAS: Record<string, number> = Object.fromEntries(BANNED_IDS.map((i) => [String(i), -100]));

/** Deterministic prompts: BOS then ids from the ordinary-piece range [259, vocab). */
export function workloadPrompts(w: HttpWorkload, vocab: number, seed = 7): number[][] {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
  return Array.from({ length: w.requests }, () => [1, ...Array.from({ length: w.promptTokens - 1 }, () => 259 + (next() % (vocab - 259)))]);
}

/**
 * The prompts of one measured run: fresh ones per repetition (both servers get the same set
 * within a repetition). Reusing a set across repetitions measures the servers' prompt caches
 * (llama-server keeps each slot's last prompt, headroom its prefix cache), not prefill: a
 * repeated prompt costs one token of prefill instead of 128. `warmUp` are a further four, for
 * the warm-up requests, which would otherwise seed the cache with the run's first prompts.
 */
export function promptsForRun(w: HttpWorkload, vocab: number, run: number): { prompts: number[][]; warmUp: number[][] } {
  const all = workloadPrompts({ ...w, requests: w.requests + 4 }, vocab, 7 + 1000 * run);
  return { prompts: all.slice(0, w.requests), warmUp: all.slice(w.requests) };
}

/**
 * Which streaming endpoint: "openai" = POST /v1/completions (headroom); "llama" = llama-server's
 * native POST /completion. llama-server's /v1/completions runs its chat-output parser on the
 * text, which rejects random-weight output (HTTP 500 "does not match the expected Content-only
 * format" mid-stream); its native endpoint streams the same tokens without that parser.
 */
export type Endpoint = "openai" | "llama";

async function streamOne(
  url: string,
  api: Endpoint,
  prompt: number[],
  maxTokens: number,
  text: (t: string) => void,
): Promise<RequestTiming> {
  const start = performance.now();
  const res = await fetch(`${url}${api === "openai" ? "/v1/completions" : "/completion"}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(
      api === "openai"
        ? {
            prompt,
            max_tokens: maxTokens,
            temperature: 0,
            ignore_eos: true,
            logit_bias: BAN_BIAS,
            stream: true,
            stream_options: { include_usage: true },
          }
        : { prompt, n_predict: maxTokens, temperature: 0, ignore_eos: true, logit_bias: BAN_BIAS, stream: true },
    ),
  });
  if (res.status !== 200)
    return { start, tokenTimes: [], tokens: 0, end: performance.now(), ok: false, error: `HTTP ${res.status}: ${await res.text()}` };
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  const times: number[] = [];
  let usage = 0;
  let buf = "";
  let all = "";
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    const now = performance.now();
    buf += dec.decode(r.value, { stream: true });
    let sep: number;
    while ((sep = buf.search(/\r?\n\r?\n/)) >= 0) {
      const ev = buf.slice(0, sep).trim();
      buf = buf.slice(sep).replace(/^\r?\n\r?\n/, "");
      if (!ev.startsWith("data:")) continue;
      const data = ev.slice(5).trim();
      if (data === "[DONE]") continue;
      const chunk = JSON.parse(data) as {
        choices?: { text?: string }[];
        usage?: { completion_tokens: number } | null;
        content?: string;
        stop?: boolean;
        tokens_predicted?: number;
        error?: unknown;
      };
      if (chunk.error) return { start, tokenTimes: times, tokens: 0, end: now, ok: false, error: JSON.stringify(chunk.error) };
      const t = api === "openai" ? chunk.choices?.[0]?.text : chunk.stop ? "" : chunk.content;
      if (t) {
        times.push(now);
        all += t;
      }
      if (chunk.usage) usage = chunk.usage.completion_tokens;
      if (chunk.stop && chunk.tokens_predicted !== undefined) usage = chunk.tokens_predicted;
    }
  }
  text(all);
  // Tokens generated: the count the server reports at the end; chunks with text otherwise.
  const tokens = usage || times.length;
  const ok = tokens === maxTokens;
  const error = ok ? undefined : `${tokens} of ${maxTokens} tokens (reported ${usage}, ${times.length} chunks with text)`;
  return { start, tokenTimes: times, tokens, end: performance.now(), ok, error };
}

export async function runHttp(
  url: string,
  api: Endpoint,
  w: HttpWorkload,
  { prompts, warmUp }: { prompts: number[][]; warmUp: number[][] },
): Promise<HttpResult> {
  // warm-up: a few short requests (connections, JIT), not counted, on prompts of their own
  await Promise.all(warmUp.map((p) => streamOne(url, api, p, 4, () => {})));
  const texts: string[] = new Array(w.requests).fill("");
  let next = 0;
  const cfg = { concurrency: w.concurrency, requests: w.requests } as BenchConfig;
  const errors: string[] = [];
  const summary = await runWorkload(cfg, async () => {
    const i = next++;
    const go = () =>
      streamOne(url, api, prompts[i]!, w.maxTokens, (t) => {
        texts[i] = t;
      });
    // A keep-alive connection the server closed as it was reused fails before any response:
    // that is the transport, not the server's generation, so the request is sent once more.
    const r = await go()
      .catch((e: Error) => (/ECONNRESET|socket connection was closed/.test(e.message) ? go() : Promise.reject(e)))
      .catch((e: Error): RequestTiming => ({ start: 0, tokenTimes: [], tokens: 0, end: 0, ok: false, error: e.message }));
    if (r.error && errors.length < 8) errors.push(`request ${i}: ${r.error}`);
    return r;
  });
  return { ...summary, texts, errors };
}

/** Request-by-request comparison of two servers' greedy outputs. */
export function compareTexts(a: string[], b: string[]): { identical: number; total: number; firstDifferent: number | null } {
  let identical = 0;
  let firstDifferent: number | null = null;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] === b[i]) identical++;
    else if (firstDifferent === null) firstDifferent = i;
  }
  return { identical, total: Math.min(a.length, b.length), firstDifferent };
}
