// The engine core's own process (the default): spawned and supervised by the server
// (process-transport.ts, index.ts) with Bun's IPC channel as the transport. Started as
// `bun src/engine/engine-main.ts`, or in the single binary as `headroom __engine` (cli.ts).
//
// Failure reporting: an exception that escapes the loop is sent as a `fatal` message (name and
// message only: no stack or source snippet reaches the server's log or clients), then the
// process exits 70; a native crash ends it by signal, which the server sees as the exit cause.
import { runEngineLoop, type LoopHooks } from "./engine-loop.ts";
import { faultHook, parseFault } from "./fault.ts";
import { toWire, type FromWorker, type ToWorker } from "./protocol.ts";
import { dieWithParent } from "./parent-death.ts";

const EXIT_FATAL = 70; // EX_SOFTWARE

export async function engineProcessMain(): Promise<never> {
  if (typeof process.send !== "function") {
    console.error("headroom: the engine process is started by `headroom serve`, not by hand");
    process.exit(2);
  }
  dieWithParent();
  const send = (m: FromWorker) => {
    try {
      process.send!(m);
    } catch {
      // channel closed: the server is gone and the disconnect handler exits
    }
  };
  let dying = false;
  const fatal = (e: unknown) => {
    if (dying) return;
    dying = true;
    send({ type: "fatal", error: toWire(e) });
    // Give the channel a moment to flush the report, then go.
    setTimeout(() => process.exit(EXIT_FATAL), 50);
  };
  process.on("uncaughtException", fatal);
  process.on("unhandledRejection", fatal);
  // Ctrl-C and `systemctl stop` signal the whole process group: the server drains and then
  // stops us over the channel, so the engine must not die first.
  process.on("SIGINT", () => {});
  process.on("SIGTERM", () => {});
  // The server closed the channel (it exited or killed us): nothing left to serve.
  process.on("disconnect", () => process.exit(0));

  const start = Number(process.env.HEADROOM_ENGINE_START ?? "1");
  let beforeStep: LoopHooks["beforeStep"];
  try {
    beforeStep = faultHook(parseFault(process.env.HEADROOM_TEST_FAULT), start) ?? undefined;
  } catch (e) {
    fatal(e);
  }
  try {
    await runEngineLoop(
      {
        post: send,
        onMessage: (h) => process.on("message", (m) => h(m as ToWorker)),
      },
      { beforeStep },
    );
  } catch (e) {
    fatal(e);
    return await new Promise<never>(() => {});
  }
  process.exit(0);
}
