// The CUDA library on a machine without a usable GPU (this runs everywhere): it must load,
// say "no CUDA device" cleanly (HR_E_NODEVICE, no abort, no print), and `auto` must fall back
// to the CPU library with the reason logged. Where a GPU is present, `auto` must pick CUDA.
import { dlopen } from "bun:ffi";
import { existsSync } from "node:fs";
import { describe, expect, test } from "bun:test";

import { Device } from "../../src/native/device.ts";
import { HeadroomError, Status } from "../../src/native/errors.ts";
import { EXPECTED_ABI_VERSION, libraryPath, loadLibrary } from "../../src/native/library.ts";
import { cudaExtraSymbols, symbols } from "../../src/native/symbols.ts";
import { noGpu } from "./common.ts";

const built = existsSync(libraryPath("cuda"));
if (!built) console.warn(`skipped: ${libraryPath("cuda")} not built (no nvcc) — test/gpu/fallback.test.ts`);

describe.skipIf(!built || !noGpu)("CUDA library without a GPU", () => {
  test("loadLibrary('cuda') throws HR_E_NODEVICE 'no CUDA device' with the CUDA reason", () => {
    let err: unknown;
    try {
      loadLibrary("cuda");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HeadroomError);
    const he = err as HeadroomError;
    expect(he.code).toBe(Status.NODEVICE);
    expect(he.message).toContain("no CUDA device");
    expect(he.message).toMatch(/cuda[A-Za-z]+/); // the CUDA error name/text is carried along
  });

  test("loadLibrary('auto') falls back to the CPU library and logs why", () => {
    const logs: string[] = [];
    const lib = loadLibrary("auto", (m) => logs.push(m));
    expect(lib.backend).toBe("cpu");
    expect(logs).toHaveLength(1);
    expect(logs[0]).toContain("device auto: using cpu");
    expect(logs[0]).toContain("no CUDA device");
  });

  test("Device.open({ device: 'cuda' }) fails cleanly; { device: 'auto' } opens the CPU backend", () => {
    expect(() => Device.open({ device: "cuda" })).toThrow(/no CUDA device/);
    const logs: string[] = [];
    const d = Device.open({ device: "auto", ordinal: 6, log: (m) => logs.push(m) });
    try {
      expect(d.backend).toBe("cpu");
    } finally {
      d.close();
    }
  });

  test("the raw ABI answers without a driver: statuses and messages, never a crash", () => {
    const lib = dlopen(libraryPath("cuda"), { ...symbols, ...cudaExtraSymbols });
    const s = lib.symbols;
    expect(s.hr_abi_version()).toBe(EXPECTED_ABI_VERSION);
    expect(String(s.hr_backend_name())).toBe("cuda");
    const n = new BigInt64Array(1);
    expect(s.hr_device_count(n)).toBe(Status.NODEVICE);
    expect(n[0]).toBe(0n);
    expect(String(s.hr_last_error())).toContain("no CUDA device");
    const h = new BigUint64Array(1);
    expect(s.hr_device_open(0, 0, h)).toBe(Status.NODEVICE);
    expect(h[0]).toBe(0n);
    // CUDA extras exist in the library and check their handles before touching CUDA.
    expect(s.hr_event_create(12345n, h)).toBe(Status.INVALID);
    expect(String(s.hr_last_error())).toContain("invalid or closed device handle");
    expect(s.hr_blas_init(12345n, 0)).toBe(Status.INVALID);
    expect(s.hr_memcpy_async(12345n, 2, 1n, 1n, 8)).toBe(Status.INVALID);
    expect(s.hr_stream_synchronize(0n)).toBe(Status.INVALID);
    // Ops on a bad handle: validation first, no CUDA call.
    expect(s.hr_op_silu_mul(12345n, 1, 1n, 1n, 1n, 1, 1, 0)).toBe(Status.INVALID);
  });
});

describe.skipIf(noGpu)("CUDA library with a GPU", () => {
  test("loadLibrary('auto') picks CUDA and logs nothing", () => {
    const logs: string[] = [];
    expect(loadLibrary("auto", (m) => logs.push(m)).backend).toBe("cuda");
    expect(logs).toHaveLength(0);
  });
});
