// A redo journal record. The journal is two equal halves; the record with sequence N lives in
// half N mod 2, so writing record N+1 never touches record N, the newest committed one.
//
//   half + 0      8    commit word: equals the record's sequence once the record is committed
//   half + 8..63       zero
//   half + 64     64   header:
//                        0  4  magic "RJNL"
//                        4  2  record version (1)
//                        6  2  kind (1 pmsync, 2 create, 3 remove, 4 rename, 5 resize, 6 attributes,
//                              7 upgrade: version 1 zero words made check-coded, slot 0xffffffff)
//                        8  8  sequence
//                        16 4  word count
//                        20 4  range count
//                        24 4  body bytes (after the header)
//                        28 4  region slot index (0xffffffff for none)
//                        32 4  region generation
//                        36 4  zero
//                        40 8  region epoch after this record
//                        48 12 zero
//                        60 4  CRC32C of header (this field zero) and body
//   half + 128    body: word entries, 16 bytes each: u64 pool offset (8-aligned), u64 value;
//                 then range entries: u64 pool offset, u32 length, u32 zero, bytes padded to 8.
//
// A record is committed when its checksum holds and its commit word equals its sequence.

import { crc32c } from './crc32c.js';
import { dataView, readU64, writeU64 } from './le.js';

export const COMMIT_WORD_BYTES = 8;
export const RECORD_HEADER_OFFSET = 64; // the commit word has its own cache line
export const RECORD_HEADER_BYTES = 64;
export const RECORD_BODY_OFFSET = RECORD_HEADER_OFFSET + RECORD_HEADER_BYTES;
const MAGIC = 0x4c4e4a52; // "RJNL" little-endian
const RECORD_VERSION = 1;
const CRC_OFFSET = 60;
/** The region slot of a record that belongs to no region (an upgrade). */
export const NO_SLOT = 0xffffffff;

export const RECORD_KIND = {
  pmsync: 1,
  create: 2,
  remove: 3,
  rename: 4,
  resize: 5,
  attributes: 6,
  upgrade: 7,
} as const;
export type RecordKind = (typeof RECORD_KIND)[keyof typeof RECORD_KIND];

/**
 * Word entries as data: entry i stores (values[2i], values[2i+1]), two u32 halves so values
 * up to 2^64 survive without BigInt, at pool offset offsets[i]. A pmsync has one per page.
 */
export interface WordList {
  offsets: Float64Array;
  values: Uint32Array;
}
export interface RangeEntry {
  offset: number;
  bytes: Uint8Array;
}

export interface JournalRecord {
  kind: RecordKind;
  sequence: number;
  slot: number;
  generation: number;
  epoch: number;
  words: WordList;
  ranges: RangeEntry[];
}

/** No word entries. */
export function noWords(): WordList {
  return { offsets: new Float64Array(0), values: new Uint32Array(0) };
}

export function recordBodyBytes(words: number, ranges: readonly RangeEntry[]): number {
  let size = words * 16;
  for (const range of ranges) size += 16 + pad8(range.bytes.length);
  return size;
}

function pad8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/** A buffer a caller keeps for its records: encodeRecord grows it as needed and reuses it. */
export interface RecordScratch {
  bytes: Uint8Array;
}

/**
 * Header + body, to be written at half + RECORD_HEADER_OFFSET: a new buffer, or a view of
 * `scratch` valid until its next use (the journal's, written to PM before it returns).
 */
