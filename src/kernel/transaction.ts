// One atomic update of the pool, staged in DRAM until the journal commits it.
//
// Two kinds of store: into *fresh* blocks (allocated by this transaction, unreachable until
// it commits) they go straight to PM and are flushed before the commit; into *live* blocks
// they are staged as journal entries and applied in place only after the commit point.
// A walk in the middle of an update finds the entries it has just set: readEntryAt looks in
// `words` before PM.

import { BLOCK_BYTES } from '../constants.js';
import { holeBlock } from '../format/entry.js';
import { emptySlotBlock } from '../format/slot.js';
import type { PmDevice } from '../pm/device.js';
import type { RangeEntry, RecordKind, WordEntry } from '../format/journal_record.js';
import { assert } from '../util/assert.js';
import type { Allocator } from './allocator.js';

export class Transaction {
  readonly words = new Map<number, WordEntry>();
  readonly ranges: RangeEntry[] = [];
  /**
   * Fresh metadata (table and slot) blocks, stored now, in the order they were allocated: a
   * store into one goes straight to PM (see setWord), and the commit writes them back.
   */
  private readonly fresh = new Set<number>();
  /**
   * Fresh data blocks' pool offsets and the page bytes each receives at commit (commit_plan.ts).
   * Not in `fresh`: nothing stores into a data block before the commit copies it.
   */
  readonly copyTo: number[] = [];
  readonly sources: Uint8Array[] = [];
  readonly released: number[] = [];
  private open = true;

  constructor(
    readonly kind: RecordKind,
    readonly device: PmDevice,
    private readonly allocator: Allocator,
    readonly slot: number,
    readonly generation: number,
    readonly epoch: number,
    /** The journal sequence this update commits as; slots it stages record it (see slot.ts). */
    readonly sequence: number,
  ) {}

  /**
   * A new metadata block, written now (flushed before the commit) with its empty form: 512
   * check-coded holes for a table block, 8 never-used slots for a slot block. Never zeros:
   * a zeroed metadata block is damage (format version 2). It is reachable only once the
   * commit lands.
   */
  allocateBlock(layout: 'table' | 'slots'): number {
    assert(this.open, 'transaction: open');
    const block = this.allocator.allocate();
    this.fresh.add(block);
    this.device.write(block * BLOCK_BYTES, layout === 'table' ? holeBlock(block) : emptySlotBlock(block));
    return block;
  }

  /**
   * A fresh block to be filled with `bytes` (one page of data) by the commit, which copies
   * and writes it back with the rest (commit_plan.ts): `bytes` must not change until then.
   */
  allocateDataBlock(bytes: Uint8Array): number {
    assert(this.open, 'transaction: open');
    assert(bytes.length === BLOCK_BYTES, 'transaction: data block is one block');
    const block = this.allocator.allocate();
    this.copyTo.push(block * BLOCK_BYTES);
    this.sources.push(bytes);
    return block;
  }

  /** Stage an 8-byte store; a fresh target is written directly. */
  setWord(offset: number, lo: number, hi: number): void {
    assert(this.open, 'transaction: open');
    assert(offset % 8 === 0, 'transaction: word entries are 8-aligned');
    if (this.fresh.has(Math.floor(offset / BLOCK_BYTES))) {
      const bytes = new Uint8Array(8);
      const view = new DataView(bytes.buffer);
      view.setUint32(0, lo, true);
      view.setUint32(4, hi, true);
      this.device.write(offset, bytes);
      return;
    }
    this.words.set(offset, { offset, lo, hi });
  }

  /** Stage a byte range (slot rewrites); must not overlap staged words. */
  setRange(offset: number, bytes: Uint8Array): void {
    assert(this.open, 'transaction: open');
    if (this.fresh.has(Math.floor(offset / BLOCK_BYTES))) {
      this.device.write(offset, bytes);
      return;
    }
    this.ranges.push({ offset, bytes: bytes.slice() });
  }

  /** A live block this update stops referencing; freed once the commit is durable. */
  release(block: number): void {
    assert(block > 0, 'transaction: released block is real');
    this.released.push(block);
  }

  get empty(): boolean {
    return this.words.size === 0 && this.ranges.length === 0 && this.fresh.size === 0 && this.copyTo.length === 0;
  }

  /** (offset, length) of every fresh metadata block: the commit writes them back before the record. */
  freshMetadata(): number[] {
    return [...this.fresh].flatMap((block) => [block * BLOCK_BYTES, BLOCK_BYTES]);
  }

  /** Called by the journal after the commit point: frees the released blocks. */
  finish(): void {
    assert(this.open, 'transaction: finished once');
    this.open = false;
    for (const block of this.released) this.allocator.release(block);
  }

  /** Undo before commit: the fresh blocks go back; nothing on PM is reachable from them. */
  abort(): void {
    if (!this.open) return;
    this.open = false;
    for (const block of this.fresh) this.allocator.release(block);
    for (const offset of this.copyTo) this.allocator.release(offset / BLOCK_BYTES);
  }
}
