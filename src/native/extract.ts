// Extraction of the native libraries embedded in the single binary.
//
// dlopen needs a real file on an executable file system, so at start the embedded
// libheadroom_<backend>.so is copied to a private directory:
//   $HEADROOM_TMPDIR (else $TMPDIR, else /tmp) / headroom-<uid> / libheadroom_<backend>-<sha256:16>.so
// The directory is created with mode 0700 and must be owned by this user and not accessible to
// others (refused otherwise: another user could swap the library). File names are content
// addressed and written through a temporary name + rename(2), so concurrent starts of the same
// or of different binaries never see a partial file and never overwrite another version.
// A directory on a `noexec` mount makes dlopen fail with "failed to map segment from shared
// object": that is detected before dlopen (/proc/self/mountinfo) and after it (the message), and
// reported with the variable that fixes it.
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { HeadroomError } from "./errors.ts";
import { embedded } from "./embedded.ts";

/** The variable that chooses where embedded libraries are extracted. */
export const TMPDIR_VAR = "HEADROOM_TMPDIR";

/** Base directory for extraction: $HEADROOM_TMPDIR, else $TMPDIR, else /tmp. */
export function extractionBase(env: Record<string, string | undefined> = process.env): string {
  return resolve(env[TMPDIR_VAR] || env.TMPDIR || tmpdir() || "/tmp");
}

export function isEmbedded(backend: string): boolean {
  return embedded.libs[backend] !== undefined;
}

export interface MountInfo {
  mountPoint: string;
  options: string[];
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses /proc/self/mountinfo text (man 5 proc): mount point is field 5, options field 6 (+ super options). */
export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const f = line.split(" ");
    if (f.length < 6) continue;
    out.push({ mountPoint: unescapeMount(f[4]!), options: f[5]!.split(",") });
  }
  return out;
}

/** The mount that holds `path` (longest mount-point prefix; later mounts shadow earlier ones). */
export function mountOf(path: string, mounts: MountInfo[]): MountInfo | null {
  const p = resolve(path);
  let best: MountInfo | null = null;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const inside = mp === "/" || p === mp || p.startsWith(mp.endsWith("/") ? mp : mp + "/");
    if (inside && (!best || mp.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

/** True when `path` is on a mount with the noexec option (per `mountinfo`, read from /proc when omitted). */
export function isNoexec(path: string, mountinfo?: string): boolean {
  let text = mountinfo;
  if (text === undefined) {
    try {
      text = readFileSync("/proc/self/mountinfo", "utf8");
    } catch {
      return false; // unknown: dlopen's own error is still explained by explainDlopenError
    }
  }
  return mountOf(path, parseMountInfo(text))?.options.includes("noexec") ?? false;
}

export function noexecMessage(dir: string): string {
  return (
    `cannot load the embedded native library: ${dir} is on a file system mounted noexec, so shared ` +
    `libraries extracted there cannot be mapped executable. Set ${TMPDIR_VAR} to a directory on an executable ` +
    `file system (e.g. ${TMPDIR_VAR}=$HOME/.cache/headroom), or set HEADROOM_LIB_DIR to a directory holding ` +
    `libheadroom_cpu.so / libheadroom_cuda.so.`
  );
}

/** True for dlopen failures caused by a non-executable mapping (noexec mount, EPERM on mmap PROT_EXEC). */
export function isNoexecDlopenError(message: string): boolean {
  return /failed to map segment|operation not permitted|EPERM|permission denied/i.test(message);
}

/** A dlopen error message, explained when the library was extracted and could not be mapped executable. */
export function explainDlopenError(path: string, message: string): string {
  const base = extractionBase();
  if (path.startsWith(base + "/") && isNoexecDlopenError(message)) return `${noexecMessage(base)} (dlopen: ${message})`;
  return `dlopen ${path}: ${message}`;
}

function privateDir(base: string): string {
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  const dir = join(base, `headroom-${uid}`);
  try {
    mkdirSync(base, { recursive: true });
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST")
      throw new HeadroomError(
        -5,
        "extractLibrary",
        `cannot create ${dir}: ${(e as Error).message} (set ${TMPDIR_VAR} to a writable directory)`,
      );
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.isSymbolicLink())
    throw new HeadroomError(-5, "extractLibrary", `${dir} exists and is not a directory: remove it or set ${TMPDIR_VAR}`);
  if (st.uid !== uid)
    throw new HeadroomError(
      -5,
      "extractLibrary",
      `${dir} belongs to uid ${st.uid}, not to this user (${uid}): refusing to load a library from it; set ${TMPDIR_VAR}`,
    );
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  return dir;
}

const extracted = new Map<string, string>();

/**
 * The path of the extracted copy of the embedded libheadroom_<backend>.so, extracting it if
 * needed; null when this is not a binary with that library embedded.
 */
export function embeddedLibraryPath(backend: string): string | null {
  const src = embedded.libs[backend];
  if (src === undefined) return null;
  const done = extracted.get(backend);
  if (done) return done;
  const bytes = readFileSync(src);
  const hash = createHash("sha256").update(bytes).digest("hex").slice(0, 16);
  const base = extractionBase();
  const dir = privateDir(base);
  if (isNoexec(dir)) throw new HeadroomError(-5, "loadLibrary", noexecMessage(dir));
  const path = join(dir, `libheadroom_${backend}-${hash}.so`);
  let ok = false;
  if (existsSync(path)) {
    try {
      const have = readFileSync(path);
      ok = have.length === bytes.length && createHash("sha256").update(have).digest("hex").slice(0, 16) === hash;
    } catch {}
  }
  if (!ok) {
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
    try {
      const fd = openSync(tmp, "wx", 0o700);
      try {
        let off = 0;
        while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw new HeadroomError(
        -5,
        "extractLibrary",
        `cannot write ${path}: ${(e as Error).message} (set ${TMPDIR_VAR} to a writable directory)`,
      );
    }
  }
  extracted.set(backend, path);
  return path;
}
