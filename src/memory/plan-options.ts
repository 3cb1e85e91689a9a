// The memory planner's inputs, derived from the options table (src/options/table.ts): the rows
// marked `plan` are `headroom plan`'s flags and POST /v1/memory/plan's fields, with the same
// validation. Defaults come from the caller: the table's for the CLI, the running server's
// settings (and its device) for the HTTP route.
import { Type, type TSchema } from "@sinclair/typebox";
import { OPTION_ROWS, type AnyRow, type PlanKey, type ServeOptions } from "../options/table.ts";
import { valueSchema } from "../options/values.ts";
import type { PlanRequest } from "./plan-request.ts";
import type { PlanBackend } from "./planner.ts";

export const PLAN_ROWS: readonly AnyRow[] = OPTION_ROWS.filter((r) => r.plan);

/** The JSON field of a plan row: `planField`, else the flag in snake_case. */
export const planField = (r: AnyRow): string => r.planField ?? r.flag.replace(/-/g, "_");

/** What fills in the inputs a plan request leaves out. */
export interface PlanDefaults {
  /** Values of the plan rows (the table's defaults, or the running server's options). */
  options: Pick<ServeOptions, PlanKey>;
  /** The backend `device: auto` means. */
  backend: PlanBackend;
  /** The device size `device_memory_bytes: null` means; null = the request must give it. */
  deviceMemoryBytes: number | null;
}

/** POST /v1/memory/plan's body: every plan row (all optional) plus an inline `config`. */
export function planBodySchema() {
  const props: Record<string, TSchema> = {};
  for (const r of PLAN_ROWS) {
    const help =
      r.key === "model"
        ? "a synthetic:… spec, the served model (its path or name; the default), or a model under the server's --models-dir"
        : r.help;
    props[planField(r)] = Type.Optional(valueSchema(r, `${help} (default: the server's setting)`));
  }
  props.config = Type.Optional(
    Type.Record(Type.String(), Type.Unknown(), {
      description: "an HF config.json object (instead of `model`)",
      additionalProperties: false,
    }),
  );
  return Type.Object(props, { additionalProperties: false });
}

/** The plan row values a request body gives, by option key. */
export function planValuesFromBody(body: Record<string, unknown>): Partial<Pick<ServeOptions, PlanKey>> {
  const out: Record<string, unknown> = {};
  for (const r of PLAN_ROWS) if (body[planField(r)] !== undefined) out[r.key] = body[planField(r)];
  return out as Partial<Pick<ServeOptions, PlanKey>>;
}

/** Plan row values (given over defaults) → the planner's request. */
export function planRequestFrom(
  given: Partial<Pick<ServeOptions, PlanKey>>,
  d: PlanDefaults,
): Omit<PlanRequest, "deviceMemoryBytes"> & { deviceMemoryBytes: number | null } {
  const v = { ...d.options, ...given };
  const { model, device, deviceMemory, ...limits } = v;
  return {
    ...limits,
    model,
    backend: device === "auto" ? d.backend : device,
    deviceMemoryBytes: deviceMemory ?? d.deviceMemoryBytes,
  };
}
