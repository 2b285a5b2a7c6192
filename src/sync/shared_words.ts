// Futex words over a SharedArrayBuffer: what a worker thread that received `mapping.shared`
// uses where the mapping itself would offer wait/notify. The futex is the addon's shared
// (not private) futex, so it wakes and is woken by mapping.wait/notify on the same memory,
// in this thread, in other threads, and (for a region's working copy) in other processes.

import { addon } from '../arch/addon.js';
import { RegionError } from '../errors.js';

/** 32-bit words with futex wait/notify: a mapping, or SharedWords over its `shared` buffer. */
export interface LockMemory {
  /** The memory the words live in; word i is bytes [4i, 4i+4), little-endian. */
  readonly shared: SharedArrayBuffer;
  /** Waits while word `index` holds `value`, up to timeoutMs: 'ok' may be spurious, re-check. */
  wait(index: number, value: number, timeoutMs?: number): 'ok' | 'not-equal' | 'timed-out';
  /** Wakes up to `count` waiters (all by default) on word `index`; returns how many. */
  notify(index: number, count?: number): number;
}

/**
 * Futex wait/notify on the 32-bit words of a SharedArrayBuffer, for code that has the buffer
 * but not the mapping: a worker thread given `mapping.shared`. Interoperates with
 * `mapping.wait`/`mapping.notify` (Atomics.wait/notify do not: V8 keeps their waiters in
 * user space).
 *
 * ```ts
 * // in a worker thread: workerData.shared is mapping.shared from the main thread
 * const lock = new RegionLock(new SharedWords(workerData.shared), 0);
 * ```
 */
export class SharedWords implements LockMemory {
  /** @param shared the memory, typically `mapping.shared` (of this or another thread). */
  constructor(readonly shared: SharedArrayBuffer) {
    if (!(shared instanceof SharedArrayBuffer)) throw new RegionError('INVALID', 'SharedWords: shared must be a SharedArrayBuffer (mapping.shared)');
  }

  /** Waits while word `index` holds `value` (futex), up to timeoutMs (default: no limit). */
  wait(index: number, value: number, timeoutMs = Infinity): 'ok' | 'not-equal' | 'timed-out' {
    this.checkWord(index, 'wait');
    if (!(timeoutMs >= 0)) throw new RegionError('INVALID', `wait: timeoutMs ${timeoutMs} is not a non-negative number`);
    return addon.futexWait(this.shared, index * 4, value, timeoutMs);
  }

  /** Wakes up to `count` waiters on word `index` (all by default); returns how many were woken. */
  notify(index: number, count = Infinity): number {
    this.checkWord(index, 'notify');
    return addon.futexWake(this.shared, index * 4, count);
  }

  private checkWord(index: number, what: string): void {
    if (!Number.isSafeInteger(index) || index < 0 || index * 4 + 4 > this.shared.byteLength) {
      throw new RegionError('INVALID', `${what}: word index ${index} is outside the ${this.shared.byteLength} bytes of the buffer`);
    }
  }
}
