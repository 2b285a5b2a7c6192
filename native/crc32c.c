// CRC32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of every on-PM
// structure. The architecture's instruction computes it where there is one
// (arch/<arch>/crc32.c: SSE4.2 on x86-64); this byte-wise table, portable software, serves
// every other CPU and is exported so tests can compare the two.
// Chaining: crc32c(b, crc32c(a, 0)) == crc32c(a || b, 0), because the seed is the previous
// result and both ends are inverted.

#include "regions.h"
#include "arch/arch.h"

#include <pthread.h>

#define CRC32C_POLY_REFLECTED 0x82F63B78u

static uint32_t crc32c_table[256];
static crc32c_fn crc32c_best;
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static uint32_t crc32c_bytes_table(uint32_t crc, const uint8_t *data, size_t length) {
  for (size_t i = 0; i < length; i++) crc = crc32c_table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

static void crc32c_setup(void) {
  for (uint32_t byte = 0; byte < 256; byte++) {
    uint32_t crc = byte;
    for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ ((crc & 1u) ? CRC32C_POLY_REFLECTED : 0u);
    crc32c_table[byte] = crc;
  }
  crc32c_fn instruction = arch_crc32c_instruction();
  crc32c_best = instruction != NULL ? instruction : crc32c_bytes_table;
  // The standard check value: a wrong table or instruction path must never checksum PM.
  static const uint8_t check[] = "123456789";
  ASSERT(~crc32c_best(~0u, check, 9) == 0xE3069283u);
  ASSERT(~crc32c_bytes_table(~0u, check, 9) == 0xE3069283u);
}

void crc32c_init(void) {
  pthread_once(&crc32c_once, crc32c_setup);
}

static napi_value crc32c_with(napi_env env, napi_callback_info info, const char *fn, crc32c_fn compute) {
  args_t args;
  uint8_t *data;
  size_t length;
  int64_t seed;
  if (!args_get(env, info, fn, 2, &args) || !arg_bytes(&args, 0, "bytes", &data, &length) ||
      !arg_integer(&args, 1, "seed", 0, UINT32_MAX, &seed)) {
    return NULL;
  }
  uint32_t crc = ~compute(~(uint32_t)seed, data, length);
  return make_number(env, (double)crc);
}

// crc32c(bytes, seed) -> unsigned 32-bit
napi_value crc32c_js(napi_env env, napi_callback_info info) {
  return crc32c_with(env, info, "crc32c", crc32c_best);
}

// crc32cPortable(bytes, seed): the table path, for tests of the instruction path.
napi_value crc32c_portable_js(napi_env env, napi_callback_info info) {
  return crc32c_with(env, info, "crc32cPortable", crc32c_bytes_table);
}
