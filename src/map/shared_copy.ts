// A shared working copy seen from a client process (shared mode). regiond owns the memfd and
// its control area (src/map/control_area.ts) and passes it with each map reply as a
// descriptor of the access it granted; this process maps the region's pages from it
// and registers each writable mapping with the addon's shootdown handler, which freezes the
// mapping and reports its dirty pages into the shared bitmap when regiond's real-time signal
// arrives. A pmsync is a request to regiond (which runs the shootdown), so nothing here
// copies or commits.

import fs from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { addon, type MapHandle } from '../arch/addon.js';
import type { SyncStats, Tracking } from '../api.js';
import { PAGE_BYTES, SHOOTDOWN_TIMEOUT_MS } from '../constants.js';
import {
  markBits, MECHANISM_CODE, REGISTERED, type SharedCopyDescription, SLOT_WORD, slotWord, WORD,
} from './control_area.js';

/** How long a new mapping waits for a shootdown under way to release (regiond's own timeout, doubled). */
const JOIN_WAIT_MS = 2 * SHOOTDOWN_TIMEOUT_MS;
const JOIN_POLL_MS = 50;
import { Mapping, type MappingBackend } from './mapping.js';
import type { DirtyTracker, Mechanism } from './tracker.js';
import { SEGV_FAULT_PAGES_MAX, userfaultfdAvailable, processUffd } from './fault_mechanism.js';

export type { SharedCopyDescription };

export interface SharedMapOptions {
  offset: number;
  length: number;
  tracking: Tracking;
  writable: boolean;
  /** This process's mapper slot, from regiond's map reply. */
  slot: number;
  /** Sends the pmsync request to regiond. */
  pmsync: () => SyncStats;
  /** Sends the discard request to regiond. */
  discard: () => SyncStats;
}

/** Copies this process maps, by identity: the memfd's (dev, inode) and the access granted. */
const copies = new Map<string, SharedCopy>();

/**
 * Maps a window of the shared working copy that regiond passed as `fd` (which this call owns:
 * kept by a new copy, closed if the process maps that copy with that access already). Returns
 * the mapping and the copy's key, for releaseSharedCopies.
 */
