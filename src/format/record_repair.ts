// Restoring a journal record damaged by one flipped bit, for fsck.
//
// A record's CRC32C is linear: flipping bit p of the checksummed bytes changes the checksum
// by a value (the syndrome of p) that depends only on p's distance from the end. So the
// difference between the stored and the recomputed checksum names the flipped bit, if one
// bit flipped. CRC32C has Hamming distance 4 for anything shorter than 2^31 bits, so no two
// records within 3 bit flips of each other both check out: a one-bit correction that yields
// a valid record yields the original one, and a record damaged by two flips is never
// "corrected" into a wrong one. The flip may also be in the stored checksum itself, or in the
// body-length field (then the checksum covers a different length), which are tried too.
//
// A correction changes one byte (or the checksum field, or the length field), which always
// lies inside one aligned 8-byte unit of the record, so writing it back is failure-atomic.
// Records longer than CORRECTABLE_RECORD_BYTES_MAX (a pmsync of millions of pages) are not
// searched: the search reads the record into memory and steps eight registers per byte.

import { crc32c } from './crc32c.js';
import { decodeRecord, type JournalRecord, RECORD_HEADER_BYTES } from './journal_record.js';
import { dataView } from './le.js';

const CRC_OFFSET = 60; // of the header, as in journal_record.ts
const BODY_BYTES_OFFSET = 24;
const UNIT_BYTES = 8;
const POLY = 0x82f63b78; // CRC32C, reflected
/** The longest record (header included) correctOneBit looks at. */
export const CORRECTABLE_RECORD_BYTES_MAX = 64 * 1024 * 1024;

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The record restored, and the one 8-byte unit (offset within the record, bytes) to write back. */
export interface RecordCorrection {
  record: JournalRecord;
  unitOffset: number;
  unit: Uint8Array;
}

/**
 * `area` is a journal half from the record header on (at most CORRECTABLE_RECORD_BYTES_MAX
 * of it is looked at). Returns the unique one-bit correction
 * that makes it a record `accept` agrees with, or null if there is none or more than one.
 */
export function correctOneBit(half: Uint8Array, accept: (record: JournalRecord) => boolean): RecordCorrection | null {
  const area = half.subarray(0, CORRECTABLE_RECORD_BYTES_MAX);
  const found = new Map<string, RecordCorrection>();
  for (const candidate of candidates(area)) {
    const record = decodeRecord(candidate);
    if (!record || !accept(record)) continue;
    const unitOffset = differingUnit(area, candidate);
    if (unitOffset === null) continue;
    const unit = candidate.slice(unitOffset, unitOffset + UNIT_BYTES);
    found.set(`${unitOffset}:${unit.join(',')}`, { record, unitOffset, unit });
  }
  return found.size === 1 ? ([...found.values()][0] ?? null) : null;
}

/** Whole records (header + body, checksum set) one flipped bit away from `area`. */
function candidates(area: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  if (area.length < RECORD_HEADER_BYTES) return out;
  const stated = dataView(area).getUint32(BODY_BYTES_OFFSET, true);
  if (RECORD_HEADER_BYTES + stated <= area.length) out.push(...sameLength(area.slice(0, RECORD_HEADER_BYTES + stated)));
  for (let bit = 0; bit < 32; bit++) {
    const length = (stated ^ (1 << bit)) >>> 0; // the flip was in the length field itself
    if (RECORD_HEADER_BYTES + length > area.length) continue;
    const bytes = area.slice(0, RECORD_HEADER_BYTES + length);
    dataView(bytes).setUint32(BODY_BYTES_OFFSET, length, true);
    if (checksumOf(bytes) === dataView(bytes).getUint32(CRC_OFFSET, true)) out.push(bytes);
  }
  return out;
}

/** Corrections of a record whose length field is right: a flip in the checksum or in the bytes it covers. */
function sameLength(bytes: Uint8Array): Uint8Array[] {
  const stored = dataView(bytes).getUint32(CRC_OFFSET, true);
  const diff = (checksumOf(bytes) ^ stored) >>> 0;
  if (diff === 0) return []; // it checks out: whatever is wrong with it is not one flipped bit
  const out: Uint8Array[] = [];
  if ((diff & (diff - 1)) === 0) {
    const fixed = bytes.slice();
    dataView(fixed).setUint32(CRC_OFFSET, (stored ^ diff) >>> 0, true);
    out.push(fixed);
  }
  for (const { byte, bit } of flipsWithSyndrome(bytes.length, diff)) {
    if (byte >= CRC_OFFSET && byte < CRC_OFFSET + 4) continue; // those bytes are zero when checksummed
    const fixed = bytes.slice();
    fixed[byte] = (fixed[byte] ?? 0) ^ (1 << bit);
    out.push(fixed);
  }
  return out;
}

/**
 * Every (byte, bit) of a message of `length` bytes whose flip changes its CRC32C by `diff`.
 * A flip at byte j leaves the register T[1 << bit] after byte j, which then runs through
 * length - 1 - j zero bytes; walking from the end keeps the eight registers for distance d.
 */
function flipsWithSyndrome(length: number, diff: number): { byte: number; bit: number }[] {
  const found: { byte: number; bit: number }[] = [];
  const registers = Array.from({ length: 8 }, (_, bit) => TABLE[1 << bit] ?? 0);
  for (let distance = 0; distance < length; distance++) {
    for (let bit = 0; bit < 8; bit++) {
      const r = registers[bit] ?? 0;
      if (r === diff) found.push({ byte: length - 1 - distance, bit });
      registers[bit] = ((r >>> 8) ^ (TABLE[r & 0xff] ?? 0)) >>> 0;
    }
  }
  return found;
}

/** The record's checksum as encodeRecord computes it: over the bytes with the checksum field zero. */
function checksumOf(bytes: Uint8Array): number {
  const copy = bytes.slice();
  dataView(copy).setUint32(CRC_OFFSET, 0, true);
  return crc32c(copy) >>> 0;
}

/** The aligned 8-byte unit holding every byte where the candidate differs from area; null if several. */
function differingUnit(area: Uint8Array, candidate: Uint8Array): number | null {
  let unit: number | null = null;
  for (let i = 0; i < candidate.length; i++) {
    if (candidate[i] === area[i]) continue;
    const at = i - (i % UNIT_BYTES);
    if (unit !== null && unit !== at) return null;
    unit = at;
  }
  return unit;
}
