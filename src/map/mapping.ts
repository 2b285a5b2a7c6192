// A mapping: a window of a region's working copy in this address space, with the tracker
// that notices its stores. `buffer` is an ArrayBuffer over the window; `shared` a
// SharedArrayBuffer over the same memory (for Atomics and worker threads).

import { addon, type MapHandle } from '../arch/addon.js';
import type { SyncStats, Tracking } from '../api.js';
import { PAGE_BYTES } from '../constants.js';
import { RegionError } from '../errors.js';
import { assert } from '../util/assert.js';
import type { DirtyTracker, Mechanism } from './tracker.js';
import { registerReadOnly } from './fault_mechanism.js';

/** What a mapping needs from the working copy it maps (shared_copy.ts). */
export interface MappingBackend {
  readonly fd: number;
  /** Byte offset of the region's page 0 in fd. */
  readonly dataOffset: number;
  readonly label: string;
  readonly mappings: Set<Mapping>;
  makeTracker(handle: MapHandle, firstPage: number, pages: number, tracking: Tracking): DirtyTracker;
  /** The mapping goes away: keep what its tracker knows (the caller closes the tracker after). */
  detach(mapping: Mapping, tracker: DirtyTracker): void;
}

/**
 * A mapped window of a region (what Region.map returns): `buffer` and `shared` are views of
 * the region's working copy in this address space; stores into them are ordinary memory
 * stores, noticed by the mapping's dirty tracker and made durable by pmsync.
 */
export class Mapping {
  /** @internal the native mapping */
  readonly handle: MapHandle;
  /**
   * An ArrayBuffer over the window: ordinary stores into the region's working copy. Detached
   * by unmap (access then throws).
   */
  readonly buffer: ArrayBuffer;
  private sharedView: SharedArrayBuffer | undefined;
  /** The region page the window starts at (offset / 4096). */
  readonly firstPage: number;
  private readonly pages: number;
  private readonly tracker: DirtyTracker | null;
  private mapped = true;
  /** A read-only view of the window for futexes (see futexWords). */
  private futexView: { handle: MapHandle; buffer: ArrayBuffer } | null = null;

  /** @internal */
  constructor(
    private readonly copy: MappingBackend,
    /** Where the window starts in the region (a multiple of 4096). */
    readonly offset: number,
    /** Window length in bytes. */
    readonly length: number,
    /** The dirty tracking of this mapping. */
    readonly tracking: Tracking,
    /** False for a region opened 'ro': stores kill the process with a message naming the region. */
    readonly writable: boolean,
    /** The region's pmsync and discard, through the pool this mapping was made in. */
    private readonly region: { pmsync: () => SyncStats; discard: () => SyncStats },
  ) {
    assert(offset % PAGE_BYTES === 0, 'mapping: offset page-aligned');
    this.firstPage = offset / PAGE_BYTES;
    this.pages = Math.ceil(length / PAGE_BYTES);
    this.handle = addon.map(copy.fd, copy.dataOffset + offset, this.pages * PAGE_BYTES, writable, false);
    try {
      const [buffer] = addon.buffers(this.handle, this.pages * PAGE_BYTES);
      assert(buffer !== undefined, 'mapping: one buffer per window');
      this.buffer = buffer;
      this.tracker = writable ? copy.makeTracker(this.handle, this.firstPage, this.pages, tracking) : null;
      if (!writable) registerReadOnly(this.handle, copy.label);
    } catch (error) {
      addon.unmap(this.handle);
      throw error;
    }
    copy.mappings.add(this);
  }

  /** A SharedArrayBuffer over the same memory as `buffer`, for Atomics and worker threads (created on first use). */
  get shared(): SharedArrayBuffer {
    if (!this.sharedView) {
      if (this.mapped) this.tracker?.threadsMayStore();
      this.sharedView = this.mapped ? addon.sharedBuffer(this.handle, 0, this.pages * PAGE_BYTES) : new SharedArrayBuffer(this.pages * PAGE_BYTES);
    }
    return this.sharedView;
  }

  /** The mechanism behind `tracking`: 'userfaultfd' or 'mprotect' for 'fault'. */
  get mechanism(): Mechanism | 'read-only' {
    return this.tracker?.mechanism ?? 'read-only';
  }

