// A small Prometheus registry (text exposition format 0.0.4): counters, gauges, histograms,
// with labels. No dependency; enough for one process.

type Labels = Record<string, string>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}
function labelText(l: Labels, extra?: [string, string]): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}
function num(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}
const key = (l: Labels) => JSON.stringify(Object.entries(l).sort(([a], [b]) => (a < b ? -1 : 1)));

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: string,
  ) {}
  abstract lines(): string[];
  render(): string {
    const body = this.lines();
    return [`# HELP ${this.name} ${this.help.replace(/\n/g, " ")}`, `# TYPE ${this.name} ${this.type}`, ...body].join("\n");
  }
}

export class Counter extends Metric {
  private readonly values = new Map<string, { labels: Labels; v: number }>();
  /** `omitWhenEmpty`: no sample before the first inc/set (for families whose every series is labelled). */
  constructor(
    name: string,
    help: string,
    private readonly omitWhenEmpty = false,
  ) {
    super(name, help, "counter");
  }
  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    const e = this.values.get(k);
    if (e) e.v += by;
    else this.values.set(k, { labels, v: by });
  }
  /** For counters whose source of truth is elsewhere (engine totals). */
  set(labels: Labels, v: number): void {
    this.values.set(key(labels), { labels, v });
  }
  get(labels: Labels = {}): number {
    return this.values.get(key(labels))?.v ?? 0;
  }
  lines(): string[] {
    if (this.values.size === 0) return this.omitWhenEmpty ? [] : [`${this.name} 0`];
    return [...this.values.values()].map((e) => `${this.name}${labelText(e.labels)} ${num(e.v)}`);
  }
}

export class Gauge extends Metric {
  private readonly values = new Map<string, { labels: Labels; v: number }>();
  constructor(name: string, help: string) {
    super(name, help, "gauge");
  }
  set(labels: Labels, v: number): void {
    this.values.set(key(labels), { labels, v });
  }
  clear(): void {
    this.values.clear();
  }
  lines(): string[] {
    return [...this.values.values()].map((e) => `${this.name}${labelText(e.labels)} ${num(e.v)}`);
  }
}

export class Histogram extends Metric {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    name: string,
    help: string,
    readonly buckets: readonly number[],
  ) {
    super(name, help, "histogram");
  }
  observe(v: number, labels: Labels = {}): void {
    const k = key(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { labels, counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) s.counts[i]!++;
    s.sum += v;
    s.count++;
  }
  /** Creates the series with zero counts (Prometheus clients show labelled series from creation). */
  touch(labels: Labels): void {
    const k = key(labels);
    if (!this.series.has(k)) this.series.set(k, { labels, counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 });
  }
  count(labels: Labels = {}): number {
    return this.series.get(key(labels))?.count ?? 0;
  }
  lines(): string[] {
    const out: string[] = [];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket${labelText(s.labels, ["le", num(b)])} ${s.counts[i]}`));
      out.push(`${this.name}_bucket${labelText(s.labels, ["le", "+Inf"])} ${s.count}`);
      out.push(`${this.name}_sum${labelText(s.labels)} ${num(s.sum)}`);
      out.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];
  add<M extends Metric>(m: M): M {
    this.metrics.push(m);
    return m;
  }
  render(): string {
    return this.metrics.map((m) => m.render()).join("\n") + "\n";
  }
}

export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120] as const;
export const ITL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1, 2.5] as const;