export function encodeRecord(record: JournalRecord, scratch?: RecordScratch): Uint8Array {
  const { offsets, values } = record.words;
  const bodyBytes = recordBodyBytes(offsets.length, record.ranges);
  const length = RECORD_HEADER_BYTES + bodyBytes;
  let bytes: Uint8Array;
  if (scratch === undefined) {
    bytes = new Uint8Array(length);
  } else {
    if (scratch.bytes.length < length) scratch.bytes = new Uint8Array(2 ** Math.ceil(Math.log2(length)));
    bytes = scratch.bytes.subarray(0, length);
    bytes.fill(0); // padding and reserved fields are zero, as in a new buffer
  }
  const view = dataView(bytes);
  view.setUint32(0, MAGIC, true);
  view.setUint16(4, RECORD_VERSION, true);
  view.setUint16(6, record.kind, true);
  writeU64(view, 8, record.sequence);
  view.setUint32(16, offsets.length, true);
  view.setUint32(20, record.ranges.length, true);
  view.setUint32(24, bodyBytes, true);
  view.setUint32(28, record.slot, true);
  view.setUint32(32, record.generation, true);
  writeU64(view, 40, record.epoch);
  let at = RECORD_HEADER_BYTES;
  for (let i = 0; i < offsets.length; i++) {
    writeU64(view, at, offsets[i] as number);
    view.setUint32(at + 8, values[2 * i] as number, true);
    view.setUint32(at + 12, values[2 * i + 1] as number, true);
    at += 16;
  }
  for (const range of record.ranges) {
    writeU64(view, at, range.offset);
    view.setUint32(at + 8, range.bytes.length, true);
    bytes.set(range.bytes, at + 16);
    at += 16 + pad8(range.bytes.length);
  }
  view.setUint32(CRC_OFFSET, crc32c(bytes), true);
  return bytes;
}

export interface RecordHeader {
  kind: number;
  sequence: number;
  wordCount: number;
  rangeCount: number;
  bodyBytes: number;
}

/** Reads the header; null if the magic or version is wrong or it cannot fit in `room` bytes. */
export function decodeRecordHeader(header: Uint8Array, room: number): RecordHeader | null {
  const view = dataView(header);
  if (view.getUint32(0, true) !== MAGIC || view.getUint16(4, true) !== RECORD_VERSION) return null;
  const result: RecordHeader = {
    kind: view.getUint16(6, true),
    sequence: readU64(view, 8),
    wordCount: view.getUint32(16, true),
    rangeCount: view.getUint32(20, true),
    bodyBytes: view.getUint32(24, true),
  };
  if (result.sequence <= 0 || RECORD_HEADER_BYTES + result.bodyBytes > room) return null;
  if (result.wordCount * 16 + result.rangeCount * 16 > result.bodyBytes) return null;
  return result;
}

/** Decodes a whole record (header + body); null if its checksum or structure is wrong. */
export function decodeRecord(bytes: Uint8Array): JournalRecord | null {
  const header = decodeRecordHeader(bytes.subarray(0, RECORD_HEADER_BYTES), bytes.length);
  if (!header) return null;
  const whole = bytes.subarray(0, RECORD_HEADER_BYTES + header.bodyBytes);
  const view = dataView(whole);
  const stored = view.getUint32(CRC_OFFSET, true);
  view.setUint32(CRC_OFFSET, 0, true);
  const actual = crc32c(whole);
  view.setUint32(CRC_OFFSET, stored, true);
  if (stored !== actual) return null;
  const count = header.wordCount;
  const words: WordList = { offsets: new Float64Array(count), values: new Uint32Array(2 * count) };
  let at = RECORD_HEADER_BYTES;
  for (let i = 0; i < header.wordCount; i++, at += 16) {
    words.offsets[i] = readU64(view, at);
    words.values[2 * i] = view.getUint32(at + 8, true);
    words.values[2 * i + 1] = view.getUint32(at + 12, true);
  }
  const ranges: RangeEntry[] = [];
  for (let i = 0; i < header.rangeCount; i++) {
    const offset = readU64(view, at);
    const length = view.getUint32(at + 8, true);
    if (at + 16 + length > whole.length) return null;
    ranges.push({ offset, bytes: whole.slice(at + 16, at + 16 + length) });
    at += 16 + pad8(length);
  }
  if (at !== whole.length) return null;
  return {
    kind: header.kind as RecordKind,
    sequence: header.sequence,
    slot: view.getUint32(28, true),
    generation: view.getUint32(32, true),
    epoch: readU64(view, 40),
    words,
    ranges,
  };
}
