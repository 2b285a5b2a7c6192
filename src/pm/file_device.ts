// FileDevice: a PmDevice over a pool file mapped with the addon (DESIGN.md section 3).
//
// The file is mapped MAP_SHARED as one mapping, seen from JavaScript as ArrayBuffers of
// `chunkBytes` (1 GiB; one ArrayBuffer cannot hold a large pool). read/write/fill copy across
// chunk boundaries; view() returns a zero-copy window and so throws RangeError if the range
// crosses one (a chunk is a multiple of 4096, so a block never does).
//
// Persistence is chosen once, at open:
//   pmem   flush = CPU cache-line write-back (clwb > clflushopt > clflush), fence = sfence.
//          Durable on a DAX file mapped MAP_SYNC; on tmpfs it emulates PM (no reboot survival).
//   msync  flush records the touched pages, fence msyncs them in the order recorded.
//   auto   MAP_SYNC works (DAX) -> pmem; tmpfs -> pmem (with a one-line notice); else msync.
// 'pmem' asked for on an ordinary disk file is for tests and benchmarks only: CPU flushes
// reach the page cache, not the disk.
// Both modes count 64-byte lines in linesFlushed, so counters compare across modes.

import fs from 'node:fs';
import path from 'node:path';
import { type CommitPlan, encodeNumbers, executeCommit, planBytes } from './commit_plan.js';
import { CHUNK_BYTES_MAX, addon, type FlushInstruction, type MapHandle } from '../arch/addon.js';
import { POOL_FILE_MODE } from '../constants.js';
import { RegionError } from '../errors.js';
import { assert } from '../util/assert.js';
import { CACHE_LINE_BYTES, DeviceCounters, checkRange, checkWordOffset, type PmDevice } from './device.js';
import {
  checkChunkOption, checkPersistenceOption, checkSizeOption, errnoCode, fsError, isTmpfs, pmemNotice, syncDirectory,
  tmpfsNotice,
  type FileDeviceCreateOptions, type FileDeviceOptions, type Persistence, type PersistenceOption,
} from './file_support.js';

export type { FileDeviceCreateOptions, FileDeviceOptions, Persistence, PersistenceOption } from './file_support.js';
import { reserveSpace } from './reserve.js';

export const BLOCK_BYTES = 4096;
export const CHUNK_BYTES_DEFAULT = CHUNK_BYTES_MAX; // 1 GiB
// Flushed ranges waiting for a fence, in msync mode. Past this, the oldest are synced early:
// a flushed line may reach the persistence domain before the fence, so this is allowed.
const PENDING_RANGES_MAX = 1024;

interface Mapped {
  handle: MapHandle;
  chunks: Uint8Array[];
  words: DataView[]; // over the same chunks, for readU32
  sync: boolean; // mapped with MAP_SYNC
}

/** A page-aligned byte range recorded by flush() in msync mode. */
interface PageRange {
  start: number;
  end: number;
}

function linesOf(offset: number, length: number): number {
  if (length === 0) return 0;
  return Math.floor((offset + length - 1) / CACHE_LINE_BYTES) - Math.floor(offset / CACHE_LINE_BYTES) + 1;
}

/**
 * A PmDevice over a pool file mapped into this process: flushes with clwb, clflushopt or
 * clflush plus sfence ('pmem', for DAX files or tmpfs) or msync of the touched pages
 * ('msync'). Pools larger than one ArrayBuffer are mapped in chunks.
 */
export class FileDevice implements PmDevice {
  /** Lines flushed, fences and bytes written so far. */
  readonly counters = new DeviceCounters();
  /** The pool file. */
  readonly path: string;
  /** Opened without write access (fsck without repair): writes throw. */
  readonly readOnly: boolean;
  /** Bytes per mapped chunk (the largest ArrayBuffer one mapping piece uses). */
  readonly chunkBytes: number;
  #fd: number;
  #sizeBytes: number;
  #persistence: Persistence;
  #mapped: Mapped | undefined;
  #pending: PageRange[] = [];
  /** The commit call's numbers, reused (encodeNumbers grows it). */
  #plan = { numbers: new Float64Array(256) };

