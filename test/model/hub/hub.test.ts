// --model ORG/NAME[@REV][:QUANT] against a fake Hub over loopback: the HF cache layout, only the
// needed files, a download cut mid-file and resumed with a Range request, offline mode from the
// cache, GGUF choice by quant or --gguf-file, HF_TOKEN, and clear errors.
import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { openModel } from "../../../src/model/load.ts";
import { hubCacheDir } from "../../../src/model/hub/cache-layout.ts";
import { parseRepoSpec } from "../../../src/model/hub/repo-id.ts";
import { resolveHubModel } from "../../../src/model/hub/resolve-model.ts";
import { selectFiles } from "../../../src/model/hub/select-files.ts";
import { GGUF_PATH, HAVE_MODELS, HF_DIR, warnIfNoModels } from "../helpers.ts";
import { FakeHub, type FakeFile } from "./fake-hub.ts";

warnIfNoModels("hub");

const MAIN = "a".repeat(40);
const V1 = "b".repeat(40);
const file = (path: string, data: Uint8Array | string, lfs = false): FakeFile => ({
  path,
  data: typeof data === "string" ? new TextEncoder().encode(data) : data,
  lfs,
});
const read = (p: string) => new Uint8Array(readFileSync(p));

describe("repo specs and file selection", () => {
  test("parseRepoSpec", () => {
    expect(parseRepoSpec("meta-llama/Llama-3.1-8B-Instruct")).toEqual({
      repo: "meta-llama/Llama-3.1-8B-Instruct",
      revision: "main",
      quant: null,
    });
    expect(parseRepoSpec("Qwen/Qwen3-0.6B@v1.0")).toEqual({ repo: "Qwen/Qwen3-0.6B", revision: "v1.0", quant: null });
    expect(parseRepoSpec("bartowski/Qwen3-0.6B-GGUF:Q4_K_M")).toEqual({
      repo: "bartowski/Qwen3-0.6B-GGUF",
      revision: "main",
      quant: "Q4_K_M",
    });
    for (const notRepo of ["./models/x", "/abs/path", "model.gguf", "a/b/c", "synthetic:110m", "../x/y"])
      expect(parseRepoSpec(notRepo)).toBeNull();
  });

  test("selectFiles: HF files only; one GGUF by name or quant", () => {
    const hf = [
      "config.json",
      "generation_config.json",
      "tokenizer.json",
      "tokenizer_config.json",
      "chat_template.jinja",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "model.safetensors.index.json",
      "pytorch_model.bin",
      "README.md",
      "onnx/model.onnx",
      "original/consolidated.00.pth",
    ];
    const got = selectFiles(
      "o/n",
      hf.map((path) => ({ path, size: 1 })),
      {},
    ).map((f) => f.path);
    expect(got.sort()).toEqual(hf.slice(0, 8).sort());
    const gg = ["m-Q4_K.gguf", "m-Q4_K_M.gguf", "m-Q8_0.gguf", "README.md"].map((path) => ({ path, size: 1 }));
    expect(selectFiles("o/n", gg, { quant: "q4_k_m" }).map((f) => f.path)).toEqual(["m-Q4_K_M.gguf"]);
    expect(selectFiles("o/n", gg, { quant: "Q4_K" }).map((f) => f.path)).toEqual(["m-Q4_K.gguf"]);
    expect(selectFiles("o/n", gg, { ggufFile: "m-Q8_0.gguf" }).map((f) => f.path)).toEqual(["m-Q8_0.gguf"]);
    expect(() => selectFiles("o/n", gg, {})).toThrow(/several GGUF files .*--gguf-file/);
    expect(() => selectFiles("o/n", gg, { quant: "Q2_K" })).toThrow(/no GGUF file for quantization Q2_K; it has: m-Q4_K.gguf/);
    expect(() => selectFiles("o/n", [{ path: "README.md", size: 1 }], {})).toThrow(/no config.json/);
  });

  test("hubCacheDir honours HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME", () => {
    expect(hubCacheDir({ HF_HUB_CACHE: "/c", HF_HOME: "/h" })).toBe("/c");
    expect(hubCacheDir({ HF_HOME: "/h" })).toBe("/h/hub");
    expect(hubCacheDir({ XDG_CACHE_HOME: "/x" })).toBe("/x/huggingface/hub");
  });
});

