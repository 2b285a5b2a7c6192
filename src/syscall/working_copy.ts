// The cross-address-space pmsync (DESIGN.md section 6), regiond's side. Every mapped region
// has a shared working copy: a memfd whose first pages are the control area
// (src/map/control_area.ts) and the rest the region's pages, mapped MAP_SHARED by regiond and
// by every process that maps the region. It has no name in any file system: a process gets
// it only as a descriptor in regiond's reply to its map request, opened read-only unless the
// region's mode granted it 'rw' (the memfd's own mode is 0600, so a read-only descriptor
// cannot be reopened writable through /proc by another user).
//
// pmsync:
//   1. raise the request sequence and signal every mapping process (a real-time signal); each
//      one's handler (native/shootdown.c) write-protects its mappings of the region with one
//      mprotect (Linux shoots down its threads' TLBs with real IPIs), reports its dirty pages
//      into the shared bitmap and acknowledges through its slot (futex wake);
//   2. with every acknowledgement in, no process can store to the region: take the bitmap,
//      copy those pages to PM and commit them in one journal record;
//   3. release: the release sequence = the request sequence; writers that faulted while frozen
//      wake (futex) and go on.
// Mappers are held by pidfd (process_handle.ts), so the signal reaches the process that
// mapped and no later one with its pid. A mapper that exited is skipped; one that does not answer in
// SHOOTDOWN_TIMEOUT_MS (e.g. stopped) makes the pmsync fail with TIMEOUT naming it, and the
// others are released with their dirty bits kept for the next pmsync.

import fs from 'node:fs';
import { addon, type MapHandle } from '../arch/addon.js';
import type { RegionInfo, SyncStats } from '../api.js';
import { MAP_CHUNK_BYTES, PAGE_BYTES, SHOOTDOWN_POLL_MS, SHOOTDOWN_SIGNAL, SHOOTDOWN_TIMEOUT_MS } from '../constants.js';
import { RegionError } from '../errors.js';
import type { RegionManager, RegionRef } from '../kernel/region_manager.js';
import { batchInChunks } from '../kernel/page_batch.js';
import { CONTROL_MAGIC, CONTROL_VERSION, controlBytes, REGISTERED, type SharedCopyDescription, MAPPER_SLOTS, markBits, MECHANISM_CODE, SLOT_WORD, slotByteOffset, slotWord, takeBits, WORD } from '../map/control_area.js';
import { finishMeter, startMeter } from '../map/sync_stats.js';
import { assert } from '../util/assert.js';
import type { ProcessHandle } from './process_handle.js';

export type { SharedCopyDescription };

/** Pids of the processes asking for a pmsync that reported their pages and wait for the reply. */
type Callers = ReadonlySet<number>;
const NO_CALLERS: Callers = new Set();

/** Pages per pwritev when a copy is filled (IOV_MAX is 1024). */
const FILL_RUN_PAGES_MAX = 1024;

export interface Mapper {
  pid: number;
  uid: number;
  process: ProcessHandle;
}

export class WorkingCopy {
  readonly pages: number;
  private readonly control: number;
  /** The memfd; mapped here, and reopened for each map reply. */
  private readonly fd: number;
  private readonly handle: MapHandle;
  private readonly words: Int32Array;
  private readonly chunks: Uint8Array[];
  private readonly mappers = new Map<number, { slot: number; count: number; process: ProcessHandle }>();
  /**
   * A mapper went away without a shootdown taking its dirty pages (with userfaultfd they live
   * only in its page tables): the next pmsync compares every page with PM so none is lost.
   */
  private compareNext = false;

  constructor(
    private readonly kernel: RegionManager,
    readonly ref: RegionRef,
    readonly info: RegionInfo,
  ) {
    this.pages = Math.ceil(info.sizeBytes / PAGE_BYTES);
    this.control = controlBytes(this.pages);
    this.fd = addon.memfdCreate(`region ${info.name}`, this.control + this.pages * PAGE_BYTES);
    try {
      fs.fchmodSync(this.fd, 0o600); // a memfd starts at 0777: only regiond's user may reopen it
      this.handle = addon.map(this.fd, 0, this.control + this.pages * PAGE_BYTES, true, false);
    } catch (error) {
      fs.closeSync(this.fd);
      throw error;
    }
    this.words = new Int32Array(addon.sharedBuffer(this.handle, 0, this.control));
    this.chunks = [];
    for (let at = 0; at < this.pages * PAGE_BYTES; at += MAP_CHUNK_BYTES) {
      const length = Math.min(MAP_CHUNK_BYTES, this.pages * PAGE_BYTES - at);
      this.chunks.push(new Uint8Array(addon.sharedBuffer(this.handle, this.control + at, length)));
    }
    this.initControl();
    this.fill();
  }

