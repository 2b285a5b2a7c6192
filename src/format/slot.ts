// A region-table slot: 512 bytes, 8 per slot block. Line 0 holds every field a pmsync or a
// metadata operation changes, so most updates rewrite one 64-byte line.
//
//   offset size field
//   0      4    state: 0 never used, 1 live, 2 removed, 3 damaged (quarantined by fsck --repair:
//               listed and readable page by page, never written; see kernel/quarantine.ts)
//   4      4    generation: raised each time the slot is reused, so (id, generation) is unique
//   8      8    region size in bytes
//   16     8    page-table root entry (entry format; 0 = every page a hole)
//   24     1    page-table levels (1..4; 0 when the root is a hole)
//   25     1    name length in bytes (1..255)
//   26     2    journal sequence, bits 32..47 (see offset 60)
//   28     4    CRC32C of the 512-byte slot with this field zero
//   32     8    modification time, ms since the epoch (create, resize, rename, pmsync)
//   40     8    epoch: number of the last completed pmsync (0 = never)
//   48     4    permission bits (mode & 0o777)
//   52     4    owner uid
//   56     4    owner gid
//   60     4    journal sequence, bits 0..31: the low 48 bits of the sequence of the journal
//               record that last wrote this slot (0 in slots written before the field existed).
//               Every record writes its region's slot, so recovery can tell from it whether a
//               record newer than the journal's newest intact one was already applied.
//   64     8    creation time, ms since the epoch
//   72..127     zero
//   128    255  name, UTF-8, zero-padded
//   383..511    zero
//
// Every slot carries its checksum and a check-coded root entry, a never-used one too (all
// other fields zero), so a zeroed slot never reads as "never used", and a slot stored at the
// wrong place fails its root entry's check code (format version 2; version 1 left never-used
// slots all zero, see kernel/upgrade.ts).

import { BLOCK_BYTES, NAME_BYTES_MAX, SLOT_BYTES, SLOTS_PER_BLOCK } from '../constants.js';
import { crc32c } from './crc32c.js';
import { decodeEntry, encodeEntry, ENTRY_CORRUPT } from './entry.js';
import { dataView, isZero, readU64, writeU64 } from './le.js';

export const SLOT_STATE = { unused: 0, live: 1, removed: 2, damaged: 3 } as const;
const CRC_OFFSET = 28;
const ROOT_OFFSET = 16;
const NAME_OFFSET = 128;
const SEQUENCE_LOW_OFFSET = 60;
const SEQUENCE_HIGH_OFFSET = 26;
/** The slot keeps a journal sequence modulo this (48 bits: 2^48 records is decades of pmsyncs). */
export const SLOT_SEQUENCE_MODULUS = 2 ** 48;

export interface Slot {
  state: number;
  generation: number;
  sizeBytes: number;
  /** Root block of the page table (0 = no page table yet). */
  root: number;
  levels: number;
  name: string;
  modifiedAt: number;
  epoch: number;
  mode: number;
  uid: number;
  gid: number;
  createdAt: number;
  /** Low 48 bits of the sequence of the journal record that last wrote the slot; 0 = unknown. */
  journalSequence: number;
}

const UTF8 = new TextEncoder();
const CRC_FIELD_ZERO = new Uint8Array(4);

/**
 * Encodes a slot stored at pool byte offset `position` (the root entry's check code depends on
 * it), into `target` if given (SLOT_BYTES, overwritten whole: a caller's scratch buffer).
 */
export function encodeSlot(slot: Slot, position: number, target?: Uint8Array): Uint8Array {
  const bytes = target ?? new Uint8Array(SLOT_BYTES);
  if (target !== undefined) {
    if (target.length !== SLOT_BYTES) throw new RangeError(`a slot takes ${SLOT_BYTES} bytes, not ${target.length}`);
    target.fill(0);
  }
  const view = dataView(bytes);
  // The name is encoded straight into its field (no temporary); one that does not fit is refused.
  const name = UTF8.encodeInto(slot.name, bytes.subarray(NAME_OFFSET, NAME_OFFSET + NAME_BYTES_MAX));
  if (name.read < slot.name.length) {
    throw new RangeError(`slot name of ${UTF8.encode(slot.name).length} bytes exceeds ${NAME_BYTES_MAX}`);
  }
  view.setUint32(0, slot.state, true);
  view.setUint32(4, slot.generation, true);
  writeU64(view, 8, slot.sizeBytes);
  const [lo, hi] = encodeEntry(slot.root, position + ROOT_OFFSET);
  view.setUint32(ROOT_OFFSET, lo, true);
  view.setUint32(ROOT_OFFSET + 4, hi, true);
  bytes[24] = slot.levels;
  bytes[25] = name.written;
  writeU64(view, 32, slot.modifiedAt);
  writeU64(view, 40, slot.epoch);
  view.setUint32(48, slot.mode, true);
  view.setUint32(52, slot.uid, true);
  view.setUint32(56, slot.gid, true);
  writeU64(view, 64, slot.createdAt);
  const sequence = slot.journalSequence % SLOT_SEQUENCE_MODULUS;
  view.setUint32(SEQUENCE_LOW_OFFSET, sequence % 0x1_0000_0000, true);
  view.setUint16(SEQUENCE_HIGH_OFFSET, Math.floor(sequence / 0x1_0000_0000), true);
  view.setUint32(CRC_OFFSET, slotChecksum(bytes), true);
  return bytes;
}

