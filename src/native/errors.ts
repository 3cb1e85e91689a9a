// Native statuses become thrown HeadroomErrors that carry the code, the call and
// hr_last_error()'s message.

export const Status = {
  OK: 0,
  INVALID: -1,
  OOM: -2,
  STATE: -3,
  BACKEND: -4,
  IO: -5,
  UNSUPPORTED: -6,
  NODEVICE: -7,
} as const;

const names: Record<number, string> = {
  0: "HR_OK",
  [-1]: "HR_E_INVALID",
  [-2]: "HR_E_OOM",
  [-3]: "HR_E_STATE",
  [-4]: "HR_E_BACKEND",
  [-5]: "HR_E_IO",
  [-6]: "HR_E_UNSUPPORTED",
  [-7]: "HR_E_NODEVICE",
};

export function statusName(code: number): string {
  return names[code] ?? `HR_E_UNKNOWN(${code})`;
}

export class HeadroomError extends Error {
  override readonly name = "HeadroomError";
  constructor(
    readonly code: number,
    readonly call: string,
    readonly detail: string,
  ) {
    super(`${call} failed with ${statusName(code)}: ${detail || "(no message)"}`);
  }
  get codeName(): string {
    return statusName(this.code);
  }
  get isOom(): boolean {
    return this.code === Status.OOM;
  }
}
