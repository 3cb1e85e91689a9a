# headroom native build and the two quick-start entry points (serve, test).
#   make            build/libheadroom_cpu.so (+ build/libheadroom_cuda.so when nvcc is on PATH)
#   make serve      install what is missing, build, start the server
#   make test       install what is missing, build, run C tests (ASan/UBSan) and bun tests
SHELL := /bin/bash
CC ?= gcc
NVCC ?= $(shell command -v nvcc 2>/dev/null)
BUILD := build
WERROR ?=
CFLAGS_COMMON := -std=c11 -O3 -fPIC -Wall -Wextra -fvisibility=hidden -D_GNU_SOURCE -pthread $(if $(WERROR),-Werror)
CFLAGS ?=
LDLIBS := -pthread -lm -ldl

CORE_SRC := $(wildcard csrc/core/*.c)
CPU_SRC := $(wildcard csrc/cpu/*.c)
CUDA_CU := $(wildcard csrc/cuda/*.cu)
HEADERS := $(wildcard csrc/include/*.h csrc/core/*.h csrc/cpu/*.h csrc/cuda/*.h csrc/cuda/*.cuh)

CORE_OBJ := $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(CORE_SRC))
CPU_OBJ := $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(CPU_SRC))
CUDA_OBJ := $(patsubst csrc/%.cu,$(BUILD)/obj/%.o,$(CUDA_CU))

# sm_80 (A100) and sm_90a (H100/H200) SASS, plus compute_90 PTX for newer GPUs.
NVCC_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_90,code=compute_90
NVCCFLAGS := -O3 -std=c++17 $(NVCC_ARCH) -Xcompiler -fPIC,-Wall,-Wextra,-fvisibility=hidden $(if $(WERROR),-Werror all-warnings -Xcompiler -Werror)

LIBS := $(BUILD)/libheadroom_cpu.so $(if $(NVCC),$(BUILD)/libheadroom_cuda.so)

.PHONY: all native cpu cuda test test-c test-bun serve clean tools typecheck bench
all: native
native: $(LIBS)
cpu: $(BUILD)/libheadroom_cpu.so
cuda: $(BUILD)/libheadroom_cuda.so

$(BUILD)/obj/%.o: csrc/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: csrc/%.cu $(HEADERS)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(BUILD)/libheadroom_cpu.so: $(CORE_OBJ) $(CPU_OBJ)
	$(CC) -shared -Wl,--no-undefined -o $@ $^ $(LDLIBS)

# cudart is linked statically so only the driver is needed at run time; cuBLAS and the
# driver API are loaded at run time, so this links without them.
$(BUILD)/libheadroom_cuda.so: $(CORE_OBJ) $(CUDA_OBJ)
	$(NVCC) -shared -cudart static $(NVCC_ARCH) -o $@ $^ -Xlinker --no-undefined -lpthread -ldl -lrt -lm

# ---- C unit tests: every test/c/test_*.c linked against the CPU backend sources under sanitizers.
C_TESTS := $(patsubst test/c/%.c,$(BUILD)/ctest/%,$(wildcard test/c/test_*.c))
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
$(BUILD)/ctest/%: test/c/%.c $(CORE_SRC) $(CPU_SRC) $(HEADERS) $(wildcard test/c/*.h)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O1 -g -Wall -Wextra -D_GNU_SOURCE -pthread $(if $(WERROR),-Werror) $(SAN) -Icsrc/include -o $@ $< $(CORE_SRC) $(CPU_SRC) $(LDLIBS)

# Runs every C test binary; prints "PASS c:<name>" / "FAIL c:<name>" (counted by .ci/run).
test-c: $(C_TESTS)
	@failed=0; for t in $(C_TESTS); do echo "== $$t"; \
	  if ASAN_OPTIONS=detect_leaks=1 $$t; then echo "PASS c:$$(basename $$t)"; \
	  else echo "FAIL c:$$(basename $$t)"; failed=1; fi; done; exit $$failed

# ---- JS side: Bun from PATH, else from npm into .tools (the quick start needs only Node/npm).
BUN := $(shell command -v bun 2>/dev/null || echo .tools/node_modules/.bin/bun)
.tools/node_modules/.bin/bun:
	npm install --prefix .tools --no-save --no-audit --no-fund bun@1.4.5
node_modules/.installed: package.json bun.lock | $(if $(findstring .tools,$(BUN)),.tools/node_modules/.bin/bun)
	$(BUN) install --frozen-lockfile
	@touch $@
tools: node_modules/.installed

test-bun: tools native
	$(BUN) test

test: test-c test-bun

typecheck: tools
	$(BUN) x tsc --noEmit

serve: tools native
	$(BUN) src/cli.ts serve $(ARGS)

bench: tools native
	$(BUN) bench/run.ts

clean:
	rm -rf $(BUILD)

# ---- allocator benchmark (bench/allocator): prints a table, writes bench/out/allocator.json.
# The binary links the allocator itself; the public-ABI row dlopens build/libheadroom_cpu.so.
$(BUILD)/bench_allocator: bench/allocator/bench_allocator.c csrc/core/allocator.c csrc/core/status.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -Icsrc/include -o $@ $< csrc/core/allocator.c csrc/core/status.c $(LDLIBS)

.PHONY: bench-allocator
bench-allocator: $(BUILD)/bench_allocator
	@$(MAKE) --no-print-directory cpu || echo "note: build/libheadroom_cpu.so did not build; the public-ABI row is skipped"
	$(BUILD)/bench_allocator bench/out/allocator.json

# ---- GPU suites (test/gpu, issue 7): CUDA kernels vs float64 references and the CPU backend,
# the CUDA device layer, and the no-driver fallback. Without a GPU the CUDA parts print
# "skipped: no GPU" and pass; the reference harness and the fallback test run everywhere.
.PHONY: test-gpu bench-attention
test-gpu: tools native
	$(BUN) test test/gpu

# The kernel suites under compute-sanitizer memcheck, racecheck, synccheck and initcheck
# (scripts/gpu-sanitize.sh): fails on any reported error; prints "skipped: ..." and passes
# without a GPU or without compute-sanitizer. TOOLS="memcheck racecheck" narrows it.
.PHONY: test-gpu-sanitize
test-gpu-sanitize: tools native
	bash scripts/gpu-sanitize.sh

# Paged decode attention bandwidth vs a D2D copy + a synthetic Llama-8B decode step (GPU only;
# prints "skipped: no GPU" elsewhere). Writes bench/out/attention.json.
bench-attention: tools native
	$(BUN) bench/attention/run.ts

# CPU paged attention at real shapes: the span kernels (every kv dtype) vs the previous kernel,
# in one run. Writes bench/out/attention-cpu.json.
.PHONY: bench-attention-cpu
bench-attention-cpu:
	bash bench/attention-cpu/run.sh

# ---- GPU kit (issue 16 item 4): one archive (<= 48 MiB) to run every GPU check on a GPU
# machine without network: build/headroom-gpu-kit.tar.xz; there: ./gpu-check.sh (kit/).
.PHONY: gpu-kit
gpu-kit: native
	bash kit/build.sh

# ---- house style: Biome (format + lint) for TypeScript, clang-format for C/CUDA (CI runs format-check).
C_FORMAT_FILES = $(shell git ls-files 'csrc/*.c' 'csrc/*.h' 'csrc/*.cu' 'csrc/*.cuh' 'test/c/*.c' 'test/c/*.h' 'bench/*.c')
.PHONY: format format-check
format: tools
	$(BUN) x biome check --write .
	clang-format -i $(C_FORMAT_FILES)

format-check: tools
	$(BUN) x biome ci .
	clang-format --dry-run -Werror $(C_FORMAT_FILES)
