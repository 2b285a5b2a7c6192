// CRC32C (Castagnoli), computed by the addon with the SSE4.2 instruction where present.
import { addon } from '../arch/addon.js';

export function crc32c(bytes: Uint8Array, seed = 0): number {
  return addon.crc32c(bytes, seed);
}
