#!/usr/bin/env bash
# Builds and runs the CPU matmul benchmark from the repository root: bench/matmul/run.sh [threads]
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build/bench
gcc -std=c11 -O3 -Wall -Wextra -D_GNU_SOURCE -pthread -Icsrc/include -o build/bench/matmul \
  bench/matmul/bench_matmul.c csrc/cpu/ops_matmul.c csrc/cpu/ops_vec.c csrc/cpu/threadpool.c csrc/core/status.c -lm
exec build/bench/matmul "${1:-2}"
