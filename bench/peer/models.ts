// The benchmark's model files: one set of random weights of the s110m shape (dim 768, 12 layers,
// 12 heads, FFN 2048, Llama-2's 32,000-token SentencePiece vocabulary), written as
//   - an F32 GGUF with llama.cpp's tensor names and metadata (test/util/tiny-models.ts),
//   - the same weights as an HF folder (config.json, F32 model.safetensors with Q/K rows in HF's
//     rotate-half layout, tokenizer.json built from the GGUF vocabulary),
//   - F16, Q8_0 and Q4_K_M GGUFs made from the F32 file by the built llama-quantize, and each of
//     them dequantized back to F32 (llama-quantize --allow-requantize) for the greedy check.
// Cached under <cache>/models-<key>/ (key: shape + seed + writer version + quantizer commit).
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";

import { readGguf } from "../../src/model/gguf.ts";
import { serializeSafetensorsHeader } from "../../src/model/safetensors.ts";
import { writeTinyModel, type TinyModelSpec } from "../../test/util/tiny-models.ts";

const ROOT = resolve(import.meta.dir, "../..");
const MODELS_DIR = process.env.HEADROOM_MODELS_DIR ?? resolve(ROOT, "../shared/models");
/** Bump when the weights written here change (invalidates the cache). */
const WRITER_VERSION = 1;

export const FORMATS = ["F32", "F16", "Q8_0", "Q4_K_M"] as const;
export type Format = (typeof FORMATS)[number];

export const S110M: Omit<TinyModelSpec, "vocabFile" | "tensorType"> = {
  arch: "llama",
  hidden: 768,
  layers: 12,
  heads: 12,
  kvHeads: 12,
  ffn: 2048,
  ropeTheta: 10000,
  rmsEps: 1e-5,
  contextLength: 2048,
  seed: 110,
};

export interface PeerModels {
  dir: string;
  gguf: Record<Format, string>;
  /** F16/Q8_0/Q4_K_M dequantized back to F32 by llama-quantize (what exact arithmetic on the file computes). */
  dequantized: Partial<Record<Format, string>>;
  hf: string;
  vocabSize: number;
  /** Seconds spent writing/quantizing in this run (0 = reused). */
  writeSeconds: number;
}

export function ensureModels(cache: string, quantize: string, commit: string, formats: readonly Format[], log = console.error): PeerModels {
  const vocabFile = join(MODELS_DIR, "vocab/ggml-vocab-llama-spm.gguf.gz");
  if (!existsSync(vocabFile)) throw new Error(`${vocabFile} not found (set HEADROOM_MODELS_DIR to the shared models folder)`);
  const key = `s110m-seed${S110M.seed}-v${WRITER_VERSION}-${commit.slice(0, 12)}`;
  const dir = join(cache, `models-${key}`);
  mkdirSync(dir, { recursive: true });
  const gguf = Object.fromEntries(FORMATS.map((f) => [f, join(dir, `s110m-${f.toLowerCase()}.gguf`)])) as Record<Format, string>;
  const hf = join(dir, "s110m-hf");
  const t0 = performance.now();
  if (!existsSync(gguf.F32)) {
    log(`peer: writing ${gguf.F32}`);
    const tmp = `${gguf.F32}.tmp`;
    writeTinyModel(tmp, { ...S110M, tensorType: "F32", vocabFile });
    renameSync(tmp, gguf.F32);
  }
  if (!existsSync(join(hf, "model.safetensors"))) {
    log(`peer: writing ${hf}`);
    writeHfFolder(gguf.F32, hf);
  }
  for (const f of formats) {
    if (f === "F32" || existsSync(gguf[f])) continue;
    log(`peer: llama-quantize → ${f}`);
    const tmp = `${gguf[f]}.tmp`;
    const r = spawnSync(quantize, [gguf.F32, tmp, f], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`llama-quantize ${f} failed: ${(r.stderr ?? "").slice(-2000)}`);
    renameSync(tmp, gguf[f]);
  }
  const dequantized: Partial<Record<Format, string>> = {};
  for (const f of formats) {
    if (f === "F32") continue;
    const out = join(dir, `s110m-${f.toLowerCase()}-dequantized-f32.gguf`);
    if (!existsSync(out)) {
      const r = spawnSync(quantize, ["--allow-requantize", gguf[f], `${out}.tmp`, "F32"], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`llama-quantize ${f} → F32 failed: ${(r.stderr ?? "").slice(-2000)}`);
      renameSync(`${out}.tmp`, out);
    }
    dequantized[f] = out;
  }
  const g = readGguf(gguf.F32);
  const vocabSize = (g.metadata.get("tokenizer.ggml.tokens") as string[]).length;
  return { dir, gguf, dequantized, hf, vocabSize, writeSeconds: (performance.now() - t0) / 1000 };
}

/** convert_hf_to_gguf.py's `permute` inverted: GGUF's interleaved Q/K rows → HF rotate-half rows. */
export function unpermute(v: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  const out = new Float32Array(v.length);
  const hd = rows / nHead,
    half = hd / 2;
  for (let h = 0; h < nHead; h++)
    for (let j = 0; j < half; j++)
      for (let s = 0; s < 2; s++)
        out.set(v.subarray((h * hd + 2 * j + s) * cols, (h * hd + 2 * j + s + 1) * cols), (h * hd + s * half + j) * cols);
  return out;
}