  /** Persist every page of the region dirtied since the last pmsync, by any mapping, atomically. */
  pmsync(): SyncStats {
    this.live('pmsync');
    if (!this.writable) throw new RegionError('PERMISSION', `region "${this.copy.label}" is mapped read-only`);
    return this.region.pmsync();
  }

  /** Put every page of the region dirtied since the last pmsync, by any mapping, back to its committed bytes. */
  discard(): SyncStats {
    this.live('discard');
    if (!this.writable) throw new RegionError('PERMISSION', `region "${this.copy.label}" is mapped read-only`);
    return this.region.discard();
  }

  /** Tell a 'manual' mapping (or any) that [offset, offset+length) of this mapping was written. */
  markDirty(offset: number, length: number): void {
    const [first, end] = this.pageSpan(offset, length, 'markDirty');
    this.tracker?.markDirty(first, end);
  }

  /** Before the kernel writes into the mapping (fs.readSync into it): makes it writable and counts it. */
  prepareWrite(offset: number, length: number): void {
    const [first, end] = this.pageSpan(offset, length, 'prepareWrite');
    if (!this.tracker) throw new RegionError('PERMISSION', `region "${this.copy.label}" is mapped read-only`);
    this.tracker.prepareWrite(first, end);
  }

  /**
   * Waits while the 32-bit word at `index` (in 4-byte units from the mapping's start) holds
   * `value`, up to timeoutMs: a futex on the shared working copy, so a notify() from any
   * process mapping the region wakes it (Atomics.wait cannot: it is process-local).
   */
  wait(index: number, value: number, timeoutMs = Infinity): 'ok' | 'not-equal' | 'timed-out' {
    this.live('wait');
    this.checkWord(index, 'wait');
    if (!(timeoutMs >= 0)) throw new RegionError('INVALID', `wait: timeoutMs ${timeoutMs} is not a non-negative number`);
    return addon.futexWait(this.futexWords(), index * 4, value, timeoutMs);
  }

  /** Wakes up to `count` waiters (all by default) on the word at `index`; returns how many. */
  notify(index: number, count = Infinity): number {
    this.live('notify');
    this.checkWord(index, 'notify');
    return addon.futexWake(this.futexWords(), index * 4, count);
  }

  /**
   * Where wait and notify name their word: the kernel takes a futex's page for writing when
   * the mapping allows it, which userfaultfd tracking would count as a store (a dirty page
   * at the next pmsync). A read-only view of the same file pages is the same futex (keyed by
   * file and offset) and is only ever read.
   */
  private futexWords(): ArrayBuffer {
    if (!this.writable) return this.buffer;
    if (this.futexView === null) {
      const handle = addon.map(this.copy.fd, this.copy.dataOffset + this.offset, this.pages * PAGE_BYTES, false, false);
      const [buffer] = addon.buffers(handle, this.pages * PAGE_BYTES);
      assert(buffer !== undefined, 'mapping: one buffer per futex view');
      this.futexView = { handle, buffer };
    }
    return this.futexView.buffer;
  }

  private checkWord(index: number, what: string): void {
    if (!Number.isSafeInteger(index) || index < 0 || index * 4 + 4 > this.length) {
      throw new RegionError('INVALID', `${what}: word index ${index} is outside the mapping of ${this.length} bytes`);
    }
  }

  /** Detaches buffer (later access throws); shared reads zeros afterwards. */
  unmap(): void {
    if (!this.mapped) return;
    this.mapped = false;
    if (this.tracker) {
      try {
        this.copy.detach(this, this.tracker);
      } finally {
        this.tracker.close();
      }
    } else {
      addon.trackUnregister(this.handle);
    }
    addon.unmap(this.handle);
    if (this.futexView !== null) addon.unmap(this.futexView.handle);
    this.copy.mappings.delete(this);
  }

  /** False once unmap() was called (or the pool closed). */
  get isMapped(): boolean {
    return this.mapped;
  }

  private live(what: string): void {
    if (!this.mapped) throw new RegionError('CLOSED', `${what} on an unmapped mapping of region "${this.copy.label}"`);
  }

  private pageSpan(offset: number, length: number, what: string): [number, number] {
    this.live(what);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.length) {
      throw new RegionError('INVALID', `${what}: range [${offset}, ${offset + length}) is outside the mapping of ${this.length} bytes`);
    }
    return [Math.floor(offset / PAGE_BYTES), Math.ceil((offset + length) / PAGE_BYTES)];
  }
}
