// Hundreds of corrupted copies of the stories260K files fed to both loaders: every one must be a
// clean ModelFileError naming the file (or load correctly when the corruption was harmless),
// quickly, never a crash or a hang.
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expectedTensors } from "../../src/model/config.ts";
import { ModelFileError } from "../../src/model/errors.ts";
import { GGML_TYPE_ID, GgufValueType, parseGguf, serializeGguf, type GgufKv, type GgufTensorToWrite } from "../../src/model/gguf.ts";
import { openModel } from "../../src/model/load.ts";
import { parseSafetensors, serializeSafetensors, type TensorToWrite } from "../../src/model/safetensors.ts";
import { tensorToF32 } from "../../src/model/weights.ts";
import { GGUF_PATH, HAVE_MODELS, HF_DIR, prng, warnIfNoModels } from "./helpers.ts";

warnIfNoModels("fuzz");
const tmp = mkdtempSync(join(tmpdir(), "headroom-fuzz-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const PER_CASE_MS = 3000;
type Outcome = { kind: "error"; err: ModelFileError } | { kind: "loaded" };

/** Loads `path` with openModel; a success must still be a valid model (every tensor readable, shapes per config). */
function attempt(path: string): Outcome {
  try {
    const m = openModel(path);
    const exp = expectedTensors(m.config);
    expect(m.weights.tensors.size).toBe(exp.size);
    for (const [name, t] of m.weights.tensors) {
      expect(t.shape).toEqual(exp.get(name)!);
      tensorToF32(t);
    }
    m.tokenizer.encode("Once upon a time");
    return { kind: "loaded" };
  } catch (e) {
    if (!(e instanceof ModelFileError)) throw new Error(`not a ModelFileError for ${path}: ${(e as Error)?.stack ?? String(e)}`);
    expect(e.message.length).toBeGreaterThan(0);
    expect(e.file.length).toBeGreaterThan(0);
    return { kind: "error", err: e };
  }
}

function timed(path: string): Outcome {
  const t0 = performance.now();
  const o = attempt(path);
  const ms = performance.now() - t0;
  if (ms > PER_CASE_MS) throw new Error(`${path} took ${ms.toFixed(0)} ms`);
  return o;
}

function rebuildGguf(kvs: GgufKv[], tensors: GgufTensorToWrite[]): Uint8Array {
  return serializeGguf(kvs, tensors);
}

describe.skipIf(!HAVE_MODELS)("fuzz: corrupted GGUF files", () => {
  const orig = HAVE_MODELS ? new Uint8Array(readFileSync(GGUF_PATH)) : new Uint8Array(0);
  const parsed = HAVE_MODELS ? parseGguf(GGUF_PATH, orig) : null;
  let n = 0;
  const write = (bytes: Uint8Array) => {
    const p = join(tmp, `g${n++}.gguf`);
    writeFileSync(p, bytes);
    return p;
  };
  const kvs = (): GgufKv[] =>
    [...parsed!.metadata].map(([key, value]) => {
      const [type, elemType] = parsed!.metadataTypes.get(key)!;
      return { key, type, elemType, value };
    });
  const tensors = (): GgufTensorToWrite[] =>
    [...parsed!.tensors.values()].map((t) => ({ name: t.name, dims: [...t.dims], ggmlType: t.ggmlType, data: t.data }));

  test("the unmodified file and a re-serialized copy load", () => {
    expect(timed(GGUF_PATH).kind).toBe("loaded");
    expect(timed(write(rebuildGguf(kvs(), tensors()))).kind).toBe("loaded");
  });

  test("tensor types we do not implement are refused with a clear message", () => {
    for (const type of ["Q2_K", "IQ2_XXS", "I8"]) {
      const ts = tensors();
      ts[3]!.ggmlType = GGML_TYPE_ID[type]!;
      const o = timed(write(rebuildGguf(kvs(), ts)));
      expect(o.kind).toBe("error");
      if (o.kind === "error") {
        expect(o.err.message).toContain(`tensor type ${type} is not supported (supported: F32, F16, BF16, Q4_0,`);
        expect(o.err.tensor).toBe(ts[3]!.name);
        expect(o.err.message).toContain(".gguf");
      }
    }
  });

  test("a supported block type whose rows are not whole blocks is refused", () => {
    const ts = tensors();
    const t = ts.find((x) => x.dims.length === 2 && x.dims[0]! % 256 !== 0)!;
    t.ggmlType = GGML_TYPE_ID.Q4_K!;
    const o = timed(write(rebuildGguf(kvs(), ts)));
    expect(o.kind).toBe("error");
    if (o.kind === "error") {
      expect(o.err.message).toContain("Q4_K tensor has rows of");
      expect(o.err.message).toContain("not a multiple of the block size 256");
      expect(o.err.tensor).toBe(t.name);
    }
  });

  test("200 random byte-level corruptions (truncation, header flips, huge lengths, garbage)", () => {
    const rnd = prng(2024);
    const headerEnd = parsed!.dataStart;
    const counts: Record<string, number> = {};
    for (let i = 0; i < 200; i++) {
      const b = orig.slice();
      let kind: string;
      let bytes: Uint8Array = b;
      switch (i % 5) {
        case 0: {
          kind = "truncate";
          bytes = b.subarray(0, Math.floor(rnd() * (i % 10 === 0 ? 64 : b.length)));
          break;
        }
        case 1: {
          kind = "flip-header";
          const k = 1 + Math.floor(rnd() * 8);
          for (let j = 0; j < k; j++) b[Math.floor(rnd() * headerEnd)]! ^= 1 << Math.floor(rnd() * 8);
          break;
        }
        case 2: {
          kind = "huge-u64";
          const at = Math.floor(rnd() * (headerEnd - 8));
          const dv = new DataView(b.buffer);
          dv.setBigUint64(at, [0xffffffffffffffffn, 1n << 40n, 1n << 62n, BigInt(b.length)][Math.floor(rnd() * 4)]!, true);
          break;
        }
        case 3: {
          kind = "huge-u32";
          const at = Math.floor(rnd() * (headerEnd - 4));
          new DataView(b.buffer).setUint32(at, [0xffffffff, 0x7fffffff, 13, 0][Math.floor(rnd() * 4)]!, true);
          break;
        }
        default: {
          kind = "garbage";
          bytes = new Uint8Array(1 + Math.floor(rnd() * 4096)).map(() => Math.floor(rnd() * 256));
          if (rnd() < 0.5) bytes.set([0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0]);
        }
      }
      const o = timed(write(bytes));
      counts[`${kind}:${o.kind}`] = (counts[`${kind}:${o.kind}`] ?? 0) + 1;
    }
    console.log("gguf byte corruptions:", JSON.stringify(counts));
    expect(counts["truncate:loaded"] ?? 0).toBe(0);
  });

  test("every length/count/offset field of the header set huge, misaligned or overlapping", () => {
    const dv0 = new DataView(orig.buffer, orig.byteOffset, orig.byteLength);
    const find = (needle: string, from = 0): number => {
      const nb = new TextEncoder().encode(needle);
      outer: for (let i = from; i < orig.length - nb.length; i++) {
        for (let j = 0; j < nb.length; j++) if (orig[i + j] !== nb[j]) continue outer;
        return i;
      }
      return -1;
    };
    const edits: [string, (dv: DataView) => void][] = [
      ["tensor count", (dv) => dv.setBigUint64(8, 1n << 50n, true)],
      ["tensor count +1", (dv) => dv.setBigUint64(8, BigInt(parsed!.tensors.size + 1), true)],
      ["kv count", (dv) => dv.setBigUint64(16, 0xffffffffffffffffn, true)],
      ["kv count +1", (dv) => dv.setBigUint64(16, BigInt(parsed!.metadata.size + 1), true)],
      ["first key length", (dv) => dv.setBigUint64(24, 1n << 40n, true)],
      ["version", (dv) => dv.setUint32(4, 1, true)],
      ["magic", (dv) => dv.setUint32(0, 0x46554746, true)],
    ];
    const tok = find("tokenizer.ggml.tokens");
    const L = "tokenizer.ggml.tokens".length;
    edits.push(["tokens array length", (dv) => dv.setBigUint64(tok + L + 8, 1n << 33n, true)]);
    edits.push(["tokens element type", (dv) => dv.setUint32(tok + L + 4, 77, true)]);
    edits.push(["tokens value type", (dv) => dv.setUint32(tok + L, 99, true)]);
    edits.push(["first token string length", (dv) => dv.setBigUint64(tok + L + 16, BigInt(orig.length), true)]);
    const infos = [...parsed!.tensors.values()];
    for (const [idx, t] of infos.entries()) {
      if (idx % 6 !== 0) continue;
      const at = find(t.name, find("blk.0.") > 0 ? find(infos[0]!.name) - 8 : 0) + t.name.length; // -> n_dims
      if (at < t.name.length) continue;
      const nd = dv0.getUint32(at, true);
      const typeAt = at + 4 + nd * 8;
      const offAt = typeAt + 4;
      edits.push([`${t.name} n_dims`, (dv) => dv.setUint32(at, 9, true)]);
      edits.push([`${t.name} dim huge`, (dv) => dv.setBigUint64(at + 4, 1n << 45n, true)]);
      edits.push([`${t.name} dim zero`, (dv) => dv.setBigUint64(at + 4, 0n, true)]);
      edits.push([`${t.name} type`, (dv) => dv.setUint32(typeAt, 10, true)]); // Q2_K: not implemented
      edits.push([`${t.name} type unknown`, (dv) => dv.setUint32(typeAt, 77, true)]);
      edits.push([`${t.name} offset huge`, (dv) => dv.setBigUint64(offAt, 1n << 60n, true)]);
      edits.push([`${t.name} offset misaligned`, (dv) => dv.setBigUint64(offAt, dv.getBigUint64(offAt, true) + 4n, true)]);
      edits.push([`${t.name} offset overlapping`, (dv) => dv.setBigUint64(offAt, BigInt(infos[(idx + 1) % infos.length]!.offset), true)]);
      edits.push([`${t.name} name length`, (dv) => dv.setBigUint64(at - t.name.length - 8, 1n << 62n, true)]);
    }
    for (const [what, edit] of edits) {
      const b = orig.slice();
      edit(new DataView(b.buffer));
      const o = timed(write(b));
      if (o.kind !== "error") throw new Error(`${what}: loaded`);
    }
    expect(edits.length).toBeGreaterThan(40);
  });

  test("100 structural corruptions (tensors removed/added/reshaped/retyped, metadata broken)", () => {
    const rnd = prng(77);
    const counts: Record<string, number> = {};
    const qtypes = ["Q2_K", "Q3_K", "IQ2_XXS", "IQ4_NL", "I8", "TQ1_0"]; // types we do not implement
    for (let i = 0; i < 100; i++) {
      const k = kvs();
      const ts = tensors();
      const which = Math.floor(rnd() * ts.length);
      let kind: string;
      switch (i % 10) {
        case 0:
          kind = "remove-tensor";
          ts.splice(which, 1);
          break;
        case 1:
          kind = "add-tensor";
          ts.push({
            name: ["blk.9.attn_q.weight", "mystery.weight", "blk.0.attn_qkv.weight"][i % 3]!,
            dims: [64, 8],
            ggmlType: 0,
            data: new Uint8Array(64 * 8 * 4),
          });
          break;
        case 2: {
          kind = "reshape";
          const t = ts[which]!;
          t.dims = t.dims.length === 2 ? [t.dims[1]!, t.dims[0]!] : [t.dims[0]! / 2, 2];
          if (t.dims[0] === t.dims[1]) t.dims = [t.dims[0]! / 2, t.dims[1]! * 2];
          break;
        }
        case 3: {
          kind = "quantized";
          ts[which]!.ggmlType = GGML_TYPE_ID[qtypes[i % qtypes.length]!]!;
          break;
        }
        case 4: {
          kind = "unknown-type";
          ts[which]!.ggmlType = 200 + i;
          break;
        }
        case 5: {
          kind = "arch";
          k.find((x) => x.key === "general.architecture")!.value = ["gpt2", "mamba", "falcon", ""][i % 4]!;
          break;
        }
        case 6: {
          kind = "drop-key";
          const keys = [
            "llama.embedding_length",
            "llama.block_count",
            "llama.feed_forward_length",
            "general.architecture",
            "tokenizer.ggml.tokens",
            "tokenizer.ggml.model",
          ];
          const d = keys[i % keys.length]!;
          k.splice(
            k.findIndex((x) => x.key === d),
            1,
          );
          break;
        }
        case 7: {
          kind = "bad-value";
          const kv = k.find((x) => x.key === ["llama.attention.head_count_kv", "llama.block_count", "llama.embedding_length"][i % 3])!;
          kv.value = [3, 0, 7, 100000][i % 4]!;
          break;
        }
        case 8: {
          kind = "retype-key";
          const kv = k.find((x) => x.key === "llama.attention.head_count")!;
          kv.type = GgufValueType.STRING;
          kv.value = "eight";
          break;
        }
        default: {
          kind = "tokenizer";
          const kv = k.find((x) => x.key === "tokenizer.ggml.scores")!;
          kv.value = (kv.value as number[]).slice(0, 100);
          break;
        }
      }
      const o = timed(write(rebuildGguf(k, ts)));
      counts[`${kind}:${o.kind}`] = (counts[`${kind}:${o.kind}`] ?? 0) + 1;
      if (kind === "quantized" && o.kind === "error") expect(o.err.message).toMatch(/tensor type \w+ is not supported \(supported: /);
    }
    console.log("gguf structural corruptions:", JSON.stringify(counts));
    for (const key of Object.keys(counts)) if (!key.startsWith("bad-value")) expect(key.endsWith(":error")).toBe(true);
  });
});

describe.skipIf(!HAVE_MODELS)("fuzz: corrupted HF folders", () => {
  const st = HAVE_MODELS ? new Uint8Array(readFileSync(join(HF_DIR, "model.safetensors"))) : new Uint8Array(0);
  const cfgText = HAVE_MODELS ? readFileSync(join(HF_DIR, "config.json"), "utf8") : "";
  const parsed = HAVE_MODELS ? parseSafetensors("model.safetensors", st) : null;
  const headerEnd = 8 + Number(new DataView(st.buffer).getBigUint64(0, true));
  let n = 0;
  const folder = (safetensors: Uint8Array, config: string = cfgText, tokenizer?: string) => {
    const dir = join(tmp, `hf${n++}`);
    mkdirSync(dir);
    writeFileSync(join(dir, "model.safetensors"), safetensors);
    writeFileSync(join(dir, "config.json"), config);
    if (tokenizer !== undefined) writeFileSync(join(dir, "tokenizer.json"), tokenizer);
    else copyFileSync(join(HF_DIR, "tokenizer.json"), join(dir, "tokenizer.json"));
    copyFileSync(join(HF_DIR, "tokenizer_config.json"), join(dir, "tokenizer_config.json"));
    return dir;
  };
  const list = (): TensorToWrite[] =>
    [...parsed!.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype.toUpperCase() as "F32", shape: [...t.shape], data: t.data }));
  const header = (): Record<string, { dtype: string; shape: number[]; data_offsets: number[] }> =>
    JSON.parse(new TextDecoder().decode(st.subarray(8, headerEnd)));
  const withHeader = (h: unknown): Uint8Array => {
    const jb = new TextEncoder().encode(JSON.stringify(h));
    const out = new Uint8Array(8 + jb.length + (st.length - headerEnd));
    new DataView(out.buffer).setBigUint64(0, BigInt(jb.length), true);
    out.set(jb, 8);
    out.set(st.subarray(headerEnd), 8 + jb.length);
    return out;
  };

  test("the unmodified folder and a re-serialized copy load", () => {
    expect(timed(HF_DIR).kind).toBe("loaded");
    expect(timed(folder(serializeSafetensors(list()))).kind).toBe("loaded");
  });

  test("named problems: header length beyond file, broken JSON, missing tensor, shape mismatch, unknown dtype", () => {
    const big = st.slice();
    new DataView(big.buffer).setBigUint64(0, BigInt(st.length), true);
    let o = timed(folder(big));
    expect(o.kind === "error" && o.err.message).toMatch(/header length \d+ extends beyond the file/);
    const broken = st.slice();
    broken[8 + 10] = 0x7b; // '{' inside the JSON
    broken[8 + 11] = 0x7b;
    o = timed(folder(broken));
    expect(o.kind === "error" && o.err.message).toMatch(/header is not valid JSON|invalid|shape|dtype/);
    const l = list();
    const removed = l.splice(5, 1)[0]!;
    o = timed(folder(serializeSafetensors(l)));
    expect(o.kind).toBe("error");
    if (o.kind === "error") {
      expect(o.err.tensor).toBe(removed.name);
      expect(o.err.message).toContain("missing");
    }
    const h = header();
    const name = "model.layers.2.mlp.up_proj.weight";
    h[name]!.shape = [86, 128];
    o = timed(folder(withHeader(h)));
    expect(o.kind === "error" && o.err.tensor).toBe(name);
    expect(o.kind === "error" && o.err.message).toContain("does not match the config");
    const h2 = header();
    h2[name]!.dtype = "Q4";
    o = timed(folder(withHeader(h2)));
    expect(o.kind === "error" && o.err.message).toContain('unknown dtype "Q4"');
  });

  test("250 random corruptions of safetensors, config.json and tokenizer.json", () => {
    const rnd = prng(4242);
    const counts: Record<string, number> = {};
    const names = [...parsed!.tensors.keys()];
    for (let i = 0; i < 250; i++) {
      let kind: string;
      let dir: string;
      const pickName = names[Math.floor(rnd() * names.length)]!;
      switch (i % 12) {
        case 0:
          kind = "truncate";
          dir = folder(st.subarray(0, Math.floor(rnd() * (i % 24 === 0 ? 16 : st.length))));
          break;
        case 1: {
          kind = "flip-header";
          const b = st.slice();
          const k = 1 + Math.floor(rnd() * 6);
          for (let j = 0; j < k; j++) b[8 + Math.floor(rnd() * (headerEnd - 8))]! ^= 1 << Math.floor(rnd() * 8);
          dir = folder(b);
          break;
        }
        case 2: {
          kind = "header-length";
          const b = st.slice();
          new DataView(b.buffer).setBigUint64(
            0,
            [0xffffffffffffffffn, 0x7ff8000000000000n, 0n, 1n, BigInt(headerEnd - 9), BigInt(headerEnd + 1)][i % 6]!,
            true,
          );
          dir = folder(b);
          break;
        }
        case 3: {
          kind = "remove";
          const l = list();
          l.splice(Math.floor(rnd() * l.length), 1);
          dir = folder(serializeSafetensors(l));
          break;
        }
        case 4: {
          kind = "add";
          const l = list();
          l.push({
            name: ["model.layers.7.mlp.up_proj.weight", "extra.bias", "lm_head.bias"][i % 3]!,
            dtype: "F32",
            shape: [4],
            data: new Uint8Array(16),
          });
          dir = folder(serializeSafetensors(l));
          break;
        }
        case 5: {
          kind = "dtype";
          const h = header();
          h[pickName]!.dtype = ["F16", "BF16", "I8", "F64", "F8_E4M3", "nope", ""][i % 7]!;
          dir = folder(withHeader(h));
          break;
        }
        case 6: {
          kind = "offsets";
          const h = header();
          const o = h[pickName]!.data_offsets;
          const v = [
            [o[0]!, o[1]! + 4],
            [o[0]! + 4, o[1]! + 4],
            [o[1]!, o[0]!],
            [0, o[1]! - o[0]!],
            [-4, o[1]!],
            [o[0]!, 1e18],
            [o[0]!, 1.5],
          ][i % 7]!;
          h[pickName]!.data_offsets = v;
          dir = folder(withHeader(h));
          break;
        }
        case 7: {
          kind = "shape";
          const h = header();
          h[pickName]!.shape = [[], [0], [1, 2, 3], [-1, 64], [64.5], "64" as unknown as number[], [1e20]][i % 7]!;
          dir = folder(withHeader(h));
          break;
        }
        case 8: {
          kind = "config-json";
          dir = folder(st, cfgText.slice(0, Math.floor(rnd() * cfgText.length)));
          break;
        }
        case 9: {
          kind = "config-value";
          const c = JSON.parse(cfgText) as Record<string, unknown>;
          const edits: [string, unknown][] = [
            ["model_type", "gpt_neox"],
            ["hidden_size", 65],
            ["num_key_value_heads", 3],
            ["vocab_size", 500],
            ["num_hidden_layers", 6],
            ["intermediate_size", null],
            ["rms_norm_eps", -1],
            ["tie_word_embeddings", false],
            ["num_attention_heads", 1e300],
            ["rope_scaling", { type: "dynamic", factor: 2 }],
            ["hidden_act", "gelu"],
          ];
          const [k, v] = edits[i % edits.length]!;
          c[k] = v;
          if (k === "model_type") c.architectures = ["GPTNeoXForCausalLM"];
          dir = folder(st, JSON.stringify(c));
          break;
        }
        case 10: {
          kind = "tokenizer-json";
          const t = readFileSync(join(HF_DIR, "tokenizer.json"), "utf8");
          dir = folder(st, cfgText, t.slice(0, Math.floor(rnd() * t.length)));
          break;
        }
        default: {
          kind = "data-flip";
          const b = st.slice();
          b[headerEnd + Math.floor(rnd() * (b.length - headerEnd))]! ^= 0xff;
          dir = folder(b);
        }
      }
      const o = timed(dir);
      counts[`${kind}:${o.kind}`] = (counts[`${kind}:${o.kind}`] ?? 0) + 1;
    }
    console.log("hf corruptions:", JSON.stringify(counts));
    for (const kind of ["truncate", "header-length", "remove", "add", "shape", "config-json"])
      expect(counts[`${kind}:loaded`] ?? 0).toBe(0);
    expect(counts["data-flip:loaded"]).toBeGreaterThan(0); // harmless: a changed weight value
  });
});
