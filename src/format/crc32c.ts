// CRC32C (Castagnoli), the checksum of every checksummed on-PM structure. Computed in
// JavaScript (the crc-32 package's table code), so the format's codecs stay pure: they load
// no native code and run anywhere the tests or tools need them.

import { createRequire } from 'node:module';

/** crc-32/crc32c has the API of crc-32 itself (its types cover only the main module). */
const CRC32C = createRequire(import.meta.url)('crc-32/crc32c') as typeof import('crc-32');

/** CRC32C of bytes, continuing from `seed` (the CRC of the bytes before them); unsigned. */
export function crc32c(bytes: Uint8Array, seed = 0): number {
  return CRC32C.buf(bytes, seed) >>> 0;
}
