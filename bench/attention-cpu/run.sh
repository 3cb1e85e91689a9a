#!/usr/bin/env bash
# Builds and runs the CPU attention benchmark from the repository root: bench/attention-cpu/run.sh [threads]
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build/bench
gcc -std=c11 -O3 -Wall -Wextra -D_GNU_SOURCE -pthread -Icsrc/include -o build/bench/attention_cpu \
  bench/attention-cpu/bench_attention_cpu.c bench/attention-cpu/old_attention_cpu.c csrc/core/*.c csrc/cpu/*.c -lm -ldl
exec build/bench/attention_cpu "${1:-2}"
