// A sparse PmDevice over a SimDevice: the pool's address space can be large (regions around
// 1 GiB, where a page table gains its third level, need a pool above 1 GiB, more than a
// SimDevice holds), while only the blocks ever stored to take memory. Each pool block is
// mapped to a block of a compact backing SimDevice on its first non-zero store; a block never
// stored to reads as zeros, as a fresh pool's blocks do.
//
// The persistency model is the backing SimDevice's: every store, flush and fence goes through
// it, so its crash images are exactly the crash images of the pool. The block map is the
// simulator's address translation, not PM state: it is kept as is across a crash, and a
// block first mapped by an undecided store reads as zeros in an image where that store did
// not persist (the backing bytes start zero and durable), which is what PM would hold.

import { BLOCK_BYTES } from '../constants.js';
import { checkRange, checkWordOffset, DeviceCounters, type PmDevice } from '../pm/device.js';
import { type CrashImageOptions, SimDevice } from '../pm/sim_device.js';

const ZERO_BLOCK = new Uint8Array(BLOCK_BYTES);
/** The backing device grows by doubling, from this size. */
const BACKING_BYTES_MIN = 64 * BLOCK_BYTES;

export class SparseSimDevice implements PmDevice {
  readonly counters = new DeviceCounters();
  #sizeBytes: number;
  #backing: SimDevice;
  /** Pool block -> backing block. */
  readonly #map: Map<number, number>;

  private constructor(sizeBytes: number, backing: SimDevice, map: Map<number, number>) {
    this.#sizeBytes = sizeBytes;
    this.#backing = backing;
    this.#map = map;
  }

  /** A zeroed, fully durable device of `sizeBytes` (a multiple of 4096). */
  static create(sizeBytes: number): SparseSimDevice {
    return new SparseSimDevice(sizeBytes, new SimDevice({ sizeBytes: BACKING_BYTES_MIN }), new Map());
  }

  get sizeBytes(): number {
    return this.#sizeBytes;
  }

  /** The backing device's bytes in use (what a crash image costs). */
  get backingBytes(): number {
    return this.#map.size * BLOCK_BYTES;
  }

  read(offset: number, length: number): Uint8Array {
    checkRange(this, offset, length, 'read');
    const out = new Uint8Array(length);
    this.#pieces(offset, length, (block, within, at, n) => {
      const backed = this.#map.get(block);
      if (backed !== undefined) out.set(this.#backing.view(backed * BLOCK_BYTES + within, n), at);
    });
    return out;
  }

  view(offset: number, length: number): Uint8Array {
    checkRange(this, offset, length, 'view');
    const block = Math.floor(offset / BLOCK_BYTES);
    const within = offset % BLOCK_BYTES;
    if (within + length > BLOCK_BYTES) return this.read(offset, length); // whole blocks: a copy is as good
    const backed = this.#map.get(block);
    if (backed === undefined) return ZERO_BLOCK.subarray(within, within + length);
    return this.#backing.view(backed * BLOCK_BYTES + within, length);
  }

  readU32(offset: number): number {
    checkWordOffset(this, offset);
    const backed = this.#map.get(Math.floor(offset / BLOCK_BYTES));
    return backed === undefined ? 0 : this.#backing.readU32(backed * BLOCK_BYTES + (offset % BLOCK_BYTES));
  }

  write(offset: number, bytes: Uint8Array): void {
    checkRange(this, offset, bytes.length, 'write');
    this.counters.bytesWritten += bytes.length;
    this.#pieces(offset, bytes.length, (block, within, at, n) => {
      const piece = bytes.subarray(at, at + n);
      const backed = this.#map.get(block) ?? (piece.some((b) => b !== 0) ? this.#mapBlock(block) : undefined);
      if (backed !== undefined) this.#backing.write(backed * BLOCK_BYTES + within, piece);
    });
  }

  fill(offset: number, length: number, value = 0): void {
    checkRange(this, offset, length, 'fill');
    this.counters.bytesWritten += length;
    this.#pieces(offset, length, (block, within, _at, n) => {
      const backed = this.#map.get(block) ?? (value !== 0 ? this.#mapBlock(block) : undefined);
      if (backed !== undefined) this.#backing.fill(backed * BLOCK_BYTES + within, n, value);
    });
  }

  flush(offset: number, length: number): void {
    checkRange(this, offset, length, 'flush');
    if (length > 0) this.counters.linesFlushed += Math.ceil((offset + length) / 64) - Math.floor(offset / 64);
    this.#pieces(offset, length, (block, within, _at, n) => {
      const backed = this.#map.get(block);
      if (backed !== undefined) this.#backing.flush(backed * BLOCK_BYTES + within, n);
    });
  }

  fence(): void {
    this.counters.fences += 1;
    this.#backing.fence();
  }

  persist(offset: number, length: number): void {
    this.flush(offset, length);
    this.fence();
  }

  /** Pool growth: the new blocks read as zeros and cost nothing until stored to. */
  resize(sizeBytes: number): void {
    if (sizeBytes < this.#sizeBytes) throw new RangeError(`resize: ${sizeBytes} is smaller than ${this.#sizeBytes}`);
    this.#sizeBytes = sizeBytes;
  }

  close(): void {
    this.#backing.close();
  }

  /** Called before every fence takes effect, as SimDevice.onFence (null clears it). */
  onFence(hook: ((device: SparseSimDevice) => void) | null): void {
    this.#backing.onFence(hook === null ? null : () => hook(this));
  }

  /** The pool a crash now could leave: one device per backing crash image. */
  *crashDevices(options: CrashImageOptions): Generator<SparseSimDevice, void, undefined> {
    const map = new Map(this.#map);
    for (const image of this.#backing.crashImages(options)) yield this.#withBacking(SimDevice.fromImage(image), map);
  }

  /** The current contents, all durable (a clean copy of the pool). */
  snapshot(): SparseSimDevice {
    const backing = SimDevice.fromImage(this.#backing.read(0, this.#backing.sizeBytes));
    return this.#withBacking(backing, new Map(this.#map));
  }

  #withBacking(backing: SimDevice, map: Map<number, number>): SparseSimDevice {
    return new SparseSimDevice(this.#sizeBytes, backing, new Map(map));
  }

  #mapBlock(block: number): number {
    const backed = this.#map.size;
    const needed = (backed + 1) * BLOCK_BYTES;
    if (needed > this.#backing.sizeBytes) this.#backing.resize(Math.max(needed, 2 * this.#backing.sizeBytes));
    this.#map.set(block, backed);
    return backed;
  }

  /** Splits [offset, offset + length) into per-block pieces. */
  #pieces(offset: number, length: number, each: (block: number, within: number, at: number, n: number) => void): void {
    let at = 0;
    while (at < length) {
      const position = offset + at;
      const within = position % BLOCK_BYTES;
      const n = Math.min(BLOCK_BYTES - within, length - at);
      each(Math.floor(position / BLOCK_BYTES), within, at, n);
      at += n;
    }
  }
}
