// How the engine client reaches one engine incarnation: its own process (process-transport.ts)
// or a Worker (worker-transport.ts). The client (index.ts) supervises through this interface.
import type { FromWorker, ToWorker } from "./protocol.ts";

export interface TransportHandlers {
  onMessage(m: FromWorker): void;
  /** The engine is gone; `cause` names why ("signal SIGSEGV", "exit code 70", …). */
  onExit(cause: string): void;
  /** A line the engine wrote to stdout/stderr outside the protocol (native libraries, Bun). */
  onOutput?(line: string): void;
}

export interface EngineTransport {
  /** Never throws: messages to an engine that just died are dropped (onExit reports it). */
  send(m: ToWorker): void;
  /** Ends the engine now (SIGKILL / terminate): also a hung one. */
  kill(): void;
}

/** Starts incarnation number `start` (1 = the first) of the engine. */
export type TransportFactory = (handlers: TransportHandlers, start: number) => EngineTransport;
