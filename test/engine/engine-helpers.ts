// Shared by the engine suites that run the real model on the CPU backend.
import type { SamplingParams } from "../../src/engine/api.ts";
import type { EngineOptions } from "../../src/engine/startup.ts";

const MiB = 2 ** 20;

export function engineOptions(model: string | null, over: Partial<EngineOptions> = {}): EngineOptions {
  return {
    model,
    device: "cpu",
    deviceMemory: 256 * MiB,
    gpuMemoryUtilization: 0.9,
    kvCacheMemoryBytes: null,
    maxModelLen: 512,
    maxNumSeqs: 8,
    maxNumBatchedTokens: 128,
    blockSize: 16,
    enforceEager: true,
    maxWaiting: 64,
    servedModelName: null,
    ...over,
  };
}

export function greedyParams(maxTokens: number): SamplingParams {
  return {
    temperature: 0,
    topP: 1,
    topK: 0,
    minP: 0,
    maxTokens,
    stopTokenIds: [],
    ignoreEos: true,
    presencePenalty: 0,
    frequencyPenalty: 0,
    repetitionPenalty: 1,
  };
}
