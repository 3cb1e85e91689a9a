// Greedy sampling parameters for the offload bench (ignore EOS: a fixed number of tokens).
import type { SamplingParams } from "../../src/engine/api.ts";

export function greedyParamsForBench(maxTokens: number): SamplingParams {
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
