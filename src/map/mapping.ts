// A mapping: a window of a region's working copy in this address space, with the tracker
// that notices its stores. `buffer` is an ArrayBuffer over the window; `shared` a
// SharedArrayBuffer over the same memory (for Atomics and worker threads).

import { addon, type MapHandle } from '../arch/addon.js';
import type { SyncStats, Tracking } from '../api.js';
import { PAGE_BYTES } from '../constants.js';
import { RegionError } from '../errors.js';
import { assert } from '../util/assert.js';
import type { DirtyTracker, Mechanism } from './tracker.js';
import { CompareTracker, ManualTracker, MprotectTracker, registerReadOnly, userfaultfdAvailable, UserfaultfdTracker } from './trackers.js';
import type { WorkingCopy } from './working_copy.js';

export class Mapping {
  readonly handle: MapHandle;
  readonly buffer: ArrayBuffer;
  readonly shared: SharedArrayBuffer;
  readonly firstPage: number;
  private readonly pages: number;
  private readonly tracker: DirtyTracker | null;
  private mapped = true;

  /** @internal */
  constructor(
    private readonly copy: WorkingCopy,
    readonly offset: number,
    readonly length: number,
    readonly tracking: Tracking,
    readonly writable: boolean,
  ) {
    assert(offset % PAGE_BYTES === 0, 'mapping: offset page-aligned');
    this.firstPage = offset / PAGE_BYTES;
    this.pages = Math.ceil(length / PAGE_BYTES);
    this.handle = addon.map(copy.fd, offset, this.pages * PAGE_BYTES, writable, false);
    try {
      const [buffer] = addon.buffers(this.handle, this.pages * PAGE_BYTES);
      assert(buffer !== undefined, 'mapping: one buffer per window');
      this.buffer = buffer;
      this.shared = addon.sharedBuffer(this.handle, 0, this.pages * PAGE_BYTES);
      this.tracker = writable ? this.makeTracker() : null;
      if (!writable) registerReadOnly(this.handle, copy.label);
    } catch (error) {
      addon.unmap(this.handle);
      throw error;
    }
    copy.mappings.add(this);
  }

  private makeTracker(): DirtyTracker {
    const label = this.copy.label;
    switch (this.tracking) {
      case 'fault':
        return userfaultfdAvailable() ? new UserfaultfdTracker(this.handle, this.pages, label) : new MprotectTracker(this.handle, this.pages, label);
      case 'scan':
        return new CompareTracker(this.handle, this.pages, label, (p) => this.copy.changed(this.firstPage + p));
      case 'manual':
        return new ManualTracker(this.handle, this.pages, label);
    }
  }

  /** The mechanism behind `tracking`: 'userfaultfd' or 'mprotect' for 'fault'. */
  get mechanism(): Mechanism | 'read-only' {
    return this.tracker?.mechanism ?? 'read-only';
  }

  /** Persist every page of the region dirtied since the last pmsync, by any mapping, atomically. */
  pmsync(): SyncStats {
    this.live('pmsync');
    if (!this.writable) throw new RegionError('PERMISSION', `region "${this.copy.label}" is mapped read-only`);
    return this.copy.pmsync();
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

  /** Detaches buffer (later access throws); shared reads zeros afterwards. */
  unmap(): void {
    if (!this.mapped) return;
    this.mapped = false;
    if (this.tracker) {
      addon.trackFreeze(this.handle);
      try {
        this.copy.remember([...this.tracker.collect()].map((p) => this.firstPage + p));
      } finally {
        this.tracker.close();
      }
    } else {
      addon.trackUnregister(this.handle);
    }
    addon.unmap(this.handle);
    this.copy.mappings.delete(this);
  }

  get isMapped(): boolean {
    return this.mapped;
  }

  /** @internal region pages dirtied through this mapping; the mapping is frozen. */
  collect(): number[] {
    assert(this.tracker !== null, 'mapping: collect on a writable mapping');
    return [...this.tracker.collect()].map((p) => this.firstPage + p);
  }

  /** @internal */
  rearm(): void {
    this.tracker?.rearm();
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
