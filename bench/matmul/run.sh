#!/usr/bin/env bash
# Builds and runs the CPU matmul benchmarks from the repository root:
#   bench/matmul/run.sh [threads]                 fp32 ceilings (bench_matmul.c) and new-vs-old (bench_matmul_q.c)
#   bench/matmul/run.sh [threads] q [filter]      only new-vs-old; filter: Q4_0,Q8_0,... | q | 16 | bf16 | f32
#   bench/matmul/run.sh [threads] f32             only the fp32 ceilings
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build/bench
SRC="csrc/cpu/matmul_f32.c csrc/cpu/matmul_q8.c csrc/cpu/matmul_16bit.c csrc/cpu/ops_matmul.c csrc/cpu/quant_unpack.c
  csrc/cpu/cpu_features.c csrc/cpu/ops_vec.c csrc/cpu/threadpool.c csrc/core/quant.c csrc/core/status.c"
# shellcheck disable=SC2086
gcc -std=c11 -O3 -Wall -Wextra -D_GNU_SOURCE -pthread -Icsrc/include -o build/bench/matmul \
  bench/matmul/bench_matmul.c $SRC -lm
# shellcheck disable=SC2086
gcc -std=c11 -O3 -Wall -Wextra -D_GNU_SOURCE -pthread -Icsrc/include -o build/bench/matmul_q \
  bench/matmul/bench_matmul_q.c $SRC -lm
threads="${1:-2}"
case "${2:-all}" in
  q) exec build/bench/matmul_q "$threads" "${3:-}" ;;
  f32) exec build/bench/matmul "$threads" ;;
  *) build/bench/matmul "$threads" && exec build/bench/matmul_q "$threads" ;;
esac