  /**
   * The committed pages go into the memfd by pwritev, runs of consecutive pages per call: the
   * kernel fills the file's pages itself, where stores through a mapping would take a page
   * fault each (the dearest part of a first map). Holes stay unallocated.
   */
  private fill(): void {
    let first = -1;
    let views: Uint8Array[] = [];
    const flush = (): void => {
      let at = this.control + first * PAGE_BYTES;
      for (let rest = views; rest.length > 0; ) {
        const written = fs.writevSync(this.fd, rest, at); // a regular file: short only if interrupted
        assert(written > 0 && written % PAGE_BYTES === 0, `working copy: filled whole pages (${written} bytes)`);
        at += written;
        rest = rest.slice(written / PAGE_BYTES);
      }
      views = [];
    };
    this.kernel.forEachCommittedPage(this.ref, (page, view) => {
      if (views.length === FILL_RUN_PAGES_MAX || page !== first + views.length) {
        flush();
        first = page;
      }
      views.push(view);
    });
    flush();
  }

  private initControl(): void {
    Atomics.store(this.words, WORD.magic, CONTROL_MAGIC);
    Atomics.store(this.words, WORD.version, CONTROL_VERSION);
    Atomics.store(this.words, WORD.regiondPid, process.pid);
    Atomics.store(this.words, WORD.pages, this.pages);
    Atomics.store(this.words, WORD.slots, MAPPER_SLOTS);
  }

  private page(page: number): Uint8Array {
    const offset = page * PAGE_BYTES;
    const chunk = this.chunks[Math.floor(offset / MAP_CHUNK_BYTES)];
    assert(chunk !== undefined, 'shared copy: a page inside the copy', page);
    const within = offset % MAP_CHUNK_BYTES;
    return chunk.subarray(within, within + PAGE_BYTES);
  }

  /**
   * A new descriptor of the copy for one map reply (the reply owns it): a new open file
   * description, read-only for 'ro', so what one client does to its descriptor touches no
   * other's and a read-only one cannot map writable.
   */
  descriptor(access: 'ro' | 'rw'): number {
    return fs.openSync(`/proc/self/fd/${this.fd}`, access === 'rw' ? fs.constants.O_RDWR : fs.constants.O_RDONLY);
  }

  /**
   * Stores bytes at a byte offset of the region, as a mapping would, and marks their pages
   * dirty for the next pmsync (region.write on a region that has a working copy).
   */
  store(offset: number, bytes: Uint8Array): void {
    const end = offset + bytes.length;
    assert(end <= this.info.sizeBytes, 'working copy: a store inside the region');
    for (let p = Math.floor(offset / PAGE_BYTES); p * PAGE_BYTES < end; p++) {
      const from = Math.max(offset, p * PAGE_BYTES);
      const to = Math.min(end, (p + 1) * PAGE_BYTES);
      this.page(p).set(bytes.subarray(from - offset, to - offset), from - p * PAGE_BYTES);
      markBits(this.words, p, p + 1);
    }
  }

  describe(): SharedCopyDescription {
    return { regionName: this.info.name, sizeBytes: this.info.sizeBytes, pages: this.pages, controlBytes: this.control, signal: SHOOTDOWN_SIGNAL };
  }

  get mapperCount(): number {
    return this.mappers.size;
  }

