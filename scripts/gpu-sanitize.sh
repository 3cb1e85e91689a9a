#!/usr/bin/env bash
# make test-gpu-sanitize: the CUDA kernel suites (test/gpu) under compute-sanitizer. Fails on
# any error a tool reports (--error-exitcode), on a failing test, and on a suite that skipped
# its GPU cases (a sanitizer that could not open the device must not pass vacuously).
# Without a GPU or without compute-sanitizer it prints why and exits 0 (a visible skip).
#
#   TOOLS="memcheck racecheck synccheck initcheck"   tools to run (default: all four)
#   FILES_memcheck=... FILES_racecheck=...         test files per tool (defaults below)
#   FILTER_<tool>="-t pattern"                      extra `bun test` arguments per tool
#   BUN=path  SANITIZER=path  LOG_DIR=dir (one log per tool; default build/sanitize)
set -uo pipefail
cd "$(dirname "$0")/.."
BUN=${BUN:-$(command -v bun || echo .tools/node_modules/.bin/bun)}
TOOLS=${TOOLS:-memcheck racecheck synccheck initcheck}
LOG_DIR=${LOG_DIR:-build/sanitize}
# memcheck: every kernel suite. racecheck (shared-memory hazards, slow): the op kernels, the
# sampler and the memory/capture tests (decode attention's bad-index flag). synccheck and
# initcheck (reads of never-written device memory): the op kernels.
: "${FILES_memcheck:=test/gpu/ops.test.ts test/gpu/prefill-tc.test.ts test/gpu/sample.test.ts test/gpu/token-bitmask.test.ts test/gpu/memory.test.ts test/gpu/device.test.ts test/gpu/arch-model.test.ts}"
: "${FILES_racecheck:=test/gpu/ops.test.ts test/gpu/prefill-tc.test.ts test/gpu/sample.test.ts test/gpu/memory.test.ts}"
: "${FILES_synccheck:=test/gpu/ops.test.ts test/gpu/sample.test.ts}"
: "${FILES_initcheck:=test/gpu/ops.test.ts}"

SAN=${SANITIZER:-$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1 || true)}
if ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L > /dev/null 2>&1; then
  echo "skipped: no GPU (nvidia-smi sees no device) — test-gpu-sanitize"
  exit 0
fi
if [ -z "$SAN" ] || [ ! -x "$SAN" ]; then
  echo "skipped: compute-sanitizer not found (PATH, /usr/local/cuda*/bin) — test-gpu-sanitize"
  exit 0
fi
mkdir -p "$LOG_DIR"
failed=0
for tool in $TOOLS; do
  files_var="FILES_$tool" filter_var="FILTER_$tool"
  files=${!files_var:-}
  [ -n "$files" ] || { echo "test-gpu-sanitize: unknown tool '$tool'" >&2; exit 2; }
  log="$LOG_DIR/$tool.log"
  extra=()
  # leaks at process exit are the test process's business, not a kernel error
  [ "$tool" = memcheck ] && extra=(--leak-check no)
  echo "== compute-sanitizer --tool $tool: $files"
  # shellcheck disable=SC2086
  "$SAN" --tool "$tool" --error-exitcode 3 --print-limit 50 "${extra[@]}" "$BUN" test $files ${!filter_var:-} > "$log" 2>&1
  rc=$?
  errors=$(grep -Eo 'ERROR SUMMARY: [0-9]+ error' "$log" | tail -1)
  skipped=$(grep -c 'skipped: no GPU' "$log")
  tail -n 5 "$log"
  if [ $rc -ne 0 ]; then
    echo "FAIL $tool (exit $rc; ${errors:-no summary}) — $log"
    failed=1
  elif [ "$skipped" -gt 0 ]; then
    echo "FAIL $tool: $skipped suite(s) skipped their GPU cases under the sanitizer — $log"
    failed=1
  else
    echo "PASS $tool (${errors:-no summary})"
  fi
done
exit $failed
