// The region under a Heap: its one mapping (the whole region, at most 1 GiB), typed views of
// it that every heap and tree access goes through, the log of pages written since the last
// commit, and the ways an interval ends: pmsync, discard, or a rollback that copies the
// committed bytes of the logged pages back (which leaves page 0, where a PMap keeps its lock,
// alone; discard would put it back too). Growth unmaps, resizes and maps again.

import type { MappingApi, Pool, Region, SyncStats, Tracking } from '../api.js';
import { MAP_CHUNK_BYTES, PAGE_BYTES } from '../constants.js';
import { RegionError, isRegionError } from '../errors.js';
import { parseSize } from '../util/size.js';
import { PageLog } from './page_log.js';
import { HEAP_START } from './heap_layout.js';

/** How HeapRegion.open finds or makes its region. */
export interface HeapRegionOptions {
  create?: boolean;
  size?: number | string;
  tracking: Tracking;
}

/** A new heap's region size when none is given. */
export const HEAP_SIZE_DEFAULT = 64 * 2 ** 20;
/** A heap is one mapping: at most this many bytes. */
export const HEAP_SIZE_MAX = MAP_CHUNK_BYTES;
/** Bytes compared per region.read when a rollback must find the written pages itself. */
const RESTORE_CHUNK_BYTES = 2 ** 20;

export class HeapRegion {
  mapping!: MappingApi;
  bytes!: Uint8Array;
  view!: DataView;
  /** The same memory as a Buffer, for native compares. */
  buf!: Buffer;
  /** Region size = mapping length: the heap's end. */
  end = 0;
  readonly log: PageLog;
  /** Called when the heap's top rises (before anything above the old top is written). */
  onTop: ((top: number) => void) | null = null;

  /**
   * Opens (and with `create`, creates) the region `name` and maps all of it. A `size` larger
   * than an existing region grows it first (BUSY while any process maps it).
   */
  static open(pool: Pool, name: string, options: HeapRegionOptions, what: string): HeapRegion {
    const exists = regionExists(pool, name);
    if (!exists) {
      if (options.create !== true) {
        throw new RegionError(
          'NOT_FOUND',
          `${what}: region "${name}" does not exist; pass { create: true } to make it`,
        );
      }
      const size = checkHeapSize(options.size ?? HEAP_SIZE_DEFAULT, what);
      try {
        pool.create(name, { size });
      } catch (error) {
        if (!isRegionError(error, 'EXISTS')) throw error; // another process made it first: use it
      }
    }
    let info = pool.stat(name);
    if (exists && options.size !== undefined && checkHeapSize(options.size, what) > info.sizeBytes) {
      pool.resize(name, checkHeapSize(options.size, what)); // BUSY while any process maps it
      info = pool.stat(name);
    }
    if (info.sizeBytes > HEAP_SIZE_MAX || info.sizeBytes < HEAP_START * 2 || info.sizeBytes % PAGE_BYTES !== 0) {
      throw new RegionError(
        'INVALID',
        `${what}: region "${name}" is ${info.sizeBytes} bytes; a heap's region holds 8 KiB to 1 GiB, in whole pages`,
      );
    }
    return new HeapRegion(pool, pool.open(name), options.tracking);
  }

  constructor(
    readonly pool: Pool,
    readonly region: Region,
    readonly tracking: Tracking,
  ) {
    this.attach(region.map({ tracking }));
    this.log = new PageLog(this.end / PAGE_BYTES, (offset, length) => this.mapping.markDirty(offset, length));
  }

  private attach(mapping: MappingApi): void {
    this.mapping = mapping;
    this.bytes = new Uint8Array(mapping.buffer);
    this.view = new DataView(mapping.buffer);
    this.buf = Buffer.from(mapping.buffer);
    this.end = mapping.length;
  }

  u32(offset: number): number {
    return this.view.getUint32(offset, true);
  }

  setU32(offset: number, value: number): void {
    this.view.setUint32(offset, value, true);
    this.log.touch(offset, 4);
  }

