// Builds llama.cpp's benchmark tools from the source the pinned node-llama-cpp package carries
// (node_modules/node-llama-cpp/llama/gitRelease.bundle: a git bundle, so no network), into a
// cache directory outside the git tree, reused when its binaries are present:
//   <cache>/llama.cpp-<commit12>/{src,build/bin/llama-*}
// Release, native CPU (-march=native), static, no curl/OpenSSL, only the targets the bench runs.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
export const BUNDLE = join(ROOT, "node_modules/node-llama-cpp/llama/gitRelease.bundle");
export const TARGETS = ["llama-bench", "llama-batched-bench", "llama-server", "llama-quantize"] as const;
export type LlamaTool = (typeof TARGETS)[number];

export interface LlamaBuild {
  commit: string;
  /** node-llama-cpp's release tag of the bundle (llama.cpp.info.json). */
  tag: string;
  dir: string;
  bin: Record<LlamaTool, string>;
  /** Seconds spent building in this run (0 = reused). */
  buildSeconds: number;
}

function run(cmd: string, args: string[], cwd: string, log: (s: string) => void): void {
  log(`$ ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { cwd, stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.slice(0, 3).join(" ")} … failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})`);
}

/** The commit the bundle holds (its only head). */
export function bundleCommit(): string {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run bun install (node-llama-cpp carries llama.cpp's source)`);
  const r = spawnSync("git", ["bundle", "list-heads", BUNDLE], { encoding: "utf8" });
  const commit = /^([0-9a-f]{40})/m.exec(r.stdout ?? "")?.[1];
  if (r.status !== 0 || !commit) throw new Error(`git bundle list-heads ${BUNDLE} failed: ${r.stderr}`);
  return commit;
}

export function ensureLlamaBuild(cache: string, log: (s: string) => void = console.error): LlamaBuild {
  const commit = bundleCommit();
  const info = join(ROOT, "node_modules/node-llama-cpp/llama/llama.cpp.info.json");
  const tag = existsSync(info) ? String((JSON.parse(readFileSync(info, "utf8")) as { tag?: string }).tag ?? "?") : "?";
  const dir = join(cache, `llama.cpp-${commit.slice(0, 12)}`);
  const src = join(dir, "src");
  const build = join(dir, "build");
  const bin = Object.fromEntries(TARGETS.map((t) => [t, join(build, "bin", t)])) as Record<LlamaTool, string>;
  if (TARGETS.every((t) => existsSync(bin[t]))) return { commit, tag, dir, bin, buildSeconds: 0 };
  const t0 = performance.now();
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(src, "CMakeLists.txt"))) run("git", ["clone", "-q", BUNDLE, src], dir, log);
  run("git", ["-c", "advice.detachedHead=false", "checkout", "-q", commit], src, log);
  const gen = spawnSync("ninja", ["--version"]).status === 0 ? ["-G", "Ninja"] : [];
  run(
    "cmake",
    [
      "-S",
      src,
      "-B",
      build,
      ...gen,
      "-DCMAKE_BUILD_TYPE=Release",
      "-DLLAMA_CURL=OFF",
      "-DLLAMA_OPENSSL=OFF",
      "-DGGML_NATIVE=ON",
      "-DBUILD_SHARED_LIBS=OFF",
      "-DLLAMA_BUILD_TESTS=OFF",
      "-DLLAMA_BUILD_EXAMPLES=OFF",
    ],
    dir,
    log,
  );
  const jobs = String(Math.max(1, Math.min(navigator.hardwareConcurrency, 16)));
  run("nice", ["cmake", "--build", build, "-j", jobs, "--target", ...TARGETS], dir, log);
  for (const t of TARGETS) if (!existsSync(bin[t])) throw new Error(`build finished but ${bin[t]} is missing`);
  return { commit, tag, dir, bin, buildSeconds: (performance.now() - t0) / 1000 };
}