  /** A process maps the region: it gets a slot (one per process, counted per mapping). */
  addMapper(mapper: Mapper): number {
    const known = this.mappers.get(mapper.pid);
    // Two processes alive at once never share a pid: a live holder of this pid is this process.
    if (known && !known.process.exited) {
      known.count++;
      return known.slot;
    }
    if (known) this.buried(mapper.pid);
    const used = new Set([...this.mappers.values()].map((m) => m.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    if (slot >= MAPPER_SLOTS) throw new RegionError('NO_SPACE', `region "${this.info.name}" is mapped by ${MAPPER_SLOTS} processes already (the limit)`);
    Atomics.store(this.words, slotWord(slot, SLOT_WORD.ackSeq), Atomics.load(this.words, WORD.requestSeq));
    Atomics.store(this.words, slotWord(slot, SLOT_WORD.mechanism), MECHANISM_CODE.none);
    Atomics.store(this.words, slotWord(slot, SLOT_WORD.registered), 0);
    Atomics.store(this.words, slotWord(slot, SLOT_WORD.otherThreads), 0);
    Atomics.store(this.words, slotWord(slot, SLOT_WORD.pid), mapper.pid);
    this.mappers.set(mapper.pid, { slot, count: 1, process: mapper.process.acquire() });
    return slot;
  }

  /**
   * One mapping of pid went away (all of them if `all`: the client disconnected or died).
   * An orderly unmap hands its dirty pages over to the shared bitmap; a disconnect may not
   * have, so it makes the next pmsync compare.
   */
  removeMapper(pid: number, all = false): void {
    const known = this.mappers.get(pid);
    if (!known) return;
    known.count--;
    // A 'scan' mapping reports nothing when it goes: only a comparison finds its stores.
    if (all || Atomics.load(this.words, slotWord(known.slot, SLOT_WORD.mechanism)) === MECHANISM_CODE.compare) this.compareNext = true;
    if (all || known.count <= 0) this.freeSlot(pid);
  }

  private freeSlot(pid: number): void {
    const known = this.mappers.get(pid);
    if (!known) return;
    Atomics.store(this.words, slotWord(known.slot, SLOT_WORD.pid), 0);
    Atomics.store(this.words, slotWord(known.slot, SLOT_WORD.registered), 0);
    this.mappers.delete(pid);
    known.process.release();
  }

  /** A mapper found dead: its unreported stores are in the copy, so compare at this pmsync. */
  private buried(pid: number): void {
    this.compareNext = true;
    this.freeSlot(pid);
  }

  /**
   * The shootdown pmsync; see the header. `callers`: the processes asking that reported their
   * own pages and wait for the reply (see REGISTERED): a quiet one is not signalled.
   */
  pmsync(callers: Callers = NO_CALLERS): SyncStats {
    return this.shootdown((start) => this.commit(start), callers);
  }

  /**
   * The same freeze, then every dirty page goes back to its committed bytes (zeros for a
   * hole) instead of to PM: the copy, and so every mapping of it in every process, is the
   * region's last pmsync again. Trackers start afresh as after a pmsync.
   */
  discard(callers: Callers = NO_CALLERS): SyncStats {
    return this.shootdown((start) => this.restore(start), callers);
  }

  /** Freeze every mapper (signal, acknowledgements), run `frozen`, release. */
  private shootdown(frozen: (start: bigint) => SyncStats, callers: Callers): SyncStats {
    const start = process.hrtime.bigint();
    const seq = (Atomics.load(this.words, WORD.requestSeq) + 1) | 0;
    Atomics.store(this.words, WORD.requestSeq, seq);
    // Who may wait for the release: a signalled mapper parked in its handler, or another
    // process's mapper that registers while this shootdown is under way (see
    // awaitAcknowledgements). With neither (exclusive mode's quiet mappings) the wake, a
    // system call, is skipped.
    let waiters = false;
    try {
      for (const [pid, mapper] of [...this.mappers]) {
        if (!mapper.process.own) waiters = true;
        if (this.mustSignal(pid, mapper, callers)) {
          waiters = true;
          this.signal(pid, mapper.process);
        }
      }
      this.awaitAcknowledgements(seq, callers);
      return frozen(start);
    } finally {
      Atomics.store(this.words, WORD.releaseSeq, seq);
      if (waiters) addon.futexWake(this.words, WORD.releaseSeq * 4, Infinity);
    }
  }

  /**
   * Whether the pmsync must signal this mapper and wait for it (see REGISTERED): not if it has
   * no writable mapping registered; not if it is quiet and either a caller, which reported
   * its pages and waits for the reply (only if no worker thread made a mapping), or this very
   * process with nothing to report (exclusive mode's manual and scan tracking pay no freeze).
   * The caller is known by its connection's pid: a process that shares its connection with a
   * child it forked can only tear its own stores.
   */
  private mustSignal(pid: number, mapper: { slot: number; process: ProcessHandle }, callers: Callers): boolean {
    const registered = Atomics.load(this.words, slotWord(mapper.slot, SLOT_WORD.registered));
    if (registered === REGISTERED.none) return false;
    if (registered === REGISTERED.signal) return true;
    const alone = Atomics.load(this.words, slotWord(mapper.slot, SLOT_WORD.otherThreads)) === 0;
    if (callers.has(pid) && alone) return false;
    return !(registered === REGISTERED.quiet && mapper.process.own);
  }

  /** Signals the mapper through its pidfd; one that has exited is buried instead. */
  private signal(pid: number, process: ProcessHandle): void {
    let sent: boolean;
    try {
      sent = process.signal(SHOOTDOWN_SIGNAL);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EPERM') {
        // Alive but out of reach: its stores cannot be frozen, so committing would break atomicity.
        throw new RegionError('PERMISSION', `pmsync of region "${this.info.name}": regiond (uid ${globalThis.process.getuid?.() ?? '?'}) may not signal mapping process ${pid} of another user; run regiond as root to share regions across users`);
      }
      throw error;
    }
    if (!sent) this.buried(pid); // exited: nothing of it to wait for, whoever has its pid now
  }

  /**
   * Waits for every registered mapper's acknowledgement. A mapper that has not registered a
   * mapping yet cannot store and is skipped: the request sequence was raised before its
   * registered word is read here, and a client reads the request sequence after setting that
   * word and waits for the release if a shootdown is under way (sequentially consistent
   * atomics: one of the two sides sees the other). The signal is repeated at every poll, so a
   * mapper that registered after the first one still answers.
   */
  private awaitAcknowledgements(seq: number, callers: Callers): void {
    const deadline = Date.now() + SHOOTDOWN_TIMEOUT_MS;
    for (const [pid, mapper] of [...this.mappers]) {
      const word = slotWord(mapper.slot, SLOT_WORD.ackSeq);
      for (let poll = 0; ; poll++) {
        if (!this.mustSignal(pid, mapper, callers)) break;
        const acked = Atomics.load(this.words, word);
        if (acked === seq) break;
        if (poll > 0) this.signal(pid, mapper.process);
        if (!this.mappers.has(pid)) break;
        if (mapper.process.exited) {
          this.buried(pid);
          break;
        }
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new RegionError('TIMEOUT', `pmsync of region "${this.info.name}": process ${pid} did not answer the shootdown within ${SHOOTDOWN_TIMEOUT_MS} ms (stopped?); nothing was committed`);
        }
        addon.futexWait(this.words, word * 4, acked, Math.min(left, SHOOTDOWN_POLL_MS));
      }
    }
  }

