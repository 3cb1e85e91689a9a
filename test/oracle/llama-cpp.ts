// llama.cpp through node-llama-cpp (pinned 3.21.1, prebuilt CPU binary from npm): greedy
// continuation of a token prompt with the top-k log-probabilities of every step. CPU only, F32
// KV cache, no flash attention, fixed threads: deterministic. The binary is only ever loaded,
// never downloaded or built (build: "never", skipDownload).
import type { Llama, LlamaModel } from "node-llama-cpp";

import type { Continuation } from "./compare.ts";

export interface Oracle {
  llama: Llama;
  /** node-llama-cpp's package version (the pin). */
  version: string;
}

let cached: Promise<Oracle | string> | null = null;

/** The llama.cpp binding, or the reason it cannot load (the suites skip with it). */
export function loadOracle(): Promise<Oracle | string> {
  cached ??= (async () => {
    try {
      const nlc = await import("node-llama-cpp");
      const llama = await nlc.getLlama({
        gpu: false,
        build: "never",
        skipDownload: true,
        usePrebuiltBinaries: true,
        progressLogs: false,
        logLevel: nlc.LlamaLogLevel.error,
        maxThreads: 1,
      });
      return { llama, version: await nlc.getModuleVersion() };
    } catch (e) {
      return `node-llama-cpp could not load its prebuilt llama.cpp binary: ${(e as Error).message?.split("\n")[0] ?? String(e)}`;
    }
  })();
  return cached;
}

export interface LlamaCppRun {
  model: LlamaModel;
  /** Greedy continuation with top-`topK` log-probabilities per step. */
  greedy(prompt: number[], steps: number, topK: number): Promise<Continuation>;
  tokenize(text: string): number[];
  dispose(): Promise<void>;
}

export async function openInLlamaCpp(o: Oracle, path: string, contextSize: number): Promise<LlamaCppRun> {
  const model = await o.llama.loadModel({ modelPath: path, gpuLayers: 0, useMmap: true });
  return {
    model,
    async greedy(prompt, steps, topK) {
      const ctx = await model.createContext({
        contextSize,
        batchSize: contextSize,
        threads: 1,
        flashAttention: false,
        sequences: 1,
        experimentalKvCacheKeyType: "F32",
        experimentalKvCacheValueType: "F32",
      });
      try {
        const seq = ctx.getSequence();
        const tokens: number[] = [];
        const top: { tokenId: number; logprob: number }[][] = [];
        const it = seq.evaluateWithMetadata(
          prompt.map((t) => t as never),
          { probabilities: true },
          { temperature: 0, yieldEogToken: true },
        );
        for await (const r of it) {
          tokens.push(r.token as number);
          // node-llama-cpp normalises the softmax with a sequential fp32 sum over the whole
          // vocabulary (relative error up to (n-1)·2^-24; measured ~1e-4 in logprob at n = 32000).
          // Summing its probabilities again in float64 gives that sum's error factor exactly,
          // so dividing it out leaves only expf's per-element rounding (~1e-7).
          let total = 0;
          for (const p of r.probabilities.values()) total += p;
          const logTotal = Math.log(total);
          const row: { tokenId: number; logprob: number }[] = [];
          for (const [id, p] of r.probabilities) {
            row.push({ tokenId: id as number, logprob: Math.log(p) - logTotal });
            if (row.length >= topK) break;
          }
          top.push(row);
          if (tokens.length >= steps) break;
        }
        return { tokens, top };
      } finally {
        await ctx.dispose();
      }
    },
    tokenize: (text) => model.tokenize(text, false).map((t) => t as number),
    dispose: () => model.dispose(),
  };
}
