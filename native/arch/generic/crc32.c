// CRC32C without an instruction: crc32c.c's byte-wise table (software, every architecture)
// computes every checksum.

#include "../arch.h"

crc32c_fn arch_crc32c_instruction(void) { return NULL; }
