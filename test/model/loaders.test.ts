import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import type { ModelConfig } from "../../src/model/config.ts";
import { expectedTensors } from "../../src/model/config.ts";
import { ModelFileError } from "../../src/model/errors.ts";
import { GGML_TYPE_ID, GgufValueType, readGguf, serializeGguf, type GgufTensorToWrite } from "../../src/model/gguf.ts";
import { canonicalGgufName, ggufWeights, unpermuteRows } from "../../src/model/gguf-model.ts";
import { parseHfConfig } from "../../src/model/hf-config.ts";
import { loadHfWeights } from "../../src/model/hf-model.ts";
import { openModel } from "../../src/model/load.ts";
import { serializeSafetensors, type TensorToWrite } from "../../src/model/safetensors.ts";
import { convertToF32, numel, tensorToF32 } from "../../src/model/weights.ts";
import { GGUF_PATH, HAVE_MODELS, HF_DIR, prng, warnIfNoModels } from "./helpers.ts";

warnIfNoModels("loaders");
const tmp = mkdtempSync(join(tmpdir(), "headroom-loaders-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** llama.cpp convert_hf_to_gguf.py `permute` (HF rotate-half rows -> GGUF interleaved rows). */
function permuteRows(w: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  const out = new Float32Array(w.length);
  const hd = rows / nHead;
  const half = hd / 2;
  // reshape(n_head, 2, hd/2, cols).swapaxes(1, 2): out[h, j, s] = in[h, s, j]
  for (let h = 0; h < nHead; h++)
    for (let j = 0; j < half; j++)
      for (let s = 0; s < 2; s++)
        out.set(w.subarray((h * hd + s * half + j) * cols, (h * hd + s * half + j + 1) * cols), (h * hd + 2 * j + s) * cols);
  return out;
}

function f32ToF16(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0]!;
  const s = (u >>> 16) & 0x8000;
  const e = ((u >>> 23) & 0xff) - 127 + 15;
  let m = u & 0x7fffff;
  if (e <= 0) {
    if (e < -10) return s;
    m = (m | 0x800000) >> (1 - e);
    return s | ((m + 0x1000) >> 13);
  }
  if (e >= 31) return s | 0x7c00;
  const r = s | (e << 10) | (m >> 13);
  return (m & 0x1000) !== 0 ? r + 1 : r; // round half up (good enough for tests)
}

function encode(values: Float32Array, dtype: "F32" | "F16" | "BF16"): Uint8Array {
  if (dtype === "F32") return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  const out = new Uint16Array(values.length);
  const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) out[i] = dtype === "F16" ? f32ToF16(values[i]!) : u[i]! >>> 16;
  return new Uint8Array(out.buffer);
}

const tinyCfg = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 32,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 500000,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: [2, 3],
};

/** Random weights for a config, as fp32 arrays (values exactly representable in bf16 and f16). */
function randomTensors(cfg: ModelConfig, seed: number): Map<string, { shape: number[]; v: Float32Array }> {
  const rnd = prng(seed);
  const m = new Map<string, { shape: number[]; v: Float32Array }>();
  for (const [name, shape] of expectedTensors(cfg)) {
    const v = new Float32Array(numel(shape));
    for (let i = 0; i < v.length; i++) v[i] = Math.round((rnd() * 2 - 1) * 128) / 256; // k/256, |k|<=128: exact in bf16/f16
    m.set(name, { shape, v });
  }
  return m;
}

function writeHfFolder(
  dir: string,
  cfgJson: object,
  tensors: Map<string, { shape: number[]; v: Float32Array }>,
  dtype: "F32" | "F16" | "BF16",
  shards = 1,
): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(cfgJson));
  const list: TensorToWrite[] = [...tensors].map(([name, t]) => ({ name, dtype, shape: t.shape, data: encode(t.v, dtype) }));
  if (shards === 1) {
    writeFileSync(join(dir, "model.safetensors"), serializeSafetensors(list));
    return;
  }
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const part = list.filter((_, i) => i % shards === s);
    const file = `model-0000${s + 1}-of-0000${shards}.safetensors`;
    for (const t of part) weightMap[t.name] = file;
    writeFileSync(join(dir, file), serializeSafetensors(part));
  }
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
}

