#!/usr/bin/env bash
# Builds and runs the in-process region benchmark from the repository root:
#   bench/regions/bench_regions.sh [threads] [steps]
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build/bench
gcc -std=c11 -O3 -Wall -Wextra -D_GNU_SOURCE -pthread -Icsrc/include -o build/bench/regions \
  bench/regions/bench_regions.c csrc/core/*.c csrc/cpu/*.c -lm -ldl
exec build/bench/regions "${1:-2}" "${2:-30}"
