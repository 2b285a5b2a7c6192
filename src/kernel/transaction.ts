// One atomic update of the pool, staged in DRAM until the journal commits it.
//
// Two kinds of store: into *fresh* blocks (allocated by this transaction, unreachable until
// it commits) they go straight to PM and are flushed before the commit; into *live* blocks
// they are staged as journal entries and applied in place only after the commit point.
// A walk in the middle of an update finds the entries it has just set: readEntryAt looks in
// `words` before PM.

import { BLOCK_BYTES } from '../constants.js';
import { entryHigh, holeBlock } from '../format/entry.js';
import { emptySlotBlock } from '../format/slot.js';
import type { PmDevice } from '../pm/device.js';
import type { RangeEntry, RecordKind } from '../format/journal_record.js';
import { assert } from '../util/assert.js';
import { TypedList } from '../util/typed_list.js';
import type { Allocator } from './allocator.js';
import { StagedWords } from './staged_words.js';

export class Transaction {
  readonly words = new StagedWords();
  readonly ranges: RangeEntry[] = [];
  /**
   * Fresh metadata (table and slot) blocks, stored now, in the order they were allocated: a
   * store into one goes straight to PM (see setWord), and the commit writes them back.
   */
  private readonly fresh = new Set<number>();
  /**
   * Fresh data blocks and the page each receives at commit (commit_plan.ts): per block, its
   * pool offset, the index of its source in `buffers` and the page's byte offset there. Not
   * in `fresh`: nothing stores into a data block before the commit copies it.
   */
  readonly copies = new TypedList(Float64Array);
  /** The buffers pages are copied from: a working copy's chunks, a few for any number of pages. */
  readonly buffers: Uint8Array[] = [];
  readonly released: number[] = [];
  private open = true;
  /** A fresh block's 8-byte store goes through here (setWord): no buffer per store. */
  private readonly wordBytes = new Uint8Array(8);
  private readonly word = new DataView(this.wordBytes.buffer);

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

  /** Adds the buffers later data blocks copy from; returns the index of the first in `buffers`. */
  addBuffers(buffers: readonly Uint8Array[]): number {
    assert(this.open, 'transaction: open');
    const first = this.buffers.length;
    this.buffers.push(...buffers);
    return first;
  }

  /**
   * A fresh block to be filled by the commit with the page at byte `offset` of
   * `buffers[buffer]`, which it copies and writes back with the rest (commit_plan.ts): those
   * bytes must not change until then.
   */
  allocateDataBlock(buffer: number, offset: number): number {
    assert(this.open, 'transaction: open');
    const source = this.buffers[buffer];
    assert(source !== undefined && offset >= 0 && offset + BLOCK_BYTES <= source.length,
      'transaction: a data block copies one whole page of a known buffer', offset);
    const block = this.allocator.allocate();
    this.copies.push(block * BLOCK_BYTES);
    this.copies.push(buffer);
    this.copies.push(offset);
    return block;
  }

  /** Stage an 8-byte store; a fresh target is written directly. */
  setWord(offset: number, lo: number, hi: number): void {
    assert(this.open, 'transaction: open');
    assert(offset % 8 === 0, 'transaction: word entries are 8-aligned');
    if (this.fresh.has(Math.floor(offset / BLOCK_BYTES))) {
      this.word.setUint32(0, lo, true);
      this.word.setUint32(4, hi, true);
      this.device.write(offset, this.wordBytes);
      return;
    }
    this.words.set(offset, lo, hi);
  }

  /** Stage the check-coded entry pointing at `block` (0: a hole) at pool offset `position`. */
  setEntry(position: number, block: number): void {
    this.setWord(position, block >>> 0, entryHigh(block, position));
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
    return this.words.size === 0 && this.ranges.length === 0 && this.fresh.size === 0 && this.copies.length === 0;
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
    const copies = this.copies.view();
    for (let i = 0; i < copies.length; i += 3) this.allocator.release((copies[i] as number) / BLOCK_BYTES);
  }
}
