// Shared mode's side of a PMap (map_access.ts): several processes map the region live.
//
// Page 0 holds a RegionLock (words 0 and 1) and the map's version (word 2). Writers take the
// lock; the version is odd while a write is under way and even between writes. A write:
// lock; version odd; if the last holder died ('owner-died') or left the version odd, put
// back every heap page that differs from its committed bytes (the dead writer's half-done
// batch); run the body; pmsync; version even; notify; unlock. If the body or the pmsync
// throws, the pages this write logged are copied back from their committed bytes.
//
// Why this is crash-consistent with no log, given that pmsync commits the dirty pages of
// every process: (1) only a lock holder stores into heap pages (readers never store, and a
// reader that falls back to the lock stores only page 0); (2) a holder calls pmsync only
// after a whole write, before unlocking; so every pmsync of the region commits whole writes,
// and a half-done write can be committed only by the next holder, which first puts it back.
// A holder killed inside a write never unlocks, so the next locker always sees 'owner-died'.
//
// Why not discard(): it puts back whole pages wherever they were stored, and a process that
// leaves the region (a reader exiting, a writer killed) makes the next pmsync or discard
// compare every page, page 0 included; page 0 then differs from its committed bytes (the
// lock word names its holder), so discard would hand the lock and the version back to their
// committed values in the middle of the holder's write: another writer could enter, and a
// reader could validate against a version it saw before. The copy-back here leaves page 0
// alone; page 0 may be committed in any state, which a crash turns into a lock held by a dead
// pid (taken over with 'owner-died') and an odd version (repaired by that taker).
//
// Readers validate: read the version (even, else wait for it to change), read and copy,
// read the version again; equal means no write overlapped, else retry. Torn reads can throw
// (a pointer out of the heap: CORRUPT) and are retried the same way. A reader that does not
// get a clean read in READ_ATTEMPTS takes the lock and reads under it (so a dead writer is
// found by readers too).
//
// The repair compares pages from the heap's start to the highest top any writer reached
// (word 3 of page 0, raised before a block above it is written), not the whole region.

import { RegionLock } from '../sync/region_lock.js';
import { RegionError } from '../errors.js';
import { HeapFullError } from './heap.js';
import { HEADER, HEAP_START } from './heap_layout.js';
import type { HeapRegion } from './heap_region.js';
import type { MapAccess } from './map_access.js';

const LOCK_WORD = 0;
const VERSION_WORD = 2;
/** The highest top any writer reached: nothing above it was ever written. */
const HIGH_WATER_WORD = 3;
const READ_ATTEMPTS = 64;
const READ_WAIT_MS = 2;

export class SharedAccess implements MapAccess {
  readonly stable = false;
  private readonly lock: RegionLock;
  private readonly words: Int32Array;
  private writing = false;

  constructor(private readonly memory: HeapRegion) {
    this.lock = new RegionLock(memory.mapping, LOCK_WORD);
    this.words = new Int32Array(memory.mapping.shared, 0, 4);
    memory.onTop = (top) => {
      if (top > Atomics.load(this.words, HIGH_WATER_WORD)) Atomics.store(this.words, HIGH_WATER_WORD, top);
    };
  }

  write<T>(body: () => T): T {
    return this.locked(() => {
      try {
        const result = body();
        if (this.memory.log.pages.length > 0) this.memory.pmsync();
        return result;
      } catch (error) {
        this.memory.restoreLogged();
        if (error instanceof HeapFullError) {
          throw new RegionError(
            'NO_SPACE',
            `${error.message}; in shared mode a map grows only while no other process has it open: ` +
              'reopen it with PMap.open(pool, name, { size }) when it is free',
          );
        }
        throw error;
      }
    });
  }

  read<T>(body: () => T): T {
    if (this.writing) return body();
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      const version = Atomics.load(this.words, VERSION_WORD);
      if ((version & 1) !== 0) {
        this.memory.mapping.wait(VERSION_WORD, version, READ_WAIT_MS);
        continue;
      }
      let result: T;
      try {
        result = body();
      } catch (error) {
        if (Atomics.load(this.words, VERSION_WORD) !== version) continue;
        throw error;
      }
      if (Atomics.load(this.words, VERSION_WORD) === version) return result;
    }
    return this.locked(body);
  }

  /** Runs body holding the lock with the version odd; repairs what a dead holder left first. */
  private locked<T>(body: () => T): T {
    const state = this.lock.lock();
    this.writing = true;
    try {
      const seen = Atomics.load(this.words, VERSION_WORD);
      const odd = (seen & 1) !== 0 ? seen + 2 : seen + 1;
      Atomics.store(this.words, VERSION_WORD, odd | 0);
      try {
        if (state === 'owner-died' || (seen & 1) !== 0) this.repair();
        return body();
      } finally {
        Atomics.store(this.words, VERSION_WORD, (odd + 1) | 0);
        this.memory.mapping.notify(VERSION_WORD);
      }
    } finally {
      this.writing = false;
      this.lock.unlock();
    }
  }

  /** Puts back every heap page a dead writer left different from its committed bytes. */
  private repair(): void {
    const at = HEAP_START + HEADER.top;
    const bytes = this.memory.region.read(at, 4);
    const committedTop = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
    const top = Math.max(committedTop, this.memory.u32(at), Atomics.load(this.words, HIGH_WATER_WORD));
    this.memory.restoreRange(HEAP_START, Math.min(this.memory.end, top));
  }
}
