// The PmDevice contract (DESIGN.md section 3): the only way the region system touches PM.
// Reads are plain byte access; every store goes through write(); durability is reached only
// by flush() (cache lines towards the persistence domain) followed by fence() (orders and
// completes prior flushes). persist() = flush + fence. The device knows nothing of regions.

import type { CommitPlan } from './commit_plan.js';

export const CACHE_LINE_BYTES = 64;
export const ATOMIC_UNIT_BYTES = 8; // only aligned 8-byte stores are failure-atomic

/**
 * What a PmDevice has done since creation or the last reset(): the numbers pmsync costs are
 * measured in.
 */
export class DeviceCounters {
  /** 64-byte cache lines flushed (written back towards the persistence domain). */
  linesFlushed = 0;
  /** Store fences (each orders and completes the flushes before it). */
  fences = 0;
  /** Bytes stored through write() and fill(). */
  bytesWritten = 0;

  /** Sets every counter to zero. */
  reset(): void {
    this.linesFlushed = 0;
    this.fences = 0;
    this.bytesWritten = 0;
  }

  /** The counters now, as a plain object (subtract two snapshots to measure an operation). */
  snapshot(): Pick<DeviceCounters, 'linesFlushed' | 'fences' | 'bytesWritten'> {
    return { linesFlushed: this.linesFlushed, fences: this.fences, bytesWritten: this.bytesWritten };
  }
}

/**
 * Persistent memory as the region system sees it: byte reads, stores that stay volatile until
 * flushed and fenced, and counters. FileDevice (a pool file) and SimDevice (simulated PM with
 * crash images) implement it.
 */
export interface PmDevice {
  /** Capacity in bytes; a multiple of 4096. */
  readonly sizeBytes: number;
  /** Lines flushed, fences and bytes written so far. */
  readonly counters: DeviceCounters;
  /** A copy of `length` bytes at `offset`. */
  read(offset: number, length: number): Uint8Array;
  /**
   * A zero-copy view of `length` bytes at `offset`, valid until the next write/resize/close.
   * Callers must not store through it. The range must not cross a 4 KiB block boundary
   * unless it starts block-aligned and is a whole number of blocks inside one mapping chunk.
   */
  view(offset: number, length: number): Uint8Array;
  /** The little-endian u32 at a 4-aligned `offset`, without a copy (page-table walks read words). */
  readU32(offset: number): number;
  /** Store bytes (volatile until flushed and fenced). */
  write(offset: number, bytes: Uint8Array): void;
  /** Store zeros. */
  fill(offset: number, length: number, value?: number): void;
  /** Write back every cache line overlapping [offset, offset+length). */
  flush(offset: number, length: number): void;
  /** Order and complete all prior flushes. */
  fence(): void;
  /** flush + fence. */
  persist(offset: number, length: number): void;
  /**
   * Optional: runs a journal commit's plan in one step (commit_plan.ts); the effect on PM must
   * equal executeCommit's. Devices without it get executeCommit (runCommit decides).
   */
  commit?(plan: CommitPlan): void;
  /** Grow the device to `sizeBytes` (new bytes read as zero). Invalidates views. */
  resize(sizeBytes: number): void;
  /** Releases the device (unmaps the file); later calls throw. */
  close(): void;
}

/** readU32's argument: a 4-aligned offset of a word inside the device (RangeError otherwise). */
export function checkWordOffset(device: { sizeBytes: number }, offset: number): void {
  if (offset % 4 !== 0) throw new RangeError(`readU32: offset ${offset} is not 4-aligned`);
  checkRange(device, offset, 4, 'readU32');
}

/** Checks the arguments every device method shares; throws RangeError naming the bad one. */
export function checkRange(device: { sizeBytes: number }, offset: number, length: number, what: string): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`${what}: offset ${offset} is not a non-negative integer`);
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`${what}: length ${length} is not a non-negative integer`);
  if (offset + length > device.sizeBytes) {
    throw new RangeError(`${what}: range [${offset}, ${offset + length}) is outside the device of ${device.sizeBytes} bytes`);
  }
}
