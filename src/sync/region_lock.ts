// RegionLock: a mutex in two 32-bit words of a mapped region, shared by every thread and
// every process that maps the region. It sleeps on a futex of the shared working copy
// (mapping.wait/notify), so a waiter costs no CPU, and it survives a holder that dies.
//
//   word i      0 = free; else the owner's pid | LOCK_WAITERS_BIT (someone may be asleep).
//               Taken with one compareExchange, so the owner is known at the instant the
//               lock is (as in Linux robust futexes): no window where it is held anonymously.
//   word i + 1  the owner's process start time (clock ticks since boot, mod 2^32; 0 =
//               not yet written), stored right after taking the lock: it tells a reused
//               pid from the process that held the lock.
//
// A waiter sleeps in slices of LOCK_WAIT_SLICE_MS. After each slice in which the word did
// not change it judges the owner: gone (kill(pid, 0) fails with ESRCH), a zombie, or its
// pid now names a younger process (a start time that differs on two checks a slice apart)
// means dead, and the waiter takes the lock over with one compareExchange on the exact word
// it saw (two waiters cannot both win). lock() then returns 'owner-died': the data the lock
// protects may be half-updated, as with pthread's EOWNERDEAD; repair it before going on.
//
// Caveats. Threads of one process share a pid: a thread that stops inside the lock (a
// terminated worker) is not detected. Processes in different pid namespaces must not share a
// lock. A pid reused by a process started in the same clock tick as the dead owner (after a
// reboot, say) would pass for the owner. A lock word committed by a pmsync taken while the
// lock was held comes back held by a dead pid after a crash; the first locker takes it over
// (one slice) and gets 'owner-died'.

import fs from 'node:fs';
import { LOCK_PID_MASK, LOCK_WAIT_SLICE_MS, LOCK_WAITERS_BIT, LOCK_WORDS } from '../constants.js';
import { RegionError } from '../errors.js';
import { assert } from '../util/assert.js';
import type { LockMemory } from './shared_words.js';

/** How lock() got the lock: from a clean unlock, or by taking it over from a holder that died. */
export type LockState = 'acquired' | 'owner-died';

type OwnerVerdict = 'alive' | 'dead' | 'reused';

/**
 * A mutex living in two 32-bit words of a mapped region, usable across threads and
 * processes: every process maps the region and builds a RegionLock on the same word index.
 * If the holder dies, a waiter takes the lock over within about two LOCK_WAIT_SLICE_MS and
 * learns it from lock()'s 'owner-died'.
 *
 * ```ts
 * const m = pool.open('accounts').map();
 * const lock = new RegionLock(m, 0);          // words 0 and 1 of the mapping
 * lock.withLock(() => {
 *   balances[a] -= 10n; balances[b] += 10n;   // no other locker sees a half transfer
 *   m.pmsync();                               // the snapshot is a consistent state
 * });
 * ```
 *
 * Not recursive; synchronous (the thread blocks while waiting). Words `wordIndex` and
 * `wordIndex + 1` belong to the lock: initialize them to zero (a new region is zero) and do
 * not store to them otherwise.
 */
export class RegionLock {
  private readonly words: Int32Array;
  private readonly pid = process.pid;
  private isHeld = false;
  private deadOwner = 0;

  /**
   * @param memory a writable mapping of the region (or SharedWords over `mapping.shared` in
   *   a worker thread)
   * @param wordIndex the lock word's index in 4-byte units from the mapping's start; the lock
   *   uses this word and the next
   */
  constructor(
    private readonly memory: LockMemory,
    readonly wordIndex: number,
  ) {
    if (typeof memory !== 'object' || memory === null || !(memory.shared instanceof SharedArrayBuffer)) {
      throw new RegionError('INVALID', 'RegionLock: memory must be a mapping (or SharedWords over mapping.shared)');
    }
    if ((memory as { writable?: boolean }).writable === false) {
      throw new RegionError('PERMISSION', 'RegionLock: the mapping is read-only; a lock needs a writable mapping');
    }
    this.words = new Int32Array(memory.shared);
    if (!Number.isSafeInteger(wordIndex) || wordIndex < 0 || wordIndex + LOCK_WORDS > this.words.length) {
      throw new RegionError('INVALID', `RegionLock: words ${wordIndex}..${wordIndex + LOCK_WORDS - 1} are outside the ${memory.shared.byteLength} bytes of the mapping`);
    }
    assert(this.pid > 0 && this.pid <= LOCK_PID_MASK, 'RegionLock: a pid fits below the waiters bit');
  }

  /**
   * Takes the lock, waiting up to timeoutMs (default: no limit). Returns 'acquired', or
   * 'owner-died' if the holder died and this call took the lock over (check the protected
   * data). Throws RegionError TIMEOUT naming the holder, BUSY if this RegionLock is held.
   */
  lock(timeoutMs = Infinity): LockState {
    if (!(timeoutMs >= 0)) throw new RegionError('INVALID', `lock: timeoutMs ${timeoutMs} is not a non-negative number`);
    if (this.isHeld) throw new RegionError('BUSY', `lock: word ${this.wordIndex} is already held through this RegionLock (it is not recursive)`);
    let seen = Atomics.compareExchange(this.words, this.wordIndex, 0, this.pid);
    if (seen === 0) return this.taken('acquired');
    return this.lockSlow(seen, Date.now() + timeoutMs, timeoutMs);
  }

