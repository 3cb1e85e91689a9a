// RoPE inverse frequencies with the scalings Llama-family configs use (HF's
// _compute_default/linear/llama3_rope_parameters). The ops take inv_freq as data, so scaling
// never reaches the kernels.
import type { ModelConfig } from "./config.ts";

/** inv_freq[i] for i < headDim/2; `freqFactors` is GGUF's rope_freqs tensor when present. */
export function ropeInvFreq(cfg: ModelConfig, freqFactors?: Float32Array): Float32Array {
  const half = cfg.headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(cfg.ropeTheta, (2 * i) / cfg.headDim);
  const s = cfg.ropeScaling;
  if (!s) return inv;
  if (s.type === "linear") {
    for (let i = 0; i < half; i++) inv[i] = inv[i]! / s.factor;
  } else if (s.type === "llama3") {
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const f = inv[i]!;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) continue;
      if (wavelen > lowWavelen) {
        inv[i] = f / s.factor;
      } else {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = (1 - smooth) * (f / s.factor) + smooth * f;
      }
    }
  } else if (s.type === "freq_factors" && freqFactors) {
    for (let i = 0; i < half; i++) inv[i] = inv[i]! / freqFactors[i]!;
  }
  return inv;
}
