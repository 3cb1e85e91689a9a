// One file from the Hub into the cache, resumable: the bytes go to blobs/<etag>.incomplete and a
// later try continues from its size with an HTTP Range request (the Blob @huggingface/hub
// returns fetches `bytes=<start>-` when sliced). A finished file is checked (size, and sha256
// when the ETag is one, as it is for LFS files) before it becomes blobs/<etag>.
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";

import { downloadFile, fileDownloadInfo } from "@huggingface/hub";

import type { RepoCache } from "./cache-layout.ts";

export interface HubClient {
  hubUrl: string;
  accessToken?: string;
  fetch?: typeof fetch;
}

export class HubDownloadError extends Error {
  override name = "HubDownloadError";
}

/** `W/"abc"` → `abc` (huggingface_hub names blobs by the bare ETag). */
export function normalizeEtag(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

async function eachChunk(stream: ReadableStream<Uint8Array>, fn: (chunk: Uint8Array) => void): Promise<void> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      fn(value);
    }
  } finally {
    reader.releaseLock();
  }
}

async function sha256File(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  await eachChunk(Bun.file(path).stream(), (c) => hasher.update(c));
  return hasher.digest("hex");
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/**
 * One writer per blob: servers started together (or two resolves in one process) must not append
 * to the same .incomplete file. The lock file holds the owner's pid; a dead owner's lock is taken over.
 */
async function withBlobLock<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      writeFileSync(lockPath, String(process.pid), { flag: "wx" });
      break;
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
      let owner = 0;
      try {
        owner = Number(readFileSync(lockPath, "utf8"));
      } catch {
        continue; // released between the two calls
      }
      if (!Number.isInteger(owner) || owner <= 0 || !alive(owner)) rmSync(lockPath, { force: true });
      else await Bun.sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockPath, { force: true });
  }
}

/** Downloads `path` at `commit` into the cache (resuming a partial blob); returns the snapshot path. */
export async function downloadToCache(
  client: HubClient,
  cache: RepoCache,
  commit: string,
  path: string,
  onBytes: (done: number, total: number) => void = () => {},
): Promise<string> {
  const where = `${cache.repo}/${path}`;
  const info = await fileDownloadInfo({ repo: cache.repo, path, revision: commit, ...client });
  if (!info) throw new HubDownloadError(`${where}: not found at revision ${commit}`);
  const etag = normalizeEtag(info.etag);
  if (!/^[A-Za-z0-9._-]+$/.test(etag)) throw new HubDownloadError(`${where}: the Hub sent an unusable ETag ${JSON.stringify(info.etag)}`);
  const blobPath = cache.blob(etag);
  mkdirSync(dirname(blobPath), { recursive: true });
  return await withBlobLock(`${blobPath}.lock`, () => fetchBlob(client, cache, commit, path, info, etag, onBytes));
}

async function fetchBlob(
  client: HubClient,
  cache: RepoCache,
  commit: string,
  path: string,
  info: NonNullable<Awaited<ReturnType<typeof fileDownloadInfo>>>,
  etag: string,
  onBytes: (done: number, total: number) => void,
): Promise<string> {
  const where = `${cache.repo}/${path}`;
  const blobPath = cache.blob(etag);
  if (existsSync(blobPath) && statSync(blobPath).size === info.size) {
    onBytes(info.size, info.size);
    return cache.link(commit, path, etag);
  }
  const part = `${blobPath}.incomplete`;
  let have = existsSync(part) ? statSync(part).size : 0;
  if (have > info.size) {
    truncateSync(part, 0);
    have = 0;
  }
  onBytes(have, info.size);
  if (have < info.size) {
    const blob = await downloadFile({ repo: cache.repo, path, revision: commit, downloadInfo: info, ...client });
    if (!blob) throw new HubDownloadError(`${where}: not found at revision ${commit}`);
    const fd = openSync(part, "a");
    try {
      await eachChunk(blob.slice(have).stream(), (chunk) => {
        writeSync(fd, chunk);
        have += chunk.byteLength;
        onBytes(have, info.size);
      });
    } catch (e) {
      throw new HubDownloadError(
        `${where}: download interrupted after ${have} of ${info.size} bytes (${(e as Error).message}); run again to resume from ${part}`,
      );
    } finally {
      closeSync(fd);
    }
  }
  if (have !== info.size)
    throw new HubDownloadError(`${where}: got ${have} bytes, expected ${info.size}; run again to resume from ${part}`);
  if (/^[0-9a-f]{64}$/.test(etag)) {
    const sum = await sha256File(part);
    if (sum !== etag) {
      rmSync(part, { force: true });
      throw new HubDownloadError(`${where}: downloaded file is corrupt (sha256 ${sum}, expected ${etag}); removed it, run again`);
    }
  }
  renameSync(part, blobPath);
  return cache.link(commit, path, etag);
}
