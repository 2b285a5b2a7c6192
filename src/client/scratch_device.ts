// A look at a pool that writes nothing to it: a PmDevice over another one whose stores stay in
// this process's memory, a 4 KiB block at a time (copied from the base at its first store),
// and are dropped at close. The commands that only read (regions info, ls, stat, read) mount
// a pool through it, so what a mount writes (a stale or damaged superblock copy rewritten,
// the journal's newest record replayed, a format upgrade) is done in memory: they see the
// pool as a read-write open would, and the file keeps what fsck must still find.

import { BLOCK_BYTES } from '../constants.js';
import { RegionError } from '../errors.js';
import { checkRange, checkWordOffset, DeviceCounters, type PmDevice } from '../pm/device.js';

/** A block, where the range starts in it, where that is in the range, and how many bytes. */
type BlockVisit = (block: number, within: number, at: number, span: number) => void;

export class ScratchDevice implements PmDevice {
  readonly counters = new DeviceCounters();
  /** Blocks stored to, by block number: the base's bytes with this device's stores on top. */
  readonly #blocks = new Map<number, Uint8Array>();

  constructor(private readonly base: PmDevice) {}

  get sizeBytes(): number {
    return this.base.sizeBytes;
  }

  /** How many blocks were stored to (in memory only). */
  get blocksStored(): number {
    return this.#blocks.size;
  }

  read(offset: number, length: number): Uint8Array {
    checkRange(this, offset, length, 'read');
    const bytes = this.base.read(offset, length);
    this.#eachBlock(offset, length, (block, within, at, span) => {
      const stored = this.#blocks.get(block);
      if (stored !== undefined) bytes.set(stored.subarray(within, within + span), at);
    });
    return bytes;
  }

  /** The base's own view where nothing was stored, else a copy (callers only read views). */
  view(offset: number, length: number): Uint8Array {
    let stored = false;
    this.#eachBlock(offset, length, (block) => (stored ||= this.#blocks.has(block)));
    return stored ? this.read(offset, length) : this.base.view(offset, length);
  }

  readU32(offset: number): number {
    checkWordOffset(this, offset);
    const stored = this.#blocks.get(Math.floor(offset / BLOCK_BYTES));
    if (stored === undefined) return this.base.readU32(offset);
    return new DataView(stored.buffer, stored.byteOffset, BLOCK_BYTES).getUint32(offset % BLOCK_BYTES, true);
  }

  write(offset: number, bytes: Uint8Array): void {
    checkRange(this, offset, bytes.length, 'write');
    this.#eachBlock(offset, bytes.length, (block, within, at, span) => {
      this.#own(block).set(bytes.subarray(at, at + span), within);
    });
    this.counters.bytesWritten += bytes.length;
  }

  fill(offset: number, length: number, value = 0): void {
    checkRange(this, offset, length, 'fill');
    this.#eachBlock(offset, length, (block, within, _at, span) => this.#own(block).fill(value, within, within + span));
    this.counters.bytesWritten += length;
  }

  /** Nothing reaches the base, so nothing is flushed; the counters still count what was asked. */
  flush(offset: number, length: number): void {
    checkRange(this, offset, length, 'flush');
    if (length > 0) this.counters.linesFlushed += Math.ceil((offset + length) / 64) - Math.floor(offset / 64);
  }

  fence(): void {
    this.counters.fences++;
  }

  persist(offset: number, length: number): void {
    this.flush(offset, length);
    this.fence();
  }

  resize(sizeBytes: number): void {
    throw new RegionError('PERMISSION', `a read-only look at a pool cannot grow it (to ${sizeBytes} bytes)`);
  }

  close(): void {
    this.#blocks.clear();
    this.base.close();
  }

  /** This device's copy of a block, made from the base's bytes at the first store into it. */
  #own(block: number): Uint8Array {
    let stored = this.#blocks.get(block);
    if (stored === undefined) {
      stored = this.base.read(block * BLOCK_BYTES, BLOCK_BYTES);
      this.#blocks.set(block, stored);
    }
    return stored;
  }

  /** Calls visit for each block that [offset, offset+length) touches. */
  #eachBlock(offset: number, length: number, visit: BlockVisit): void {
    for (let at = 0; at < length;) {
      const within = (offset + at) % BLOCK_BYTES;
      const span = Math.min(BLOCK_BYTES - within, length - at);
      visit(Math.floor((offset + at) / BLOCK_BYTES), within, at, span);
      at += span;
    }
  }
}