  /**
   * Creates a new pool file of sizeBytes (zeros, mode 0600, every block reserved: NO_SPACE if
   * the file system cannot hold it, and no file is left) and opens it; EXISTS if the path is taken.
   */
  static create(file: string, options: FileDeviceCreateOptions): FileDevice {
    checkSizeOption(options.sizeBytes, 'sizeBytes');
    checkPersistenceOption(options.persistence ?? 'auto');
    checkChunkOption(options.chunkBytes ?? CHUNK_BYTES_DEFAULT);
    let fd: number;
    try {
      fd = fs.openSync(file, 'wx+', POOL_FILE_MODE);
    } catch (error) {
      throw fsError(error, file, 'create');
    }
    try {
      fs.fchmodSync(fd, POOL_FILE_MODE); // whatever the umask: other users reach a pool through regiond
      reserveSpace(fd, file, 0, options.sizeBytes); // a store into the mapping can never find the disk full
      fs.ftruncateSync(fd, options.sizeBytes);
      fs.fsyncSync(fd);
      syncDirectory(path.dirname(file));
    } catch (error) {
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
      throw error instanceof RegionError ? error : fsError(error, file, 'set the size of');
    }
    fs.closeSync(fd);
    return new FileDevice(file, { persistence: options.persistence ?? 'auto', chunkBytes: options.chunkBytes });
  }

  constructor(file: string, options: FileDeviceOptions = {}) {
    const persistence = options.persistence ?? 'auto';
    checkPersistenceOption(persistence);
    this.chunkBytes = options.chunkBytes ?? CHUNK_BYTES_DEFAULT;
    checkChunkOption(this.chunkBytes);
    this.path = file;
    this.readOnly = options.readOnly ?? false;
    this.#fd = FileDevice.#open(file, this.readOnly);
    try {
      this.#sizeBytes = FileDevice.#poolSize(this.#fd, file);
      const { mapped, persistence: resolved } = this.#mapWith(persistence);
      this.#mapped = mapped;
      this.#persistence = resolved;
    } catch (error) {
      fs.closeSync(this.#fd);
      throw error;
    }
  }

  static #open(file: string, readOnly: boolean): number {
    try {
      return fs.openSync(file, readOnly ? 'r' : 'r+');
    } catch (error) {
      throw fsError(error, file, 'open');
    }
  }

