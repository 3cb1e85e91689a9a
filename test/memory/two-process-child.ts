// One engine instance in its own process, driven by test/memory/two-process.test.ts over
// stdin/stdout (one JSON line per message). argv: device utilization model.
//   start-up  -> {"stage":"ready", ...snapshot}
//   "load\n"  -> runs greedy requests to completion -> {"stage":"loaded", ...}
//   "exit\n"  -> closes the engine and exits 0
import { EngineCore } from "../../src/engine/engine-core.ts";
import { startEngine } from "../../src/engine/startup.ts";
import { takeSnapshot } from "../../src/memory/snapshot.ts";
import { engineOptions, greedyParams } from "../engine/engine-helpers.ts";

const [device, util, model] = process.argv.slice(2) as ["cpu" | "cuda", string, string];
const s = startEngine({
  ...engineOptions(model, { gpuMemoryUtilization: Number(util), maxModelLen: 256, maxNumSeqs: 8 }),
  device,
  deviceOrdinal: device === "cuda" ? 0 : 5,
  deviceMemory: device === "cuda" ? null : 64 * 2 ** 20,
});

function report(stage: string, extra: Record<string, unknown> = {}): void {
  const snap = takeSnapshot(s.dev);
  const st = s.dev.stats();
  console.log(
    JSON.stringify({
      stage,
      pid: process.pid,
      totalBytes: snap.totalBytes,
      usedBytes: snap.usedBytes,
      baselineUsedBytes: s.profile.baseline.usedBytes,
      requestedBytes: s.profile.requestedBytes,
      reservedBytes: snap.reservedBytes,
      kvMappedBytes: snap.kvMappedBytes,
      kvBlocks: s.kv.numBlocks,
      numOoms: st.numOoms,
      ...extra,
    }),
  );
}

report("ready");
const lines = console as unknown as AsyncIterable<string>;
for await (const line of lines) {
  const cmd = line.trim();
  if (cmd === "load") {
    const core = new EngineCore(s, { maxNumSeqs: 8, maxWaiting: 64, servedModelName: null });
    for (let i = 0; i < 12; i++) {
      const prompt = Array.from({ length: 40 + i * 9 }, (_, j) => 1 + ((i * 31 + j * 7) % 250));
      core.add({ requestId: `r${i}`, promptTokenIds: prompt, params: greedyParams(32) });
    }
    let tokens = 0;
    let done = 0;
    while (core.hasWork())
      for (const e of core.step()) {
        tokens += e.tokenIds.length;
        if (e.finishReason) done++;
      }
    report("loaded", { tokens, done });
  } else if (cmd === "exit") {
    s.close();
    process.exit(0);
  }
}
