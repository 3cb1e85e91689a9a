// The devices an engine suite runs on: always the CPU backend, plus CUDA when a real probe of
// the CUDA library finds a device (dlopen of build/libheadroom_cuda.so, ABI check, and
// hr_device_count > 0 through the CUDA runtime). Suites write each test body once inside
// `describeDevices` and it runs per device; without a GPU every suite prints one visible
// "skipped: cuda — ..." line and runs the CPU variant only.
//
// HEADROOM_TEST_DEVICES=cpu|cuda|cpu,cuda narrows the list (e.g. the GPU kit runs the CUDA
// variants alone). HEADROOM_REQUIRE_CUDA=1 turns a failed probe into an error instead of a skip,
// so a GPU machine whose library cannot open the device fails loudly (kit/gpu-check.sh sets it
// when nvidia-smi sees a GPU).
import { describe } from "bun:test";
import { existsSync } from "node:fs";

import type { EngineOptions } from "../../src/engine/startup.ts";
import type { Device } from "../../src/native/device.ts";
import { libraryPath, loadLibrary } from "../../src/native/library.ts";
import { engineOptions as cpuEngineOptions } from "../engine/engine-helpers.ts";

export type TestDevice = "cpu" | "cuda";

function probeCuda(): { ok: boolean; reason: string } {
  const path = libraryPath("cuda");
  if (!existsSync(path)) return { ok: false, reason: `${path} not built` };
  try {
    loadLibrary("cuda"); // throws HR_E_NODEVICE "no CUDA device (...)" when the runtime sees none
    return { ok: true, reason: "" };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

/** The CUDA probe's result (computed once per process). */
export const cudaProbe = probeCuda();

function selected(): TestDevice[] {
  const env = process.env.HEADROOM_TEST_DEVICES;
  const want = env ? env.split(",").map((s) => s.trim()) : ["cpu", "cuda"];
  for (const w of want) if (w !== "cpu" && w !== "cuda") throw new Error(`HEADROOM_TEST_DEVICES: unknown device '${w}'`);
  if (process.env.HEADROOM_REQUIRE_CUDA === "1" && want.includes("cuda") && !cudaProbe.ok) {
    throw new Error(`HEADROOM_REQUIRE_CUDA=1 but the CUDA probe failed: ${cudaProbe.reason}`);
  }
  return (["cpu", "cuda"] as const).filter((d) => want.includes(d) && (d === "cpu" || cudaProbe.ok));
}

/** ["cpu"] or ["cpu", "cuda"] (or the HEADROOM_TEST_DEVICES subset). */
export const TEST_DEVICES: readonly TestDevice[] = selected();

const announced = new Set<string>();
/** Prints the visible CUDA skip line of one suite, once. */
export function announceDevices(suite: string): void {
  if (announced.has(suite)) return;
  announced.add(suite);
  const why = !cudaProbe.ok ? cudaProbe.reason : `HEADROOM_TEST_DEVICES=${process.env.HEADROOM_TEST_DEVICES}`;
  for (const d of ["cpu", "cuda"] as const)
    if (!TEST_DEVICES.includes(d))
      console.warn(`skipped: ${d} — ${suite} (${d === "cuda" ? why : `HEADROOM_TEST_DEVICES=${process.env.HEADROOM_TEST_DEVICES}`})`);
}

/**
 * Share of the device each CUDA engine of a test takes when the test does not say: a real GPU
 * is shared by every engine of the process (one ordinal), so suites that keep two or three
 * engines alive at once must not take 0.9 each. 4 % is 5.6 GB of an H200, 3.2 GB of an H100:
 * far more than the tiny test models need.
 */
export const CUDA_DEFAULT_UTILIZATION = 0.04;

/** What a suite needs to know about the device it runs on. */
export interface DeviceEnv {
  device: TestDevice;
  isCuda: boolean;
  /** VMM mapping granularity the planner assumes (CPU: the page, CUDA: 2 MiB). */
  plannedGranularity: number;
  /**
   * Engine options for this device. CPU: engine-helpers' defaults (a simulated device per
   * ordinal, `deviceMemory` its capacity). CUDA: ordinal 0, the real device's memory
   * (`deviceMemory` dropped), utilization CUDA_DEFAULT_UTILIZATION unless given.
   */
  engineOptions(model: string | null, over?: Partial<EngineOptions>): EngineOptions;
}

export function deviceEnv(device: TestDevice): DeviceEnv {
  const isCuda = device === "cuda";
  return {
    device,
    isCuda,
    plannedGranularity: isCuda ? 2 * 2 ** 20 : 4096,
    engineOptions(model, over = {}) {
      const o = cpuEngineOptions(model, over);
      if (!isCuda) return o;
      return {
        ...o,
        device: "cuda",
        deviceOrdinal: 0,
        deviceMemory: null,
        gpuMemoryUtilization: over.gpuMemoryUtilization ?? CUDA_DEFAULT_UTILIZATION,
      };
    },
  };
}

/** The region granularity `dev` really maps at (reserve one byte, read it, release). */
export function regionGranularity(dev: Device): number {
  const r = dev.reserveRegion(1, 1);
  dev.releaseRegion(r.base);
  return r.granularity;
}

/**
 * `describe(name [device])` once per device in TEST_DEVICES, the body written once. The suite
 * name is printed with the CUDA skip line when CUDA is absent.
 */
export function describeDevices(name: string, body: (env: DeviceEnv) => void): void {
  announceDevices(name);
  for (const d of TEST_DEVICES) describe(`${name} [${d}]`, () => body(deviceEnv(d)));
}
