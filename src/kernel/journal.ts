// The redo journal: how every update of the pool becomes durable and atomic.
//
// commit(tx):
//   1. fresh blocks (copied pages, new page-table blocks) are flushed;
//   2. the record (entries + checksum) is written into half (seq mod 2) and flushed;
//   3. fence; the commit word is stored, flushed, fenced: the commit point;
//   4. the entries are applied in place and flushed, without a fence: the next commit's
//      first fence orders them before the half holding this record is reused (seq + 2);
//      among them the region's slot, stamped with seq (region_table.ts), so PM itself says
//      which record was applied last;
//   5. blocks the update stopped referencing return to the free map.
// Two fences per commit whatever its size. Recovery replays the newest committed record
// (only it can be unapplied), which is idempotent, so a crash during recovery is harmless;
// recovery.ts decides which record that is, and refuses to go back past a damaged one.

import { BLOCK_BYTES } from '../constants.js';
import {
  COMMIT_WORD_BYTES,
  decodeRecord,
  decodeRecordHeader,
  encodeRecord,
  type JournalRecord,
  RECORD_BODY_OFFSET,
  type RecordScratch,
  RECORD_HEADER_BYTES,
  RECORD_HEADER_OFFSET,
} from '../format/journal_record.js';
import { dataView, readU64 } from '../format/le.js';
import { applyInPlace, commitWord, runCommit } from '../pm/commit_plan.js';
import type { PmDevice } from '../pm/device.js';
import { assert } from '../util/assert.js';
import type { Transaction } from './transaction.js';

/** What one half holds: its commit word and, if it checks out, its record. */
export interface HalfState {
  half: 0 | 1;
  /** Pool byte offset of the half (its commit word). */
  offset: number;
  /** The commit word; -1 if it is not a u64 below 2^53 (damage: no sequence is that large). */
  commitWord: number;
  /** The record, if its checksum and structure hold and it lives in the half its sequence names. */
  record: JournalRecord | null;
}

export class Journal {
  private sequence: number; // of the newest committed record (0 = none)
  /** Where each commit encodes its record (a new buffer per commit cost ~0.3 µs and garbage). */
  private readonly scratch: RecordScratch = { bytes: new Uint8Array(BLOCK_BYTES) };

  constructor(
    private readonly device: PmDevice,
    private start: number,
    private blocks: number,
    newestSequence: number,
  ) {
    assert(blocks >= 2 && blocks % 2 === 0, 'journal: two equal halves');
    this.sequence = newestSequence;
  }

  get startBlock(): number {
    return this.start;
  }
  get blockCount(): number {
    return this.blocks;
  }
  get newestSequence(): number {
    return this.sequence;
  }
  get halfBytes(): number {
    return (this.blocks / 2) * BLOCK_BYTES;
  }

  halfOffset(sequence: number): number {
    return this.start * BLOCK_BYTES + (sequence % 2) * this.halfBytes;
  }

  /** Makes tx durable and atomic, then applies it; returns the record's sequence. */
  commit(tx: Transaction): number {
    const sequence = this.sequence + 1;
    assert(tx.sequence === sequence, 'journal: a transaction commits as the record it was staged as', tx.sequence);
    const words = tx.words.list();
    const record = encodeRecord({
      kind: tx.kind,
      sequence,
      slot: tx.slot,
      generation: tx.generation,
      epoch: tx.epoch,
      words,
      ranges: tx.ranges,
    }, this.scratch); // runCommit stores it before this returns
    assert(RECORD_HEADER_OFFSET + record.length <= this.halfBytes, 'journal: the record fits a half (record bytes)', record.length);
    const half = this.halfOffset(sequence);
    // The device runs the plan (commit_plan.ts: fresh blocks and record durable, fence,
    // commit word, fence = the commit point, then the in-place applies).
    runCommit(this.device, {
      copies: tx.copies.view(),
      buffers: tx.buffers,
      flushes: tx.freshMetadata(),
      recordOffset: half + RECORD_HEADER_OFFSET,
      record,
      commitOffset: half,
      sequence,
      wordOffsets: words.offsets,
      wordValues: words.values,
      rangeOffsets: tx.ranges.map((range) => range.offset),
      rangeBytes: tx.ranges.map((range) => range.bytes),
    });
    this.sequence = sequence;
    tx.finish();
    return sequence;
  }

