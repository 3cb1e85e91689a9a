// Command-line flags and HEADROOM_* variables for a set of option rows (table.ts):
// `--flag value`, `--flag=value`, `--bool-flag`, `--no-bool-flag`; a flag wins over its
// variable, which wins over the default. `extra` flags (a command's own, e.g. plan's --json)
// are handed back untouched.
import { envName, type AnyRow } from "./table.ts";
import { OptionsError, parseText, showValue } from "./values.ts";

export interface ParsedArgs {
  /** Values by option key, only those given. */
  values: Record<string, unknown>;
  /** Extra flags that were given: name → value (true for value-less ones). */
  extra: Record<string, string | true>;
}

export interface ExtraFlag {
  flag: string;
  /** Takes a value (--config FILE) or not (--json). */
  value: boolean;
  help: string;
  meta?: string;
}

function nearest(name: string, candidates: string[]): string | undefined {
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      let prev = d[0]!;
      d[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const tmp = d[j]!;
        d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = tmp;
      }
    }
    return d[b.length]!;
  };
  let best: string | undefined;
  let bestD = 4;
  for (const c of candidates) {
    const dd = dist(name, c);
    if (dd < bestD) [best, bestD] = [c, dd];
  }
  return best;
}

export function parseArgs(
  rows: readonly AnyRow[],
  argv: readonly string[],
  env: Record<string, string | undefined> = {},
  extras: readonly ExtraFlag[] = [],
): ParsedArgs {
  const values: Record<string, unknown> = {};
  const extra: Record<string, string | true> = {};
  for (const r of rows) {
    const v = env[envName(r.flag)];
    if (v !== undefined) values[r.key] = parseText(r, v, envName(r.flag));
  }
  const byFlag = new Map<string, AnyRow>();
  for (const r of rows) for (const f of [r.flag, ...(r.aliases ?? [])]) byFlag.set(f, r);
  const extraByFlag = new Map(extras.map((e) => [e.flag, e]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) throw new OptionsError(`unexpected argument '${arg}' (flags start with --; see --help)`);
    const eq = arg.indexOf("=");
    let name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    let inline: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const ex = extraByFlag.get(name);
    if (ex) {
      if (!ex.value) extra[name] = true;
      else {
        const v = inline ?? argv[++i];
        if (v === undefined) throw new OptionsError(`--${name} needs a value`);
        extra[name] = v;
      }
      continue;
    }
    let spec = byFlag.get(name);
    if (!spec && name.startsWith("no-") && byFlag.get(name.slice(3))?.kind === "bool" && inline === undefined) {
      spec = byFlag.get(name.slice(3))!;
      name = name.slice(3);
      inline = "false";
    }
    if (!spec) {
      const hint = nearest(name, [...byFlag.keys(), ...extraByFlag.keys()]);
      throw new OptionsError(`unknown flag --${name}${hint ? ` (did you mean --${hint}?)` : ""}; see --help`);
    }
    let raw: string;
    if (inline !== undefined) raw = inline;
    else if (spec.kind === "bool") {
      const next = argv[i + 1];
      if (next !== undefined && /^(true|false|1|0|yes|no|on|off)$/i.test(next)) {
        raw = next;
        i++;
      } else raw = "true";
    } else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith("--") && next.length > 2)) throw new OptionsError(`--${name} needs a value`);
      raw = next;
      i++;
    }
    values[spec.key] = parseText(spec, raw, `--${name}`);
  }
  return { values, extra };
}

function meta(r: AnyRow): string {
  if (r.kind === "bool") return "";
  if (r.kind === "choice") return ` <${r.choices?.join("|")}>`;
  return ` <${r.kind === "intlist" ? "n,n,…" : r.kind}>`;
}

/** --help text: every row with its default and variable, then the extras. */
export function flagsHelp(
  rows: readonly AnyRow[],
  defaults: Record<string, unknown>,
  opts: { env: boolean; extras?: readonly ExtraFlag[] },
): string {
  const lines: string[] = [];
  for (const e of opts.extras ?? []) {
    lines.push(`  --${e.flag}${e.value ? ` <${e.meta ?? "value"}>` : ""}`);
    lines.push(`      ${e.help}`);
  }
  for (const r of rows) {
    lines.push(`  --${r.flag}${meta(r)}${r.aliases?.length ? ` (also --${r.aliases.join(", --")})` : ""}`);
    lines.push(`      ${r.help}`);
    const d = `default: ${r.secret ? "none" : showValue(defaults[r.key])}`;
    lines.push(`      ${opts.env ? `${d}   env: ${envName(r.flag)}` : d}`);
  }
  return lines.join("\n");
}
