// Format version 1 stored a hole as the zero word and a never-used slot as 512 zero bytes, so
// a zeroed table, slot or page-table block read as emptiness: regions or pages vanished and
// fsck saw nothing. Version 2 gives both a check code, so zero is never valid metadata. Mount
// (and fsck --repair) upgrade a version 1 pool in place, after recovery replayed its journal:
//
//   1. a walk of the region table and every page table, reading zero as a hole (as version 1
//      did) and a check-coded hole as a hole too (left by an upgrade a crash interrupted),
//      collects every zero entry and every slot that must change;
//   2. journal records of kind `upgrade` store a coded hole into each zero entry and rewrite
//      each such slot: through the journal, so a crash leaves every word and slot either old
//      or new, both of which step 1 reads. Their sequences outnumber every slot's stamp;
//   3. a fence makes the last record's in-place stores durable, then the superblock says
//      version 2 (commit point: copy 0 durable).
//
// A crash before step 3 leaves a version 1 pool that the next mount replays and upgrades
// again; every step is idempotent. Records before the upgrade may hold zero words, but they
// are older than the upgrade's and recovery never replays an older record.

import {
  BLOCK_BYTES, ENTRIES_PER_BLOCK, FORMAT_VERSION, FORMAT_VERSION_ZERO_HOLES, SLOT_BYTES, SLOTS_PER_BLOCK, TABLE_LEVELS,
} from '../constants.js';
import type { RegionError } from '../errors.js';
import { decodeEntry, ENTRY_CORRUPT, isZeroWord } from '../format/entry.js';
import { NO_SLOT, RECORD_HEADER_BYTES, RECORD_KIND } from '../format/journal_record.js';
import { decodeVersion1Slot, encodeSlot, SLOT_STATE } from '../format/slot.js';
import type { Superblock } from '../format/superblock.js';
import type { PmDevice } from '../pm/device.js';
import { assert } from '../util/assert.js';
import { Allocator } from './allocator.js';
import { type Invariant, InvariantViolation } from './invariants.js';
import type { Journal } from './journal.js';
import { writeSuperblocks } from './superblock_store.js';
import { Transaction } from './transaction.js';

/** Bytes one word entry and one slot rewrite take in a record. */
const WORD_ENTRY_BYTES = 16;
const SLOT_ENTRY_BYTES = 16 + SLOT_BYTES;

/** What a version 1 pool needs rewritten (step 1). */
class Version1Walk {
  readonly zeroWords: number[] = [];
  readonly slots: { position: number; bytes: Uint8Array }[] = [];
  newestStamp = 0;

  constructor(
    private readonly device: PmDevice,
    private readonly poolBlocks: number,
    private readonly label: string,
  ) {}

  /** The children of a table block, noting its zero words; index -> block. */
  private children(block: number): Map<number, number> {
    const view = new DataView(this.device.read(block * BLOCK_BYTES, BLOCK_BYTES).buffer);
    const children = new Map<number, number>();
    for (let i = 0; i < ENTRIES_PER_BLOCK; i++) {
      const position = block * BLOCK_BYTES + i * 8;
      const lo = view.getUint32(i * 8, true);
      const hi = view.getUint32(i * 8 + 4, true);
      if (isZeroWord(lo, hi)) {
        this.zeroWords.push(position);
        continue;
      }
      const child = decodeEntry(lo, hi, position);
      if (child === ENTRY_CORRUPT || child >= this.poolBlocks) {
        throw this.damaged('entry-code', 'table entry', position, 'check code mismatch or block beyond the pool');
      }
      if (child !== 0) children.set(i, child);
    }
    return children;
  }

  table(block: number, level: number): void {
    for (const child of this.children(block).values()) {
      if (level > 2) this.table(child, level - 1);
      else this.slotBlock(child);
    }
  }

  private slotBlock(block: number): void {
    for (let s = 0; s < SLOTS_PER_BLOCK; s++) {
      const position = block * BLOCK_BYTES + s * SLOT_BYTES;
      const stored = this.device.read(position, SLOT_BYTES);
      const result = decodeVersion1Slot(stored, position);
      if (!result.ok) throw this.damaged('slot-valid', 'region table slot', position, result.message);
      const slot = result.slot;
      this.newestStamp = Math.max(this.newestStamp, slot.journalSequence);
      const bytes = encodeSlot(slot, position);
      if (bytes.some((b, i) => b !== stored[i])) this.slots.push({ position, bytes });
      if (slot.state !== SLOT_STATE.unused && slot.root !== 0) this.pageTable(slot.root, slot.levels);
    }
  }

  private pageTable(block: number, level: number): void {
    const children = this.children(block);
    if (level > 1) for (const child of children.values()) this.pageTable(child, level - 1);
  }

  private damaged(rule: Invariant, structure: string, offset: number, message: string): RegionError {
    return new InvariantViolation(rule, `${this.label}: ${structure} at offset ${offset}: ${message}; `
      + `the pool (format version ${FORMAT_VERSION_ZERO_HOLES}) cannot be upgraded to version ${FORMAT_VERSION}: `
      + 'restore it from a copy');
  }
}

/** Upgrades a version 1 pool (see the top of this file); returns the version 2 superblock. */
export function upgradeVersion1(device: PmDevice, sb: Superblock, journal: Journal, label: string): Superblock {
  assert(sb.version === FORMAT_VERSION_ZERO_HOLES, 'upgrade: a version 1 pool');
  const walk = new Version1Walk(device, sb.poolBlocks, label);
  walk.table(sb.tableRoot, TABLE_LEVELS);
  journal.noteApplied(walk.newestStamp); // the upgrade's records outnumber every stamp
  const budget = journal.recordRoom - RECORD_HEADER_BYTES;
  const allocator = new Allocator(sb.poolBlocks); // an upgrade allocates and frees nothing
  let tx: Transaction | null = null;
  let bytes = 0;
  const stage = (size: number, store: (t: Transaction) => void): void => {
    if (tx !== null && bytes + size > budget) {
      journal.commit(tx);
      tx = null;
    }
    if (tx === null) {
      tx = new Transaction(RECORD_KIND.upgrade, device, allocator, NO_SLOT, 0, 0, journal.newestSequence + 1);
      bytes = 0;
    }
    bytes += size;
    store(tx);
  };
  for (const position of walk.zeroWords) {
    stage(WORD_ENTRY_BYTES, (t) => t.setEntry(position, 0));
  }
  for (const slot of walk.slots) stage(SLOT_ENTRY_BYTES, (t) => t.setRange(slot.position, slot.bytes));
  if (tx) journal.commit(tx);
  device.fence(); // the last record's in-place stores are durable before the superblock says version 2
  const next: Superblock = { ...sb, version: FORMAT_VERSION, sequence: sb.sequence + 1 };
  writeSuperblocks(device, next); // commit point: copy 0 durable
  return next;
}
