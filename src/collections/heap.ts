// Heap: a memory allocator whose state lives in its region (heap_layout.ts), so it is
// committed with the data by the same pmsync and is never out of step with it after a crash.
// Segregated free lists (31 classes of 16 bytes below 512 bytes, then one per power of two),
// first fit within a class, then the head of the next non-empty class, then the wilderness
// at top; boundary tags coalesce a freed block with free neighbours at once. Offsets are
// region offsets: the same pointer in every process.

import type { MappingApi, Pool, SyncStats, Tracking } from '../api.js';
import { RegionError } from '../errors.js';
import { checkOptions } from '../util/options.js';
import { parseSize } from '../util/size.js';
import { FreeLists } from './free_lists.js';
import { checkHeap, type HeapReport } from './heap_check.js';
import {
  ALLOCATED, BLOCK_CHECK, BLOCK_HEADER_BYTES, BLOCK_MIN_BYTES, blockSizeFor, classOf, FIRST_BLOCK, HEADER,
  HEAP_MAGIC, HEAP_START, HEAP_VERSION, PREVIOUS_ALLOCATED, SIZE_MASK,
} from './heap_layout.js';
import { HEAP_SIZE_MAX, HeapRegion } from './heap_region.js';

export type { HeapReport } from './heap_check.js';

/** Options of Heap.open. */
export interface HeapOpenOptions {
  /** Create the region if it does not exist (default false). */
  create?: boolean;
  /** Size of a region created now (default 64 MiB; sparse, at most 1 GiB). */
  size?: number | string;
  /** Dirty tracking of the heap's mapping (default 'fault': your own stores are tracked). */
  tracking?: Tracking;
}

/** Thrown (as NO_SPACE) when an allocation does not fit below the region's end. */
export class HeapFullError extends RegionError {
  constructor(readonly needBytes: number, message: string) {
    super('NO_SPACE', message);
  }
}

/** Free-list search within one class stops after this many blocks (then the next class). */
const FIRST_FIT_STEPS = 16;

/**
 * A heap in a region: alloc, free and realloc byte ranges, a root object, offsets as pointers.
 * Its state is in the region, so `pmsync()` commits it with your data, atomically.
 *
 * ```ts
 * const heap = Heap.open(pool, 'objects', { create: true });
 * const at = heap.alloc(100);          // a region offset, the same in every process
 * heap.bytes.set(data, at);            // store into the payload
 * heap.root = at;                      // what you find again after a restart
 * heap.pmsync();                       // allocator state and data, atomically
 * ```
 *
 * Page 0 of the region is yours (the heap starts at 4096): put a RegionLock there. `bytes`
 * and `view` are replaced when the heap grows. With tracking 'manual', tell the mapping what
 * you wrote (`heap.touch(offset, length)`); the heap's own writes are always reported.
 */
export class Heap {
  private readonly lists: FreeLists;

  /** @internal */
  constructor(readonly memory: HeapRegion) {
    this.lists = new FreeLists(memory);
    const unformatted = memory.u32(HEAP_START + HEADER.magic) === 0 && memory.u32(HEAP_START + HEADER.top) === 0;
    if (unformatted && blank(memory)) this.format();
    const magic = memory.u32(HEAP_START + HEADER.magic);
    const version = memory.u32(HEAP_START + HEADER.version);
    if (magic !== HEAP_MAGIC || version !== HEAP_VERSION) {
      throw new RegionError(
        'CORRUPT',
        `region "${memory.region.name}" does not hold a heap (magic ${magic.toString(16)}, version ${version})`,
      );
    }
  }

  /** Opens the heap in region `name` (formatting it if the region was never written). */
  static open(pool: Pool, name: string, options: HeapOpenOptions = {}): Heap {
    checkOptions(options, ['create', 'size', 'tracking'], 'Heap.open options');
    return new Heap(HeapRegion.open(pool, name, { ...options, tracking: options.tracking ?? 'fault' }, 'Heap.open'));
  }

  private format(): void {
    const m = this.memory;
    m.setU32(HEAP_START + HEADER.top, FIRST_BLOCK);
    m.setU32(HEAP_START + HEADER.version, HEAP_VERSION);
    m.setU32(HEAP_START + HEADER.magic, HEAP_MAGIC);
  }

  /** The region's bytes (replaced when the heap grows). */
  get bytes(): Uint8Array {
    return this.memory.bytes;
  }

  /** A DataView of the region (replaced when the heap grows). */
  get view(): DataView {
    return this.memory.view;
  }

  /** The heap's mapping (replaced when the heap grows). */
  get mapping(): MappingApi {
    return this.memory.mapping;
  }

  /** The end of the heap's region: no block reaches past it. */
  get end(): number {
    return this.memory.end;
  }

  /** The offset of the root object (0 = none): set it to what you must find again. */
  get root(): number {
    return this.memory.u32(HEAP_START + HEADER.root);
  }

  set root(offset: number) {
    if (offset !== 0) this.blockOf(offset, 'root');
    this.memory.setU32(HEAP_START + HEADER.root, offset);
  }

