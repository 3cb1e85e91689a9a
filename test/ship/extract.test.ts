// Unit tests of the noexec detection used when the single binary extracts its native libraries.
import { describe, expect, test } from "bun:test";
import { embeddedModule } from "../../src/ship/compile.ts";
import {
  explainDlopenError,
  extractionBase,
  isNoexec,
  isNoexecDlopenError,
  mountOf,
  parseMountInfo,
  TMPDIR_VAR,
} from "../../src/native/extract.ts";
import { embedded } from "../../src/native/embedded.ts";

const MOUNTINFO = [
  "22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw",
  "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw",
  "40 22 0:35 / /tmp rw,nosuid,nodev,noexec shared:10 - tmpfs tmpfs rw,size=1g",
  "41 40 0:36 / /tmp/exec rw,relatime shared:11 - tmpfs tmpfs rw",
  "42 22 0:37 / /mnt/with\\040space rw,noexec - tmpfs tmpfs rw",
].join("\n");

describe("noexec detection", () => {
  test("parses mountinfo (escaped spaces too)", () => {
    const m = parseMountInfo(MOUNTINFO);
    expect(m.map((x) => x.mountPoint)).toEqual(["/", "/proc", "/tmp", "/tmp/exec", "/mnt/with space"]);
    expect(m[2]!.options).toContain("noexec");
  });

  test("finds the mount holding a path (longest prefix, not a string prefix)", () => {
    const m = parseMountInfo(MOUNTINFO);
    expect(mountOf("/tmp/headroom-0", m)!.mountPoint).toBe("/tmp");
    expect(mountOf("/tmp/exec/headroom-0", m)!.mountPoint).toBe("/tmp/exec");
    expect(mountOf("/tmpfoo/x", m)!.mountPoint).toBe("/");
    expect(mountOf("/tmp", m)!.mountPoint).toBe("/tmp");
  });

  test("isNoexec", () => {
    expect(isNoexec("/tmp/headroom-0", MOUNTINFO)).toBe(true);
    expect(isNoexec("/tmp/exec/headroom-0", MOUNTINFO)).toBe(false);
    expect(isNoexec("/var/tmp/headroom-0", MOUNTINFO)).toBe(false);
    expect(isNoexec("/mnt/with space/x", MOUNTINFO)).toBe(true);
    expect(typeof isNoexec("/tmp")).toBe("boolean"); // the live /proc/self/mountinfo
  });

  test("dlopen errors of a non-executable mapping are explained with the variable that fixes them", () => {
    expect(isNoexecDlopenError("/tmp/x/libheadroom_cpu.so: failed to map segment from shared object")).toBe(true);
    expect(isNoexecDlopenError("libfoo.so: cannot open shared object file: No such file or directory")).toBe(false);
    const base = extractionBase();
    const msg = explainDlopenError(`${base}/headroom-0/libheadroom_cpu-0123456789abcdef.so`, "failed to map segment from shared object");
    expect(msg).toContain(TMPDIR_VAR);
    expect(msg).toContain("noexec");
    // A library outside the extraction dir keeps dlopen's message.
    expect(explainDlopenError("/opt/lib/libheadroom_cpu.so", "failed to map segment from shared object")).not.toContain(TMPDIR_VAR);
  });

  test("HEADROOM_TMPDIR wins over TMPDIR", () => {
    expect(extractionBase({ HEADROOM_TMPDIR: "/a/b", TMPDIR: "/c" })).toBe("/a/b");
    expect(extractionBase({ TMPDIR: "/c" })).toBe("/c");
  });
});

describe("embedded module", () => {
  test("is empty in a source checkout", () => {
    expect(embedded).toEqual({ libs: {}, swagger: {} });
  });

  test("generated text imports every file with type file", () => {
    const text = embeddedModule({ cpu: "/x/libheadroom_cpu.so" }, { "swagger-ui.css": "/y/swagger-ui.css" });
    expect(text).toContain('import lib0 from "/x/libheadroom_cpu.so" with { type: "file" };');
    expect(text).toContain('"swagger-ui.css": swagger0');
    expect(text).toContain('libs: { "cpu": lib0 }');
  });
});