export function mapShared(fd: number, description: SharedCopyDescription, options: SharedMapOptions): { mapping: Mapping; key: string } {
  let key: string;
  try {
    const { dev, ino } = fs.fstatSync(fd);
    key = `${dev}:${ino}:${options.writable ? 'rw' : 'ro'}`;
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
  let copy = copies.get(key);
  if (copy) {
    fs.closeSync(fd);
    // While the process maps the copy its slot stays; after its last unmap regiond may give it another.
    if (options.writable) copy.slot = options.slot;
  } else {
    copy = new SharedCopy(fd, description, options.writable, options.slot);
    copies.set(key, copy);
  }
  return { mapping: new Mapping(copy, options.offset, options.length, options.tracking, options.writable, options), key };
}

/**
 * Before this thread asks for a pmsync or discard of any region: every 'fault' mapping of
 * this process made by it reports its written pages into its copy's bitmap, as the shootdown
 * handler would. True if that was done, so regiond need not signal this process for a region
 * whose slot says it is quiet (see REGISTERED); false on a worker thread (its module has its
 * own copies, and the main thread's are not reported).
 */
export function reportOwnWrites(): boolean {
  if (!isMainThread) return false;
  for (const copy of copies.values()) copy.report();
  return true;
}

/**
 * A pool closed after unmapping its own mappings: each of its copies that no other pool of
 * this process still maps (two pools of one file share a copy) is let go.
 */
export function releaseSharedCopies(keys: Iterable<string>): void {
  for (const key of keys) {
    const copy = copies.get(key);
    if (!copy || copy.mappings.size > 0) continue;
    copy.close();
    copies.delete(key);
  }
}

class SharedCopy implements MappingBackend {
  readonly dataOffset: number;
  readonly label: string;
  readonly mappings = new Set<Mapping>();
  private readonly control: MapHandle;
  private readonly words: Int32Array;
  private registeredMappings = 0;
  /** Registered mappings other threads may store into (see REGISTERED). */
  private loudMappings = 0;
  /** Registered mappings tracked by userfaultfd: their pages are collected at a pmsync. */
  private readonly reporters = new Set<MapHandle>();

  /** Takes ownership of fd, the copy's descriptor with the access regiond granted. */
  constructor(
    readonly fd: number,
    readonly description: SharedCopyDescription,
    writable: boolean,
    /** This process's mapper slot; -1 for a read-only copy (it cannot store). */
    public slot: number,
  ) {
    this.label = description.regionName;
    this.dataOffset = description.controlBytes;
    try {
      this.control = addon.map(this.fd, 0, description.controlBytes, writable, false);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
    this.words = new Int32Array(addon.sharedBuffer(this.control, 0, description.controlBytes));
    if (writable) addon.shootdownInstall(description.signal);
  }

  makeTracker(handle: MapHandle, firstPage: number, pages: number, tracking: Tracking): DirtyTracker {
    const mechanism: Mechanism = tracking === 'fault' ? (userfaultfdAvailable() ? 'userfaultfd' : 'mprotect') : tracking === 'scan' ? 'compare' : 'manual';
    // One word per process: once any of its mappings relies on comparison, regiond compares
    // until the slot is freed, whatever trackers its later mappings use.
    const word = slotWord(this.slot, SLOT_WORD.mechanism);
    if (Atomics.load(this.words, word) !== MECHANISM_CODE.compare) {
      Atomics.store(this.words, word, MECHANISM_CODE[mechanism]);
    }
    return new SharedTracker(handle, firstPage, pages, mechanism, this);
  }

  /** @internal */
  register(handle: MapHandle, firstPage: number, pages: number, mechanism: Mechanism, loud: boolean): void {
    if (mechanism === 'userfaultfd') addon.uffdRegister(processUffd(), handle);
    addon.sharedRegister(handle, {
      control: this.control,
      slot: this.slot,
      firstPage,
      mechanism: mechanism === 'userfaultfd' ? 'uffd' : mechanism === 'mprotect' ? 'segv' : 'none',
      label: this.label,
      faultPagesMax: SEGV_FAULT_PAGES_MAX,
    });
    // 'segv' registration made the mapping read-only already.
    if (mechanism === 'userfaultfd') this.reporters.add(handle);
    if (!isMainThread) Atomics.add(this.words, slotWord(this.slot, SLOT_WORD.otherThreads), 1);
    this.joinShootdowns(loud);
  }

  /** This process reports its own pages (reportOwnWrites); a loud copy's are the handler's (it is signalled). */
  report(): void {
    if (this.loudMappings > 0) return;
    for (const handle of this.reporters) addon.sharedCollect(handle);
  }

  /**
   * Tells regiond this process can store now, then, if a shootdown is under way (it may have
   * skipped this process), waits for its release before the first store; see
   * WorkingCopy.awaitAcknowledgements (src/syscall/working_copy.ts) for why one of the two sides always sees the other.
   */
  private joinShootdowns(loud: boolean): void {
    this.registeredMappings++;
    if (loud) this.loudMappings++;
    this.publish();
    const deadline = Date.now() + JOIN_WAIT_MS;
    for (;;) {
      const release = Atomics.load(this.words, WORD.releaseSeq);
      if (Atomics.load(this.words, WORD.requestSeq) === release || Date.now() > deadline) return;
      addon.futexWait(this.words, WORD.releaseSeq * 4, release, JOIN_POLL_MS);
    }
  }

  /**
   * A writable mapping left the shootdown handler (its dirty pages were handed over first).
   * With none left this process cannot store, so regiond must stop waiting for it: a pmsync
   * under way would otherwise wait for an acknowledgement that no handler will send.
   */
  unregistered(handle: MapHandle, loud: boolean): void {
    this.registeredMappings--;
    if (loud) this.loudMappings--;
    this.reporters.delete(handle);
    if (!isMainThread) Atomics.sub(this.words, slotWord(this.slot, SLOT_WORD.otherThreads), 1);
    this.publish();
  }

  /** A quiet mapping became loud: other threads may store into it now. */
  louder(): void {
    this.loudMappings++;
    this.publish();
  }

  private publish(): void {
    if (this.slot < 0) return;
    const quiet = this.reporters.size > 0 ? REGISTERED.reports : REGISTERED.quiet;
    const loud = this.loudMappings > 0 ? REGISTERED.signal : quiet;
    const state = this.registeredMappings === 0 ? REGISTERED.none : loud;
    Atomics.store(this.words, slotWord(this.slot, SLOT_WORD.registered), state);
  }

  mark(first: number, end: number): void {
    markBits(this.words, first, end);
  }

  detach(mapping: Mapping, tracker: DirtyTracker): void {
    (tracker as SharedTracker).handOver(mapping.firstPage);
  }

  close(): void {
    for (const mapping of [...this.mappings]) mapping.unmap();
    addon.unmap(this.control);
    fs.closeSync(this.fd);
  }
}

class SharedTracker implements DirtyTracker {
  private readonly words: Int32Array;
  /** Threads other than this one may store into the mapping: a pmsync must freeze it (REGISTERED). */
  private loud: boolean;

  constructor(
    private readonly handle: MapHandle,
    private readonly firstPage: number,
    private readonly pages: number,
    readonly mechanism: Mechanism,
    private readonly copy: SharedCopy,
  ) {
    // This thread's own view, for prepareWrite (it never leaves the thread).
    this.words = new Int32Array(addon.sharedBuffer(handle, 0, pages * PAGE_BYTES));
    // mprotect tracking unprotects pages for every thread: only a freeze takes them back.
    this.loud = mechanism === 'mprotect';
    copy.register(handle, firstPage, pages, mechanism, this.loud);
  }

  threadsMayStore(): void {
    if (this.loud) return;
    this.loud = true;
    this.copy.louder();
  }

  /**
   * A mapping stays frozen (read-only) after a shootdown until its first store, which waits
   * for regiond's release and thaws it; a kernel write would fail with EFAULT instead. So a
   * store that changes nothing (an atomic add of 0) goes first, then 'mprotect' unprotects
   * the rest of the range.
   */
  prepareWrite(firstPage: number, endPage: number): void {
    if (endPage <= firstPage) return;
    this.copy.mark(this.firstPage + firstPage, this.firstPage + endPage);
    Atomics.add(this.words, (firstPage * PAGE_BYTES) / 4, 0);
    if (this.mechanism === 'mprotect') addon.protect(this.handle, firstPage * PAGE_BYTES, (endPage - firstPage) * PAGE_BYTES, 'rw');
  }

  markDirty(firstPage: number, endPage: number): void {
    this.copy.mark(this.firstPage + firstPage, this.firstPage + endPage);
  }

  /** Before unmap: what only this mapping's page tables know goes into the shared bitmap. */
  handOver(firstPage: number): void {
    if (this.mechanism !== 'userfaultfd') return;
    for (const page of addon.pagemapWritten(this.handle, 0, this.pages * PAGE_BYTES, false)) this.copy.mark(firstPage + page, firstPage + page + 1);
  }

  /** The shootdown stops scanning the mapping before userfaultfd lets go of it. */
  close(): void {
    addon.trackUnregister(this.handle);
    if (this.mechanism === 'userfaultfd') addon.uffdUnregister(processUffd(), this.handle);
    this.copy.unregistered(this.handle, this.loud);
  }
}