  /** Allocates `length` bytes (contents undefined); returns the payload's region offset. */
  alloc(length: number): number {
    if (!Number.isSafeInteger(length) || length < 0 || length > HEAP_SIZE_MAX) {
      throw new RegionError('INVALID', `alloc: length ${length} is not a byte count up to ${HEAP_SIZE_MAX}`);
    }
    const size = blockSizeFor(length);
    const found = this.takeFree(size);
    const block = found !== 0 ? found : this.takeTop(size);
    this.count(1, this.sizeAt(block));
    return block + BLOCK_HEADER_BYTES;
  }

  /** Frees an allocated payload offset. INVALID if it is not one (a double free included). */
  free(offset: number): void {
    const block = this.blockOf(offset, 'free');
    const size = this.sizeAt(block);
    this.count(-1, -size);
    this.release(block, size);
  }

  /**
   * Resizes an allocation to `length` bytes, in place when the block or its free neighbour
   * allows, else by moving it (the first min(old, new) bytes are kept). Returns the offset.
   */
  realloc(offset: number, length: number): number {
    const block = this.blockOf(offset, 'realloc');
    if (!Number.isSafeInteger(length) || length < 0 || length > HEAP_SIZE_MAX) {
      throw new RegionError('INVALID', `realloc: length ${length} is not a byte count up to ${HEAP_SIZE_MAX}`);
    }
    const want = blockSizeFor(length);
    const size = this.sizeAt(block);
    if (want <= size) {
      this.splitTail(block, size, want);
      this.count(0, this.sizeAt(block) - size);
      return offset;
    }
    const next = block + size;
    const top = this.top;
    if (next === top && block + want <= this.end) {
      this.setTop(block + want);
      this.setHeader(block, want, this.flagsAt(block));
      this.count(0, want - size);
      return offset;
    }
    if (next < top && !this.isAllocated(next) && size + this.sizeAt(next) >= want) {
      const merged = size + this.sizeAt(next);
      this.lists.unlink(next);
      this.setHeader(block, merged, this.flagsAt(block));
      this.setPreviousAllocated(block + merged, true);
      this.splitTail(block, merged, want);
      this.count(0, this.sizeAt(block) - size);
      return offset;
    }
    const moved = this.alloc(length);
    this.memory.move(moved, offset, size - BLOCK_HEADER_BYTES);
    this.free(offset);
    return moved;
  }

  /** Payload bytes of an allocation (at least what was asked for). */
  sizeOf(offset: number): number {
    return this.sizeAt(this.blockOf(offset, 'sizeOf')) - BLOCK_HEADER_BYTES;
  }

  /** Stores bytes at a region offset and reports the pages to the mapping. */
  write(offset: number, bytes: Uint8Array): void {
    if (!Number.isSafeInteger(offset) || offset < HEAP_START || offset + bytes.length > this.end) {
      throw new RegionError('INVALID', `write: [${offset}, ${offset + bytes.length}) is outside the heap`);
    }
    this.memory.write(offset, bytes);
  }

  /** Reports [offset, offset + length) as written (tracking 'manual' needs it for your stores). */
  touch(offset: number, length: number): void {
    this.memory.log.touch(offset, length);
  }

  /** Commits every page written since the last pmsync, the heap's state included. */
  pmsync(): SyncStats {
    return this.memory.pmsync();
  }

  /** Puts every page written since the last pmsync back: the heap is as it was then. */
  discard(): SyncStats {
    return this.memory.discard();
  }

  /**
   * Grows the region (default: twice its size, at most 1 GiB) by unmapping, resizing and
   * mapping it again. Stores not pmsynced are lost: call it right after a pmsync. BUSY while
   * another mapping of the region exists.
   */
  grow(size?: number | string): void {
    const bytes = size === undefined ? Math.min(HEAP_SIZE_MAX, this.end * 2) : parseSize(size, 'grow size');
    if (bytes % 4096 !== 0 || bytes <= this.end) {
      throw new RegionError('INVALID', `grow: ${bytes} bytes is not a multiple of 4096 above the heap's ${this.end}`);
    }
    this.memory.grow(bytes);
  }

  /**
   * Walks every block and free list: overlaps, broken tags, lists and counts are problems;
   * with `reachable` (every payload offset your structure references), allocated blocks not
   * in it are leaks, and offsets that are not allocated blocks are problems.
   */
  check(reachable?: Iterable<number>): HeapReport {
    return checkHeap(this.memory, reachable);
  }

  /** Allocated blocks and bytes (headers included), and the bytes still free below the end. */
  stats(): { blocks: number; allocatedBytes: number; top: number; end: number } {
    const m = this.memory;
    const blocks = m.u32(HEAP_START + HEADER.blocks);
    return { blocks, allocatedBytes: m.u32(HEAP_START + HEADER.bytes), top: this.top, end: this.end };
  }

  /** Unmaps the heap; stores not pmsynced stay in the working copy until the pool closes. */
  close(): void {
    this.memory.close();
  }

  // ---- blocks ------------------------------------------------------------------------------