  /** Releases the lock and wakes one waiter. Throws INVALID if this RegionLock does not hold it. */
  unlock(): void {
    if (!this.isHeld) throw new RegionError('INVALID', `unlock: word ${this.wordIndex} is not held through this RegionLock`);
    this.isHeld = false;
    Atomics.store(this.words, this.wordIndex + 1, 0); // before the release: no stale start time under a new owner
    for (;;) {
      const seen = Atomics.load(this.words, this.wordIndex);
      assert((seen & LOCK_PID_MASK) === this.pid, 'RegionLock: its owner holds the word at unlock (taken over while held?); the holder', seen & LOCK_PID_MASK);
      if (Atomics.compareExchange(this.words, this.wordIndex, seen, 0) !== seen) continue; // a waiter set its bit
      if ((seen & LOCK_WAITERS_BIT) !== 0) this.memory.notify(this.wordIndex, 1);
      return;
    }
  }

  /**
   * Runs fn holding the lock and releases it however fn ends; fn gets lock()'s state.
   * fn must be synchronous: a promise would outlive the lock, so it is refused (INVALID).
   */
  withLock<T>(fn: (state: LockState) => T, timeoutMs = Infinity): T {
    const state = this.lock(timeoutMs);
    try {
      const result = fn(state);
      if (typeof (result as { then?: unknown } | null)?.then === 'function') {
        throw new RegionError('INVALID', 'withLock: fn returned a promise; the lock covers synchronous code only (lock() and unlock() around awaits would block the thread)');
      }
      return result;
    } finally {
      this.unlock();
    }
  }

  /** The pid of the dead holder the last 'owner-died' lock() took over from (0 if none yet). */
  get lastDeadOwner(): number {
    return this.deadOwner;
  }

  /** True while this RegionLock (this thread's instance) holds the lock. */
  get held(): boolean {
    return this.isHeld;
  }

  /** The pid holding the lock now (0 if free): for diagnostics, stale as soon as read. */
  holder(): number {
    return Atomics.load(this.words, this.wordIndex) & LOCK_PID_MASK;
  }

  private taken(state: LockState): LockState {
    Atomics.store(this.words, this.wordIndex + 1, ownStartWord());
    this.isHeld = true;
    return state;
  }

  // Contended path: announce a waiter, sleep a slice, re-check; judge the owner when the word
  // stayed the same for a whole slice. Bounded by the deadline (none for Infinity).
  private lockSlow(seen: number, deadline: number, timeoutMs: number): LockState {
    let suspect: { word: number; start: number; since: number } | null = null;
    for (;;) {
      if (seen === 0) {
        seen = Atomics.compareExchange(this.words, this.wordIndex, 0, this.pid | LOCK_WAITERS_BIT);
        if (seen === 0) return this.taken('acquired');
        continue;
      }
      if ((seen & LOCK_WAITERS_BIT) === 0) {
        const before = Atomics.compareExchange(this.words, this.wordIndex, seen, seen | LOCK_WAITERS_BIT);
        if (before !== seen) {
          seen = before;
          continue;
        }
        seen |= LOCK_WAITERS_BIT;
      }
      const leftMs = deadline - Date.now();
      if (leftMs <= 0) throw this.timeout(seen, timeoutMs);
      this.memory.wait(this.wordIndex, seen, Math.min(LOCK_WAIT_SLICE_MS, leftMs));
      const now = Atomics.load(this.words, this.wordIndex);
      if (now !== seen) {
        seen = now;
        suspect = null;
        continue;
      }
      const start = Atomics.load(this.words, this.wordIndex + 1);
      const verdict = judgeOwner(seen & LOCK_PID_MASK, start, this.pid);
      if (verdict === 'alive') suspect = null;
      if (verdict === 'reused') suspect = suspect !== null && suspect.word === seen && suspect.start === start ? suspect : { word: seen, start, since: Date.now() };
      if (verdict === 'alive' || (verdict === 'reused' && Date.now() - (suspect?.since ?? 0) < LOCK_WAIT_SLICE_MS)) continue;
      // dead, or a reused pid seen for a whole slice with the word unchanged: take it over
      const before = Atomics.compareExchange(this.words, this.wordIndex, seen, this.pid | LOCK_WAITERS_BIT);
      if (before === seen) {
        this.deadOwner = seen & LOCK_PID_MASK;
        return this.taken('owner-died');
      }
      seen = before;
      suspect = null;
    }
  }

  private timeout(seen: number, timeoutMs: number): RegionError {
    return new RegionError('TIMEOUT', `lock: word ${this.wordIndex} is still held by pid ${seen & LOCK_PID_MASK} after ${timeoutMs} ms`);
  }
}

/** dead: gone or a zombie; reused: the pid names a process younger than the owner; else alive. */
function judgeOwner(pid: number, startWord: number, selfPid: number): OwnerVerdict {
  if (pid === selfPid || pid === 0) return 'alive'; // another thread of this process (or a word not yet judged)
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return 'dead';
    // EPERM: the process exists but belongs to another user
  }
  const stat = processStat(pid);
  if (stat === null || stat.state === 'Z' || stat.state === 'X') return 'dead';
  if (startWord !== 0 && startWord !== startWordOf(stat.startTime)) return 'reused';
  return 'alive';
}

let ownStart = 0;

function ownStartWord(): number {
  if (ownStart === 0) ownStart = startWordOf(processStat(process.pid)?.startTime ?? 1);
  return ownStart;
}

/** A start time as stored in word i + 1: mod 2^32 as an int32, never 0 (0 = not written). */
function startWordOf(startTime: number): number {
  return (startTime % 2 ** 32 | 0) || 1;
}

/** State letter (field 3) and start time (field 22, clock ticks since boot) of /proc/PID/stat. */
function processStat(pid: number): { state: string; startTime: number } | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3
    return { state: fields[0] ?? '?', startTime: Number(fields[19] ?? 0) };
  } catch {
    return null;
  }
}
