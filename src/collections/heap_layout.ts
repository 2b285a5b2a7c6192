// Where a Heap keeps its state in its region (all little-endian u32; offsets are byte
// offsets in the region, so a pointer means the same in every process that maps it).
//
//   0        4096  page 0: the application's (a PMap keeps its lock and version there); the
//                  heap never writes it, so nothing there is rolled back with a batch
//   4096     256   heap header:
//                    +0 magic "HEAP"   +4 layout version (1)   +8 top: end of the last block
//                    +12 root object (a payload offset, 0 = none)
//                    +16 allocated blocks   +20 allocated bytes (block sizes, headers included)
//                    +24 two words: bit c set = free list c is not empty
//                    +32 53 words: head of free list c (a block offset, 0 = empty)
//   4352     ...   blocks, tiling [4352, top) exactly; [top, region end) is the wilderness
//
// A block starts with two words: its size (a multiple of 8, at least 24) | ALLOCATED (bit 0)
// | PREVIOUS_ALLOCATED (bit 1), then a check word (size ^ BLOCK_CHECK), so a pointer into the
// middle of a block or into a free one is refused, not obeyed. An allocated block's payload
// follows (the offset alloc returns). A free block holds the next and previous block of its
// free list at +8 and +12 and its size again in its last word (the footer the next block's
// free reads to coalesce backwards). Two free blocks are never neighbours, and the block
// just below top is always allocated (a free one there merges into the wilderness).

import { PAGE_BYTES } from '../constants.js';

export const HEAP_START = PAGE_BYTES;
export const HEAP_MAGIC = 0x50414548; // "HEAP"
export const HEAP_VERSION = 1;
export const HEADER = {
  magic: 0, version: 4, top: 8, root: 12, blocks: 16, bytes: 20, nonEmpty: 24, heads: 32,
} as const;
export const HEADER_BYTES = 256;
export const FIRST_BLOCK = HEAP_START + HEADER_BYTES;
export const BLOCK_HEADER_BYTES = 8;
export const BLOCK_MIN_BYTES = 24; // header, two links, footer
export const ALLOCATED = 1;
export const PREVIOUS_ALLOCATED = 2;
export const SIZE_MASK = ~7 >>> 0;
export const BLOCK_CHECK = 0x5eedb10c;
/** Size classes: 31 of 16 bytes each below 512, then one per power of two up to 2^30. */
export const SMALL_CLASSES = 31;
export const CLASSES = 53;

/** The free list a block of `size` bytes belongs on. */
export function classOf(size: number): number {
  if (size < 512) return (size >>> 4) - 1;
  return Math.min(CLASSES - 1, SMALL_CLASSES + (31 - Math.clz32(size)) - 9);
}

/** Block size (header included) that holds `length` payload bytes. */
export function blockSizeFor(length: number): number {
  return Math.max(BLOCK_MIN_BYTES, (length + BLOCK_HEADER_BYTES + 7) & ~7);
}
