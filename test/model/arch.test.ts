// Families beyond Llama (Qwen3, Gemma 1/2/3, Phi-3 LongRoPE, Mistral v0.1 / Qwen2 sliding
// windows, yarn, dynamic NTK): tiny random-weight models with the real config field and tensor
// names, loaded from an HF folder and from a GGUF file with llama.cpp's names, run through the
// real forward pass on the CPU backend (paged KV, chunked prefill, then decode steps) and
// compared with the independent float64 reference in arch-ref.ts.
//
// Tolerance: max |logit - reference| <= 1e-4. The model computes in fp32 (CPU backend) on
// hidden 32 / 3 layers with logits of magnitude <= ~10; fp32 rounding through ~10 dependent
// ops per layer gives ~1e-6 relative, i.e. ~1e-5 absolute, so 1e-4 leaves a 10x margin while
// any semantic error (a norm without +1, a missed window, a wrong RoPE table, a softcap off by
// a factor) moves logits by 1e-2 or more (the sliding-window bug of the issue: 1.24).
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { EngineCore } from "../../src/engine/engine-core.ts";
import { startEngine } from "../../src/engine/startup.ts";
import { ModelFileError } from "../../src/model/errors.ts";
import { loadGgufWeights } from "../../src/model/gguf-model.ts";
import { parseHfConfig } from "../../src/model/hf-config.ts";
import { loadHfWeights } from "../../src/model/hf-model.ts";
import { ropeAttentionFactor, ropeInvFreq } from "../../src/model/rope.ts";
import { engineOptions, greedyParams } from "../engine/engine-helpers.ts";
import { asFloat64, FAMILIES, randomWeights, writeGgufFile, writeHfFolder } from "./arch-models.ts";
import { refForward, refGreedy, refRope } from "./arch-ref.ts";
import { runModel, type Run } from "./arch-run.ts";
import { deviceSkipReason, HAVE_MODELS, HF_DIR, prng, tryOpenCpuDevice } from "./helpers.ts";

