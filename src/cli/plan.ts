// `headroom plan`: the memory planner on the command line (no device needed). Its flags are
// the option rows marked `plan` in src/options/table.ts (the same names, defaults and checks
// as `headroom serve`), plus --config and --json.
import { readFileSync } from "node:fs";

import { PLAN_ROWS, planRequestFrom } from "../memory/plan-options.ts";
import { planFromRequest, planTable } from "../memory/plan-request.ts";
import { flagsHelp, parseArgs, type ExtraFlag } from "../options/argv.ts";
import { defaultServeOptions } from "../options/table.ts";

/** Device size when --device-memory is not given: an 80 GiB accelerator. */
const DEFAULT_DEVICE_BYTES = 80 * 2 ** 30;

const EXTRAS: readonly ExtraFlag[] = [
  { flag: "config", value: true, meta: "config.json", help: "an HF config.json (instead of --model)" },
  { flag: "json", value: false, help: "print JSON instead of a table" },
];

function help(): string {
  return `Usage: headroom plan (--model PATH|synthetic:SPEC | --config config.json) [flags]

Predicts weights, activation arena, KV blocks/tokens, max concurrency and whether weights
must be offloaded, for a device of --device-memory bytes (default 80GiB; --device auto = cuda).
Without offload flags, layers are offloaded automatically when needed. Flags:
${flagsHelp(PLAN_ROWS, { ...defaultServeOptions(), deviceMemory: "80GiB" }, { env: false, extras: EXTRAS })}`;
}

export function planCommand(argv: string[]): number {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(help());
    return 0;
  }
  try {
    const { values, extra } = parseArgs(PLAN_ROWS, argv, {}, EXTRAS);
    const req = planRequestFrom(values, { options: defaultServeOptions(), backend: "cuda", deviceMemoryBytes: DEFAULT_DEVICE_BYTES });
    const config =
      typeof extra.config === "string" ? (JSON.parse(readFileSync(extra.config, "utf8")) as Record<string, unknown>) : undefined;
    const r = planFromRequest({ ...req, config, deviceMemoryBytes: req.deviceMemoryBytes ?? DEFAULT_DEVICE_BYTES });
    console.log(extra.json ? JSON.stringify(r, null, 2) : planTable(r));
    return r.plan.fits ? 0 : 3;
  } catch (e) {
    console.error(`headroom plan: ${(e as Error).message}\n\n${help()}`);
    return 2;
  }
}
