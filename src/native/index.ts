// The bun:ffi binding of libheadroom: load the library, open devices, call the C ABI.
export { HeadroomError, Status, statusName } from "./errors.ts";
export { loadLibrary, libraryPath, libraryDir, deviceCount, EXPECTED_ABI_VERSION } from "./library.ts";
export type { Backend, DeviceChoice, NativeLibrary } from "./library.ts";
export { Device, hostMemory } from "./device.ts";
export type { AllocatorStats, DeviceInfo, OpenOptions, SnapshotSegment, SnapshotBlock, StatGroup, HostBuffer } from "./device.ts";
