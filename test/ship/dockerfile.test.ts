// docker/Dockerfile without a Docker engine: parse it and check that the build context (the
// repository root) holds every COPY source and is not hidden by .dockerignore, that the stages
// are the CUDA devel → runtime pair, that the build stage runs `make` and `bun run compile` and
// produces the file the runtime stage copies, and that the health check asks /health.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const DOCKERFILE = join(ROOT, "docker/Dockerfile");

export interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** Dockerfile instructions: comments dropped, `\` continuations joined. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let l = lines[i]!.trim();
    if (!l || l.startsWith("#")) continue;
    const start = i + 1;
    while (l.endsWith("\\") && i + 1 < lines.length) {
      l = l.slice(0, -1).trimEnd() + " ";
      let next = lines[++i]!.trim();
      while (next.startsWith("#") && i + 1 < lines.length) next = lines[++i]!.trim();
      l += next;
    }
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!, line: start });
  }
  return out;
}

/** ARG defaults (global and per stage, last wins) substituted into `${X}` / `$X`. */
function substitute(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\{(\w+)\}|\$(\w+)/g, (all, a: string | undefined, b: string | undefined) => vars[(a ?? b)!] ?? all);
}

/** Tokens of a COPY/ADD line without its --flags (JSON array form too). */
function copyArgs(args: string): { flags: string[]; paths: string[] } {
  const flags: string[] = [];
  let rest = args;
  for (;;) {
    const m = /^(--\S+)\s+/.exec(rest);
    if (!m) break;
    flags.push(m[1]!);
    rest = rest.slice(m[0].length);
  }
  const paths = rest.trim().startsWith("[") ? (JSON.parse(rest) as string[]) : rest.trim().split(/\s+/);
  return { flags, paths };
}

/** Minimal .dockerignore matching: a pattern hides a path equal to it or under it (globs: `*`, `**`). */
function ignoredBy(path: string, patterns: string[]): string | null {
  const p = path.replace(/^\.\//, "").replace(/\/$/, "");
  for (const pat of patterns) {
    if (pat.startsWith("!")) continue;
    const re = new RegExp(
      "^" +
        pat
          .replace(/\/$/, "")
          .replace(/[.+^$()|[\]{}]/g, "\\$&")
          .replace(/\*\*\//g, "(?:.*/)?")
          .replace(/\*\*/g, ".*")
          .replace(/(?<!\.)\*/g, "[^/]*") +
        "(?:/.*)?$",
    );
    if (re.test(p)) return pat;
  }
  return null;
}

const text = existsSync(DOCKERFILE) ? readFileSync(DOCKERFILE, "utf8") : "";
const ins = parseDockerfile(text);

describe("docker/Dockerfile", () => {
  test("exists with .dockerignore and docker/README.md", () => {
    expect(existsSync(DOCKERFILE)).toBe(true);
    expect(existsSync(join(ROOT, ".dockerignore"))).toBe(true);
    expect(existsSync(join(ROOT, "docker/README.md"))).toBe(true);
  });

  test("multi-stage: CUDA devel image builds, CUDA runtime image runs", () => {
    const vars: Record<string, string> = {};
    for (const i of ins) {
      if (i.op === "FROM") break;
      if (i.op === "ARG") {
        const [k, v] = i.args.split("=");
        if (v !== undefined) vars[k!.trim()] = v.trim();
      }
    }
    const froms = ins.filter((i) => i.op === "FROM").map((i) => substitute(i.args, vars));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(froms[0]).toMatch(/^nvidia\/cuda:13\.\d+\.\d+-devel-ubuntu\d+\.\d+ AS build$/i);
    expect(froms.at(-1)).toMatch(/^nvidia\/cuda:13\.\d+\.\d+-runtime-ubuntu\d+\.\d+ AS \w+$/i);
  });

  test("every COPY source exists in the build context and is not excluded by .dockerignore", () => {
    const ignore = readFileSync(join(ROOT, ".dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    const copies = ins.filter((i) => i.op === "COPY" || i.op === "ADD");
    expect(copies.length).toBeGreaterThan(0);
    let checked = 0;
    for (const c of copies) {
      const { flags, paths } = copyArgs(c.args);
      if (flags.some((f) => f.startsWith("--from="))) continue; // from another stage: checked below
      for (const src of paths.slice(0, -1)) {
        expect({ line: c.line, src, exists: existsSync(join(ROOT, src)) }).toEqual({ line: c.line, src, exists: true });
        expect({ line: c.line, src, ignoredBy: ignoredBy(src, ignore) }).toEqual({ line: c.line, src, ignoredBy: null });
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(3);
    // What the build needs: the native sources, the TS sources (compile script, worker), the lockfile.
    for (const need of ["csrc", "src", "Makefile", "package.json", "bun.lock"]) {
      expect(copies.some((c) => copyArgs(c.args).paths.slice(0, -1).includes(need))).toBe(true);
    }
    // and the context does not drag in local build outputs or packages.
    for (const heavy of ["node_modules", "build", "dist", ".git"]) expect(ignoredBy(heavy, ignore)).not.toBeNull();
  });

  test("the build stage runs make and `bun run compile`, and produces what the runtime stage copies", () => {
    const firstRuntime = ins.findLastIndex((i) => i.op === "FROM");
    const build = ins.slice(0, firstRuntime);
    const runtime = ins.slice(firstRuntime);
    const runs = build
      .filter((i) => i.op === "RUN")
      .map((i) => i.args)
      .join("\n");
    expect(runs).toMatch(/\bmake\b[^\n]*\bnative\b/);
    expect(runs).toContain("bun run compile");
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts.compile).toContain("src/ship/compile.ts");
    expect(existsSync(join(ROOT, "src/ship/compile.ts"))).toBe(true);
    expect(readFileSync(join(ROOT, "Makefile"), "utf8")).toMatch(/^native:/m);
    // The build stage's WORKDIR + dist/headroom (compile's default outfile) is what gets copied.
    const workdir = build.filter((i) => i.op === "WORKDIR").at(-1)!.args;
    const fromBuild = runtime.filter((i) => i.op === "COPY" && /--from=build\b/.test(i.args));
    expect(fromBuild).toHaveLength(1);
    const [src, dst] = copyArgs(fromBuild[0]!.args).paths;
    expect(src).toBe(`${workdir}/dist/headroom`);
    // Runtime stage: nothing but the binary from the build (no sources copied in).
    expect(runtime.filter((i) => i.op === "COPY" && !/--from=/.test(i.args))).toEqual([]);
    const entry = runtime.find((i) => i.op === "ENTRYPOINT")!;
    expect(JSON.parse(entry.args)[0]).toBe(dst);
  });

  test("health check hits /health on the exposed port; ENTRYPOINT serves", () => {
    const hc = ins.find((i) => i.op === "HEALTHCHECK");
    expect(hc).toBeDefined();
    expect(hc!.args).toMatch(/CMD .*\/health\b/);
    const expose = ins.filter((i) => i.op === "EXPOSE").map((i) => i.args.trim());
    expect(expose).toEqual(["8000"]);
    const env = ins
      .filter((i) => i.op === "ENV")
      .map((i) => i.args)
      .join(" ");
    expect(env).toMatch(/HEADROOM_PORT=8000\b/);
    expect(env).toMatch(/HEADROOM_HOST=0\.0\.0\.0\b/);
    expect(hc!.args).toContain("${HEADROOM_PORT}");
    expect(JSON.parse(ins.find((i) => i.op === "ENTRYPOINT")!.args)).toEqual(["/usr/local/bin/headroom", "serve"]);
  });

  test("docker/README.md shows GPU, port, model volume and health", () => {
    const readme = readFileSync(join(ROOT, "docker/README.md"), "utf8");
    for (const s of ["--gpus all", "-p 8000:8000", "-v /models:/models", "docker build -f docker/Dockerfile", "/health", "HEADROOM_"])
      expect(readme).toContain(s);
  });
});

describe("Dockerfile parser", () => {
  test("joins continuations and skips comments", () => {
    const p = parseDockerfile("FROM a AS b\n# c\nRUN x \\\n  # inner\n  && y\nCOPY --from=b /a /b\n");
    expect(p.map((i) => [i.op, i.args])).toEqual([
      ["FROM", "a AS b"],
      ["RUN", "x && y"],
      ["COPY", "--from=b /a /b"],
    ]);
  });
  test(".dockerignore matching", () => {
    expect(ignoredBy("node_modules", ["node_modules"])).toBe("node_modules");
    expect(ignoredBy("src", ["node_modules", "build"])).toBeNull();
    expect(ignoredBy("csrc/x.o", ["**/*.o"])).toBe("**/*.o");
    expect(ignoredBy("build/lib.so", ["build"])).toBe("build");
  });
});
