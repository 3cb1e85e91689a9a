#!/usr/bin/env bun
// headroom command line: `serve`, `plan`, `openapi` (src/cli/main.ts). The hidden `__engine`
// sub-command is the engine process the server starts (src/engine/engine-process.ts): the
// single binary re-executes itself with it. Imports are dynamic so that the engine process
// does not load the HTTP server and the server does not load the engine loop.
const argv = process.argv.slice(2);
if (argv[0] === "__engine") {
  const { engineProcessMain } = await import("./engine/engine-process.ts");
  await engineProcessMain();
} else {
  const { runCli } = await import("./cli/main.ts");
  process.exitCode = await runCli(argv);
}
export {};
