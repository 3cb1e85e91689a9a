// The standard Hugging Face cache layout (shared with huggingface_hub / transformers / vLLM):
//   <cache>/models--ORG--NAME/blobs/<etag>            file contents, named by ETag (sha256 for LFS)
//   <cache>/models--ORG--NAME/snapshots/<commit>/<path> relative symlinks to the blobs
//   <cache>/models--ORG--NAME/refs/<revision>          the commit a branch or tag resolved to
// <cache> = $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, relative } from "node:path";

export type Env = Record<string, string | undefined>;

export const COMMIT_HASH = /^[0-9a-f]{40}$/;

export function hubCacheDir(env: Env = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HF_HOME) return join(env.HF_HOME, "hub");
  return join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "huggingface", "hub");
}

export class RepoCache {
  readonly root: string;
  constructor(
    cacheDir: string,
    readonly repo: string,
  ) {
    this.root = join(cacheDir, `models--${repo.split("/").join("--")}`);
  }
  blob(etag: string): string {
    return join(this.root, "blobs", etag);
  }
  snapshot(commit: string): string {
    return join(this.root, "snapshots", commit);
  }
  refPath(revision: string): string {
    return join(this.root, "refs", revision);
  }
  /** The commit a revision points to in the cache (a commit hash stands for itself); null when unknown. */
  commitFor(revision: string): string | null {
    if (COMMIT_HASH.test(revision)) return existsSync(this.snapshot(revision)) ? revision : null;
    const ref = this.refPath(revision);
    if (!existsSync(ref)) return null;
    const commit = readFileSync(ref, "utf8").trim();
    return COMMIT_HASH.test(commit) ? commit : null;
  }
  writeRef(revision: string, commit: string): void {
    if (revision === commit) return;
    const ref = this.refPath(revision);
    mkdirSync(dirname(ref), { recursive: true });
    writeFileSync(ref, commit);
  }
  /** Points snapshots/<commit>/<path> at blobs/<etag> (relative link, as huggingface_hub makes). */
  link(commit: string, path: string, etag: string): string {
    const pointer = join(this.snapshot(commit), path);
    mkdirSync(dirname(pointer), { recursive: true });
    const tmp = `${pointer}.tmp-${process.pid}`;
    rmSync(tmp, { force: true });
    symlinkSync(relative(dirname(pointer), this.blob(etag)), tmp);
    renameSync(tmp, pointer);
    return pointer;
  }
}
