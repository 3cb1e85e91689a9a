#!/usr/bin/env bash
# gpu-check.sh — the GPU checks of headroom on a machine without network, in one go (< 8 min):
# GPU suites (test/gpu), a compute-sanitizer memcheck/racecheck subset, and the attention,
# graphs and offload benchmarks with --gpu. Writes gpu-report/report.md and report.json.
# Without a GPU (or without the CUDA library) it runs the CPU side and lists every GPU check
# as skipped. Usage: tar xJf headroom-gpu-kit.tar.xz && cd headroom-gpu-kit && ./gpu-check.sh
set -u
cd "$(dirname "$0")"
OUT=${OUT:-gpu-report}
BUDGET_S=${BUDGET_S:-470}
mkdir -p "$OUT" .tools
BUN=.tools/bun
if [ ! -x "$BUN" ]; then
  if [ -f tools/bun.zst ]; then zstd -dqf tools/bun.zst -o "$BUN"; else xz -dc tools/bun.xz > "$BUN"; fi
  chmod +x "$BUN"
fi
export PATH="$PWD/.tools:$PATH"
GPU=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then GPU=1; fi
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1 || true)
T0=$(date +%s)
ROWS=()

# run NAME GPU_ONLY TIMEOUT_S CMD... — one check: pass / fail / timeout / skipped, with its log.
run() {
  local name=$1 gpu_only=$2 limit=$3; shift 3
  local log="$OUT/$name.log" status rc t1 t2 left
  left=$((BUDGET_S - ($(date +%s) - T0)))
  if [ "$gpu_only" = 1 ] && [ "$GPU" = 0 ]; then
    status=skipped; echo "skipped: no GPU" > "$log"; rc=0; t1=0; t2=0
  elif [ "$left" -lt 10 ]; then
    status=skipped; echo "skipped: time budget of ${BUDGET_S}s spent" > "$log"; rc=0; t1=0; t2=0
  else
    [ "$limit" -gt "$left" ] && limit=$left
    t1=$(date +%s)
    timeout -k 5 "$limit" "$@" > "$log" 2>&1; rc=$?
    t2=$(date +%s)
    if [ $rc = 0 ]; then status=pass; elif [ $rc = 124 ] || [ $rc = 137 ]; then status=timeout; else status=fail; fi
  fi
  echo "$name: $status ($((t2 - t1)) s)"
  ROWS+=("$name|$status|$rc|$((t2 - t1))|$*")
}

run cpu-native 0 60 "$BUN" test test/native.test.ts test/ops.test.ts test/ops-sample.test.ts
run cuda-fallback 0 60 "$BUN" test test/gpu/fallback.test.ts # the CUDA library without a GPU / with one
run gpu-suites 1 180 "$BUN" test test/gpu
if [ -n "$SAN" ]; then
  run memcheck 1 90 "$SAN" --tool memcheck --leak-check no --error-exitcode 3 "$BUN" test test/gpu/memory.test.ts
  run racecheck 1 90 "$SAN" --tool racecheck --error-exitcode 3 "$BUN" test test/gpu/memory.test.ts -t "decode"
else
  run memcheck 1 1 false
  [ "$GPU" = 1 ] && echo "compute-sanitizer not found" > "$OUT/memcheck.log"
  run racecheck 1 1 false
fi
run bench-gpu 1 150 "$BUN" bench/run.ts --gpu --only attention,graphs,offload --no-write

# ---- report
{
  echo "# headroom GPU check"
  echo
  echo "- date: $(date -u +%FT%TZ)"
  echo "- gpu: $( [ $GPU = 1 ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1 || echo none)"
  echo "- compute-sanitizer: ${SAN:-none}"
  echo "- total: $(( $(date +%s) - T0 )) s (budget ${BUDGET_S} s)"
  echo
  echo "| check | status | exit | seconds | command |"
  echo "|---|---|---|---|---|"
  for r in "${ROWS[@]}"; do IFS='|' read -r n s c d cmd <<< "$r"; echo "| $n | $s | $c | $d | \`$cmd\` |"; done
  for r in "${ROWS[@]}"; do
    IFS='|' read -r n s _ <<< "$r"
    echo; echo "## $n ($s)"; echo; echo '```'; tail -n 40 "$OUT/$n.log"; echo '```'
  done
} > "$OUT/report.md"
{
  printf '{"gpu": %s, "total_s": %d, "checks": [' "$( [ $GPU = 1 ] && echo true || echo false)" $(( $(date +%s) - T0 ))
  sep=""
  for r in "${ROWS[@]}"; do
    IFS='|' read -r n s c d cmd <<< "$r"
    printf '%s{"name": "%s", "status": "%s", "exit": %s, "seconds": %s, "log": "%s"}' "$sep" "$n" "$s" "$c" "$d" "$OUT/$n.log"
    sep=", "
  done
  echo "]}"
} > "$OUT/report.json"
echo "report: $OUT/report.md $OUT/report.json"
grep -q '|fail|\||timeout|' <(printf '%s\n' "${ROWS[@]}") && exit 1
exit 0
