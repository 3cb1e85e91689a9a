// Runs code with a variable set in the C environment: Bun's process.env does not reach the
// library's getenv(), so switches such as HEADROOM_CPU_QMATMUL are set through libc.
import { dlopen, FFIType } from "bun:ffi";

export function withCEnv<T>(name: string, value: string, fn: () => T): T {
  const libc = dlopen(process.platform === "darwin" ? "libc.dylib" : "libc.so.6", {
    setenv: { args: [FFIType.cstring, FFIType.cstring, FFIType.i32], returns: FFIType.i32 },
    unsetenv: { args: [FFIType.cstring], returns: FFIType.i32 },
  });
  const cstr = (s: string) => Buffer.from(`${s}\0`);
  if (libc.symbols.setenv(cstr(name), cstr(value), 1) !== 0) throw new Error(`setenv(${name}) failed`);
  try {
    return fn();
  } finally {
    libc.symbols.unsetenv(cstr(name));
    libc.close();
  }
}

/**
 * The CPU backend's fp32 reference path for quantized weights (dequantize, fp32 activations),
 * what CUDA computes; its default path rounds activations to int8 like llama.cpp.
 */
export const withExactQuantMatmul = <T>(fn: () => T): T => withCEnv("HEADROOM_CPU_QMATMUL", "dequant", fn);
