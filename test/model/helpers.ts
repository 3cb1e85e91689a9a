// Shared by the model suites: where the fixtures are, a seeded PRNG, a CPU device when the
// native library (with the caching allocator) is built.
import { existsSync } from "node:fs";
import { resolve } from "node:path";

import { Device } from "../../src/native/device.ts";

/** ../shared/models relative to the repository root; $HEADROOM_MODELS_DIR overrides. */
export const MODELS_DIR = process.env.HEADROOM_MODELS_DIR ?? resolve(import.meta.dir, "../../../shared/models");
export const HAVE_MODELS = existsSync(resolve(MODELS_DIR, "stories260K/stories260K.gguf"));
export const GGUF_PATH = resolve(MODELS_DIR, "stories260K/stories260K.gguf");
export const HF_DIR = resolve(MODELS_DIR, "stories260K-hf");
export const GPT2_DIR = resolve(MODELS_DIR, "tokenizers/gpt2");
/** llama.cpp's tokenizer test data: ggml-vocab-*.gguf.gz with .inp/.out. */
export const VOCAB_DIR = resolve(MODELS_DIR, "vocab");

export function warnIfNoModels(suite: string): void {
  if (!HAVE_MODELS) console.warn(`[${suite}] skipped: ../shared/models not found (${MODELS_DIR}); set HEADROOM_MODELS_DIR`);
}

/** mulberry32: small, seeded, deterministic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let deviceReason = "";
/** A CPU device with `capacity` bytes, or null (reason in deviceSkipReason()) when the library or allocator is not built. */
export function tryOpenCpuDevice(capacity: number): Device | null {
  try {
    const dev = Device.open({ device: "cpu", cpuCapacityBytes: capacity });
    const p = dev.alloc(1024);
    dev.free(p);
    return dev;
  } catch (e) {
    deviceReason = (e as Error).message;
    return null;
  }
}
export function deviceSkipReason(): string {
  return deviceReason;
}
