// The tokenizer worker pool: same ids as tokenizing on this thread (prompts and chat
// templates), many jobs in flight across workers, load failures reported, and this thread
// stays responsive while a worker tokenizes a large prompt.
import { afterAll, describe, expect, test } from "bun:test";

import { loadTextModel } from "../../src/frontend/text-model.ts";
import { TokenizerPool } from "../../src/frontend/tokenizer-pool.ts";
import { GGUF_PATH, HAVE_MODELS } from "./fixtures.ts";

describe.skipIf(!HAVE_MODELS)("tokenizer pool (stories260K GGUF)", () => {
  const pool = new TokenizerPool(GGUF_PATH, 2);
  const local = loadTextModel(GGUF_PATH);
  afterAll(() => pool.close());

  test("encode and chat give the ids of the model's tokenizer and chat template", async () => {
    await pool.ready;
    const texts = ["Lily and Tom went to the", "Once upon a time", " ünïcødé ✓\n", ""];
    const got = await Promise.all(texts.map((t) => pool.encode(t, true)));
    texts.forEach((t, i) => expect(Array.from(got[i]!)).toEqual(local.tokenizer.encode(t)));
    expect(Array.from(await pool.encode("Hi", false))).toEqual(local.tokenizer.encode("Hi", { addBos: false }));
    const msgs = [{ role: "user", content: "Tell me a story" }];
    expect(Array.from(await pool.chat(msgs))).toEqual(local.chatTemplate.encode(local.tokenizer, msgs));
    expect(pool.outstanding).toBe(0);
  });

  test("this thread keeps running timers while a worker tokenizes a large prompt", async () => {
    await pool.ready;
    const big = "Once upon a time, there was a little girl named Lily. ".repeat(1000);
    let ticks = 0;
    let maxGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
    }, 5);
    const t0 = performance.now();
    const ids = await pool.encode(big, true);
    const took = performance.now() - t0;
    clearInterval(timer);
    expect(ids.length).toBeGreaterThan(big.length / 10);
    // Tokenizing here would have frozen the timer for the whole time; the worker does not.
    expect(ticks).toBeGreaterThan(3);
    expect(maxGap).toBeLessThan(Math.max(took / 3, 50));
  }, 60_000);

  test("a short prompt does not wait behind a large one; a job whose client left is dropped unstarted", async () => {
    await pool.ready;
    const big = "Once upon a time, there was a little girl named Lily. ".repeat(1000);
    const order: string[] = [];
    const bigDone = pool.encode(big, true).then(() => order.push("big"));
    const small = await pool.encode("Hi", true);
    order.push("small");
    expect(Array.from(small)).toEqual(local.tokenizer.encode("Hi"));
    await bigDone;
    expect(order).toEqual(["small", "big"]);

    // Both workers busy: a third job queues; its client leaves before it starts.
    const ac = new AbortController();
    const busy = [pool.encode(big, true), pool.encode(big, true)];
    const dropped = pool.encode("never tokenized", true, ac.signal);
    const kept = pool.encode("Lily", true);
    expect(pool.outstanding).toBe(4);
    ac.abort();
    await expect(dropped).rejects.toThrow(/cancelled/);
    expect(pool.outstanding).toBe(3); // gone from the queue at once, before any worker is free
    expect(Array.from(await kept)).toEqual(local.tokenizer.encode("Lily"));
    await Promise.all(busy);
    expect(pool.outstanding).toBe(0);
  }, 60_000);
});

test("a model path that cannot be loaded rejects ready and every job", async () => {
  const pool = new TokenizerPool("/nonexistent/model.gguf", 1);
  try {
    await expect(pool.ready).rejects.toThrow(/nonexistent/);
    await expect(pool.encode("x", true)).rejects.toThrow(/nonexistent/);
  } finally {
    pool.close();
  }
});
