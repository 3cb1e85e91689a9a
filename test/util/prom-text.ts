// A strict parser for the Prometheus text exposition format 0.0.4, for tests: it throws on
// anything a Prometheus server would reject or misread (bad names or label syntax, a sample
// before its family's TYPE, a family split in two, duplicate series, histogram buckets out of
// order or not cumulative, +Inf bucket ≠ _count, a counter sample not named *_total).

export type PromType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: PromType;
  help: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseValue(s: string, line: number): number {
  if (s === "+Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  if (s === "NaN") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`line ${line}: bad value '${s}'`);
  return Number(s);
}

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    if (eq < 0) throw new Error(`line ${line}: label without '='`);
    const name = text.slice(i, eq).trim();
    if (!LABEL_NAME.test(name)) throw new Error(`line ${line}: bad label name '${name}'`);
    if (name in labels) throw new Error(`line ${line}: duplicate label '${name}'`);
    if (text[eq + 1] !== '"') throw new Error(`line ${line}: label value not quoted`);
    let j = eq + 2;
    let v = "";
    for (;;) {
      const c = text[j];
      if (c === undefined) throw new Error(`line ${line}: unterminated label value`);
      if (c === "\\") {
        const n = text[j + 1];
        if (n === "n") v += "\n";
        else if (n === "\\" || n === '"') v += n;
        else throw new Error(`line ${line}: bad escape '\\${n}'`);
        j += 2;
      } else if (c === '"') {
        j++;
        break;
      } else {
        v += c;
        j++;
      }
    }
    labels[name] = v;
    if (j < text.length) {
      if (text[j] !== ",") throw new Error(`line ${line}: expected ',' between labels`);
      j++;
    }
    i = j;
  }
  return labels;
}

/** The family a sample belongs to: histogram samples carry _bucket/_sum/_count suffixes. */
function familyOf(sample: string, families: Map<string, Family>): Family | undefined {
  const direct = families.get(sample);
  if (direct) return direct;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!sample.endsWith(suffix)) continue;
    const f = families.get(sample.slice(0, -suffix.length));
    if (f && (f.type === "histogram" || f.type === "summary")) return f;
  }
  return undefined;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  let current: Family | null = null;
  const seen = new Set<string>();
  const lines = text.split("\n");
  if (lines.at(-1) !== "") throw new Error("exposition must end with a newline");
  lines.forEach((raw, idx) => {
    const n = idx + 1;
    if (raw === "") return;
    if (raw.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(raw);
      if (!m) return; // a plain comment
      const [, kind, name, rest = ""] = m;
      if (!METRIC_NAME.test(name!)) throw new Error(`line ${n}: bad metric name '${name}'`);
      let f = families.get(name!);
      if (f && current !== f) throw new Error(`line ${n}: family ${name} appears in two places`);
      if (!f) {
        if (current) closed.add(current.name);
        f = { name: name!, type: "untyped", help: "", samples: [] };
        families.set(name!, f);
        current = f;
      }
      if (kind === "TYPE") {
        if (f.samples.length > 0) throw new Error(`line ${n}: TYPE after samples of ${name}`);
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) throw new Error(`line ${n}: bad type '${rest}'`);
        f.type = rest as PromType;
      } else f.help = rest;
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(raw);
    if (!m) throw new Error(`line ${n}: not a sample: ${raw}`);
    const [, name, labelText = "", value] = m;
    const f = familyOf(name!, families);
    if (!f) throw new Error(`line ${n}: sample ${name} has no TYPE/HELP before it`);
    if (f !== current || closed.has(f.name)) throw new Error(`line ${n}: sample ${name} outside its family's block`);
    if (f.type === "counter" && !name!.endsWith("_total")) throw new Error(`line ${n}: counter sample ${name} must end in _total`);
    const labels = parseLabels(labelText, n);
    const id = name + JSON.stringify(Object.entries(labels).sort());
    if (seen.has(id)) throw new Error(`line ${n}: duplicate series ${id}`);
    seen.add(id);
    f.samples.push({ name: name!, labels, value: parseValue(value!, n) });
  });
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

function checkHistogram(f: Family): void {
  const series = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const k = JSON.stringify(Object.entries(rest).sort());
    const e = series.get(k) ?? { buckets: [] };
    series.set(k, e);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: bucket without le`);
      e.buckets.push([le === "+Inf" ? Infinity : Number(le), s.value]);
    } else if (s.name === `${f.name}_sum`) e.sum = s.value;
    else if (s.name === `${f.name}_count`) e.count = s.value;
    else throw new Error(`${f.name}: unexpected sample ${s.name}`);
  }
  for (const [k, e] of series) {
    if (e.sum === undefined || e.count === undefined) throw new Error(`${f.name}${k}: missing _sum or _count`);
    const last = e.buckets.at(-1);
    if (!last || last[0] !== Infinity) throw new Error(`${f.name}${k}: last bucket must be le="+Inf"`);
    if (last[1] !== e.count) throw new Error(`${f.name}${k}: +Inf bucket ${last[1]} != _count ${e.count}`);
    for (let i = 1; i < e.buckets.length; i++) {
      if (!(e.buckets[i]![0] > e.buckets[i - 1]![0])) throw new Error(`${f.name}${k}: buckets not increasing`);
      if (e.buckets[i]![1] < e.buckets[i - 1]![1]) throw new Error(`${f.name}${k}: buckets not cumulative`);
    }
  }
}

/** The single sample of `name` whose labels include `labels`. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const hits: Sample[] = [];
  for (const f of families.values())
    for (const s of f.samples) if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) hits.push(s);
  if (hits.length !== 1) throw new Error(`${name}${JSON.stringify(labels)}: ${hits.length} samples`);
  return hits[0]!.value;
}

/** Upper bounds of a histogram's buckets (without +Inf), from its first series. */
export function bucketBounds(f: Family): number[] {
  const first = f.samples.find((s) => s.name.endsWith("_bucket"));
  if (!first) return [];
  const { le: _le, ...key } = first.labels;
  return f.samples
    .filter((s) => s.name.endsWith("_bucket") && Object.entries(key).every(([k, v]) => s.labels[k] === v) && s.labels.le !== "+Inf")
    .map((s) => Number(s.labels.le));
}