  static #poolSize(fd: number, file: string): number {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new RegionError('INVALID', `pool ${file} is not a regular file`);
    if (stat.size <= 0 || stat.size % BLOCK_BYTES !== 0) {
      throw new RegionError('INVALID', `pool file ${file} has ${stat.size} bytes, not a positive multiple of ${BLOCK_BYTES}; is it a pool?`);
    }
    return stat.size;
  }

  /** Maps the whole file and settles the persistence mode (once, at open). */
  #mapWith(option: PersistenceOption): { mapped: Mapped; persistence: Persistence } {
    if (addon.flushInstruction() === 'none') {
      // No cache-line write-back on this CPU: CPU flushes cannot make anything durable.
      if (option === 'pmem') throw new RegionError('UNSUPPORTED', `persistence 'pmem' needs a cache-line write-back instruction, and this CPU has none; use 'msync' or 'auto'`);
      return { mapped: this.#map(false), persistence: 'msync' };
    }
    if (option === 'msync') return { mapped: this.#map(false), persistence: 'msync' };
    const synced = this.readOnly ? undefined : this.#tryMapSync();
    if (synced !== undefined) return { mapped: synced, persistence: 'pmem' };
    if (option === 'pmem') {
      if (!isTmpfs(this.path)) pmemNotice(this.path);
      return { mapped: this.#map(false), persistence: 'pmem' };
    }
    if (!isTmpfs(this.path)) return { mapped: this.#map(false), persistence: 'msync' };
    tmpfsNotice(this.path);
    return { mapped: this.#map(false), persistence: 'pmem' };
  }

  /** A MAP_SYNC mapping if the file is on DAX, else undefined. */
  #tryMapSync(): Mapped | undefined {
    try {
      return this.#map(true);
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      if (errnoCode(cause) === 'EOPNOTSUPP' || errnoCode(cause) === 'EINVAL') return undefined;
      throw error;
    }
  }

  #map(sync: boolean): Mapped {
    let handle: MapHandle;
    try {
      handle = addon.map(this.#fd, 0, this.#sizeBytes, !this.readOnly, sync);
    } catch (error) {
      throw fsError(error, this.path, 'map');
    }
    const chunks = addon.buffers(handle, this.chunkBytes).map((buffer) => new Uint8Array(buffer));
    assert(chunks.length === Math.ceil(this.#sizeBytes / this.chunkBytes), 'one chunk per chunkBytes of the pool');
    return { handle, chunks, words: chunks.map((c) => new DataView(c.buffer, c.byteOffset, c.length)), sync };
  }

  get sizeBytes(): number {
    return this.#sizeBytes;
  }

  /** The resolved mode: 'pmem' or 'msync' (never 'auto'). */
  get persistence(): Persistence {
    return this.#persistence;
  }

  /**
   * The cache-line flush instruction this CPU offers, chosen at load: 'clwb' > 'clflushopt' >
   * 'clflush'.
   */
  get flushInstruction(): FlushInstruction {
    return addon.flushInstruction();
  }

  /** True if the file is mapped with MAP_SYNC (a DAX file: CPU flushes alone are durable). */
  get mapSync(): boolean {
    return this.#live('mapSync').sync;
  }

  /** The descriptor, for locks. Valid until close(). */
  get fd(): number {
    this.#live('fd');
    return this.#fd;
  }

  /** True after close(). */
  get closed(): boolean {
    return this.#mapped === undefined;
  }

  #live(what: string): Mapped {
    if (this.#mapped === undefined) throw new RegionError('CLOSED', `${what} on pool ${this.path} after close`);
    return this.#mapped;
  }

  #writable(what: string): Mapped {
    const mapped = this.#live(what);
    if (this.readOnly) throw new RegionError('PERMISSION', `${what} on pool ${this.path}, which was opened read-only`);
    return mapped;
  }

  /**
   * Calls visit(chunk, start, end, done) for each piece of [offset, offset+length) inside one
   * chunk, in order; `done` counts the bytes of the range visited before this piece.
   */
  #pieces(mapped: Mapped, offset: number, length: number, visit: (chunk: Uint8Array, start: number, end: number, done: number) => void): void {
    let done = 0;
    while (done < length) {
      const position = offset + done;
      const chunk = mapped.chunks[Math.floor(position / this.chunkBytes)];
      assert(chunk !== undefined, 'a range inside the device lies inside its chunks');
      const start = position % this.chunkBytes;
      const end = Math.min(chunk.length, start + length - done);
      visit(chunk, start, end, done);
      done += end - start;
    }
    assert(done === length, 'pieces cover the range exactly');
  }

  read(offset: number, length: number): Uint8Array {
    const mapped = this.#live('read');
    checkRange(this, offset, length, 'read');
    const result = new Uint8Array(length);
    this.#pieces(mapped, offset, length, (chunk, start, end, done) => result.set(chunk.subarray(start, end), done));
    return result;
  }

  /** Zero-copy; RangeError if the range crosses a chunk boundary (never true of one block). */
  view(offset: number, length: number): Uint8Array {
    const mapped = this.#live('view');
    checkRange(this, offset, length, 'view');
    const start = offset % this.chunkBytes;
    if (length === 0) return new Uint8Array(0);
    if (start + length > this.chunkBytes) {
      throw new RangeError(`view: range [${offset}, ${offset + length}) crosses a ${this.chunkBytes}-byte chunk boundary; use read()`);
    }
    const chunk = mapped.chunks[Math.floor(offset / this.chunkBytes)];
    assert(chunk !== undefined && start + length <= chunk.length, 'a view lies inside one chunk');
    return chunk.subarray(start, start + length);
  }

  readU32(offset: number): number {
    const words = this.#live('readU32').words;
    checkWordOffset(this, offset);
    const chunk = words[Math.floor(offset / this.chunkBytes)] as DataView;
    return chunk.getUint32(offset % this.chunkBytes, true);
  }

  write(offset: number, bytes: Uint8Array): void {
    const mapped = this.#writable('write');
    checkRange(this, offset, bytes.length, 'write');
    this.#pieces(mapped, offset, bytes.length, (chunk, start, end, done) => chunk.set(bytes.subarray(done, done + end - start), start));
    this.counters.bytesWritten += bytes.length;
  }

  fill(offset: number, length: number, value = 0): void {
    const mapped = this.#writable('fill');
    checkRange(this, offset, length, 'fill');
    if (!Number.isInteger(value) || value < 0 || value > 255) throw new RangeError(`fill: value ${value} is not a byte`);
    this.#pieces(mapped, offset, length, (chunk, start, end) => chunk.fill(value, start, end));
    this.counters.bytesWritten += length;
  }

  flush(offset: number, length: number): void {
    const mapped = this.#live('flush');
    checkRange(this, offset, length, 'flush');
    const lines = linesOf(offset, length);
    if (this.#persistence === 'pmem') {
      const flushed = addon.flush(mapped.handle, offset, length);
      assert(flushed === lines, 'the addon flushes every line overlapping the range');
    } else if (length > 0) {
      this.#record(offset, length);
    }
    this.counters.linesFlushed += lines;
  }

  /** msync mode: remember the pages; extend the last range if this one touches it. */
  #record(offset: number, length: number): void {
    const start = Math.floor(offset / BLOCK_BYTES) * BLOCK_BYTES;
    const end = Math.ceil((offset + length) / BLOCK_BYTES) * BLOCK_BYTES;
    const last = this.#pending[this.#pending.length - 1];
    if (last !== undefined && start <= last.end && end >= last.start) {
      last.start = Math.min(last.start, start);
      last.end = Math.max(last.end, end);
      return;
    }
    if (this.#pending.length >= PENDING_RANGES_MAX) this.#syncPending();
    this.#pending.push({ start, end });
  }

  #syncPending(): void {
    const mapped = this.#live('fence');
    for (const range of this.#pending) {
      assert(range.start < range.end && range.end <= this.#sizeBytes, 'a pending range lies inside the device');
      addon.msync(mapped.handle, range.start, range.end - range.start);
    }
    this.#pending = [];
  }

  fence(): void {
    this.#live('fence');
    if (this.#persistence === 'pmem') {
      addon.fence();
    } else {
      this.#syncPending();
    }
    this.counters.fences += 1;
  }

  /**
   * A journal commit (commit_plan.ts): with CPU cache flushes, one native call runs the whole
   * plan (native/commit.c); with msync persistence, executeCommit through flush and fence.
   */
  commit(plan: CommitPlan): void {
    if (this.#persistence !== 'pmem') return executeCommit(this, plan);
    const mapped = this.#writable('commit');
    const { numbers, buffers } = encodeNumbers(plan, this.#plan); // the call reads it before it returns
    const lines = addon.commit(mapped.handle, numbers, buffers, plan.record, plan.wordValues, plan.rangeBytes);
    this.counters.linesFlushed += lines;
    this.counters.fences += 2;
    this.counters.bytesWritten += planBytes(plan);
  }

  persist(offset: number, length: number): void {
    this.flush(offset, length);
    this.fence();
  }

  /**
   * Grows the file (its new blocks reserved: NO_SPACE, with nothing changed, if the file system
   * is full) and remaps it; views and chunks from before are detached.
   */
  resize(sizeBytes: number): void {
    const old = this.#writable('resize');
    checkSizeOption(sizeBytes, 'resize: sizeBytes');
    if (sizeBytes < this.#sizeBytes) {
      throw new RegionError('INVALID', `resize of ${this.path} to ${sizeBytes} bytes would shrink it from ${this.#sizeBytes}; pools only grow`);
    }
    reserveSpace(this.#fd, this.path, this.#sizeBytes, sizeBytes); // NO_SPACE now rather than SIGBUS later
    try {
      fs.ftruncateSync(this.#fd, sizeBytes);
      fs.fsyncSync(this.#fd);
    } catch (error) {
      throw fsError(error, this.path, 'grow');
    }
    const previousSize = this.#sizeBytes;
    this.#sizeBytes = sizeBytes;
    try {
      // Map the new before dropping the old: a failure leaves the device as it was.
      this.#mapped = this.#map(old.sync);
    } catch (error) {
      this.#sizeBytes = previousSize;
      throw error;
    }
    addon.unmap(old.handle);
  }

  /** Unmaps and closes the descriptor. Idempotent; every other call afterwards is CLOSED. */
  close(): void {
    const mapped = this.#mapped;
    if (mapped === undefined) return;
    this.#mapped = undefined;
    this.#pending = [];
    addon.unmap(mapped.handle);
    fs.closeSync(this.#fd);
  }
}