const TOL = 1e-4;
const tmp = mkdtempSync(join(tmpdir(), "headroom-arch-"));
const dev = tryOpenCpuDevice(256 * 2 ** 20);
if (!dev) console.warn(`[arch] skipped: ${deviceSkipReason()}`);
afterAll(() => {
  dev?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** Max |ours - reference| over the recorded rows; checks greedy picks agree where the reference is not tied. */
function compare(cfgJson: Record<string, unknown>, W: ReturnType<typeof asFloat64>, run: Run, checkPicks = true): number {
  const ref = refForward(cfgJson, W, run.seq);
  let maxErr = 0;
  for (const [pos, logits] of run.rows) {
    const r = ref[pos]!;
    let e = 0;
    for (let i = 0; i < r.length; i++) e = Math.max(e, Math.abs(logits[i]! - r[i]!));
    if (process.env.ARCH_DEBUG) console.log(`pos ${pos}: ${e}`);
    maxErr = Math.max(maxErr, e);
    if (checkPicks && pos >= run.promptLen - 1 && pos + 1 < run.seq.length) {
      // a greedy pick
      const sorted = [...r].sort((a, b) => b - a);
      let best = 0;
      for (let i = 1; i < r.length; i++) if (r[i]! > r[best]!) best = i;
      if (sorted[0]! - sorted[1]! > 10 * TOL) expect(run.seq[pos + 1]).toBe(best);
    }
  }
  return maxErr;
}

function prompt(n: number, vocab: number, seed: number): number[] {
  const r = prng(seed);
  return Array.from({ length: n }, () => 3 + Math.floor(r() * (vocab - 3)));
}

const maxErrors: string[] = [];
const fusedDiffs: string[] = [];
const FUSED_TOL = 1e-5;
afterAll(() => {
  if (maxErrors.length) console.log(`[arch] max |logit - float64 reference|:\n  ${maxErrors.join("\n  ")}`);
  if (fusedDiffs.length) console.log(`[arch] max |logit fused - separate projections|:\n  ${fusedDiffs.join("\n  ")}`);
});

describe.skipIf(!dev)("families vs the float64 reference (prefill in chunks past the window, then decode)", () => {
  FAMILIES.forEach((fam, fi) => {
    const cfg = fam.cfg;
    const weights = randomWeights(cfg, 1000 + fi);
    const W = asFloat64(weights);
    const dir = join(tmp, `hf-${fi}`);
    writeHfFolder(dir, cfg, weights);
    // 30-token prompt in chunks 11 + 7 + 12 (cached prefix + window across chunk and block edges), 6 decode steps
    const p = prompt(30, cfg.vocab_size, 7 + fi);
    test(`${fam.name}: HF folder`, () => {
      const run = runModel(dev!, loadHfWeights(dir), p, [11, 7, 12], 6, 64);
      const err = compare(cfg, W, run);
      maxErrors.push(`${fam.name} (HF): ${err.toExponential(2)}`);
      expect(err).toBeLessThan(TOL);
      // Every layer ran one q|k|v and one gate|up matmul (fused at load), q|k|v bias included.
      expect(run.fusedTensors).toBe(cfg.num_hidden_layers * (cfg.model_type === "qwen2" ? 3 : 2));
      // The same weights with every projection on its own (one matmul each, dense q/k/v): the same
      // sequence and logits up to fp32 summation order (rows are the same dot products; only a
      // kernel's blocking over n may change). FUSED_TOL: 1e-5 of logits <= ~10, 10x below TOL.
      const sep = runModel(dev!, loadHfWeights(dir), run.seq.slice(0, run.promptLen), [11, 7, 12], 6, 64, "f32", 4, false);
      expect(sep.fusedTensors).toBe(0);
      expect(sep.seq).toEqual(run.seq);
      let d = 0;
      run.rows.forEach(([, l], r) => l.forEach((v, i) => (d = Math.max(d, Math.abs(v - sep.rows[r]![1][i]!)))));
      fusedDiffs.push(`${fam.name}: ${d.toExponential(2)}`);
      expect(d).toBeLessThan(FUSED_TOL);
    }, 30_000);
    if (fam.gguf) {
      test(`${fam.name}: GGUF with llama.cpp names and metadata`, () => {
        const path = join(tmp, `m-${fi}.gguf`);
        writeGgufFile(path, cfg, weights);
        const run = runModel(dev!, loadGgufWeights(path).weights, p, [11, 7, 12], 6, 64);
        const err = compare(cfg, W, run);
        maxErrors.push(`${fam.name} (GGUF): ${err.toExponential(2)}`);
        expect(err).toBeLessThan(TOL);
      }, 30_000);
    }
  });

  test("Phi-3 LongRoPE past original_max_position_embeddings: long factors (max_model_len 128 > 64)", () => {
    const fam = FAMILIES.find((f) => f.cfg.model_type === "phi3")!;
    const weights = randomWeights(fam.cfg, 77);
    const dir = join(tmp, "phi3-long");
    writeHfFolder(dir, fam.cfg, weights);
    // every forward of the reference has seq_len > 64, so HF uses long_factor throughout
    const run = runModel(dev!, loadHfWeights(dir), prompt(70, fam.cfg.vocab_size, 5), [40, 30], 4, 128);
    const err = compare(fam.cfg, asFloat64(weights), run);
    maxErrors.push(`Phi-3 long factors (HF): ${err.toExponential(2)}`);
    expect(err).toBeLessThan(TOL);
  }, 30_000);

  test("Gemma 2 with query_pre_attn_scalar != head_dim (HF only: GGUF has no such key)", () => {
    const fam = FAMILIES.find((f) => f.cfg.model_type === "gemma2")!;
    const cfg: Record<string, any> = { ...fam.cfg, query_pre_attn_scalar: 40 };
    const weights = randomWeights(cfg, 78);
    const dir = join(tmp, "gemma2-qpas");
    writeHfFolder(dir, cfg, weights);
    const run = runModel(dev!, loadHfWeights(dir), prompt(20, cfg.vocab_size, 6), [20], 4, 64);
    expect(compare(cfg, asFloat64(weights), run)).toBeLessThan(TOL);
  });

  test("the sliding window matters: Mistral v0.1 without it differs from the reference by far more than the tolerance", () => {
    const fam = FAMILIES.find((f) => f.cfg.model_type === "mistral")!;
    const weights = randomWeights(fam.cfg, 1000 + FAMILIES.indexOf(fam));
    const dir = join(tmp, "mistral-nowindow");
    writeHfFolder(dir, { ...fam.cfg, sliding_window: null }, weights);
    const run = runModel(dev!, loadHfWeights(dir), prompt(30, fam.cfg.vocab_size, 9), [30], 2, 64);
    expect(compare({ ...fam.cfg }, asFloat64(weights), { ...run, rows: run.rows.slice(0, 1) }, false)).toBeGreaterThan(100 * TOL);
  });
});

describe.skipIf(!dev || !HAVE_MODELS)("engine: greedy generation through the paged KV path past the sliding window", () => {
  // block 16 > window 8: the window cuts inside blocks; decode graphs on (replayed op lists)
  for (const mt of ["mistral", "gemma2", "gemma3_text", "phi3"]) {
    const fam = FAMILIES.find((f) => f.cfg.model_type === mt)!;
    test(`${fam.name}: 40 greedy tokens from a 21-token prompt equal the float64 reference's`, () => {
      const cfg = { ...fam.cfg, vocab_size: 512 };
      const weights = randomWeights(cfg, 4242);
      const dir = join(tmp, `engine-${mt}`);
      writeHfFolder(dir, cfg, weights);
      copyFileSync(join(HF_DIR, "tokenizer.json"), join(dir, "tokenizer.json"));
      const p = prompt(21, 512, 11);
      const ref = refGreedy(cfg, asFloat64(weights), p, 40);
      const s = startEngine(engineOptions(dir, { deviceOrdinal: 61, maxModelLen: 64, enforceEager: false }));
      try {
        // the planner predicts this family's weights and arena (Gemma 3's second RoPE table included)
        expect(s.planMismatches).toEqual([]);
        expect(s.plan.weightsBytes).toBe(s.profile.weightsBytes);
        expect(s.plan.activationArenaBytes).toBe(s.profile.peakActivationBytes);
        const core = new EngineCore(s, { maxNumSeqs: 8, maxWaiting: 64, servedModelName: null });
        core.add({ requestId: "w", promptTokenIds: p, params: greedyParams(40) });
        const out: number[] = [];
        while (core.hasWork()) for (const e of core.step()) out.push(...e.tokenIds);
        expect(out).toEqual(ref.tokens);
      } finally {
        s.close();
      }
    }, 60_000);
  }
});

describe("refusals name the config field", () => {
  const base = { ...FAMILIES[0]!.cfg };
  const parse = (over: Record<string, unknown>) => () => parseHfConfig({ ...base, ...over }, "config.json", "x");
  test("unsupported fields are ModelFileErrors naming the field", () => {
    expect(parse({ model_type: "gemma3", architectures: ["Gemma3ForConditionalGeneration"] })).toThrow(
      /model_type "gemma3" \(Gemma3ForConditionalGeneration/,
    );
    expect(parse({ partial_rotary_factor: 0.75 })).toThrow(/partial_rotary_factor 0.75 is not supported/);
    expect(parse({ model_type: "gemma2", architectures: ["Gemma2ForCausalLM"], hidden_activation: "gelu" })).toThrow(
      /hidden_activation "gelu" is not supported/,
    );
    expect(parse({ hidden_act: "relu" })).toThrow(/hidden_act "relu" is not supported/);
    expect(parse({ attention_bias: true })).toThrow(/attention_bias=true is not supported/);
    expect(parse({ rope_scaling: { rope_type: "mrope", factor: 2 } })).toThrow(/rope_scaling type "mrope" is not supported/);
    expect(parse({ rope_scaling: { type: "longrope", short_factor: [1, 2], long_factor: [1, 2, 3, 4] } })).toThrow(
      /rope_scaling.short_factor has 2 entries, head_dim\/2 = 8 needed/,
    );
    expect(
      parse({ layer_types: ["full_attention", "chunked_attention", "full_attention"], use_sliding_window: true, sliding_window: 8 }),
    ).toThrow(/layer_types\[1\] "chunked_attention" is not supported/);
    expect(parse({ model_type: "gemma2", architectures: ["Gemma2ForCausalLM"], attn_logit_softcapping: -1 })).toThrow(
      /attn_logit_softcapping -1 must be > 0/,
    );
    expect(parse({ model_type: "gpt_oss", architectures: ["GptOssForCausalLM"] })).toThrow(ModelFileError);
  });

  test("Qwen2/Qwen3 sliding_window is ignored unless use_sliding_window (as transformers); Mistral's applies to every layer", () => {
    const q = parseHfConfig({ ...base, model_type: "qwen2", architectures: ["Qwen2ForCausalLM"], sliding_window: 32768 }, "c", "x");
    expect(q.slidingWindow).toBeNull();
    const q2 = parseHfConfig(
      {
        ...base,
        model_type: "qwen2",
        architectures: ["Qwen2ForCausalLM"],
        use_sliding_window: true,
        sliding_window: 64,
        max_window_layers: 2,
      },
      "c",
      "x",
    );
    expect(q2.layerTypes).toEqual(["full", "full", "sliding"]);
    const m = parseHfConfig({ ...base, model_type: "mistral", architectures: ["MistralForCausalLM"], sliding_window: 4096 }, "c", "x");
    expect([m.slidingWindow, m.layerTypes]).toEqual([4096, undefined]);
    const g3 = parseHfConfig(FAMILIES.find((f) => f.cfg.model_type === "gemma3_text")!.cfg, "c", "x");
    expect(g3.layerTypes).toEqual(["sliding", "sliding", "full"]);
  });
});

describe("RoPE tables vs modeling_rope_utils (float64 reference)", () => {
  const llama = {
    ...FAMILIES.find((f) => f.cfg.model_type === "llama")!.cfg,
    head_dim: 64,
    max_position_embeddings: 4096,
    rope_theta: 500000,
  };
  const cases: [string, Record<string, unknown>, number][] = [
    ["dynamic NTK, max_model_len 16384 > max_position_embeddings 4096", { rope_scaling: { rope_type: "dynamic", factor: 4 } }, 16384],
    ["dynamic NTK, max_model_len <= max_position_embeddings: unchanged", { rope_scaling: { rope_type: "dynamic", factor: 4 } }, 2048],
    [
      "yarn with original_max_position_embeddings (factor = ratio)",
      { max_position_embeddings: 32768, rope_scaling: { rope_type: "yarn", factor: 4, original_max_position_embeddings: 8192 } },
      32768,
    ],
    [
      "yarn, factor only, beta 16/2, truncate false",
      { rope_scaling: { rope_type: "yarn", factor: 8, beta_fast: 16, beta_slow: 2, truncate: false } },
      4096,
    ],
    [
      "yarn with mscale / mscale_all_dim (DeepSeek style)",
      { rope_scaling: { rope_type: "yarn", factor: 40, mscale: 1.0, mscale_all_dim: 0.707 } },
      4096,
    ],
    ["yarn with explicit attention_factor", { rope_scaling: { rope_type: "yarn", factor: 2, attention_factor: 1.3 } }, 4096],
    [
      "longrope short (max_model_len <= original)",
      {
        original_max_position_embeddings: 1024,
        rope_scaling: {
          rope_type: "longrope",
          short_factor: Array.from({ length: 32 }, (_, i) => 1 + i / 10),
          long_factor: Array.from({ length: 32 }, (_, i) => 2 + i),
        },
      },
      1024,
    ],
    [
      "longrope long (max_model_len > original)",
      {
        original_max_position_embeddings: 1024,
        rope_scaling: {
          rope_type: "longrope",
          short_factor: Array.from({ length: 32 }, (_, i) => 1 + i / 10),
          long_factor: Array.from({ length: 32 }, (_, i) => 2 + i),
        },
      },
      4096,
    ],
  ];
  for (const [what, over, maxModelLen] of cases) {
    test(what, () => {
      const c: Record<string, any> = { ...llama, ...over };
      const cfg = parseHfConfig(c, "config.json", "x");
      const ours = ropeInvFreq(cfg, undefined, maxModelLen);
      const ref = refRope(c, c.rope_scaling, c.rope_theta, maxModelLen);
      for (let i = 0; i < ours.length; i++) expect(Math.abs(ours[i]! - ref.inv[i]!) / ref.inv[i]!).toBeLessThan(1e-6); // fp32 table
      expect(ropeAttentionFactor(cfg)).toBeCloseTo(ref.af, 12);
    });
  }
});