  /** Both halves as PM holds them (recovery and fsck judge them; see recovery.ts). */
  halves(): [HalfState, HalfState] {
    return [this.readHalf(0), this.readHalf(1)];
  }

  private readHalf(half: 0 | 1): HalfState {
    const offset = this.start * BLOCK_BYTES + half * this.halfBytes;
    const commitWord = readU64(dataView(this.device.read(offset, COMMIT_WORD_BYTES)), 0);
    const state: HalfState = { half, offset, commitWord, record: null };
    const header = this.device.read(offset + RECORD_HEADER_OFFSET, RECORD_HEADER_BYTES);
    const parsed = decodeRecordHeader(header, this.recordRoom);
    if (!parsed) return state;
    const bytes = this.device.read(offset + RECORD_HEADER_OFFSET, RECORD_HEADER_BYTES + parsed.bodyBytes);
    const record = decodeRecord(bytes);
    if (record && this.halfOffset(record.sequence) === offset) state.record = record;
    return state;
  }

  /** Bytes a record may occupy in a half, from its header on. */
  get recordRoom(): number {
    return this.halfBytes - RECORD_HEADER_OFFSET;
  }

  /** fsck: stores a commit word that recovery proved (one 8-byte unit, so failure-atomic). */
  restoreCommitWord(half: 0 | 1, sequence: number): void {
    const offset = this.start * BLOCK_BYTES + half * this.halfBytes;
    this.device.write(offset, commitWord(sequence));
    this.device.persist(offset, COMMIT_WORD_BYTES);
  }

  /** After mount's walk: later records must outnumber every sequence a slot already holds. */
  noteApplied(sequence: number): void {
    this.sequence = Math.max(this.sequence, sequence);
  }

  /** Re-applies the newest committed record and makes it durable; idempotent. */
  replay(record: JournalRecord, validate: (offset: number, length: number) => void): void {
    const { offsets, values } = record.words;
    for (const offset of offsets) validate(offset, 8);
    for (const range of record.ranges) validate(range.offset, range.bytes.length);
    applyInPlace(this.device, offsets, values, record.ranges.map((r) => r.offset), record.ranges.map((r) => r.bytes));
    this.device.fence();
    this.sequence = Math.max(this.sequence, record.sequence);
  }

  /**
   * Makes both halves of a journal area read as empty: at format, and before the journal moves
   * (pool growth). A half is trusted only through its first two lines: the commit word (line
   * 0) and the record header (line 1). The body is read only as far as a header with the magic
   * and a length that fits says, and believed only if the checksum over header and body holds
   * (readHalf, decodeRecord; fsck's one-bit search runs only where a commit word claims a
   * record). So zeroing those two lines of each half is enough, whatever the rest of the area
   * held: zeros, garbage, or a reused pool's old records, which after a half's first reuse
   * the bytes past a shorter record are anyway. Nothing else is written, so format costs the
   * same whatever the pool's size. Flushed, not fenced: the caller fences before the
   * superblock that names the area.
   */
  static clearHalves(device: PmDevice, start: number, blocks: number): void {
    const halfBytes = (blocks / 2) * BLOCK_BYTES;
    for (const half of [0, 1]) {
      const offset = start * BLOCK_BYTES + half * halfBytes;
      device.fill(offset, RECORD_BODY_OFFSET, 0);
      device.flush(offset, RECORD_BODY_OFFSET);
    }
  }

  /** Move to a new area (pool growth); the caller has fenced every earlier apply. */
  relocate(start: number, blocks: number): void {
    assert(blocks >= 2 && blocks % 2 === 0, 'journal: relocated journal has two halves');
    this.start = start;
    this.blocks = blocks;
  }
}
