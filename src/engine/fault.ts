// Test-only fault injection for the engine process:
// HEADROOM_TEST_FAULT=<kind>@<step>[:inflight=K][:every]
//   segfault@N  read address 16 through bun:ffi before step N (a real SIGSEGV, no JS involved)
//   throw@N     throw an Error from the step loop before step N
//   hang@N      spin forever before step N (the event loop is blocked: only SIGKILL ends it)
// `:inflight=K` delays the fault to the first step >= N at which K running requests have each
// produced two tokens (so the first token's event left a step earlier): a test then knows which
// requests the failure meets, however slowly the machine admits them.
// By default only the first engine process of a server (HEADROOM_ENGINE_START=1) faults, so a
// test can watch the restarted engine serve; `:every` faults every restart too (the give-up path).
import { read, type Pointer } from "bun:ffi";

export type FaultKind = "segfault" | "throw" | "hang";

export interface FaultSpec {
  kind: FaultKind;
  step: number;
  /** Running requests with output that must exist before the fault fires (0: none). */
  inflight: number;
  every: boolean;
}

/** What the hook may look at before a step. */
export interface StepView {
  /** Running requests that have produced at least `minTokens` output tokens. */
  runningWithOutput(minTokens: number): number;
}

export function parseFault(text: string | undefined): FaultSpec | null {
  if (!text) return null;
  const m = /^(segfault|throw|hang)@([1-9][0-9]*)(?::inflight=([1-9][0-9]*))?(:every)?$/.exec(text.trim());
  if (!m) {
    throw new Error(`HEADROOM_TEST_FAULT=${JSON.stringify(text)}: expected segfault|throw|hang@<step>[:inflight=<n>][:every]`);
  }
  return { kind: m[1] as FaultKind, step: Number(m[2]), inflight: Number(m[3] ?? 0), every: m[4] !== undefined };
}

/** A LoopHooks.beforeStep that fires `spec` at its step, or null when it does not apply. */
export function faultHook(spec: FaultSpec | null, start: number): ((step: number, view: StepView) => void) | null {
  if (!spec || (!spec.every && start !== 1)) return null;
  let fired = false;
  return (step, view) => {
    if (fired || step < spec.step) return;
    if (spec.inflight > 0 && view.runningWithOutput(2) < spec.inflight) return;
    fired = true;
    if (spec.kind === "throw") throw new Error(`injected fault: throw at step ${step}`);
    if (spec.kind === "segfault") read.u8(16 as Pointer); // unmapped page: SIGSEGV
    for (;;) {
      // hang: no progress, no messages handled
    }
  };
}
