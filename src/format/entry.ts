// A page-table (and region-table tree) entry: one little-endian u64.
//
//   bits  0..39  block number (0 = hole: the page reads as zeros and owns no block)
//   bits 40..63  check code: 24 bits mixed from the block number and the entry's own
//                position in the pool, so a flipped bit or a misdirected store is caught
//                when the entry is read, instead of silently mapping someone else's block.
//
// A hole carries a check code too, and no check code is zero, so the all-zero word is never
// valid: a zeroed table block reads as damage, not as emptiness (format version 2; version 1
// stored holes as zero, see upgrade.ts). The check code is part of the same 8-byte word, so
// it costs no extra line or fence.

import { BLOCK_BYTES, BLOCK_NUMBER_BITS, ENTRIES_PER_BLOCK } from '../constants.js';

const HIGH_BLOCK_BITS = BLOCK_NUMBER_BITS - 32; // 8
const HIGH_BLOCK_MASK = (1 << HIGH_BLOCK_BITS) - 1;

function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 24-bit check code for `block` stored at pool byte offset `position`. */
export function entryCheck(block: number, position: number): number {
  const blockLo = block >>> 0;
  const blockHi = Math.floor(block / 0x1_0000_0000);
  const posLo = position >>> 0;
  const posHi = Math.floor(position / 0x1_0000_0000);
  let h = mix32(0x52474e31 ^ posHi);
  h = mix32(h ^ posLo);
  h = mix32(h ^ blockHi);
  h = mix32(h ^ blockLo);
  const check = h & 0xffffff;
  return check === 0 ? 1 : check; // zero is never a check code: the zero word is never valid
}

/** The two u32 halves (lo, hi) of the encoded entry. */
export function encodeEntry(block: number, position: number): [number, number] {
  return [block >>> 0, entryHigh(block, position)];
}

/** The high u32 of the encoded entry (the low one is `block >>> 0`): no pair to allocate. */
export function entryHigh(block: number, position: number): number {
  return (Math.floor(block / 0x1_0000_0000) | (entryCheck(block, position) << HIGH_BLOCK_BITS)) >>> 0;
}

export const ENTRY_CORRUPT = -1;

/**
 * The block an entry maps, 0 for a hole, or ENTRY_CORRUPT if its check code is wrong (the
 * zero word included: no check code is zero).
 */
export function decodeEntry(lo: number, hi: number, position: number): number {
  const block = (hi & HIGH_BLOCK_MASK) * 0x1_0000_0000 + (lo >>> 0);
  const check = hi >>> HIGH_BLOCK_BITS;
  return check === entryCheck(block, position) ? block : ENTRY_CORRUPT;
}

export function writeEntry(view: DataView, offset: number, block: number, position: number): void {
  const [lo, hi] = encodeEntry(block, position);
  view.setUint32(offset, lo, true);
  view.setUint32(offset + 4, hi, true);
}

export function readEntry(view: DataView, offset: number, position: number): number {
  return decodeEntry(view.getUint32(offset, true), view.getUint32(offset + 4, true), position);
}

/** Whether the word is all zero: a version 1 hole, damage in version 2. */
export function isZeroWord(lo: number, hi: number): boolean {
  return lo === 0 && hi === 0;
}

/** A table block of 512 holes, as block `block` must hold it when it is created. */
export function holeBlock(block: number): Uint8Array {
  const bytes = new Uint8Array(BLOCK_BYTES);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < ENTRIES_PER_BLOCK; i++) writeEntry(view, i * 8, 0, block * BLOCK_BYTES + i * 8);
  return bytes;
}
