// The kernel's own types: what it reports about regions and about a check, and how a region
// may be opened. The public API re-exports them (src/api.ts); the kernel imports nothing from
// the API, so the layers above can change without reaching into it.

/** How a region is opened: 'rw' (map writable, pmsync) or 'ro' (read and map read-only). */
export type Access = 'rw' | 'ro';

import type { Invariant } from './invariants.js';

/** What Pool.stat, Pool.list and Region.info report about a region. */
export interface RegionInfo {
  /** Up to 255 UTF-8 bytes; no NUL or slash. */
  name: string;
  /** The region's slot in the region table; reused after remove. */
  id: number;
  /** Raised each time the slot is reused, so a stale handle is told apart. */
  generation: number;
  /** Size in bytes, as created or resized. */
  sizeBytes: number;
  /**
   * Quarantined by fsck --repair after its page table was found damaged: it can be read
   * (the pages still reachable) and removed, never mapped or written.
   */
  damaged: boolean;
  /** Bytes of PM blocks holding data (holes use none). */
  allocatedBytes: number;
  /** Permission bits (e.g. 0o600) checked against uid and gid like a file. */
  mode: number;
  /** Owner's user id (the creator's). */
  uid: number;
  /** Owner's group id. */
  gid: number;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** Milliseconds since the epoch of the last pmsync or metadata change. */
  modifiedAt: number;
  /** Number of the last completed pmsync of this region (0 = never). */
  epoch: number;
}

/** One problem fsck (Pool.check, checkPool) found. */
export interface CheckProblem {
  /** The on-PM structure at fault, e.g. 'superblock 1', 'slot 3', 'page table'. */
  structure: string;
  /** Byte offset of the structure in the pool. */
  offset: number;
  /** What is wrong. */
  message: string;
  /** The on-PM invariant it breaks, as docs/format.md names it (src/kernel/invariants.ts). */
  rule: Invariant;
  /** Whether check({ repair: true }) can fix it without guessing. */
  repairable: boolean;
  /** Set when this run repaired it. */
  repaired?: boolean;
}

/** The result of fsck: Pool.check or checkPool. */
export interface CheckReport {
  /** True if no problem was found. */
  ok: boolean;
  /** Every problem found (not only the first). */
  problems: CheckProblem[];
  /** Regions whose slot and page table were walked. */
  regionsChecked: number;
  /** Blocks referenced by page tables and the region table. */
  blocksReferenced: number;
  /** Blocks referenced by nothing. */
  blocksFree: number;
}