  /** Every page stored to since the last pmsync or discard; takes them (the bits clear). */
  private takeDirty(): number[] {
    let dirty = takeBits(this.words, this.pages);
    if (Atomics.exchange(this.words, WORD.overflow, 0) !== 0) dirty = Array.from({ length: this.pages }, (_, p) => p);
    if (this.compareNext || this.anyMapperCompares()) dirty = this.compareAll(dirty);
    this.compareNext = false;
    return dirty;
  }

  private restore(start: bigint): SyncStats {
    const dirty = this.takeDirty();
    for (const page of dirty) {
      const committed = this.kernel.committedPage(this.ref, page);
      if (committed) this.page(page).set(committed);
      else this.page(page).fill(0);
    }
    const ns = Number(process.hrtime.bigint() - start);
    return { epoch: this.kernel.info(this.ref).epoch, pages: dirty.length, bytes: 0, linesFlushed: 0, fences: 0, ns };
  }

  private commit(start: bigint): SyncStats {
    const dirty = this.takeDirty();
    if (dirty.length === 0) return { epoch: this.kernel.info(this.ref).epoch, pages: 0, bytes: 0, linesFlushed: 0, fences: 0, ns: Number(process.hrtime.bigint() - start) };
    const meter = startMeter(this.kernel.device, start);
    let result: { epoch: number; pages: number };
    try {
      result = this.kernel.commitPages(this.ref, batchInChunks(dirty, this.chunks, MAP_CHUNK_BYTES, this.info.sizeBytes));
    } catch (error) {
      for (const page of dirty) markBits(this.words, page, page + 1); // not committed: keep them dirty
      throw error;
    }
    return finishMeter(this.kernel.device, meter, result);
  }

  private anyMapperCompares(): boolean {
    for (const { slot } of this.mappers.values()) {
      if (Atomics.load(this.words, slotWord(slot, SLOT_WORD.mechanism)) === MECHANISM_CODE.compare) return true;
    }
    return false;
  }

  private compareAll(dirty: number[]): number[] {
    const set = new Set(dirty);
    const zero = Buffer.alloc(PAGE_BYTES);
    for (let p = 0; p < this.pages; p++) {
      if (set.has(p)) continue;
      const committed = this.kernel.committedPage(this.ref, p);
      const current = this.page(p);
      const same = Buffer.from(current.buffer, current.byteOffset, PAGE_BYTES).equals(committed ? Buffer.from(committed.buffer, committed.byteOffset, PAGE_BYTES) : zero);
      if (!same) set.add(p);
    }
    return [...set].sort((a, b) => a - b);
  }

  close(): void {
    for (const pid of [...this.mappers.keys()]) this.freeSlot(pid);
    addon.unmap(this.handle);
    fs.closeSync(this.fd);
  }

  /** The slot layout offset, for tests. */
  static slotOffset(slot: number): number {
    return slotByteOffset(slot);
  }
}
