#!/usr/bin/env bash
# gpu-check.sh — every GPU check of headroom on a machine without network, in one go (< 8 min
# on one H100/H200). Inside the kit (make gpu-kit: build/headroom-gpu-kit.tar.xz):
#   tar xJf headroom-gpu-kit.tar.xz && cd headroom-gpu-kit && OUT=/some/dir bash gpu-check.sh
# Writes report.md + report.json (+ logs.tar.gz, every check's full log) into $OUT when set,
# else ./gpu-report. Exit 1 when a check fails or times out; skipped checks say why.
#
# Checks, in order (GPU-only ones are listed as skipped without a GPU):
#   probe           driver (nvidia-smi), toolkit (compute-sanitizer, nvcc), the CUDA library
#                   opening the device through bun:ffi                                   [GPU]
#   cpu-native      CPU backend ops and the no-driver fallback of the CUDA library       [all]
#   gpu-suites      test/gpu: CUDA kernels vs float64/CPU references, memory and capture
#                   safety, the numpy reference on CUDA bf16                              [GPU]
#   engine-suites   graphs == eager, offload == resident (graphs on), start-up at 0.99,
#                   plan == measurement, VMM, two processes, bad block ids: CPU variants
#                   everywhere, CUDA variants with a GPU (HEADROOM_REQUIRE_CUDA=1)       [all]
#   reference-numpy reference.py --backend numpy + compare (CPU fp32; python3 + numpy)   [all]
#   torch-reference reference.py --backend torch (torch + transformers, bf16 on CUDA)
#                   + compare.ts on CUDA bf16 with graphs                                 [GPU]
#   bench-attention decode attention vs D2D copy at the engine's max_blocks_per_seq for
#                   max_model_len 131072 (8192 blocks per sequence), prefill TFLOP/s     [GPU]
#   bench-graphs    CUDA graphs: all sizes vs largest (MAX, not SUM), capture time        [GPU]
#   bench-offload   offload step vs max(compute, offloaded bytes / measured H2D)          [GPU]
#   sanitize        compute-sanitizer memcheck + racecheck on a kernel subset             [GPU]
#   bench-cpu-smoke bench/attention plumbing on the CPU backend                         [no GPU]
set -u
cd "$(dirname "$0")"
KIT=$PWD
OUT=${OUT:-$KIT/gpu-report}
BUDGET_S=${BUDGET_S:-470}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/headroom-gpu-check.XXXXXX")
mkdir -p "$OUT" "$WORK/logs" .tools
T0=$(date +%s)
BUN=$KIT/.tools/bun
if [ ! -x "$BUN" ]; then
  xz -dc tools/bun.xz > "$BUN.tmp" && chmod +x "$BUN.tmp" && mv "$BUN.tmp" "$BUN"
fi
export PATH="$KIT/.tools:$PATH"
export HEADROOM_MODELS_DIR=$KIT/models
export HEADROOM_LIB_DIR=$KIT/build

GPU=0
if command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi -L > /dev/null 2>&1; then GPU=1; fi
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1 || true)
PY=$(command -v python3 || true)
HAVE_NUMPY=0 HAVE_TORCH=0
[ -n "$PY" ] && "$PY" -c "import numpy" 2>/dev/null && HAVE_NUMPY=1
[ -n "$PY" ] && "$PY" -c "import torch, transformers" 2>/dev/null && HAVE_TORCH=1
# On a GPU machine the CUDA variants of the suites must run: a failed probe is an error there.
if [ $GPU = 1 ]; then export HEADROOM_REQUIRE_CUDA=1; fi
ROWS="$WORK/rows.tsv"
: > "$ROWS"

# check NAME WHEN LIMIT_S CMD... — WHEN: all | gpu | nogpu | skip:<reason>
check() {
  local name=$1 when=$2 limit=$3
  shift 3
  local log="$WORK/logs/$name.log" status rc=0 t1 t2 left
  left=$((BUDGET_S - ($(date +%s) - T0)))
  t1=$(date +%s)
  if [ "$when" = gpu ] && [ $GPU = 0 ]; then
    status=skipped
    echo "skipped: no GPU (nvidia-smi sees no device)" > "$log"
  elif [ "$when" = nogpu ] && [ $GPU = 1 ]; then
    status=skipped
    echo "skipped: runs only without a GPU (the GPU checks cover it)" > "$log"
  elif [ "${when#skip:}" != "$when" ]; then
    status=skipped
    echo "skipped: ${when#skip:}" > "$log"
  elif [ "$left" -lt 15 ]; then
    status=skipped
    echo "skipped: the time budget of ${BUDGET_S} s is spent" > "$log"
  else
    [ "$limit" -gt "$left" ] && limit=$left
    timeout -k 5 "$limit" "$@" > "$log" 2>&1
    rc=$?
    if [ $rc = 0 ]; then status=pass; elif [ $rc = 124 ] || [ $rc = 137 ]; then status=timeout; else status=fail; fi
  fi
  t2=$(date +%s)
  printf '%-16s %-8s %4d s\n' "$name" "$status" $((t2 - t1))
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" $((t2 - t1)) "$*" >> "$ROWS"
}

