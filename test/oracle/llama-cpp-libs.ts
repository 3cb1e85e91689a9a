// The shared libraries of node-llama-cpp's prebuilt CPU binary (the llama.cpp build the oracle
// runs), opened directly through bun:ffi for what node-llama-cpp does not expose: ggml's
// quantizers (ggml_quantize_chunk in libggml-base) and llama-quantize's whole-file entry point
// (llama_model_quantize in libllama, run in a child process: it logs to stderr and shares its
// logger with node-llama-cpp's copy of the library).
import { dlopen, FFIType } from "bun:ffi";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/** bins/<platform> of @node-llama-cpp/<platform>-<arch>, or the reason it is not there. */
export function prebuiltBinDir(): string | { skip: string } {
  const pkg = `@node-llama-cpp/${process.platform}-${process.arch}`;
  try {
    const dir = join(dirname(Bun.resolveSync(`${pkg}/package.json`, import.meta.dir)), "bins", `${process.platform}-${process.arch}`);
    if (existsSync(join(dir, "libggml-base.so"))) return dir;
    return { skip: `${dir} has no libggml-base.so` };
  } catch {
    return { skip: `${pkg} is not installed` };
  }
}

export interface GgmlQuantizer {
  /** ggml_quantize_chunk(type, x, dst, 0, rows, rowLen, NULL): the bytes ggml writes. */
  quantize(ggmlType: number, x: Float32Array, rowLen: number, bytes: number): Uint8Array;
}

export function openGgmlQuantizer(binDir: string): GgmlQuantizer {
  const lib = dlopen(join(binDir, "libggml-base.so"), {
    ggml_quantize_chunk: {
      args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.i64, FFIType.i64, FFIType.i64, FFIType.ptr],
      returns: FFIType.u64,
    },
  });
  return {
    quantize(ggmlType, x, rowLen, bytes) {
      const out = new Uint8Array(bytes);
      const n = lib.symbols.ggml_quantize_chunk(ggmlType, x, out, 0, x.length / rowLen, rowLen, null);
      if (Number(n) !== bytes) throw new Error(`ggml_quantize_chunk wrote ${n} bytes, expected ${bytes}`);
      return out;
    },
  };
}

/**
 * Runs llama_model_quantize(src, out, params) in a child process (this file as a script), the
 * same call llama-quantize makes: ftype, one thread, `pure` = --pure, everything else default.
 */
export async function llamaQuantize(binDir: string, src: string, out: string, ftype: number, pure: boolean): Promise<void> {
  const p = Bun.spawn([process.execPath, import.meta.path, binDir, src, out, String(ftype), pure ? "1" : "0"], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  if (code !== 0) throw new Error(`llama_model_quantize failed (${code}): ${err.split("\n").slice(-5).join("\n")}`);
}

/** struct llama_model_quantize_params (llama.h of the bundled source, LP64): 64 bytes. */
function quantizeParams(ftype: number, pure: boolean): Uint8Array {
  const GGML_TYPE_COUNT = 43;
  const p = new Uint8Array(64);
  const dv = new DataView(p.buffer);
  dv.setInt32(0, 1, true); // nthread
  dv.setInt32(4, ftype, true);
  dv.setInt32(8, GGML_TYPE_COUNT, true); // output_tensor_type: the mixture's choice
  dv.setInt32(12, GGML_TYPE_COUNT, true); // token_embedding_type: likewise
  p[16] = 0; // allow_requantize
  p[17] = 1; // quantize_output_tensor
  p[18] = 0; // only_copy
  p[19] = pure ? 1 : 0;
  p[20] = 0; // keep_split
  p[21] = 0; // dry_run
  // imatrix, kv_overrides, tt_overrides, prune_layers: NULL; max_buf_size 0 = default
  return p;
}

if (import.meta.main) {
  const [binDir, src, out, ftype, pure] = process.argv.slice(2) as [string, string, string, string, string];
  const libName = readdirSync(binDir).find((f) => /^libllama(\.v[\d.]+)?\.so$/.test(f));
  if (!libName) throw new Error(`no libllama in ${binDir}`);
  const lib = dlopen(resolve(binDir, libName), {
    llama_backend_init: { args: [], returns: FFIType.void },
    llama_model_quantize: { args: [FFIType.cstring, FFIType.cstring, FFIType.ptr], returns: FFIType.u32 },
  });
  lib.symbols.llama_backend_init();
  const cstr = (s: string) => Buffer.from(`${s}\0`);
  const rc = lib.symbols.llama_model_quantize(cstr(src), cstr(out), quantizeParams(Number(ftype), pure === "1"));
  process.exit(rc === 0 ? 0 : 1);
}
