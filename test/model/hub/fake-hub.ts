// A fake Hugging Face Hub over loopback (Bun.serve) with the endpoints @huggingface/hub's
// modelInfo, listFiles, fileDownloadInfo and downloadFile use:
//   GET /api/models/ORG/NAME/revision/REV        → {id, sha, ...}
//   GET /api/models/ORG/NAME/tree/REV?recursive=… → [{type, path, size, oid, lfs?}]
//   GET /ORG/NAME/resolve/REV/PATH                → the bytes, with Range (206 + Content-Range),
//       ETag (git blob sha1) or X-Linked-ETag (sha256, for "LFS" files) and X-Repo-Commit.
// `cut` makes the next downloads of a file stop after some bytes and drop the connection.
import { createHash } from "node:crypto";

export interface FakeFile {
  path: string;
  data: Uint8Array;
  /** Served like an LFS file: sha256 ETag (X-Linked-ETag), lfs entry in the tree. */
  lfs?: boolean;
}

export interface FakeRepo {
  id: string;
  /** revision name → commit; "main" at least. */
  refs: Record<string, string>;
  files: FakeFile[];
  private?: boolean;
}

export interface LoggedRequest {
  method: string;
  path: string;
  range: string | null;
  auth: string | null;
}

const gitOid = (d: Uint8Array) => createHash("sha1").update(`blob ${d.byteLength}\0`).update(d).digest("hex");
const sha256 = (d: Uint8Array) => createHash("sha256").update(d).digest("hex");

export class FakeHub {
  readonly requests: LoggedRequest[] = [];
  /** path → bytes to send before dropping the connection, for the next `times` downloads. */
  readonly cuts = new Map<string, { bytes: number; times: number }>();
  private readonly server: ReturnType<typeof Bun.serve>;
  /** Required bearer token for private repos. */
  token = "hf_fake_token";

  constructor(private readonly repos: FakeRepo[]) {
    this.server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => this.handle(req) });
  }

  get url(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  etag(f: FakeFile): string {
    return f.lfs ? sha256(f.data) : gitOid(f.data);
  }

  stop(): void {
    this.server.stop(true);
  }

  private repo(id: string, req: Request): FakeRepo | Response {
    const r = this.repos.find((x) => x.id === id);
    if (!r) return Response.json({ error: "Repository not found" }, { status: 404, headers: { "x-error-code": "RepoNotFound" } });
    if (r.private && req.headers.get("authorization") !== `Bearer ${this.token}`)
      return Response.json({ error: "Invalid credentials in Authorization header" }, { status: 401 });
    return r;
  }

  private commit(r: FakeRepo, rev: string): string | null {
    return r.refs[rev] ?? (Object.values(r.refs).includes(rev) ? rev : null);
  }

  private handle(req: Request): Response {
    const url = new URL(req.url);
    const path = decodeURIComponent(url.pathname);
    this.requests.push({ method: req.method, path, range: req.headers.get("range"), auth: req.headers.get("authorization") });
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)$/.exec(path);
    if (m) {
      const r = this.repo(m[1]!, req);
      if (r instanceof Response) return r;
      const commit = this.commit(r, m[3]!);
      if (!commit)
        return Response.json({ error: `Invalid rev id: ${m[3]}` }, { status: 404, headers: { "x-error-code": "RevisionNotFound" } });
      if (m[2] === "revision")
        return Response.json({
          _id: `id-${r.id}`,
          id: r.id,
          sha: commit,
          private: !!r.private,
          downloads: 0,
          likes: 0,
          gated: false,
          lastModified: "2024-01-01T00:00:00.000Z",
        });
      return Response.json(
        r.files.map((f) => ({
          type: "file",
          oid: gitOid(f.data),
          size: f.lfs ? 134 : f.data.byteLength,
          path: f.path,
          ...(f.lfs ? { lfs: { oid: sha256(f.data), size: f.data.byteLength, pointerSize: 134 } } : {}),
        })),
      );
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (m && (req.method === "GET" || req.method === "HEAD")) {
      const r = this.repo(m[1]!, req);
      if (r instanceof Response) return r;
      const commit = this.commit(r, m[2]!);
      const f = r.files.find((x) => x.path === m![3]);
      if (!commit || !f) return Response.json({ error: "Entry not found" }, { status: 404, headers: { "x-error-code": "EntryNotFound" } });
      const size = f.data.byteLength;
      const headers: Record<string, string> = {
        "x-repo-commit": commit,
        "accept-ranges": "bytes",
        "content-type": "application/octet-stream",
      };
      if (f.lfs)
        Object.assign(headers, { "x-linked-etag": `"${this.etag(f)}"`, "x-linked-size": String(size), etag: `"${gitOid(f.data)}"` });
      else headers.etag = `"${this.etag(f)}"`;
      let start = 0;
      let end = size - 1;
      let status = 200;
      const range = req.headers.get("range");
      if (range) {
        const rm = /^bytes=(\d+)-(\d*)$/.exec(range);
        if (!rm || Number(rm[1]) >= size) return new Response(null, { status: 416, headers: { "content-range": `bytes */${size}` } });
        start = Number(rm[1]);
        end = rm[2] ? Math.min(Number(rm[2]), size - 1) : size - 1;
        status = 206;
        headers["content-range"] = `bytes ${start}-${end}/${size}`;
      }
      const body = f.data.subarray(start, end + 1);
      headers["content-length"] = String(body.byteLength);
      const cut = this.cuts.get(f.path);
      if (cut && cut.times > 0 && body.byteLength > 1) {
        cut.times--;
        const sendable = body.subarray(0, Math.min(cut.bytes, body.byteLength - 1));
        // Send part of the body, then fail the stream: the connection drops mid-file.
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(sendable);
          },
          async pull(controller) {
            await Bun.sleep(20);
            controller.error(new Error("fake hub: connection cut"));
          },
        });
        return new Response(stream, { status, headers });
      }
      return new Response(req.method === "HEAD" ? null : body.slice(), { status, headers });
    }
    return Response.json({ error: `fake hub: no route for ${req.method} ${path}` }, { status: 404 });
  }
}
