// A tolerant scanner for one JSON object that may still be arriving token by token: it finds
// the top-level keys and the source span of each value, and says whether each value (and the
// object) is complete. Tool-call arguments are streamed as the exact source text of their
// value, so the fragments sent while streaming add up to the final `arguments` string.

export interface ScannedValue {
  /** Source text of the value so far (whitespace before it excluded). */
  raw: string;
  complete: boolean;
}

export interface ScannedObject {
  fields: Map<string, ScannedValue>;
  /** The closing brace was seen. */
  complete: boolean;
  /** Index just past the closing brace (when complete). */
  end: number;
  /** The text is not (the start of) a JSON object. */
  invalid: boolean;
}

const WS = /\s/;

/** End index of the JSON string starting at text[i] === '"', or -1 while it is unterminated. */
function stringEnd(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text[j];
    if (c === "\\") j++;
    else if (c === '"') return j + 1;
  }
  return -1;
}

/** End index of the JSON value starting at text[i], or -1 while it is incomplete. */
function valueEnd(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return stringEnd(text, i);
  if (c === "{" || c === "[") {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const d = text[j]!;
      if (d === '"') {
        const e = stringEnd(text, j);
        if (e < 0) return -1;
        j = e - 1;
      } else if (d === "{" || d === "[") depth++;
      else if (d === "}" || d === "]") {
        depth--;
        if (depth === 0) return j + 1;
      }
    }
    return -1;
  }
  // number, true, false, null: ends at a delimiter
  for (let j = i; j < text.length; j++) if (text[j] === "," || text[j] === "}" || text[j] === "]" || WS.test(text[j]!)) return j;
  return -1;
}

/** Scans the object that starts at text[start] (after optional whitespace). */
export function scanObject(text: string, start = 0): ScannedObject {
  const out: ScannedObject = { fields: new Map(), complete: false, end: -1, invalid: false };
  let i = start;
  while (i < text.length && WS.test(text[i]!)) i++;
  if (i >= text.length) return out;
  if (text[i] !== "{") return { ...out, invalid: true };
  i++;
  for (;;) {
    while (i < text.length && (WS.test(text[i]!) || text[i] === ",")) i++;
    if (i >= text.length) return out;
    if (text[i] === "}") return { ...out, complete: true, end: i + 1 };
    if (text[i] !== '"') return { ...out, invalid: true };
    const ke = stringEnd(text, i);
    if (ke < 0) return out;
    let key: string;
    try {
      key = JSON.parse(text.slice(i, ke)) as string;
    } catch {
      return { ...out, invalid: true };
    }
    i = ke;
    while (i < text.length && WS.test(text[i]!)) i++;
    if (i >= text.length) return out;
    if (text[i] !== ":") return { ...out, invalid: true };
    i++;
    while (i < text.length && WS.test(text[i]!)) i++;
    if (i >= text.length) return out;
    const ve = valueEnd(text, i);
    if (ve < 0) {
      out.fields.set(key, { raw: text.slice(i), complete: false });
      return out;
    }
    out.fields.set(key, { raw: text.slice(i, ve), complete: true });
    i = ve;
  }
}

/** End index of the complete JSON value at text[i] (after whitespace), -1 if incomplete. */
export function jsonValueEnd(text: string, i: number): number {
  while (i < text.length && WS.test(text[i]!)) i++;
  if (i >= text.length) return -1;
  return valueEnd(text, i);
}
