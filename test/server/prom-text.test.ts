// The strict Prometheus text parser used by the metrics tests rejects what Prometheus would.
import { expect, test } from "bun:test";
import { parsePrometheusText, sampleValue } from "../util/prom-text.ts";

const ok = `# HELP vllm:x_total X.\n# TYPE vllm:x_total counter\nvllm:x_total{model_name="m",engine="0"} 3\n# HELP h H.\n# TYPE h histogram\nh_bucket{le="0.1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0.5\nh_count 2\n`;

test("parses families, labels and histograms", () => {
  const f = parsePrometheusText(ok);
  expect(f.get("vllm:x_total")!.type).toBe("counter");
  expect(sampleValue(f, "vllm:x_total", { model_name: "m" })).toBe(3);
  expect(sampleValue(f, "h_count")).toBe(2);
  expect(sampleValue(parsePrometheusText(`# TYPE g gauge\ng{a="q\\"\\\\\\n"} 1\n`), "g", { a: 'q"\\\n' })).toBe(1);
});

test.each([
  ["no trailing newline", ok.trimEnd()],
  ["sample without TYPE", "x 1\n"],
  ["counter without _total", "# TYPE c counter\nc 1\n"],
  ["duplicate series", '# TYPE g gauge\ng{a="1"} 1\ng{a="1"} 2\n'],
  ["unquoted label", "# TYPE g gauge\ng{a=1} 1\n"],
  ["bad value", "# TYPE g gauge\ng 1x\n"],
  ["split family", "# TYPE g gauge\ng 1\n# TYPE k gauge\nk 1\n# HELP g again\n"],
  ["+Inf != count", '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n'],
  ["not cumulative", '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n'],
  ["missing +Inf", '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
])("rejects: %s", (_what, text) => {
  expect(() => parsePrometheusText(text)).toThrow();
});
