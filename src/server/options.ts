// `headroom serve` options: one typed object (ServeOptions) shared by the CLI, the HTTP server
// and the engine factory, described row by row in src/options/table.ts (add options there).
// Every flag can also come from an environment variable HEADROOM_<NAME> (flag name
// upper-cased, dashes to underscores); a flag wins over the variable.
import { flagsHelp, parseArgs } from "../options/argv.ts";
import { defaultServeOptions, OPTION_ROWS, type ServeOptions } from "../options/table.ts";

export {
  defaultServeOptions,
  engineOptionsFrom,
  envName,
  redactOptions,
  OPTION_ROWS as SERVE_FLAGS,
  type DeviceKind,
  type DtypeOption,
  type LogLevel,
  type ServeOptions,
} from "../options/table.ts";
export { OptionsError, parseBytes } from "../options/values.ts";

/** Parses `serve` flags over HEADROOM_* variables over defaults. Throws OptionsError with a clear message. */
export function parseServeOptions(argv: readonly string[], env: Record<string, string | undefined> = process.env): ServeOptions {
  const { values } = parseArgs(OPTION_ROWS, argv, env);
  return { ...defaultServeOptions(), ...values } as ServeOptions;
}

export function serveHelp(): string {
  return [
    "Usage: headroom serve [flags]",
    "",
    "Flags (each also read from the environment variable shown; a flag wins):",
    "",
    flagsHelp(OPTION_ROWS, defaultServeOptions() as unknown as Record<string, unknown>, { env: true }),
  ].join("\n");
}