  /** The block of an allocated payload offset, or INVALID naming the caller. */
  private blockOf(offset: number, what: string): number {
    const block = offset - BLOCK_HEADER_BYTES;
    if (!Number.isSafeInteger(offset) || block < FIRST_BLOCK || block >= this.top || block % 8 !== 0) {
      throw new RegionError('INVALID', `${what}: ${offset} is not an allocated offset of this heap`);
    }
    const word = this.memory.u32(block);
    const size = (word & SIZE_MASK) >>> 0;
    const checked = this.memory.u32(block + 4) === (size ^ BLOCK_CHECK) >>> 0;
    if ((word & ALLOCATED) === 0 || !checked || block + size > this.top) {
      throw new RegionError(
        'INVALID',
        `${what}: ${offset} is not an allocated offset of this heap (freed, or inside a block)`,
      );
    }
    return block;
  }

  private get top(): number {
    return this.memory.u32(HEAP_START + HEADER.top);
  }

  private setTop(top: number): void {
    this.memory.onTop?.(top);
    this.memory.setU32(HEAP_START + HEADER.top, top);
  }

  private sizeAt(block: number): number {
    return (this.memory.u32(block) & SIZE_MASK) >>> 0;
  }

  private flagsAt(block: number): number {
    return this.memory.u32(block) & 3;
  }

  private isAllocated(block: number): boolean {
    return (this.memory.u32(block) & ALLOCATED) !== 0;
  }

  private setHeader(block: number, size: number, flags: number): void {
    this.memory.setU32(block, (size | flags) >>> 0);
    this.memory.setU32(block + 4, (size ^ BLOCK_CHECK) >>> 0);
  }

  private setPreviousAllocated(block: number, allocated: boolean): void {
    if (block >= this.top) return;
    const word = this.memory.u32(block);
    this.memory.setU32(block, allocated ? word | PREVIOUS_ALLOCATED : word & ~PREVIOUS_ALLOCATED);
  }

  private count(blocks: number, bytes: number): void {
    const m = this.memory;
    m.setU32(HEAP_START + HEADER.blocks, m.u32(HEAP_START + HEADER.blocks) + blocks);
    m.setU32(HEAP_START + HEADER.bytes, m.u32(HEAP_START + HEADER.bytes) + bytes);
  }

  /** A free block of at least `size` bytes from the lists, split and marked allocated; 0 if none. */
  private takeFree(size: number): number {
    const first = classOf(size);
    let block = 0;
    let steps = 0;
    for (let at = this.lists.head(first); at !== 0 && steps < FIRST_FIT_STEPS; at = this.lists.next(at), steps++) {
      if (this.sizeAt(at) >= size) {
        block = at;
        break;
      }
    }
    if (block === 0) {
      const next = this.lists.nextNonEmpty(first + 1);
      if (next < 0) return 0;
      block = this.lists.head(next);
    }
    const have = this.sizeAt(block);
    this.lists.unlink(block);
    this.setHeader(block, have, this.flagsAt(block) | ALLOCATED);
    this.setPreviousAllocated(block + have, true);
    this.splitTail(block, have, size);
    return block;
  }

  /** A block of `size` bytes carved from the wilderness; HeapFullError if it does not fit. */
  private takeTop(size: number): number {
    const block = this.top;
    if (block + size > this.end) {
      const where = `heap in region "${this.memory.region.name}"`;
      throw new HeapFullError(size, `${where} is full: ${size} bytes do not fit below ${this.end} (top ${block})`);
    }
    this.setTop(block + size);
    this.setHeader(block, size, ALLOCATED | PREVIOUS_ALLOCATED); // the block below top is allocated
    return block;
  }

  /** An allocated block of `size` keeps `want` bytes; a tail of at least BLOCK_MIN_BYTES goes back (uncounted). */
  private splitTail(block: number, size: number, want: number): void {
    if (size - want < BLOCK_MIN_BYTES) return;
    this.setHeader(block, want, this.flagsAt(block));
    const tail = block + want;
    this.setHeader(tail, size - want, ALLOCATED | PREVIOUS_ALLOCATED);
    this.release(tail, size - want);
  }

  /** Frees a block (already uncounted): coalesce with free neighbours, or give it to top. */
  private release(block: number, size: number): void {
    let start = block;
    let length = size;
    let flags = this.flagsAt(block) & PREVIOUS_ALLOCATED;
    if (flags === 0) {
      const before = this.memory.u32(block - 4);
      start = block - before;
      this.lists.unlink(start);
      length += before;
      flags = this.flagsAt(start) & PREVIOUS_ALLOCATED;
    }
    const next = start + length;
    if (next === this.top) {
      this.setTop(start); // the wilderness takes it; the block below is allocated (or none)
      return;
    }
    if (!this.isAllocated(next)) {
      this.lists.unlink(next);
      length += this.sizeAt(next);
    }
    this.setHeader(start, length, flags);
    this.memory.setU32(start + length - 4, length);
    this.setPreviousAllocated(start + length, false);
    this.lists.link(start, length);
  }
}

/**
 * A heap is formatted only into a region that was never committed to (epoch 0), so a region
 * holding other data is refused (CORRUPT above), never overwritten, whatever its header words.
 */
function blank(memory: HeapRegion): boolean {
  return memory.region.info().epoch === 0;
}
