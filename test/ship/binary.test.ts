// The single binary: `bun run compile` (src/ship/compile.ts) builds it with the native libraries
// and the Swagger UI assets embedded; here it is built into a temp dir, copied alone into an empty
// directory and run from there (no repo, no node_modules, no build/ next to it).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { compile } from "../../src/ship/compile.ts";
import { spawnHeadroom, waitHealthy, type Spawned } from "./proc.ts";

const ROOT = resolve(import.meta.dir, "../..");
const haveLib = existsSync(join(ROOT, "build/libheadroom_cpu.so"));
if (!haveLib) console.warn("skipped: build/libheadroom_cpu.so not built (run `make`)");

const uid = process.getuid?.() ?? 0;
let work = "";
let bin = "";
const procs: Spawned[] = [];

function serve(tmp: string, extra: string[] = [], env: Record<string, string> = {}): Spawned {
  const s = spawnHeadroom([bin, "serve", "--device", "cpu", "--device-memory", "256MiB", "--port", "0", ...extra], {
    cwd: join(work, "run"),
    env: { HEADROOM_TMPDIR: tmp, HEADROOM_LIB_DIR: undefined, ...env },
  });
  procs.push(s);
  return s;
}

describe.skipIf(!haveLib)("single binary", () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "headroom-ship-"));
    const built = await compile({ outfile: join(work, "out/headroom"), log: () => {} });
    expect(built.libs.cpu).toBeDefined();
    cpSync(built.outfile, join(work, "run/headroom"));
    bin = join(work, "run/headroom");
    expect(readdirSync(join(work, "run"))).toEqual(["headroom"]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("--version and --help run from an empty directory", () => {
    const v = Bun.spawnSync([bin, "--version"], { cwd: join(work, "run") });
    expect(v.exitCode).toBe(0);
    expect(v.stdout.toString().trim()).toMatch(/^\d+\.\d+\.\d+/);
    const h = Bun.spawnSync([bin, "serve", "--help"], { cwd: join(work, "run") });
    expect(h.exitCode).toBe(0);
    expect(h.stdout.toString()).toContain("--device-memory");
  });

  test("serves: /health, /v1/models, /v1/completions, Swagger UI assets, /dashboard, /; two concurrent starts share one extraction dir", async () => {
    const tmp = join(work, "tmp");
    const a = serve(tmp);
    const b = serve(tmp); // concurrent start: same content-addressed file, written via rename
    const [ua, ub] = await Promise.all([a.url, b.url]);
    await Promise.all([waitHealthy(ua), waitHealthy(ub)]);
    for (const url of [ua, ub]) {
      const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
      const model = models.data[0]!.id;
      const r = await fetch(`${url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, prompt: "Once upon a time", max_tokens: 8, temperature: 0 }),
      });
      expect(r.status).toBe(200);
      const body = (await r.json()) as { choices: { text: string; finish_reason: string }[]; usage: { completion_tokens: number } };
      expect(body.choices[0]!.finish_reason).toBe("length");
      expect(body.usage.completion_tokens).toBe(8);
    }
    const js = await fetch(`${ua}/swagger/assets/swagger-ui-bundle.js`);
    expect(js.status).toBe(200);
    expect((await js.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
    expect((await fetch(`${ua}/swagger`)).status).toBe(200);
    const dash = await fetch(`${ua}/dashboard`);
    expect(dash.status).toBe(200);
    expect(await dash.text()).toContain("/v1/memory");
    const home = await fetch(`${ua}/`);
    expect(home.status).toBe(200);
    expect(await home.text()).toContain('href="/dashboard"');

    // The private extraction directory: 0700, owned by us, one content-addressed copy.
    const dir = join(tmp, `headroom-${uid}`);
    const st = statSync(dir);
    expect(st.mode & 0o777).toBe(0o700);
    expect(st.uid).toBe(uid);
    const files = readdirSync(dir);
    expect(files.filter((f) => /^libheadroom_cpu-[0-9a-f]{16}\.so$/.test(f))).toHaveLength(1);
    expect(files.filter((f) => f.includes(".tmp-"))).toEqual([]);
    await Promise.all([a.kill(), b.kill()]);
  }, 60_000);

  test("the engine runs as a child process of the binary (headroom __engine) and is restarted after a segfault", async () => {
    const s = serve(join(work, "tmp"), [], { HEADROOM_TEST_FAULT: "segfault@3" });
    const url = await s.url;
    await waitHealthy(url);
    // The engine process is the binary itself, re-executed with the hidden sub-command.
    const children = Bun.spawnSync(["ps", "-o", "args=", "--ppid", String(s.proc.pid)]).stdout.toString();
    expect(children).toContain(`${bin} __engine`);
    const ask = () =>
      fetch(`${url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "Once upon a time", max_tokens: 8, temperature: 0 }),
      });
    const failed = await ask();
    expect(failed.status).toBe(503);
    expect(((await failed.json()) as { error: { code: string } }).error.code).toBe("engine_error");
    await waitHealthy(url);
    const ok = await ask();
    expect(ok.status).toBe(200);
    expect(s.lines.some((l) => l.includes('"engine died"') && l.includes("signal SIGSEGV"))).toBe(true);
    await s.kill();
    expect(await s.exited).toBe(0);
  }, 60_000);

  test("an extraction dir on a noexec mount fails with a message naming HEADROOM_TMPDIR", async () => {
    const probe = Bun.spawnSync(["unshare", "-rm", "true"], { stderr: "pipe" });
    if (probe.exitCode !== 0) {
      console.warn("skipped: cannot create a noexec mount without root (unshare -rm failed); detection is unit-tested in extract.test.ts");
      return;
    }
    const nx = join(work, "nx");
    const script = `mkdir -p "${nx}" && mount -t tmpfs -o noexec,size=16m tmpfs "${nx}" && exec "$@"`;
    const p = spawnHeadroom(
      ["unshare", "-rm", "sh", "-c", script, "sh", bin, "serve", "--device", "cpu", "--device-memory", "256MiB", "--port", "0"],
      {
        cwd: join(work, "run"),
        env: { HEADROOM_TMPDIR: nx, HEADROOM_LIB_DIR: undefined },
      },
    );
    procs.push(p);
    const code = await Promise.race([p.exited, Bun.sleep(30_000).then(() => -999)]);
    const out = p.lines.join("\n");
    expect(code).toBe(1);
    expect(out).toContain("noexec");
    expect(out).toContain("HEADROOM_TMPDIR");
  }, 40_000);
});
