// The working copy of a mapped region (DESIGN.md section 6): a memfd holding the region's
// pages, filled from PM at first map (holes stay zero). Every mapping of the region in this
// process maps the same memfd MAP_SHARED, so a store through one is seen by all at once.
// PM is written only by pmsync, so PM always holds a consistent committed image.
//
// pmsync: freeze every writable mapping (one mprotect each: every thread's TLB is shot down
// and a store from any thread waits), collect the dirty pages from every tracker, copy them
// into PM through one journal commit, then rearm the trackers (which thaws the mappings).

import fs from 'node:fs';
import { addon, type MapHandle } from '../arch/addon.js';
import type { SyncStats } from '../api.js';
import { MAP_CHUNK_BYTES, PAGE_BYTES } from '../constants.js';
import type { RegionManager, RegionRef } from '../kernel/region_manager.js';
import { assert } from '../util/assert.js';
import type { MapHandle as Handle } from '../arch/addon.js';
import type { Tracking } from '../api.js';
import type { Mapping, MappingBackend } from './mapping.js';
import { finishMeter, startMeter } from './sync_stats.js';
import type { DirtyTracker } from './tracker.js';
import { CompareTracker, ManualTracker, MprotectTracker, userfaultfdAvailable, UserfaultfdTracker } from './trackers.js';

export class WorkingCopy implements MappingBackend {
  readonly dataOffset = 0;
  readonly fd: number;
  readonly pages: number;
  private readonly internal: MapHandle;
  private readonly chunks: Uint8Array[];
  readonly mappings = new Set<Mapping>();
  /** Pages written through mappings that were unmapped before a pmsync took them. */
  private readonly pending = new Set<number>();

  constructor(
    private readonly kernel: RegionManager,
    readonly ref: RegionRef,
    readonly sizeBytes: number,
    readonly label: string,
  ) {
    this.pages = Math.ceil(sizeBytes / PAGE_BYTES);
    this.fd = addon.memfdCreate(`region ${label}`, this.pages * PAGE_BYTES);
    try {
      this.internal = addon.map(this.fd, 0, this.pages * PAGE_BYTES, true, false);
    } catch (error) {
      fs.closeSync(this.fd);
      throw error;
    }
    this.chunks = addon.buffers(this.internal, MAP_CHUNK_BYTES).map((b) => new Uint8Array(b));
    kernel.forEachCommittedPage(ref, (page, view) => this.page(page).set(view));
  }

  /** The working-copy bytes of one page (a view). */
  page(page: number): Uint8Array {
    const offset = page * PAGE_BYTES;
    const chunk = this.chunks[Math.floor(offset / MAP_CHUNK_BYTES)];
    assert(chunk !== undefined, `working copy: page ${page} inside the copy`);
    const within = offset % MAP_CHUNK_BYTES;
    return chunk.subarray(within, within + PAGE_BYTES);
  }

  /** Does the page differ from its committed copy? (the compare tracker) */
  changed(page: number): boolean {
    const committed = this.kernel.committedPage(this.ref, page);
    const current = this.page(page);
    if (committed === null) return !isZeroPage(current);
    return !Buffer.from(current.buffer, current.byteOffset, PAGE_BYTES).equals(Buffer.from(committed.buffer, committed.byteOffset, PAGE_BYTES));
  }

  makeTracker(handle: Handle, firstPage: number, pages: number, tracking: Tracking): DirtyTracker {
    switch (tracking) {
      case 'fault':
        return userfaultfdAvailable() ? new UserfaultfdTracker(handle, pages, this.label) : new MprotectTracker(handle, pages, this.label);
      case 'scan':
        return new CompareTracker(handle, pages, this.label, (p) => this.changed(firstPage + p));
      case 'manual':
        return new ManualTracker(handle, pages, this.label);
    }
  }

  detach(mapping: Mapping, tracker: DirtyTracker): void {
    if (mapping.threadsMayStore) addon.trackFreeze(mapping.handle);
    this.remember([...tracker.collect()].map((p) => mapping.firstPage + p));
  }

  remember(pages: Iterable<number>): void {
    for (const page of pages) this.pending.add(page);
  }

  pmsync(): SyncStats {
    const start = process.hrtime.bigint();
    const writable = [...this.mappings].filter((m) => m.writable);
    const frozen = writable.filter((m) => m.threadsMayStore);
    for (const mapping of frozen) addon.trackFreeze(mapping.handle);
    let dirty: Set<number>;
    try {
      dirty = new Set(this.pending);
      for (const mapping of writable) for (const page of mapping.collect()) dirty.add(page);
    } catch (error) {
      for (const mapping of writable) mapping.rearm(frozen.includes(mapping));
      throw error;
    }
    try {
      if (dirty.size === 0) return { epoch: this.kernel.info(this.ref).epoch, pages: 0, bytes: 0, linesFlushed: 0, fences: 0, ns: Number(process.hrtime.bigint() - start) };
      return this.commit([...dirty].sort((a, b) => a - b), start);
    } catch (error) {
      this.remember(dirty); // nothing was committed: the next pmsync takes them again
      throw error;
    } finally {
      for (const mapping of writable) mapping.rearm(frozen.includes(mapping));
    }
  }

  private commit(pages: number[], start: bigint): SyncStats {
    const meter = startMeter(this.kernel.device, start);
    const lastPage = this.pages - 1;
    const tail = this.sizeBytes - lastPage * PAGE_BYTES;
    const result = this.kernel.commitPages(
      this.ref,
      pages.map((page) => ({ page, bytes: page === lastPage && tail < PAGE_BYTES ? withZeroTail(this.page(page), tail) : this.page(page) })),
    );
    this.pending.clear();
    return finishMeter(this.kernel.device, meter, result);
  }

  close(): void {
    for (const mapping of [...this.mappings]) mapping.unmap();
    addon.unmap(this.internal);
    fs.closeSync(this.fd);
  }
}

/** Bytes past the region's end in its last page are not part of it: commit them as zeros. */
function withZeroTail(page: Uint8Array, keep: number): Uint8Array {
  const copy = page.slice();
  copy.fill(0, keep);
  return copy;
}

const ZERO_PAGE = Buffer.alloc(PAGE_BYTES);
function isZeroPage(page: Uint8Array): boolean {
  return Buffer.from(page.buffer, page.byteOffset, PAGE_BYTES).equals(ZERO_PAGE);
}
