// The built-in demo model, used when no --model is given: Llama shape (stories15M-like: dim 288,
// hidden 768, 6 layers, 6 heads), a 259-token byte-level vocabulary (256 bytes + <s>, </s>,
// <pad>), and deterministic random weights from a fixed seed, generated straight into the
// upload path (no file). It produces gibberish by design and says so in its name.
import type { ModelConfig } from "./config.ts";
import { expectedTensors } from "./config.ts";
import { ChatTemplate, FALLBACK_CHAT_TEMPLATE } from "./chat-template.ts";
import { Tokenizer } from "./tokenizer.ts";
import type { TensorSource, WeightSet } from "./weights.ts";

export const DEMO_MODEL_NAME = "headroom-demo (random weights)";
export const DEMO_SEED = 0x5eed1234;

export function demoConfig(): ModelConfig {
  return {
    name: DEMO_MODEL_NAME,
    architecture: "llama",
    hiddenSize: 288,
    intermediateSize: 768,
    numLayers: 6,
    numHeads: 6,
    numKvHeads: 6,
    headDim: 48,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    ropeLayout: "neox",
    tieWordEmbeddings: true,
    qkvBias: false,
    maxPositionEmbeddings: 2048,
    slidingWindow: null,
    vocabSize: 259,
    bosTokenId: 256,
    eosTokenIds: [257],
    dtype: "f32",
    randomWeights: true,
  };
}

/** 32-bit string hash (FNV-1a). */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Counter-based uniform in [0, 1): element i of stream `key` (random access, order-free). */
function uniform(key: number, i: number): number {
  let x = (Math.imul(i, 0x9e3779b1) ^ key) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  x ^= x >>> 16;
  return (x >>> 0) / 4294967296;
}

/** Weights of the demo model: uniform(-a, a) with std 0.02 for matrices, 1.0 for RMSNorm gains. */
export function demoWeights(seed = DEMO_SEED): WeightSet {
  return syntheticWeights(demoConfig(), seed);
}

/** Deterministic random weights for any Llama-shaped config (demo model, benchmarks). */
export function syntheticWeights(config: ModelConfig, seed = DEMO_SEED): WeightSet {
  const tensors = new Map<string, TensorSource>();
  const a = 0.02 * Math.sqrt(3);
  for (const [name, shape] of expectedTensors(config)) {
    const key = (hash32(name) ^ seed) >>> 0;
    const isNorm = name.endsWith("layernorm.weight") || name === "model.norm.weight";
    tensors.set(name, {
      name,
      shape,
      dtype: "f32",
      file: config.name,
      fileName: name,
      generate: isNorm
        ? (_start, out) => out.fill(1)
        : (start, out) => {
            for (let i = 0; i < out.length; i++) out[i] = (uniform(key, start + i) * 2 - 1) * a;
          },
    });
  }
  return { config, format: "generated", files: [], tensors };
}

/** GPT-2's byte -> printable-character map (bytes_to_unicode), used by ByteLevel BPE. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i]!)));
  return out;
}

/** tokenizer.json of the demo's byte-level tokenizer: id = byte value, then <s>, </s>, <pad>. */
export function demoTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((c, b) => (vocab[c] = b));
  const specials = ["<s>", "</s>", "<pad>"];
  specials.forEach((s, i) => (vocab[s] = 256 + i));
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, i) => ({
      id: 256 + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

export function demoTokenizer(): Tokenizer {
  return new Tokenizer(demoTokenizerJson(), { bos_token: "<s>", eos_token: "</s>", add_bos_token: true }, DEMO_MODEL_NAME);
}

export function demoChatTemplate(): ChatTemplate {
  return new ChatTemplate(FALLBACK_CHAT_TEMPLATE, "<s>", "</s>", "fallback");
}
