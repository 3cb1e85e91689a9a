// Sub-commands of `headroom`.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import pkg from "../../package.json";
import { startServer } from "../server/app.ts";
import { createEngine, EngineUnavailableError } from "../server/engine-factory.ts";
import { createLogger } from "../server/log.ts";
import { openapiText } from "../server/openapi-doc.ts";
import { OptionsError, parseServeOptions, redactOptions, serveHelp } from "../server/options.ts";
import { createProgress } from "../server/progress.ts";
import { resolveModelOption } from "../server/resolve-model.ts";
import { drainAndStop } from "../server/shutdown.ts";
import { planCommand } from "./plan.ts";

function plan(argv: string[]): number {
  return planCommand(argv);
}

const USAGE = `headroom ${pkg.version} — LLM inference server with exact device-memory management

Usage:
  headroom serve [flags]            start the OpenAI-compatible server (see: headroom serve --help)
  headroom plan [flags]             predict device memory for a model (see: headroom plan --help)
  headroom openapi [--out FILE]     write the OpenAPI document (default: stdout)
  headroom --version`;

export async function runCli(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return cmd === undefined ? 2 : 0;
    case "--version":
    case "-v":
      console.log(pkg.version);
      return 0;
    case "serve":
      return await serve(rest);
    case "openapi":
      return await openapi(rest);
    case "plan":
      return plan(rest);
    default:
      console.error(`headroom: unknown command '${cmd}'\n\n${USAGE}`);
      return 2;
  }
}

async function openapi(argv: string[]): Promise<number> {
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--out" || a === "-o") out = argv[++i];
    else if (a.startsWith("--out=")) out = a.slice(6);
    else if (a === "--help" || a === "-h") {
      console.log("Usage: headroom openapi [--out FILE]");
      return 0;
    } else {
      console.error(`headroom openapi: unexpected argument '${a}'`);
      return 2;
    }
  }
  const text = await openapiText();
  if (out === undefined || out === "-") process.stdout.write(text);
  else {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, text);
    console.error(`wrote ${out}`);
  }
  return 0;
}

async function serve(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(serveHelp());
    return 0;
  }
  let options: ReturnType<typeof parseServeOptions>;
  try {
    options = parseServeOptions(argv);
  } catch (e) {
    if (e instanceof OptionsError) {
      console.error(`headroom serve: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const log = createLogger(options.logLevel);
  log.info("starting headroom", { version: pkg.version, options: redactOptions(options) });
  const progress = createProgress(log);
  let engine: Awaited<ReturnType<typeof createEngine>>;
  // Set once the server listens: the engine's restarts gave up → exit non-zero.
  let onGiveUp = (_cause: string) => {};
  try {
    // A Hub repo id becomes a local path (downloaded or cached) before anything opens the model.
    options = await resolveModelOption(options, { onProgress: progress, onLog: (message) => log.info(message) });
    engine = await createEngine(options, {
      onProgress: progress,
      onLog: (message) => log.info(message),
      onIncident: (level, message, fields) => log[level](message, fields),
      onGiveUp: (cause) => onGiveUp(cause),
    });
  } catch (e) {
    progress.end();
    log.error(e instanceof EngineUnavailableError ? e.message : `engine start-up failed: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  let server: ReturnType<typeof startServer>;
  try {
    server = startServer({ engine, options, logger: log });
  } catch (e) {
    log.error(`cannot listen on ${options.host}:${options.port}: ${e instanceof Error ? e.message : String(e)}`);
    await engine.close();
    return 1;
  }
  log.info("listening", { url: server.url, health: `${server.url}/health`, docs: `${server.url}/swagger` });

  let stopping = false;
  const shutdown = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { reason: why });
    await server.stop(true);
    await engine.close().catch(() => {});
    process.exit(code);
  };
  // SIGTERM/SIGINT drain (shutdown.ts); a second signal stops at once.
  const onSignal = async (sig: string) => {
    if (stopping) {
      log.warn("second signal: stopping now", { signal: sig });
      await engine.close().catch(() => {});
      process.exit(1);
    }
    stopping = true;
    log.info("shutting down", { reason: sig });
    const { ended } = await drainAndStop(server, engine, options.shutdownTimeout * 1000, log);
    log.info("stopped", { requests_ended_by_timeout: ended });
    process.exit(0);
  };
  process.on("SIGINT", () => void onSignal("SIGINT"));
  process.on("SIGTERM", () => void onSignal("SIGTERM"));
  onGiveUp = (cause) => {
    log.error("the engine keeps failing; exiting", { cause });
    void shutdown("engine failed repeatedly", 1);
  };

  try {
    await engine.ready();
    progress.end();
    const m = engine.model();
    log.info("engine ready", { model: server.app.ctx.modelName(), max_model_len: m.maxModelLen, random_weights: m.randomWeights });
    if (m.randomWeights) log.warn("serving the built-in demo model: random weights, output is not meaningful text");
  } catch (e) {
    progress.end();
    log.error(`engine start-up failed: ${e instanceof Error ? e.message : String(e)}`);
    await shutdown("engine start-up failed", 1);
    return 1;
  }
  await new Promise<never>(() => {});
  return 0;
}
