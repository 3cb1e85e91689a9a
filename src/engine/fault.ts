// Test-only fault injection for the engine process: HEADROOM_TEST_FAULT=<kind>@<step>[:every]
//   segfault@N  read address 16 through bun:ffi before step N (a real SIGSEGV, no JS involved)
//   throw@N     throw an Error from the step loop before step N
//   hang@N      spin forever before step N (the event loop is blocked: only SIGKILL ends it)
// By default only the first engine process of a server (HEADROOM_ENGINE_START=1) faults, so a
// test can watch the restarted engine serve; `:every` faults every restart too (the give-up path).
import { read, type Pointer } from "bun:ffi";

export type FaultKind = "segfault" | "throw" | "hang";

export interface FaultSpec {
  kind: FaultKind;
  step: number;
  every: boolean;
}

export function parseFault(text: string | undefined): FaultSpec | null {
  if (!text) return null;
  const m = /^(segfault|throw|hang)@([1-9][0-9]*)(:every)?$/.exec(text.trim());
  if (!m) throw new Error(`HEADROOM_TEST_FAULT=${JSON.stringify(text)}: expected segfault|throw|hang@<step>[:every]`);
  return { kind: m[1] as FaultKind, step: Number(m[2]), every: m[3] !== undefined };
}

/** A LoopHooks.beforeStep that fires `spec` at its step, or null when it does not apply. */
export function faultHook(spec: FaultSpec | null, start: number): ((step: number) => void) | null {
  if (!spec || (!spec.every && start !== 1)) return null;
  return (step) => {
    if (step !== spec.step) return;
    if (spec.kind === "throw") throw new Error(`injected fault: throw at step ${step}`);
    if (spec.kind === "segfault") read.u8(16 as Pointer); // unmapped page: SIGSEGV
    for (;;) {
      // hang: no progress, no messages handled
    }
  };
}
