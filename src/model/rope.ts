// RoPE inverse frequencies with the scalings HF configs use (transformers'
// modeling_rope_utils: default, linear, llama3, yarn, dynamic, longrope). The ops take inv_freq
// as data, so scaling never reaches the kernels; the "attention factor" that yarn and longrope
// multiply cos/sin by scales both q and k, i.e. the attention logits by its square, so the
// model folds its square into the attention scale (ropeAttentionFactor).
//
// Length-dependent variants are fixed once per engine, from the longest sequence it serves
// (max_model_len), because cached keys are already rotated and cannot follow a per-step switch:
// - dynamic NTK: HF recomputes the base for seq_len > max_position_embeddings on every forward;
//   we use HF's formula at seq_len = max_model_len (exactly HF's frequencies while
//   max_model_len <= max_position_embeddings, where the base is unchanged).
// - longrope: HF switches short -> long factors once a sequence passes
//   original_max_position_embeddings; we use long factors iff max_model_len exceeds it (what
//   llama.cpp does with n_ctx), so every sequence of an engine uses one table.
import type { ModelConfig } from "./config.ts";

function defaultInvFreq(theta: number, headDim: number): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / theta ** ((2 * i) / headDim);
  return inv;
}

/** YaRN's per-frequency blend of interpolation (÷ factor) and extrapolation. */
function yarnInvFreq(cfg: ModelConfig, s: Extract<ModelConfig["ropeScaling"], { type: "yarn" }>): Float64Array {
  const dim = cfg.headDim;
  const base = cfg.ropeTheta;
  const correctionDim = (rot: number) => (dim * Math.log(s.originalMaxPositionEmbeddings / (rot * 2 * Math.PI))) / (2 * Math.log(base));
  let low = correctionDim(s.betaFast);
  let high = correctionDim(s.betaSlow);
  if (s.truncate) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(low, 0);
  high = Math.min(high, dim - 1);
  if (low === high) high += 0.001; // HF: prevent singularity
  const ext = defaultInvFreq(base, dim);
  const out = new Float64Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
    const extrapolationFactor = 1 - ramp;
    out[i] = (ext[i]! / s.factor) * (1 - extrapolationFactor) + ext[i]! * extrapolationFactor;
  }
  return out;
}

/**
 * inv_freq[i] for i < headDim/2. `freqFactors` is GGUF's rope_freqs tensor when present;
 * `maxModelLen` picks the length-dependent variants (see above); `local` = a Gemma 3 sliding
 * layer (rope_local_base_freq, never scaled).
 */
export function ropeInvFreq(
  cfg: ModelConfig,
  freqFactors?: Float32Array,
  maxModelLen = cfg.maxPositionEmbeddings,
  local = false,
): Float32Array {
  const half = cfg.headDim / 2;
  if (local) return Float32Array.from(defaultInvFreq(cfg.ropeLocalTheta ?? cfg.ropeTheta, cfg.headDim));
  let inv = defaultInvFreq(cfg.ropeTheta, cfg.headDim);
  const s = cfg.ropeScaling;
  if (!s) return Float32Array.from(inv);
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
  } else if (s.type === "freq_factors") {
    if (freqFactors) for (let i = 0; i < half; i++) inv[i] = inv[i]! / freqFactors[i]!;
  } else if (s.type === "yarn") {
    inv = yarnInvFreq(cfg, s);
  } else if (s.type === "dynamic") {
    const maxPos = cfg.maxPositionEmbeddings;
    const seqLen = Math.max(maxModelLen, maxPos);
    const base = cfg.ropeTheta * ((s.factor * seqLen) / maxPos - (s.factor - 1)) ** (cfg.headDim / (cfg.headDim - 2));
    inv = defaultInvFreq(base, cfg.headDim);
  } else if (s.type === "longrope") {
    const ext = maxModelLen > s.originalMaxPositionEmbeddings ? s.longFactor : s.shortFactor;
    for (let i = 0; i < half; i++) inv[i] = inv[i]! / ext[i]!;
  }
  return Float32Array.from(inv);
}

/** The factor HF multiplies cos and sin by (1 for every type but yarn and longrope). */
export function ropeAttentionFactor(cfg: ModelConfig): number {
  const s = cfg.ropeScaling;
  if (s?.type === "yarn") {
    if (s.attentionFactor !== null) return s.attentionFactor;
    const mscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
    if (s.mscale && s.mscaleAllDim) return mscale(s.factor, s.mscale) / mscale(s.factor, s.mscaleAllDim);
    return mscale(s.factor);
  }
  if (s?.type === "longrope") {
    if (s.attentionFactor !== null) return s.attentionFactor;
    return s.factor <= 1 ? 1 : Math.sqrt(1 + Math.log(s.factor) / Math.log(s.originalMaxPositionEmbeddings));
  }
  return 1;
}