  write(offset: number, bytes: Uint8Array): void {
    this.bytes.set(bytes, offset);
    if (bytes.length > 0) this.log.touch(offset, bytes.length);
  }

  /** Moves [from, from + length) to `to` within the region (copyWithin), logging the target. */
  move(to: number, from: number, length: number): void {
    if (length <= 0) return;
    this.bytes.copyWithin(to, from, from + length);
    this.log.touch(to, length);
  }

  pmsync(): SyncStats {
    const stats = this.mapping.pmsync();
    this.log.clear();
    return stats;
  }

  discard(): SyncStats {
    const stats = this.mapping.discard();
    this.log.clear();
    return stats;
  }

  /**
   * Puts the logged pages back to their committed bytes through this mapping (the working
   * copy, so every process sees it). They stay marked dirty: the next pmsync writes them
   * again, unchanged.
   */
  restoreLogged(): void {
    const pages = [...this.log.pages].sort((a, b) => a - b);
    for (let i = 0; i < pages.length; ) {
      let j = i + 1;
      while (j < pages.length && pages[j] === (pages[j - 1] ?? 0) + 1 && j - i < RESTORE_CHUNK_BYTES / PAGE_BYTES) j++;
      const offset = (pages[i] ?? 0) * PAGE_BYTES;
      this.bytes.set(this.region.read(offset, (j - i) * PAGE_BYTES), offset);
      i = j;
    }
    this.log.clear();
  }

  /**
   * Puts every page of [from, to) that differs from its committed bytes back, marking it
   * dirty: the repair when another process died in the middle of a batch and only the
   * working copy knows what it wrote. Returns the pages put back.
   */
  restoreRange(from: number, to: number): number {
    let restored = 0;
    const end = Math.min(this.end, Math.ceil(to / PAGE_BYTES) * PAGE_BYTES);
    for (let at = from - (from % PAGE_BYTES); at < end; at += RESTORE_CHUNK_BYTES) {
      const length = Math.min(RESTORE_CHUNK_BYTES, end - at);
      const committed = this.region.read(at, length);
      for (let page = 0; page * PAGE_BYTES < length; page++) {
        const offset = at + page * PAGE_BYTES;
        const want = committed.subarray(page * PAGE_BYTES, (page + 1) * PAGE_BYTES);
        if (this.buf.compare(want, 0, want.length, offset, offset + want.length) === 0) continue;
        this.bytes.set(want, offset);
        this.mapping.markDirty(offset, want.length);
        restored++;
      }
    }
    this.log.clear();
    return restored;
  }

  /**
   * Grows the region to `size` bytes: unmap, resize, map again. Stores not pmsynced are lost
   * (a resize drops the working copy), so call it between updates. BUSY if another mapping of
   * the region exists (in this or another process).
   */
  grow(size: number): void {
    if (size <= this.end) return;
    if (size > HEAP_SIZE_MAX) {
      throw new RegionError(
        'NO_SPACE',
        `region "${this.region.name}" cannot grow past ${HEAP_SIZE_MAX} bytes (one mapping)`,
      );
    }
    this.mapping.unmap();
    try {
      this.pool.resize(this.region.name, size);
    } finally {
      this.attach(this.region.map({ tracking: this.tracking }));
      this.log.resize(this.end / PAGE_BYTES);
    }
  }

  close(): void {
    this.mapping.unmap();
  }
}

function checkHeapSize(spec: number | string, what: string): number {
  const size = parseSize(spec, `${what} size`);
  if (size % PAGE_BYTES !== 0 || size < HEAP_START * 2 || size > HEAP_SIZE_MAX) {
    throw new RegionError('INVALID', `${what}: size ${size} must be a multiple of ${PAGE_BYTES} from 8 KiB to 1 GiB`);
  }
  return size;
}

/** Whether the pool has a region `name` (stat, not list: one lookup however many regions). */
export function regionExists(pool: Pool, name: string): boolean {
  try {
    pool.stat(name);
    return true;
  } catch (error) {
    if (isRegionError(error, 'NOT_FOUND')) return false;
    throw error;
  }
}