const HF_NAME: [RegExp, string][] = [
  [/^token_embd\.weight$/, "model.embed_tokens.weight"],
  [/^output_norm\.weight$/, "model.norm.weight"],
  [/^output\.weight$/, "lm_head.weight"],
  [/^blk\.(\d+)\.attn_norm\.weight$/, "model.layers.$1.input_layernorm.weight"],
  [/^blk\.(\d+)\.attn_q\.weight$/, "model.layers.$1.self_attn.q_proj.weight"],
  [/^blk\.(\d+)\.attn_k\.weight$/, "model.layers.$1.self_attn.k_proj.weight"],
  [/^blk\.(\d+)\.attn_v\.weight$/, "model.layers.$1.self_attn.v_proj.weight"],
  [/^blk\.(\d+)\.attn_output\.weight$/, "model.layers.$1.self_attn.o_proj.weight"],
  [/^blk\.(\d+)\.ffn_norm\.weight$/, "model.layers.$1.post_attention_layernorm.weight"],
  [/^blk\.(\d+)\.ffn_gate\.weight$/, "model.layers.$1.mlp.gate_proj.weight"],
  [/^blk\.(\d+)\.ffn_up\.weight$/, "model.layers.$1.mlp.up_proj.weight"],
  [/^blk\.(\d+)\.ffn_down\.weight$/, "model.layers.$1.mlp.down_proj.weight"],
];

function hfName(gguf: string): string {
  for (const [re, to] of HF_NAME) if (re.test(gguf)) return gguf.replace(re, to);
  throw new Error(`no HF name for GGUF tensor ${gguf}`);
}

/** The F32 GGUF's weights as an HF Llama folder (tensor data streamed to the file). */
function writeHfFolder(ggufPath: string, dir: string): void {
  const g = readGguf(ggufPath);
  const md = g.metadata;
  const n = (k: string) => Number(md.get(`llama.${k}`));
  const heads = n("attention.head_count"),
    kvHeads = n("attention.head_count_kv");
  const tokens = md.get("tokenizer.ggml.tokens") as string[];
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify(
      {
        architectures: ["LlamaForCausalLM"],
        model_type: "llama",
        hidden_size: n("embedding_length"),
        intermediate_size: n("feed_forward_length"),
        num_hidden_layers: n("block_count"),
        num_attention_heads: heads,
        num_key_value_heads: kvHeads,
        vocab_size: tokens.length,
        max_position_embeddings: n("context_length"),
        rms_norm_eps: n("attention.layer_norm_rms_epsilon"),
        rope_theta: n("rope.freq_base"),
        hidden_act: "silu",
        tie_word_embeddings: false,
        bos_token_id: Number(md.get("tokenizer.ggml.bos_token_id")),
        eos_token_id: Number(md.get("tokenizer.ggml.eos_token_id")),
        torch_dtype: "float32",
      },
      null,
      2,
    ),
  );
  writeTokenizer(dir, tokens, md.get("tokenizer.ggml.token_type") as number[]);
  const list = [...g.tensors.values()].map((t) => {
    if (t.dtype !== "f32" || t.quant) throw new Error(`${t.name}: expected F32`);
    return { t, name: hfName(t.name), dtype: "F32" as const, shape: t.shape };
  });
  const head = serializeSafetensorsHeader(
    list,
    list.map((x) => x.t.data.byteLength),
  );
  const path = join(dir, "model.safetensors");
  const fd = openSync(`${path}.tmp`, "w");
  const put = (b: Uint8Array) => {
    for (let at = 0; at < b.byteLength; ) at += writeSync(fd, b, at, b.byteLength - at);
  };
  try {
    put(head);
    for (const { t } of list) {
      const q = /attn_q\.weight$/.test(t.name),
        k = /attn_k\.weight$/.test(t.name);
      if (!q && !k) {
        put(t.data);
        continue;
      }
      const v = new Float32Array(t.data.byteLength / 4);
      new Uint8Array(v.buffer).set(t.data);
      put(new Uint8Array(unpermute(v, t.shape[0]!, t.shape[1]!, q ? heads : kvHeads).buffer));
    }
  } finally {
    closeSync(fd);
  }
  renameSync(`${path}.tmp`, path);
}

/**
 * tokenizer.json for the folder: the stories260K-hf file's SentencePiece-style BPE settings
 * (normalizer, decoder, byte fallback) with the GGUF's vocabulary, merges derived from it the
 * way HF's SentencePieceExtractor does (every split of a piece into two pieces, ordered by the
 * piece's id). The benchmark feeds token ids, so only loading has to work; it is not validated
 * as a tokenizer.
 */
function writeTokenizer(dir: string, tokens: string[], types: number[]): void {
  const template = JSON.parse(readFileSync(join(MODELS_DIR, "stories260K-hf/tokenizer.json"), "utf8")) as {
    model: { vocab: Record<string, number>; merges: string[] };
  };
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => {
    vocab[t] = i;
  });
  const merges: [number, number, number, string][] = [];
  tokens.forEach((t, id) => {
    if (types[id] !== 1) return; // normal pieces only (not control, byte or unknown)
    const cp = [...t];
    for (let i = 1; i < cp.length; i++) {
      const l = cp.slice(0, i).join(""),
        r = cp.slice(i).join("");
      const li = vocab[l],
        ri = vocab[r];
      if (li !== undefined && ri !== undefined && types[li] === 1 && types[ri] === 1) merges.push([id, li, ri, `${l} ${r}`]);
    }
  });
  merges.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  template.model.vocab = vocab;
  template.model.merges = merges.map((m) => m[3]);
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(template));
  writeFileSync(join(dir, "tokenizer_config.json"), readFileSync(join(MODELS_DIR, "stories260K-hf/tokenizer_config.json"), "utf8"));
}
