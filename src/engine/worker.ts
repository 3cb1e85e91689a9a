// The engine core in a Worker of the server process: the in-process mode (createEngine's
// `mode: "worker"`), kept to measure what the separate engine process costs (bench/serve).
// No supervision beyond "the worker died": a crash here takes the whole server down.
import { runEngineLoop } from "./engine-loop.ts";
import type { ToWorker } from "./protocol.ts";

declare const self: Worker;

void runEngineLoop({
  post: (m) => self.postMessage(m),
  onMessage: (h) => {
    self.onmessage = (e: MessageEvent<ToWorker>) => h(e.data);
  },
});
