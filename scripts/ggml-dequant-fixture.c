/*
 * Writes test/fixtures/quant/ggml-dequant.bin: for each GGUF block type headroom keeps quantized,
 * random blocks (finite fp16 scales) and ggml's own dequantization of them (ggml_get_type_traits
 * (type)->to_float), the independent oracle test/model/quant-ggml.test.ts checks both of our
 * dequantizers (src/model/quant.ts and csrc/core/quant.c) against.
 *
 * Build against the llama.cpp source the pinned node-llama-cpp package carries:
 *   git clone node_modules/node-llama-cpp/llama/gitRelease.bundle /tmp/llama.cpp
 *   cmake -S /tmp/llama.cpp -B /tmp/llama.cpp/build -DLLAMA_CURL=OFF && cmake --build /tmp/llama.cpp/build --target ggml-base
 *   cc -O1 -I/tmp/llama.cpp/ggml/include scripts/ggml-dequant-fixture.c \
 *      -L/tmp/llama.cpp/build/bin -lggml-base -Wl,-rpath,/tmp/llama.cpp/build/bin -o /tmp/ggml-dequant-fixture
 *   /tmp/ggml-dequant-fixture test/fixtures/quant/ggml-dequant.bin
 *
 * Format (little-endian): "HRQF", u32 count; per record: u32 ggml_type, u32 nblocks,
 * u32 block_bytes, u32 block_elems, nblocks*block_bytes raw bytes, nblocks*block_elems f32.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}
static uint16_t rand_half_scale(void) {
  uint16_t exp = (uint16_t)(7 + next_u32() % 4), man = (uint16_t)(next_u32() & 0x3ff);
  return (uint16_t)((next_u32() & 1 ? 0x8000 : 0) | (exp << 10) | man);
}

static void put_u32(FILE *f, uint32_t v) { fwrite(&v, 4, 1, f); }

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUT.bin\n", argv[0]);
    return 2;
  }
  const enum ggml_type types[] = {GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
                                  GGML_TYPE_Q8_0, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K};
  const int ntypes = sizeof types / sizeof types[0];
  FILE *f = fopen(argv[1], "wb");
  if (!f) return 1;
  fwrite("HRQF", 1, 4, f);
  put_u32(f, (uint32_t)ntypes);
  for (int t = 0; t < ntypes; t++) {
    const struct ggml_type_traits *tr = ggml_get_type_traits(types[t]);
    const uint32_t bb = (uint32_t)tr->type_size, be = (uint32_t)tr->blck_size, nblocks = be == 256 ? 6 : 24;
    uint8_t *raw = malloc((size_t)nblocks * bb);
    float *out = malloc((size_t)nblocks * be * sizeof(float));
    for (uint32_t b = 0; b < nblocks; b++) {
      uint8_t *p = raw + (size_t)b * bb;
      for (uint32_t i = 0; i < bb; i++) p[i] = (uint8_t)next_u32();
      uint16_t h[2] = {rand_half_scale(), rand_half_scale()};
      switch (types[t]) {
        case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_1: case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: memcpy(p, h, 4); break;
        case GGML_TYPE_Q6_K: memcpy(p + bb - 2, h, 2); break;
        default: memcpy(p, h, 2); break;
      }
    }
    tr->to_float(raw, out, (int64_t)nblocks * be);
    put_u32(f, (uint32_t)types[t]);
    put_u32(f, nblocks);
    put_u32(f, bb);
    put_u32(f, be);
    fwrite(raw, 1, (size_t)nblocks * bb, f);
    fwrite(out, sizeof(float), (size_t)nblocks * be, f);
    printf("%-5s %u blocks of %u bytes / %u elements\n", ggml_type_name(types[t]), nblocks, bb, be);
    free(raw);
    free(out);
  }
  fclose(f);
  return 0;
}