describe.skipIf(!HAVE_MODELS)("downloads from a fake Hub", () => {
  const weights = HAVE_MODELS ? read(join(HF_DIR, "model.safetensors")) : new Uint8Array();
  const hfFiles = HAVE_MODELS
    ? [
        file("config.json", read(join(HF_DIR, "config.json"))),
        file("tokenizer.json", read(join(HF_DIR, "tokenizer.json"))),
        file("tokenizer_config.json", read(join(HF_DIR, "tokenizer_config.json"))),
        file("generation_config.json", JSON.stringify({ eos_token_id: [2, 5] })),
        file("model.safetensors", weights, true),
        file("pytorch_model.bin", "not needed", true),
        file("README.md", "# stories"),
        file("onnx/model.onnx", "not needed"),
      ]
    : [];
  const gguf = HAVE_MODELS ? read(GGUF_PATH) : new Uint8Array();
  const hub = new FakeHub([
    { id: "karpathy/stories260K", refs: { main: MAIN, v1: V1 }, files: hfFiles },
    {
      id: "someone/stories-GGUF",
      refs: { main: MAIN },
      files: [file("stories-Q8_0.gguf", gguf, true), file("stories-F32.gguf", gguf, true), file("README.md", "x")],
    },
    { id: "corp/private", refs: { main: MAIN }, files: hfFiles.slice(0, 1), private: true },
  ]);
  let home = "";
  const env = () => ({ HF_HOME: home, HF_ENDPOINT: hub.url });
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), "headroom-hf-home-"));
    hub.requests.length = 0;
    hub.cuts.clear();
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));
  afterAll(() => {
    hub.stop();
  });

  const repoDir = () => join(home, "hub", "models--karpathy--stories260K");

  test("HF repo: standard cache layout, only the needed files, loadable", async () => {
    const progress: number[] = [];
    const r = await resolveHubModel(parseRepoSpec("karpathy/stories260K")!, { env: env(), onProgress: (p) => progress.push(p.done) });
    expect(r.path).toBe(join(repoDir(), "snapshots", MAIN));
    expect(r.files.sort()).toEqual([
      "config.json",
      "generation_config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
    expect(readFileSync(join(repoDir(), "refs", "main"), "utf8")).toBe(MAIN);
    const pointer = join(r.path, "model.safetensors");
    expect(lstatSync(pointer).isSymbolicLink()).toBe(true);
    expect(readlinkSync(pointer)).toBe(`../../blobs/${hub.etag(hfFiles[4]!)}`);
    expect(read(pointer)).toEqual(weights);
    const downloaded = hub.requests.filter((q) => q.path.includes("/resolve/")).map((q) => q.path.split("/").pop());
    for (const skipped of ["pytorch_model.bin", "README.md", "model.onnx"]) expect(downloaded).not.toContain(skipped);
    expect(progress.at(-1)).toBe(hfFiles.slice(0, 5).reduce((s, f) => s + f.data.byteLength, 0));
    const m = openModel(r.path);
    expect(m.config.eosTokenIds).toContain(5); // generation_config.json came along
  });

  test("a download cut mid-file fails clearly and resumes with a Range request on the next try", async () => {
    hub.cuts.set("model.safetensors", { bytes: 100_000, times: 1 });
    const spec = parseRepoSpec("karpathy/stories260K")!;
    const err = await resolveHubModel(spec, { env: env() }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(
      /karpathy\/stories260K\/model\.safetensors: download interrupted after 100000 of \d+ bytes.*run again to resume/,
    );
    const part = join(repoDir(), "blobs", `${hub.etag(hfFiles[4]!)}.incomplete`);
    expect(statSync(part).size).toBe(100_000);
    expect(existsSync(join(repoDir(), "refs", "main"))).toBe(false);

    hub.requests.length = 0;
    const r = await resolveHubModel(spec, { env: env() });
    const ranges = hub.requests.filter((q) => q.path.endsWith("/model.safetensors")).map((q) => q.range);
    expect(ranges).toContain(`bytes=100000-${weights.byteLength - 1}`);
    expect(ranges.filter((x) => x === null)).toEqual([]); // never restarted from byte 0
    expect(read(join(r.path, "model.safetensors"))).toEqual(weights);
    expect(existsSync(part)).toBe(false);
    // Files already complete were not fetched again.
    expect(hub.requests.filter((q) => q.path.endsWith("/config.json") && q.range !== "bytes=0-0")).toEqual([]);
  });

  test("two resolves at once: one writer per blob, both get the same intact files", async () => {
    const spec = parseRepoSpec("karpathy/stories260K")!;
    const [a, b] = await Promise.all([resolveHubModel(spec, { env: env() }), resolveHubModel(spec, { env: env() })]);
    expect(a.path).toBe(b.path);
    expect(read(join(a.path, "model.safetensors"))).toEqual(weights);
    const bodies = hub.requests.filter((q) => q.path.endsWith("/model.safetensors") && q.range !== "bytes=0-0");
    expect(bodies.length).toBe(1); // the second waited for the lock, then found the blob
    expect(existsSync(join(repoDir(), "blobs", `${hub.etag(hfFiles[4]!)}.lock`))).toBe(false);
  });

  test("offline mode uses the cache and makes no request; a missing entry names the cache", async () => {
    const online = await resolveHubModel(parseRepoSpec("karpathy/stories260K")!, { env: env() });
    hub.requests.length = 0;
    const offline = await resolveHubModel(parseRepoSpec("karpathy/stories260K")!, { env: { ...env(), HF_HUB_OFFLINE: "1" } });
    expect(offline.path).toBe(online.path);
    expect(offline.fromCache).toBe(true);
    expect(hub.requests).toEqual([]);
    await expect(resolveHubModel(parseRepoSpec("karpathy/stories260K@v1")!, { env: { ...env(), HF_HUB_OFFLINE: "1" } })).rejects.toThrow(
      /HF_HUB_OFFLINE is set, and revision 'v1' is not in the cache \(.*models--karpathy--stories260K\)/,
    );
    // Hub unreachable: the cached snapshot still serves.
    const down = await resolveHubModel(parseRepoSpec("karpathy/stories260K")!, {
      env: { HF_HOME: home, HF_ENDPOINT: "http://127.0.0.1:9" },
    });
    expect(down.path).toBe(online.path);
  });

  test("@revision resolves a tag to its commit and writes refs/<tag>", async () => {
    const r = await resolveHubModel(parseRepoSpec("karpathy/stories260K@v1")!, { env: env() });
    expect(r.path).toBe(join(repoDir(), "snapshots", V1));
    expect(readFileSync(join(repoDir(), "refs", "v1"), "utf8")).toBe(V1);
  });

  test("GGUF repo: one file by :QUANT or --gguf-file; several without a choice is an error", async () => {
    const q = await resolveHubModel(parseRepoSpec("someone/stories-GGUF:Q8_0")!, { env: env() });
    expect(q.path.endsWith(`/snapshots/${MAIN}/stories-Q8_0.gguf`)).toBe(true);
    expect(q.files).toEqual(["stories-Q8_0.gguf"]);
    expect(openModel(q.path).source).toBe("gguf");
    const f = await resolveHubModel(parseRepoSpec("someone/stories-GGUF")!, { env: env(), ggufFile: "stories-F32.gguf" });
    expect(f.path.endsWith("/stories-F32.gguf")).toBe(true);
    await expect(resolveHubModel(parseRepoSpec("someone/stories-GGUF")!, { env: env() })).rejects.toThrow(/several GGUF files/);
  });

  test("HF_TOKEN is sent; 401/404 are explained", async () => {
    await expect(resolveHubModel(parseRepoSpec("corp/private")!, { env: env() })).rejects.toThrow(/refused access \(401.*HF_TOKEN/);
    await expect(resolveHubModel(parseRepoSpec("nobody/nothing")!, { env: env() })).rejects.toThrow(
      /nobody\/nothing: not found on the Hub/,
    );
    hub.requests.length = 0;
    await expect(resolveHubModel(parseRepoSpec("corp/private")!, { env: { ...env(), HF_TOKEN: hub.token } })).rejects.toThrow(
      /no \.safetensors weights/,
    );
    expect(hub.requests.every((q) => q.auth === `Bearer ${hub.token}`)).toBe(true);
    await expect(resolveHubModel(parseRepoSpec("corp/private")!, { env: { ...env(), HF_TOKEN: "secret" } })).rejects.toThrow(
      /HF_TOKEN is not a Hugging Face access token/,
    );
  });
});

describe.skipIf(!HAVE_MODELS)("serve --model ORG/NAME", () => {
  test("the repo id becomes the cached snapshot before the engine starts, served under its own name", async () => {
    const { resolveModelOption } = await import("../../../src/server/resolve-model.ts");
    const { defaultServeOptions } = await import("../../../src/server/options.ts");
    const { createEngine } = await import("../../../src/engine/index.ts");
    const files = ["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"].map((p) =>
      file(p, read(join(HF_DIR, p)), p.endsWith(".safetensors")),
    );
    const hub = new FakeHub([{ id: "karpathy/stories260K", refs: { main: MAIN }, files }]);
    const home = mkdtempSync(join(tmpdir(), "headroom-hf-serve-"));
    try {
      const stages: string[] = [];
      const base = {
        ...defaultServeOptions(),
        device: "cpu" as const,
        deviceMemory: 256 * 2 ** 20,
        maxModelLen: 128,
        maxNumSeqs: 2,
        maxNumBatchedTokens: 128,
      };
      const o = await resolveModelOption(
        { ...base, model: "karpathy/stories260K" },
        { onProgress: (p) => stages.push(p.stage) },
        { HF_HOME: home, HF_ENDPOINT: hub.url },
      );
      expect(o.model).toBe(join(home, "hub", "models--karpathy--stories260K", "snapshots", MAIN));
      expect(o.servedModelName).toBe("karpathy/stories260K");
      expect(stages).toContain("download");
      const engine = createEngine(o);
      try {
        await engine.ready();
        expect(engine.model().id).toBe("karpathy/stories260K");
      } finally {
        await engine.close();
      }
      // --gguf-file picks a file in a local folder; without --model it is an error.
      const local = await resolveModelOption({ ...base, model: resolve(GGUF_PATH, ".."), ggufFile: "stories260K.gguf" });
      expect(local.model).toBe(GGUF_PATH);
      await expect(resolveModelOption({ ...base, model: null, ggufFile: "x.gguf" })).rejects.toThrow(/--gguf-file needs --model/);
    } finally {
      hub.stop();
      rmSync(home, { recursive: true, force: true });
    }
  });
});

test("cli: serve --model ORG/NAME resolves before start-up (offline, not cached: clear error, exit 1)", () => {
  const home = mkdtempSync(join(tmpdir(), "headroom-hf-cli-"));
  try {
    const r = Bun.spawnSync([process.execPath, "src/cli.ts", "serve", "--model", "nobody/nothing", "--device", "cpu", "--port", "0"], {
      cwd: resolve(import.meta.dir, "../../.."),
      env: { ...process.env, HF_HOME: home, HF_HUB_OFFLINE: "1" },
    });
    expect(r.exitCode).toBe(1);
    expect(r.stdout.toString() + r.stderr.toString()).toMatch(
      /nobody\/nothing: HF_HUB_OFFLINE is set, and revision 'main' is not in the cache/,
    );
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}, 20_000);