describe("unpermuteRows", () => {
  test("undoes llama.cpp's permute for Q (8 heads) and K (GQA, 2 heads)", () => {
    const rnd = prng(5);
    for (const [rows, heads] of [
      [64, 8],
      [16, 2],
      [12, 3],
    ] as const) {
      const cols = 5;
      const w = Float32Array.from({ length: rows * cols }, () => rnd());
      const g = permuteRows(w, rows, cols, heads);
      const perm = unpermuteRows(rows, heads);
      const back = new Float32Array(w.length);
      for (let r = 0; r < rows; r++) back.set(g.subarray(perm[r]! * cols, (perm[r]! + 1) * cols), r * cols);
      expect(back).toEqual(w);
    }
  });
  test("GGUF names map onto HF names", () => {
    expect(canonicalGgufName("token_embd.weight")).toBe("model.embed_tokens.weight");
    expect(canonicalGgufName("blk.12.attn_k.weight")).toBe("model.layers.12.self_attn.k_proj.weight");
    expect(canonicalGgufName("blk.0.attn_q.bias")).toBe("model.layers.0.self_attn.q_proj.bias");
    expect(canonicalGgufName("blk.3.ffn_down.weight")).toBe("model.layers.3.mlp.down_proj.weight");
    expect(canonicalGgufName("output.weight")).toBe("lm_head.weight");
    expect(canonicalGgufName("blk.0.attn_qkv.weight")).toBeUndefined();
  });
});

describe("fp16/bf16 conversion", () => {
  test("f16 special values and bf16 truncation", () => {
    const src = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7c00, 0xfc00, 0x0000, 0x8000, 0x7bff]).buffer);
    const out = new Float32Array(8);
    convertToF32("f16", src, 0, 8, out, 0);
    expect([...out]).toEqual([1, -2, 2 ** -24, Infinity, -Infinity, 0, -0, 65504]);
    const bsrc = new Uint8Array(new Uint16Array([0x3f80, 0xc0a0, 0x7fc0]).buffer);
    convertToF32("bf16", bsrc, 0, 3, out, 0);
    expect(out[0]).toBe(1);
    expect(out[1]).toBe(-5);
    expect(Number.isNaN(out[2])).toBe(true);
  });
});