probe() {
  nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv
  echo "compute-sanitizer: ${SAN:-not found}"
  command -v nvcc > /dev/null && nvcc --version | tail -1
  "$BUN" -e '
    const { Device } = await import("./src/native/device.ts");
    const d = Device.open({ device: "cuda" });
    const i = d.info();
    console.log(`headroom: ${i.name}, cc ${i.computeCapability.join(".")}, ${i.multiprocessors} SMs, ${(i.totalBytes / 2 ** 30).toFixed(1)} GiB, free ${(i.freeBytes / 2 ** 30).toFixed(1)} GiB`);
    d.close();'
}

torch_reference() {
  "$PY" test/gpu/torch/reference.py --backend torch --device cuda --out "$WORK/ref" &&
    "$BUN" test/gpu/torch/compare.ts "$WORK/ref" --device cuda --dtype bfloat16 --json "$WORK/torch-reference.json"
}

offload_bench() {
  "$BUN" bench/offload/run.ts --device cuda && cp bench/out/offload.json "$WORK/offload.json"
}

ENGINE_SUITES="test/engine/graphs.test.ts test/engine/step-overlap.test.ts test/offload/offload.test.ts test/memory/startup.test.ts test/memory/vmm.test.ts test/memory/two-process.test.ts"
TORCH_WHEN=gpu
[ $GPU = 1 ] && [ $HAVE_TORCH = 0 ] && TORCH_WHEN="skip:python3 with torch + transformers not found"
NUMPY_WHEN=all
[ $HAVE_NUMPY = 0 ] && NUMPY_WHEN="skip:python3 with numpy not found"
SAN_WHEN=gpu
[ $GPU = 1 ] && [ -z "$SAN" ] && SAN_WHEN="skip:compute-sanitizer not found (PATH, /usr/local/cuda*/bin)"

echo "headroom gpu-check: GPU=$GPU, budget ${BUDGET_S} s, report in $OUT"
check probe gpu 30 probe
check cpu-native all 90 "$BUN" test test/native.test.ts test/ops.test.ts test/ops-sample.test.ts test/gpu/fallback.test.ts
# test/gpu/torch runs in reference-numpy (CPU) and, with a GPU, here (its CUDA variant)
check gpu-suites gpu 150 env HEADROOM_TEST_DEVICES=cuda "$BUN" test test/gpu
check engine-suites all 200 "$BUN" test $ENGINE_SUITES
check reference-numpy "$NUMPY_WHEN" 120 env HEADROOM_TEST_DEVICES=cpu "$BUN" test test/gpu/torch
check torch-reference "$TORCH_WHEN" 120 torch_reference
check bench-attention gpu 60 "$BUN" bench/attention/run.ts --max-model-len 131072 --batches 1,16,64 --contexts 512,2048,8192 --iters 20 --no-e2e --out "$WORK/attention.json"
check bench-graphs gpu 60 "$BUN" bench/graphs/run.ts --device cuda --reps 50 --out "$WORK/graphs.json"
check bench-offload gpu 60 offload_bench
check sanitize "$SAN_WHEN" 150 env SANITIZER="$SAN" BUN="$BUN" LOG_DIR="$WORK/logs/sanitize" TOOLS="memcheck racecheck" \
  FILES_memcheck="test/gpu/ops.test.ts test/gpu/memory.test.ts" FILES_racecheck="test/gpu/memory.test.ts test/gpu/sample.test.ts" \
  FILTER_racecheck="-t decode|sampling|hr_op_sample" bash scripts/gpu-sanitize.sh
check bench-cpu-smoke nogpu 60 "$BUN" bench/attention/run.ts --device cpu --small --max-model-len 512 --out "$WORK/attention-cpu.json"

TOTAL=$(($(date +%s) - T0))
"$BUN" kit/report.ts "$WORK" "$OUT" "$GPU" "$TOTAL" "$BUDGET_S" "${SAN:-}"
tar -C "$WORK" -czf "$OUT/logs.tar.gz" logs
failed=0
if cut -f2 "$ROWS" | grep -qE '^(fail|timeout)$'; then failed=1; fi
rm -rf "$WORK"
echo "report: $OUT/report.md $OUT/report.json (logs: $OUT/logs.tar.gz), ${TOTAL} s"
exit $failed
