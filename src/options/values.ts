// Value kinds of the options table (table.ts): how a value is parsed from text (flags and
// HEADROOM_* variables), range-checked, and described as JSON (TypeBox, for HTTP bodies).
import { Type, type TSchema } from "@sinclair/typebox";

export type Kind = "string" | "int" | "float" | "bytes" | "bool" | "intlist" | "choice";

/** What a row says about its values (the rest of a row is in table.ts). */
export interface ValueSpec {
  flag: string;
  kind: Kind;
  choices?: readonly string[];
  /** "none"/"null"/"" mean null. */
  nullable?: boolean;
  min?: number;
  max?: number;
  /** Exclusive minimum. */
  gt?: number;
  /** Never echoed (help, logs, errors). */
  secret?: boolean;
}

export class OptionsError extends Error {
  override name = "OptionsError";
}

const BYTE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: 1024,
  kib: 1024,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

/** "4GiB" → 4294967296, "1.5G" → 1.5e9, "4096" → 4096. */
export function parseBytes(text: string): number {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? BYTE_UNITS[(m[2] ?? "").toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`not a byte size: '${text}' (examples: 4096, 512MiB, 8GiB, 1.5G)`);
  return Math.floor(Number(m[1]) * unit);
}

/** Range check shared by text and JSON inputs; `where` names the source in the message. */
export function checkRange(spec: ValueSpec, v: number, where: string): number {
  if (spec.min !== undefined && v < spec.min) throw new OptionsError(`${where}: must be >= ${spec.min}`);
  if (spec.gt !== undefined && v <= spec.gt) throw new OptionsError(`${where}: must be > ${spec.gt}`);
  if (spec.max !== undefined && v > spec.max) throw new OptionsError(`${where}: must be <= ${spec.max}`);
  return v;
}

/** Parses one value given as text; `source` is the flag or variable it came from. */
export function parseText(spec: ValueSpec, raw: string, source: string): unknown {
  const where = `${source}=${spec.secret ? "***" : JSON.stringify(raw)}`;
  if (spec.nullable && (raw === "" || raw.toLowerCase() === "none" || raw.toLowerCase() === "null")) return null;
  switch (spec.kind) {
    case "string":
      if (raw === "") throw new OptionsError(`${where}: empty value`);
      return raw;
    case "choice":
      if (!spec.choices?.includes(raw)) throw new OptionsError(`${where}: expected one of ${spec.choices?.join(", ")}`);
      return raw;
    case "int":
      if (!/^-?[0-9]+$/.test(raw.trim())) throw new OptionsError(`${where}: expected an integer`);
      return checkRange(spec, Number(raw), where);
    case "float": {
      const v = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(v)) throw new OptionsError(`${where}: expected a number`);
      return checkRange(spec, v, where);
    }
    case "bytes": {
      let v: number;
      try {
        v = parseBytes(raw);
      } catch (e) {
        throw new OptionsError(`${where}: ${(e as Error).message}`);
      }
      return checkRange(spec, v, where);
    }
    case "bool": {
      const l = raw.toLowerCase();
      if (["1", "true", "yes", "on"].includes(l)) return true;
      if (["0", "false", "no", "off"].includes(l)) return false;
      throw new OptionsError(`${where}: expected true or false`);
    }
    case "intlist": {
      const parts = raw.split(/[\s,]+/).filter((s) => s !== "");
      if (parts.length === 0 || parts.some((p) => !/^[0-9]+$/.test(p) || Number(p) < 1))
        throw new OptionsError(`${where}: expected positive integers separated by commas`);
      return [...new Set(parts.map(Number))].sort((a, b) => a - b);
    }
  }
}

/** The JSON schema of a row's values (HTTP bodies); the same ranges as parseText. */
export function valueSchema(spec: ValueSpec, description: string): TSchema {
  const range = { minimum: spec.min, maximum: spec.max, exclusiveMinimum: spec.gt };
  for (const k of Object.keys(range) as (keyof typeof range)[]) if (range[k] === undefined) delete range[k];
  let s: TSchema;
  switch (spec.kind) {
    case "string":
      s = Type.String({ minLength: 1 });
      break;
    case "choice":
      s = Type.Union((spec.choices ?? []).map((c) => Type.Literal(c)));
      break;
    case "int":
    case "bytes":
      s = Type.Integer(range);
      break;
    case "float":
      s = Type.Number(range);
      break;
    case "bool":
      s = Type.Boolean();
      break;
    case "intlist":
      s = Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 512 });
      break;
  }
  return spec.nullable ? Type.Union([s, Type.Null()], { description }) : { ...s, description };
}

/** A default as --help shows it: null → "none", lists comma separated. */
export function showValue(v: unknown): string {
  if (v === null) return "none";
  if (Array.isArray(v)) return v.join(",");
  return String(v);
}
