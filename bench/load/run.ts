// Load-time benchmark: a ~1 GiB synthetic Llama-shaped safetensors folder (F32; plus the same
// model in BF16 for the conversion path) written to a temp dir and deleted after. Reports, for
// the same file: raw sequential read time (read() into a reused 64 MiB buffer) and load time
// (parse header + upload every tensor into a CPU device through the caching allocator), each
// cold (file pages dropped from the page cache with posix_fadvise(DONTNEED) after fsync — no
// root needed, but the device's own caches below the guest kernel are not dropped) and warm.
// Prints a table and writes bench/out/load.json.
//   bun bench/load/run.ts            ($HEADROOM_BENCH_DIR picks the temp location)
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { cpus, hostname, tmpdir, totalmem } from "node:os";
import { join } from "node:path";

import { expectedTensors, type ModelConfig } from "../../src/model/config.ts";
import { parseHfConfig } from "../../src/model/hf-config.ts";
import { loadHfWeights } from "../../src/model/hf-model.ts";
import { serializeSafetensorsHeader } from "../../src/model/safetensors.ts";
import { uploadWeights } from "../../src/model/upload.ts";
import { numel } from "../../src/model/weights.ts";
import { Device } from "../../src/native/device.ts";

const root = join(import.meta.dir, "..", "..");
const GiB = 1024 ** 3;

// hidden 2048, intermediate 5632, 4 layers, vocab 32000, tied: 271M params = 1.01 GiB in F32.
const cfgJson = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 2048,
  intermediate_size: 5632,
  num_hidden_layers: 4,
  num_attention_heads: 32,
  num_key_value_heads: 32,
  vocab_size: 32000,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
};

const libc = dlopen("libc.so.6", { posix_fadvise: { args: [FFIType.i32, FFIType.i64, FFIType.i64, FFIType.i32], returns: FFIType.i32 } });
const POSIX_FADV_DONTNEED = 4;

function dropCache(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
    return libc.symbols.posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) === 0;
  } finally {
    closeSync(fd);
  }
}

