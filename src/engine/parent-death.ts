// An engine process must not outlive its server (it holds the device). The IPC channel's
// `disconnect` covers a server that exits or closes it; these cover a server killed by SIGKILL:
//  - Linux: prctl(PR_SET_PDEATHSIG, SIGKILL) makes the kernel kill us when the server dies,
//    even while a step is stuck in native code (a hung engine cannot run a timer);
//  - anywhere: when we get re-parented (ppid changes), exit.
import { dlopen, FFIType } from "bun:ffi";

const PR_SET_PDEATHSIG = 1;
const SIGKILL = 9;

function setDeathSignal(): void {
  if (process.platform !== "linux") return;
  try {
    const libc = dlopen("libc.so.6", {
      prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
    });
    libc.symbols.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  } catch {
    // no libc.so.6 (musl): the ppid check below still applies
  }
}

export function dieWithParent(intervalMs = 1000): void {
  const parent = process.ppid;
  setDeathSignal();
  // The server may have died before the death signal was armed.
  if (process.ppid !== parent || parent === 1) process.exit(0);
  const timer = setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, intervalMs);
  timer.unref();
}
