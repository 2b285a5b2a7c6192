// x86-64 CRC32C: the SSE4.2 crc32 instruction computes exactly the Castagnoli polynomial,
// 8 bytes a step. Compiled for its own target, so the addon still loads on CPUs without
// SSE4.2 (cpuid says so, and crc32c.c's table serves instead).

#include "../arch.h"

#include <cpuid.h>
#include <nmmintrin.h>
#include <string.h>

__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *data, size_t length) {
  uint64_t wide = crc;
  size_t i = 0;
  for (; i + sizeof(uint64_t) <= length; i += sizeof(uint64_t)) {
    uint64_t word;
    memcpy(&word, data + i, sizeof word); // unaligned input; little-endian like the table
    wide = _mm_crc32_u64(wide, word);
  }
  crc = (uint32_t)wide;
  for (; i < length; i++) crc = _mm_crc32_u8(crc, data[i]);
  return crc;
}

crc32c_fn arch_crc32c_instruction(void) {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  bool sse42 = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_SSE4_2) != 0;
  return sse42 ? crc32c_sse42 : NULL;
}
