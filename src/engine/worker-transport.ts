// The engine core in a Worker of the server process (worker.ts): the in-process mode, for the
// bench/serve comparison with the engine process. A native crash here kills the server.
import type { FromWorker } from "./protocol.ts";
import type { TransportFactory } from "./transport.ts";

export const workerTransport: TransportFactory = (h) => {
  // In the single binary (src/ship/compile.ts: entry points src/cli.ts + src/engine/worker.ts,
  // root src/) import.meta.url is the executable's /$bunfs/root/<name>, the worker /$bunfs/root/engine/worker.js.
  const url = Bun.isStandaloneExecutable ? new URL("./engine/worker.ts", import.meta.url) : new URL("./worker.ts", import.meta.url);
  const worker = new Worker(url.href);
  let gone = false;
  const exit = (cause: string) => {
    if (gone) return;
    gone = true;
    h.onExit(cause);
  };
  worker.onmessage = (e: MessageEvent<FromWorker>) => {
    if (!gone) h.onMessage(e.data);
  };
  worker.onerror = (e: ErrorEvent) => exit(`exception: ${e.message}`);
  worker.addEventListener("close", () => exit("worker closed"));
  return {
    send: (m) => {
      if (!gone) worker.postMessage(m);
    },
    kill: () => {
      worker.terminate();
      exit("terminated");
    },
  };
};
