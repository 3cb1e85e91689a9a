// Two engine instances in two processes on one device (CUDA: the real GPU shared by two CUDA
// contexts) each keep their share: each starts at utilization 0.45 and stays within
// floor(total × 0.45); the second sees the first as "other" memory at start-up; both then run
// requests at the same time with no OOM, and neither instance's memory (allocator reserved
// bytes, mapped KV) changes while the other runs. On the CPU backend each process has its own
// simulated device, so this runs the harness (start, load, report, exit) and checks each
// process's share, not the sharing.
import { afterEach, expect, test } from "bun:test";
import { resolve } from "node:path";

import { describeDevices } from "../util/devices.ts";

const CHILD = resolve(import.meta.dir, "two-process-child.ts");
// CUDA: 512 KiB KV blocks (a tiny model's 4 KiB blocks would number millions in 60 GB).
const MODEL = {
  cpu: "synthetic:dim=64,hidden=176,layers=2,heads=4,kv_heads=2,vocab=300",
  cuda: "synthetic:dim=1024,hidden=2816,layers=8,heads=8,kv_heads=8,vocab=300",
};

interface Report {
  stage: string;
  totalBytes: number;
  usedBytes: number;
  baselineUsedBytes: number;
  requestedBytes: number;
  reservedBytes: number;
  kvMappedBytes: number;
  kvBlocks: number;
  numOoms: number;
  tokens?: number;
  done?: number;
}

class Child {
  readonly proc;
  private buf = "";
  private readonly reader;
  constructor(device: "cpu" | "cuda") {
    this.proc = Bun.spawn([process.execPath, CHILD, device, "0.45", MODEL[device]], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    this.reader = this.proc.stdout.getReader();
  }
  async next(): Promise<Report> {
    for (;;) {
      const nl = this.buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        if (line.startsWith("{")) return JSON.parse(line) as Report;
        continue;
      }
      const { value, done } = await this.reader.read();
      if (done) throw new Error(`child exited (${await this.proc.exited}) before reporting`);
      this.buf += new TextDecoder().decode(value);
    }
  }
  send(cmd: string): void {
    this.proc.stdin.write(`${cmd}\n`);
    this.proc.stdin.flush();
  }
}

const children: Child[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.proc.kill();
    await c.proc.exited;
  }
});

describeDevices("two instances in two processes", (env) => {
  test("each keeps its share of one device while both run", async () => {
    const a = new Child(env.device);
    children.push(a);
    const aReady = await a.next();
    expect(aReady.stage).toBe("ready");
    const b = new Child(env.device);
    children.push(b);
    const bReady = await b.next();
    const share = Math.floor(aReady.totalBytes * 0.45);
    for (const r of [aReady, bReady]) {
      expect(r.usedBytes - r.baselineUsedBytes).toBeLessThanOrEqual(share);
      expect(r.requestedBytes).toBe(share);
      expect(r.kvBlocks).toBeGreaterThan(0);
    }
    if (env.isCuda) {
      // b started after a: a's memory (context, weights, arena, KV) was "other" memory to b
      expect(bReady.baselineUsedBytes).toBeGreaterThanOrEqual(aReady.usedBytes);
      // and the device holds both shares
      expect(bReady.usedBytes).toBeGreaterThanOrEqual(aReady.usedBytes + (bReady.reservedBytes + bReady.kvMappedBytes));
    } else {
      expect(bReady.baselineUsedBytes).toBe(aReady.baselineUsedBytes); // separate simulated devices
    }
    // both run at once
    a.send("load");
    b.send("load");
    const [aLoaded, bLoaded] = await Promise.all([a.next(), b.next()]);
    for (const [ready, loaded] of [
      [aReady, aLoaded],
      [bReady, bLoaded],
    ] as const) {
      expect(loaded.stage).toBe("loaded");
      expect(loaded.done).toBe(12);
      expect(loaded.tokens).toBe(12 * 32);
      expect(loaded.numOoms).toBe(0);
      // its own memory did not move while the other process ran
      expect(loaded.reservedBytes).toBe(ready.reservedBytes);
      expect(loaded.kvMappedBytes).toBe(ready.kvMappedBytes);
    }
    a.send("exit");
    b.send("exit");
    expect(await a.proc.exited).toBe(0);
    expect(await b.proc.exited).toBe(0);
  }, 120_000);
});
