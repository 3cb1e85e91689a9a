// Synthetic models for benchmarks and memory tests: a Llama shape with deterministic random
// weights and the demo byte-level tokenizer, named by a spec instead of a path:
//   synthetic:stories15m | synthetic:110m | synthetic:llama-8b
//   synthetic:dim=768,hidden=2048,layers=12,heads=12,kv_heads=12,vocab=32000[,ctx=2048]
import type { ModelConfig } from "./config.ts";
import { validateConfig } from "./config.ts";
import { demoConfig } from "./demo-model.ts";
import { ModelFileError } from "./errors.ts";

export const SYNTHETIC_PREFIX = "synthetic:";

const PRESETS: Record<string, string> = {
  stories15m: "dim=288,hidden=768,layers=6,heads=6,kv_heads=6,vocab=32000",
  "110m": "dim=768,hidden=2048,layers=12,heads=12,kv_heads=12,vocab=32000",
  "llama-8b": "dim=4096,hidden=14336,layers=32,heads=32,kv_heads=8,vocab=128256,ctx=8192",
};

export function isSyntheticSpec(path: string | null | undefined): path is string {
  return typeof path === "string" && path.startsWith(SYNTHETIC_PREFIX);
}

export function syntheticConfig(spec: string): ModelConfig {
  const body = spec.slice(SYNTHETIC_PREFIX.length);
  const text = PRESETS[body] ?? body;
  const kv: Record<string, number> = {};
  for (const part of text.split(",")) {
    const [k, v] = part.split("=");
    const n = Number(v);
    if (!k || v === undefined || !Number.isSafeInteger(n) || n <= 0) {
      throw new ModelFileError(
        spec,
        `bad synthetic model spec part '${part}' (expected key=positive integer, or one of ${Object.keys(PRESETS).join(", ")})`,
      );
    }
    kv[k] = n;
  }
  for (const k of ["dim", "hidden", "layers", "heads"]) {
    if (kv[k] === undefined) throw new ModelFileError(spec, `synthetic model spec needs ${k}=`);
  }
  const heads = kv.heads!;
  const base = demoConfig();
  const vocab = Math.max(kv.vocab ?? base.vocabSize, base.vocabSize);
  return validateConfig(
    {
      ...base,
      name: `${spec} (random weights)`,
      hiddenSize: kv.dim!,
      intermediateSize: kv.hidden!,
      numLayers: kv.layers!,
      numHeads: heads,
      numKvHeads: kv.kv_heads ?? heads,
      headDim: kv.dim! / heads,
      vocabSize: vocab,
      maxPositionEmbeddings: kv.ctx ?? 2048,
      tieWordEmbeddings: false,
      randomWeights: true,
    },
    spec,
  );
}