/** Writes config.json + model.safetensors without holding the whole file in memory. */
function writeModel(dir: string, cfg: ModelConfig, dtype: "F32" | "BF16"): { path: string; bytes: number } {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfgJson, torch_dtype: dtype === "F32" ? "float32" : "bfloat16" }));
  const eb = dtype === "F32" ? 4 : 2;
  const list = [...expectedTensors(cfg)].map(([name, shape]) => ({ name, dtype, shape }));
  const head = serializeSafetensorsHeader(
    list,
    list.map((t) => numel(t.shape) * eb),
  );
  const path = join(dir, "model.safetensors");
  const fd = openSync(path, "w");
  let bytes = 0;
  try {
    writeSync(fd, head);
    bytes += head.length;
    const chunk = new Float32Array(4 << 20); // 16 MiB of small varied values
    for (let i = 0; i < chunk.length; i++) chunk[i] = ((i * 2654435761) % 1000) / 50000 - 0.01;
    const chunkBytes = new Uint8Array(chunk.buffer);
    const bf = new Uint16Array(chunk.length);
    const u = new Uint32Array(chunk.buffer);
    for (let i = 0; i < chunk.length; i++) bf[i] = u[i]! >>> 16;
    const src = dtype === "F32" ? chunkBytes : new Uint8Array(bf.buffer);
    for (const t of list) {
      let left = numel(t.shape) * eb;
      while (left > 0) {
        const n = Math.min(left, src.length);
        writeSync(fd, src, 0, n);
        left -= n;
        bytes += n;
      }
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { path, bytes };
}

function readAll(path: string): number {
  const buf = new Uint8Array(64 << 20);
  const fd = openSync(path, "r");
  const t0 = performance.now();
  try {
    while (readSync(fd, buf, 0, buf.length, null) > 0) {
      // sequential read
    }
  } finally {
    closeSync(fd);
  }
  return performance.now() - t0;
}

function load(dev: Device, dir: string): { ms: number; parseMs: number; uploadMs: number; deviceBytes: number } {
  const t0 = performance.now();
  const ws = loadHfWeights(dir);
  const t1 = performance.now();
  const lw = uploadWeights(dev, ws);
  const t2 = performance.now();
  const deviceBytes = lw.totalBytes;
  lw.free();
  dev.emptyCache();
  return { ms: t2 - t0, parseMs: t1 - t0, uploadMs: t2 - t1, deviceBytes };
}

const base = mkdtempSync(join(process.env.HEADROOM_BENCH_DIR ?? tmpdir(), "headroom-load-bench-"));
const rows: Record<string, unknown>[] = [];
try {
  const cfg = parseHfConfig(cfgJson, "config.json", "synthetic");
  const dev = Device.open({ device: "cpu", cpuCapacityBytes: 3 * GiB });
  for (const dtype of ["F32", "BF16"] as const) {
    const dir = join(base, dtype);
    const { path, bytes } = writeModel(dir, cfg, dtype);
    const dropped = dropCache(path);
    const readCold = readAll(path);
    dropCache(path);
    const loadCold = load(dev, dir);
    readAll(path); // warm up
    const readWarm = Math.min(readAll(path), readAll(path));
    const warm = [load(dev, dir), load(dev, dir)].sort((a, b) => a.ms - b.ms)[0]!;
    const gbs = (ms: number) => bytes / GiB / (ms / 1000);
    rows.push({
      file_dtype: dtype,
      file_bytes: bytes,
      device_bytes: warm.deviceBytes,
      cache_dropped: dropped,
      read_cold_ms: readCold,
      load_cold_ms: loadCold.ms,
      read_warm_ms: readWarm,
      load_warm_ms: warm.ms,
      load_warm_parse_ms: warm.parseMs,
      load_warm_upload_ms: warm.uploadMs,
      read_cold_gib_s: gbs(readCold),
      load_cold_gib_s: gbs(loadCold.ms),
      read_warm_gib_s: gbs(readWarm),
      load_warm_gib_s: gbs(warm.ms),
      load_over_read_cold: loadCold.ms / readCold,
      load_over_read_warm: warm.ms / readWarm,
    });
    rmSync(dir, { recursive: true, force: true });
  }
  dev.close();
} finally {
  rmSync(base, { recursive: true, force: true });
}

const f = (v: unknown, d = 0) => (typeof v === "number" ? v.toFixed(d) : String(v));
console.log("file   file GiB  dev GiB | read cold ms  load cold ms  ratio | read warm ms  load warm ms (parse+upload)  ratio");
for (const r of rows) {
  console.log(
    `${f(r.file_dtype).padEnd(6)} ${f((r.file_bytes as number) / GiB, 3).padStart(8)} ${f((r.device_bytes as number) / GiB, 3).padStart(8)} | ` +
      `${f(r.read_cold_ms).padStart(12)} ${f(r.load_cold_ms).padStart(13)} ${f(r.load_over_read_cold, 2).padStart(6)} | ` +
      `${f(r.read_warm_ms).padStart(12)} ${f(r.load_warm_ms).padStart(13)} (${f(r.load_warm_parse_ms, 1)}+${f(r.load_warm_upload_ms)}) ${f(r.load_over_read_warm, 2).padStart(6)}`,
  );
}
const out = {
  bench: "load",
  date: new Date().toISOString(),
  machine: { host: hostname(), cpu: cpus()[0]?.model ?? "?", cores: cpus().length, memory_bytes: totalmem(), bun: Bun.version },
  model: cfgJson,
  rows,
};
mkdirSync(join(root, "bench/out"), { recursive: true });
writeFileSync(join(root, "bench/out/load.json"), JSON.stringify(out, null, 2));
console.log("wrote bench/out/load.json");