describe("HF config.json", () => {
  test("Llama-3 style: llama3 rope scaling, eos list, GQA", () => {
    const c = parseHfConfig(
      {
        architectures: ["LlamaForCausalLM"],
        model_type: "llama",
        hidden_size: 4096,
        intermediate_size: 14336,
        num_hidden_layers: 32,
        num_attention_heads: 32,
        num_key_value_heads: 8,
        vocab_size: 128256,
        max_position_embeddings: 131072,
        rms_norm_eps: 1e-5,
        rope_theta: 500000,
        rope_scaling: { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192, rope_type: "llama3" },
        bos_token_id: 128000,
        eos_token_id: [128001, 128008, 128009],
        tie_word_embeddings: false,
        torch_dtype: "bfloat16",
      },
      "config.json",
      "llama3",
    );
    expect(c).toMatchObject({
      architecture: "llama",
      headDim: 128,
      numKvHeads: 8,
      ropeTheta: 500000,
      bosTokenId: 128000,
      eosTokenIds: [128001, 128008, 128009],
      dtype: "bf16",
      qkvBias: false,
    });
    expect(c.ropeScaling).toEqual({ type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  });
  test("Mistral (sliding window, linear rope) and Qwen2 (qkv bias, tied)", () => {
    const m = parseHfConfig(
      {
        architectures: ["MistralForCausalLM"],
        model_type: "mistral",
        hidden_size: 4096,
        intermediate_size: 14336,
        num_hidden_layers: 32,
        num_attention_heads: 32,
        num_key_value_heads: 8,
        vocab_size: 32000,
        max_position_embeddings: 32768,
        rms_norm_eps: 1e-5,
        rope_theta: 10000,
        sliding_window: 4096,
        rope_scaling: { type: "linear", factor: 2 },
        bos_token_id: 1,
        eos_token_id: 2,
      },
      "config.json",
      "m",
    );
    expect(m).toMatchObject({ architecture: "mistral", slidingWindow: 4096, ropeScaling: { type: "linear", factor: 2 }, eosTokenIds: [2] });
    const q = parseHfConfig(
      {
        architectures: ["Qwen2ForCausalLM"],
        model_type: "qwen2",
        hidden_size: 896,
        intermediate_size: 4864,
        num_hidden_layers: 24,
        num_attention_heads: 14,
        num_key_value_heads: 2,
        vocab_size: 151936,
        max_position_embeddings: 32768,
        rms_norm_eps: 1e-6,
        rope_theta: 1000000,
        tie_word_embeddings: true,
        use_sliding_window: false,
        sliding_window: 32768,
        bos_token_id: 151643,
        eos_token_id: 151645,
      },
      "config.json",
      "q",
    );
    expect(q).toMatchObject({ architecture: "qwen2", qkvBias: true, tieWordEmbeddings: true, headDim: 64, slidingWindow: null });
    expect(expectedTensors(q).get("model.layers.0.self_attn.k_proj.bias")).toEqual([128]);
  });
  test("unknown architecture, unsupported rope scaling, inconsistent heads are ModelFileErrors", () => {
    const base = { ...tinyCfg };
    expect(() => parseHfConfig({ ...base, model_type: "gpt2", architectures: ["GPT2LMHeadModel"] }, "config.json", "x")).toThrow(
      /unknown architecture "gpt2"/,
    );
    expect(() => parseHfConfig({ ...base, rope_scaling: { type: "mrope", factor: 4 } }, "config.json", "x")).toThrow(
      /rope_scaling type "mrope" is not supported/,
    );
    expect(() => parseHfConfig({ ...base, num_key_value_heads: 3 }, "config.json", "x")).toThrow(ModelFileError);
    expect(() => parseHfConfig({ ...base, hidden_size: "16" }, "config.json", "x")).toThrow(/"hidden_size" must be a number/);
  });
});

describe("synthetic HF folders", () => {
  const cfg = parseHfConfig(tinyCfg, "config.json", "tiny");
  const tensors = randomTensors(cfg, 11);
  for (const dtype of ["F32", "F16", "BF16"] as const) {
    test(`${dtype} single file and 3 shards load to the same fp32 values`, () => {
      for (const shards of [1, 3]) {
        const dir = join(tmp, `tiny-${dtype}-${shards}`);
        writeHfFolder(dir, tinyCfg, tensors, dtype, shards);
        const ws = loadHfWeights(dir);
        expect(ws.tensors.size).toBe(tensors.size);
        expect(ws.files.length).toBe(shards);
        expect(ws.config.dtype).toBe(dtype.toLowerCase() as "f32");
        for (const [name, t] of tensors) expect(tensorToF32(ws.tensors.get(name)!)).toEqual(t.v);
      }
    });
  }
  test("Qwen2 with q/k/v biases; tied embeddings ignore a stray lm_head; rotary inv_freq is ignored", () => {
    const qcfg = { ...tinyCfg, architectures: ["Qwen2ForCausalLM"], model_type: "qwen2", tie_word_embeddings: true };
    const c = parseHfConfig(qcfg, "config.json", "q");
    const t = randomTensors(c, 3);
    t.set("lm_head.weight", { shape: [32, 16], v: new Float32Array(32 * 16) });
    t.set("model.layers.0.self_attn.rotary_emb.inv_freq", { shape: [2], v: new Float32Array(2) });
    const dir = join(tmp, "qwen2");
    writeHfFolder(dir, qcfg, t, "BF16");
    const ws = loadHfWeights(dir);
    expect(ws.tensors.has("model.layers.1.self_attn.v_proj.bias")).toBe(true);
    expect(ws.tensors.has("lm_head.weight")).toBe(false);
    expect(ws.tensors.size).toBe(expectedTensors(c).size);
  });
  test("GGUF written from the same weights (F16, Q/K permuted as llama.cpp does) loads to identical weights", () => {
    const list: GgufTensorToWrite[] = [];
    const inv: Record<string, string> = {};
    for (const name of tensors.keys()) {
      for (const g of [
        "token_embd.weight",
        "output_norm.weight",
        "output.weight",
        ...Array.from({ length: 2 }, (_, i) =>
          ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"].map(
            (s) => `blk.${i}.${s}.weight`,
          ),
        ).flat(),
      ]) {
        if (canonicalGgufName(g) === name) inv[name] = g;
      }
    }
    for (const [name, t] of tensors) {
      let v = t.v;
      if (name.endsWith("q_proj.weight")) v = permuteRows(v, t.shape[0]!, t.shape[1]!, cfg.numHeads);
      if (name.endsWith("k_proj.weight")) v = permuteRows(v, t.shape[0]!, t.shape[1]!, cfg.numKvHeads);
      list.push({ name: inv[name]!, dims: [...t.shape].reverse(), ggmlType: GGML_TYPE_ID.F16!, data: encode(v, "F16") });
    }
    const kv = (key: string, type: GgufValueType, value: number | string) => ({ key, type, value });
    const file = join(tmp, "tiny.gguf");
    writeFileSync(
      file,
      serializeGguf(
        [
          kv("general.architecture", GgufValueType.STRING, "llama"),
          kv("llama.embedding_length", GgufValueType.U32, 16),
          kv("llama.feed_forward_length", GgufValueType.U32, 24),
          kv("llama.block_count", GgufValueType.U32, 2),
          kv("llama.attention.head_count", GgufValueType.U32, 4),
          kv("llama.attention.head_count_kv", GgufValueType.U32, 2),
          kv("llama.context_length", GgufValueType.U32, 64),
          kv("llama.rope.freq_base", GgufValueType.F32, 500000),
          kv("llama.attention.layer_norm_rms_epsilon", GgufValueType.F32, 1e-6),
          kv("tokenizer.ggml.bos_token_id", GgufValueType.U32, 1),
          kv("tokenizer.ggml.eos_token_id", GgufValueType.U32, 2),
        ],
        list,
      ),
    );
    const ws = ggufWeights(readGguf(file));
    expect(ws.config).toMatchObject({
      hiddenSize: 16,
      numKvHeads: 2,
      ropeTheta: 500000,
      rmsNormEps: 1e-6,
      tieWordEmbeddings: false,
      dtype: "f16",
      vocabSize: 32,
    });
    for (const [name, t] of tensors) expect(tensorToF32(ws.tensors.get(name)!)).toEqual(t.v);
  });
});

describe.skipIf(!HAVE_MODELS)("stories260K: GGUF and HF folder", () => {
  test("configs agree", () => {
    const a = openModel(GGUF_PATH).config;
    const b = openModel(HF_DIR).config;
    const strip = (c: ModelConfig) => ({ ...c, name: "", maxPositionEmbeddings: 0 });
    expect(strip(a)).toEqual(strip(b));
    expect(a).toMatchObject({
      hiddenSize: 64,
      intermediateSize: 172,
      numLayers: 5,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 8,
      vocabSize: 512,
      rmsNormEps: 1e-5,
    });
  });
  test("load to identical weights after Q/K layout conversion (output.weight == embedding is stored tied)", () => {
    const a = openModel(GGUF_PATH).weights;
    const b = openModel(HF_DIR).weights;
    expect([...a.tensors.keys()].sort()).toEqual([...b.tensors.keys()].sort());
    for (const [name, t] of b.tensors) {
      const x = tensorToF32(t);
      expect(x.some((v) => v !== 0)).toBe(true);
      expect(tensorToF32(a.tensors.get(name)!)).toEqual(x);
    }
    // The conversion matters: without it Q differs.
    const q = a.tensors.get("model.layers.0.self_attn.q_proj.weight")!;
    expect(tensorToF32({ ...q, rowPerm: undefined })).not.toEqual(tensorToF32(b.tensors.get("model.layers.0.self_attn.q_proj.weight")!));
  });
  test("same token ids for the same text", () => {
    const a = openModel(GGUF_PATH).tokenizer;
    const b = openModel(HF_DIR).tokenizer;
    for (const s of ["Once upon a time", "Lily saw a big, red ball.", "", "  spaces\tand\nnewlines "])
      expect(a.encode(s)).toEqual(b.encode(s));
  });
  test("a folder copy without tokenizer files still maps weights", () => {
    const dir = join(tmp, "hf-copy");
    mkdirSync(dir);
    for (const f of ["config.json", "model.safetensors"]) copyFileSync(join(HF_DIR, f), join(dir, f));
    expect(loadHfWeights(dir).tensors.size).toBe(47);
    expect(() => openModel(dir)).toThrow(/has no tokenizer.json/);
  });
});