function slotChecksum(bytes: Uint8Array): number {
  const head = crc32c(bytes.subarray(0, CRC_OFFSET));
  const zero = crc32c(CRC_FIELD_ZERO, head);
  return crc32c(bytes.subarray(CRC_OFFSET + 4, SLOT_BYTES), zero);
}

export type SlotResult = { ok: true; slot: Slot } | { ok: false; message: string };

export function decodeSlot(bytes: Uint8Array, position: number): SlotResult {
  if (isZero(bytes)) return { ok: false, message: 'slot is all zero (a never-used slot carries a checksum)' };
  const view = dataView(bytes);
  if (view.getUint32(CRC_OFFSET, true) !== slotChecksum(bytes)) return { ok: false, message: 'slot checksum mismatch' };
  const state = view.getUint32(0, true);
  if (!KNOWN_STATES.has(state)) return { ok: false, message: `slot state ${state} unknown` };
  const root = decodeEntry(view.getUint32(ROOT_OFFSET, true), view.getUint32(ROOT_OFFSET + 4, true), position + ROOT_OFFSET);
  if (root === ENTRY_CORRUPT) return { ok: false, message: 'slot root entry check code mismatch' };
  const nameLength = bytes[25] ?? 0;
  const slot: Slot = {
    state,
    generation: view.getUint32(4, true),
    sizeBytes: readU64(view, 8),
    root,
    levels: bytes[24] ?? 0,
    name: new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(NAME_OFFSET, NAME_OFFSET + nameLength)),
    modifiedAt: readU64(view, 32),
    epoch: readU64(view, 40),
    mode: view.getUint32(48, true),
    uid: view.getUint32(52, true),
    gid: view.getUint32(56, true),
    createdAt: readU64(view, 64),
    journalSequence: readSequence(view),
  };
  if (slot.sizeBytes < 0 || slot.epoch < 0 || slot.modifiedAt < 0 || slot.createdAt < 0) return { ok: false, message: 'slot field out of range' };
  if (state === SLOT_STATE.unused) {
    const blank = encodeSlot(emptySlot(), position);
    return blank.every((b, i) => b === bytes[i]) ? { ok: true, slot } : { ok: false, message: 'never-used slot holds data' };
  }
  const named = state === SLOT_STATE.live || state === SLOT_STATE.damaged;
  if (named && (nameLength === 0 || slot.sizeBytes === 0)) return { ok: false, message: 'slot without name or size' };
  return { ok: true, slot };
}

/**
 * A slot as format version 1 stored it, in version 2 form: all zero was a never-used slot, and
 * a zero root word a hole (the checksum is verified over the bytes as stored).
 */
export function decodeVersion1Slot(bytes: Uint8Array, position: number): SlotResult {
  if (isZero(bytes)) return { ok: true, slot: emptySlot() };
  const view = dataView(bytes);
  if (view.getUint32(ROOT_OFFSET, true) !== 0 || view.getUint32(ROOT_OFFSET + 4, true) !== 0) return decodeSlot(bytes, position);
  if (view.getUint32(CRC_OFFSET, true) !== slotChecksum(bytes)) return { ok: false, message: 'slot checksum mismatch' };
  const coded = bytes.slice();
  const codedView = dataView(coded);
  const [lo, hi] = encodeEntry(0, position + ROOT_OFFSET);
  codedView.setUint32(ROOT_OFFSET, lo, true);
  codedView.setUint32(ROOT_OFFSET + 4, hi, true);
  codedView.setUint32(CRC_OFFSET, slotChecksum(coded), true);
  return decodeSlot(coded, position);
}

const KNOWN_STATES = new Set<number>(Object.values(SLOT_STATE));

/** A slot block of 8 never-used slots, as block `block` must hold it when it is created. */
export function emptySlotBlock(block: number): Uint8Array {
  const bytes = new Uint8Array(BLOCK_BYTES);
  for (let s = 0; s < SLOTS_PER_BLOCK; s++) {
    const position = block * BLOCK_BYTES + s * SLOT_BYTES;
    bytes.set(encodeSlot(emptySlot(), position), s * SLOT_BYTES);
  }
  return bytes;
}

export function emptySlot(): Slot {
  return {
    state: SLOT_STATE.unused, generation: 0, sizeBytes: 0, root: 0, levels: 0, name: '',
    modifiedAt: 0, epoch: 0, mode: 0, uid: 0, gid: 0, createdAt: 0, journalSequence: 0,
  };
}

function readSequence(view: DataView): number {
  return view.getUint16(SEQUENCE_HIGH_OFFSET, true) * 0x1_0000_0000 + view.getUint32(SEQUENCE_LOW_OFFSET, true);
}
