// Finds, loads and checks the native library (libheadroom_cpu.so / libheadroom_cuda.so).
// `--device auto` prefers CUDA and falls back to CPU with a logged reason.
import { dlopen, type ConvertFns } from "bun:ffi";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

import { HeadroomError } from "./errors.ts";
import { embeddedLibraryPath, explainDlopenError } from "./extract.ts";
import { symbols, type Symbols } from "./symbols.ts";

/** Must equal HR_ABI_VERSION in csrc/include/headroom.h. */
export const EXPECTED_ABI_VERSION = 4;

export type Backend = "cpu" | "cuda";
export type DeviceChoice = Backend | "auto";

export interface NativeLibrary {
  readonly backend: Backend;
  readonly path: string;
  readonly sym: ConvertFns<Symbols>;
  /** Throws a HeadroomError for a non-zero status, with hr_last_error()'s message. */
  check(status: number, call: string): void;
  lastError(): string;
}

/** Where the built libraries live: $HEADROOM_LIB_DIR, else <repo>/build. */
export function libraryDir(): string {
  return process.env.HEADROOM_LIB_DIR ?? resolve(import.meta.dir, "../../build");
}

/** In the single binary (no $HEADROOM_LIB_DIR), the extracted copy of the embedded library. */
export function libraryPath(backend: Backend): string {
  if (process.env.HEADROOM_LIB_DIR === undefined) {
    const embedded = embeddedLibraryPath(backend);
    if (embedded !== null) return embedded;
  }
  return join(libraryDir(), `libheadroom_${backend}.so`);
}

const loaded = new Map<Backend, NativeLibrary>();

function open(backend: Backend, path: string): NativeLibrary {
  const cached = loaded.get(backend);
  if (cached) return cached;
  if (!existsSync(path)) {
    throw new HeadroomError(-5, "loadLibrary", `${path} not found: run \`make\` to build the native library`);
  }
  let lib: ReturnType<typeof dlopen<Symbols>>;
  try {
    lib = dlopen(path, symbols);
  } catch (e) {
    throw new HeadroomError(-5, "loadLibrary", explainDlopenError(path, (e as Error).message));
  }
  const sym = lib.symbols;
  const abi = sym.hr_abi_version();
  if (abi !== EXPECTED_ABI_VERSION) {
    lib.close();
    throw new HeadroomError(
      -3,
      "loadLibrary",
      `${path} has ABI version ${abi}, this binding expects ${EXPECTED_ABI_VERSION}: rebuild with \`make\``,
    );
  }
  const lastError = () => String(sym.hr_last_error());
  const native: NativeLibrary = {
    backend,
    path,
    sym,
    lastError,
    check(status, call) {
      if (status !== 0) throw new HeadroomError(status, call, lastError());
    },
  };
  loaded.set(backend, native);
  return native;
}

/** Counts devices; a CUDA library without a driver reports 0 with the reason. */
export function deviceCount(lib: NativeLibrary): { count: number; reason: string } {
  const out = new BigInt64Array(1);
  const st = lib.sym.hr_device_count(out);
  if (st !== 0) return { count: 0, reason: lib.lastError() };
  return { count: Number(out[0]), reason: "" };
}

/**
 * Loads the library for `choice`. `auto` uses CUDA when its library exists and a device is
 * visible, else CPU, and reports why through `log`.
 */
export function loadLibrary(choice: DeviceChoice = "auto", log: (msg: string) => void = () => {}): NativeLibrary {
  if (choice === "cpu") return open("cpu", libraryPath("cpu"));
  if (choice === "cuda") {
    const lib = open("cuda", libraryPath("cuda"));
    const { count, reason } = deviceCount(lib);
    if (count === 0) throw new HeadroomError(-7, "loadLibrary", `--device cuda: no CUDA device (${reason || "count is 0"})`);
    return lib;
  }
  const cudaPath = libraryPath("cuda");
  let why: string;
  if (!existsSync(cudaPath)) {
    why = `${cudaPath} not built`;
  } else {
    try {
      const lib = open("cuda", cudaPath);
      const { count, reason } = deviceCount(lib);
      if (count > 0) return lib;
      why = `no CUDA device: ${reason || "count is 0"}`;
    } catch (e) {
      why = (e as Error).message;
    }
  }
  log(`device auto: using cpu (${why})`);
  return open("cpu", libraryPath("cpu"));
}
