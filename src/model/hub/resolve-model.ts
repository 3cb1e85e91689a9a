// `--model ORG/NAME[@REVISION][:QUANT]` → a local path (snapshot folder, or the GGUF file in
// it), before the engine starts. Online: the commit of the revision (model info), the file
// list (tree), then only the files the model needs (select-files.ts), each resumable
// (download-file.ts), and refs/<revision> written last. HF_HUB_OFFLINE=1: the cache only.
// HF_ENDPOINT is the hub URL, HF_TOKEN the access token, HF_HOME / HF_HUB_CACHE the cache.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

import { listFiles, modelInfo } from "@huggingface/hub";

import { COMMIT_HASH, hubCacheDir, RepoCache, type Env } from "./cache-layout.ts";
import { downloadToCache, type HubClient } from "./download-file.ts";
import { formatRepoSpec, type RepoSpec } from "./repo-id.ts";
import { HubSelectionError, selectFiles, type RepoFile } from "./select-files.ts";

export interface HubProgress {
  file: string;
  /** Bytes of all selected files done so far / in total. */
  done: number;
  total: number;
}

export interface ResolveOptions {
  ggufFile?: string | null;
  env?: Env;
  fetch?: typeof fetch;
  onProgress?: (p: HubProgress) => void;
  log?: (message: string) => void;
}

export interface ResolvedModel {
  /** The snapshot folder (HF layout) or the GGUF file in it. */
  path: string;
  commit: string;
  files: string[];
  fromCache: boolean;
}

export class HubError extends Error {
  override name = "HubError";
}

const truthy = (v: string | undefined) => v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());

function client(env: Env, f?: typeof fetch): HubClient {
  const token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined;
  // The client refuses other tokens with a TypeError; say which variable is wrong instead.
  if (token !== undefined && !token.startsWith("hf_"))
    throw new HubError(`HF_TOKEN is not a Hugging Face access token (they start with 'hf_')`);
  return {
    hubUrl: (env.HF_ENDPOINT || "https://huggingface.co").replace(/\/+$/, ""),
    ...(token ? { accessToken: token } : {}),
    ...(f ? { fetch: f } : {}),
  };
}

/** Files of a cached snapshot (relative paths, recursively). */
function snapshotFiles(dir: string, prefix = ""): RepoFile[] {
  const out: RepoFile[] = [];
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...snapshotFiles(dir, rel));
    else out.push({ path: rel, size: 0 });
  }
  return out;
}

function fromCache(spec: RepoSpec, cache: RepoCache, opts: ResolveOptions, why: string): ResolvedModel {
  const commit = cache.commitFor(spec.revision);
  if (commit === null || !existsSync(cache.snapshot(commit)))
    throw new HubError(`${formatRepoSpec(spec)}: ${why}, and revision '${spec.revision}' is not in the cache (${cache.root})`);
  const dir = cache.snapshot(commit);
  let picked: RepoFile[];
  try {
    picked = selectFiles(spec.repo, snapshotFiles(dir), { ggufFile: opts.ggufFile ?? null, quant: spec.quant });
  } catch (e) {
    if (e instanceof HubSelectionError) throw new HubError(`${e.message} (cached snapshot ${dir}; ${why})`);
    throw e;
  }
  const gguf = picked.length === 1 && picked[0]!.path.toLowerCase().endsWith(".gguf") ? picked[0]!.path : null;
  return { path: gguf ? join(dir, gguf) : dir, commit, files: picked.map((f) => f.path), fromCache: true };
}

function describeHubError(spec: RepoSpec, hubUrl: string, e: unknown): string {
  const status = (e as { statusCode?: unknown }).statusCode;
  const msg = (e as Error).message;
  if (status === 401 || status === 403)
    return `${formatRepoSpec(spec)}: the Hub at ${hubUrl} refused access (${status}: ${msg}); a gated or private model needs HF_TOKEN`;
  if (status === 404)
    return `${formatRepoSpec(spec)}: not found on the Hub at ${hubUrl} (repository or revision '${spec.revision}' does not exist, or is private: set HF_TOKEN)`;
  return `${formatRepoSpec(spec)}: Hub request to ${hubUrl} failed: ${msg}`;
}

/** Resolves a repo spec to a local path, downloading what is missing. */
export async function resolveHubModel(spec: RepoSpec, opts: ResolveOptions = {}): Promise<ResolvedModel> {
  const env = opts.env ?? process.env;
  const cache = new RepoCache(hubCacheDir(env), spec.repo);
  if (truthy(env.HF_HUB_OFFLINE)) return fromCache(spec, cache, opts, "HF_HUB_OFFLINE is set");
  const c = client(env, opts.fetch);
  let commit: string;
  const listing: RepoFile[] = [];
  try {
    const info = await modelInfo({ name: spec.repo, revision: spec.revision, additionalFields: ["sha"], ...c });
    commit = String(info.sha);
    if (!COMMIT_HASH.test(commit))
      throw new HubError(`${formatRepoSpec(spec)}: the Hub at ${c.hubUrl} sent no commit hash for revision '${spec.revision}'`);
    for await (const f of listFiles({ repo: spec.repo, revision: commit, recursive: true, ...c }))
      if (f.type === "file") listing.push({ path: f.path, size: f.lfs?.size ?? f.size });
  } catch (e) {
    if (e instanceof HubError) throw e;
    const http = typeof (e as { statusCode?: unknown }).statusCode === "number";
    // Hub unreachable (not an HTTP error): what the cache holds still serves, as huggingface_hub does.
    if (!http && cache.commitFor(spec.revision) !== null) {
      opts.log?.(`warning: ${c.hubUrl} unreachable (${(e as Error).message}); using the cached ${formatRepoSpec(spec)}`);
      return fromCache(spec, cache, opts, "the Hub is unreachable");
    }
    throw new HubError(
      http
        ? describeHubError(spec, c.hubUrl, e)
        : `${formatRepoSpec(spec)}: cannot reach the Hub at ${c.hubUrl} (${(e as Error).message}); set HF_HUB_OFFLINE=1 to use the cache only`,
    );
  }
  let picked: RepoFile[];
  try {
    picked = selectFiles(spec.repo, listing, { ggufFile: opts.ggufFile ?? null, quant: spec.quant });
  } catch (e) {
    if (e instanceof HubSelectionError) throw new HubError(e.message);
    throw e;
  }
  const total = picked.reduce((s, f) => s + f.size, 0);
  let before = 0;
  for (const f of picked) {
    await downloadToCache(c, cache, commit, f.path, (done) => opts.onProgress?.({ file: f.path, done: before + done, total }));
    before += f.size;
  }
  cache.writeRef(spec.revision, commit);
  const dir = cache.snapshot(commit);
  const gguf = picked.length === 1 && picked[0]!.path.toLowerCase().endsWith(".gguf") ? picked[0]!.path : null;
  return { path: gguf ? join(dir, gguf) : dir, commit, files: picked.map((f) => f.path), fromCache: false };
}
