// The engine speaks token ids only: events carry new ids, numeric logprobs (ids and values of
// the top-k) and a finish reason, never text; a stop token id ends a request with "stop" as the
// last id of its final event (the frontend counts it and does not detokenize it).
import { afterAll, describe, expect, test } from "bun:test";

import type { TokenEvent } from "../../src/engine/api.ts";
import { EngineCore } from "../../src/engine/engine-core.ts";
import { startEngine, type StartedEngine } from "../../src/engine/startup.ts";
import { loadTextModel } from "../../src/frontend/text-model.ts";
import { GGUF_PATH, HAVE_MODELS } from "../model/helpers.ts";
import { engineOptions, greedyParams } from "./engine-helpers.ts";

describe.skipIf(!HAVE_MODELS)("engine events are ids only (stories260K)", () => {
  let started: StartedEngine | null = null;
  afterAll(() => started?.close());

  function run(core: EngineCore, params: ReturnType<typeof greedyParams>, prompt: number[]): TokenEvent[] {
    core.add({ requestId: `r${Math.random()}`, promptTokenIds: prompt, params });
    const evs: TokenEvent[] = [];
    while (core.hasWork()) evs.push(...core.step());
    return evs;
  }

  test("ids, numeric logprobs and the stop token as the last id", () => {
    started = startEngine(
      engineOptions(GGUF_PATH),
      () => {},
      () => {},
    );
    const core = new EngineCore(started, { maxNumSeqs: 8, maxWaiting: 64, servedModelName: null });
    const tok = loadTextModel(GGUF_PATH).tokenizer;
    const prompt = tok.encode("Once upon a time");
    const evs = run(core, { ...greedyParams(12), logprobs: 3 }, prompt);
    const ids = evs.flatMap((e) => e.tokenIds);
    expect(ids.length).toBe(12);
    expect(tok.decode([...prompt, ...ids])).toStartWith("Once upon a time, there was a little girl");
    for (const e of evs) {
      expect(Object.keys(e).sort()).toEqual(["completionTokens", "finishReason", "logprobs", "promptTokens", "requestId", "tokenIds"]);
      for (const lp of e.logprobs!) {
        expect(Object.keys(lp).sort()).toEqual(["logprob", "tokenId", "top"]);
        expect(lp.top).toHaveLength(3);
        for (const t of lp.top) expect(Object.keys(t).sort()).toEqual(["logprob", "tokenId"]);
      }
    }
    // a stop token id: generation ends with "stop", that id last
    const stopId = ids[5]!;
    const first = ids.indexOf(stopId);
    const stopped = run(core, { ...greedyParams(12), stopTokenIds: [stopId] }, prompt);
    const last = stopped.at(-1)!;
    expect(last.finishReason).toBe("stop");
    expect(last.tokenIds.at(-1)).toBe(stopId);
    expect(stopped.flatMap((e) => e.tokenIds)).toEqual(ids.slice(0, first + 1));
  });
});
