#!/usr/bin/env bun
// headroom command line: `serve`, `openapi` (and `plan` once src/memory/planner.ts exists).
import { runCli } from "./cli/main.ts";

process.exitCode = await runCli(process.argv.slice(2));
