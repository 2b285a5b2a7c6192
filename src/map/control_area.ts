// The control area of a shared working copy (shared mode): the first pages of the working-copy
// file, mapped by regiond and by every process mapping the region. It carries the shootdown
// handshake and the region's shared dirty bitmap. Little-endian u32 words, used with Atomics
// and futexes (cross-process: the file is MAP_SHARED).
//
//   offset  size  field
//   0       4     magic "RWCC"
//   4       4     layout version (1)
//   8       4     request sequence: raised by regiond to ask every mapper to freeze and report
//   12      4     release sequence: set to the request sequence when the copy is done;
//                 frozen writers wait on this word
//   16      4     regiond pid (frozen writers give up waiting if it is gone)
//   20      4     region pages
//   24      4     overflow: a mapper's fault budget ran out, so every page counts as dirty
//   28      4     mapper slots (MAPPER_SLOTS)
//   32..63        zero
//   64+64i  64    mapper slot i:  0 pid (0 = free), 4 acknowledged request sequence,
//                 8 tracking mechanism (0 none, 1 userfaultfd, 2 mprotect, 3 compare,
//                 4 manual), 12 registered (REGISTERED: 0 until the process has a mapping
//                 registered with its shootdown handler; until then it cannot store and is
//                 not waited for), 16 u64 process start time (clock ticks), 24 writable
//                 mappings made by threads other than the main thread, 28..63 zero
//   4096    ...   dirty bitmap: bit p (byte p/8, bit p%8) = region page p was stored to
//   CONTROL_BYTES(pages)   the region's pages

import { PAGE_BYTES } from '../constants.js';

export const CONTROL_MAGIC = 0x43435752; // "RWCC"
export const CONTROL_VERSION = 1;
export const CONTROL_HEADER_BYTES = 4096;
export const MAPPER_SLOT_BYTES = 64;
export const MAPPER_SLOTS = (CONTROL_HEADER_BYTES - 64) / MAPPER_SLOT_BYTES; // 63 processes per region

export const WORD = { magic: 0, version: 1, requestSeq: 2, releaseSeq: 3, regiondPid: 4, pages: 5, overflow: 6, slots: 7 } as const;
export const SLOT_WORD = { pid: 0, ackSeq: 1, mechanism: 2, registered: 3, otherThreads: 6 } as const;
export const MECHANISM_CODE = { none: 0, userfaultfd: 1, mprotect: 2, compare: 3, manual: 4 } as const;
/**
 * A slot's `registered` word: no writable mapping registered; 'signal': some, and threads
 * other than the one that made them may store (a SharedArrayBuffer was handed out, or
 * tracking by mprotect), so the handler must freeze them by mprotect; 'quiet': some, all
 * stored to only by the thread that made them, with nothing to report ('manual', 'scan');
 * 'reports': the same, but with userfaultfd pages to collect ('fault').
 *
 * What a quiet process costs a pmsync: nothing if it is the caller, which reported its own
 * pages first (RegionHandle) and waits for the reply, so it cannot store (nor can a kernel's
 * own process in exclusive mode with 'quiet'); else a signal, whose handler parks the main
 * thread until the release instead of write-protecting anything (native/shootdown.c).
 * `otherThreads` counts mappings made by worker threads: with any, the caller is signalled.
 */
export const REGISTERED = { none: 0, signal: 1, quiet: 2, reports: 3 } as const;

export function controlBytes(pages: number): number {
  return CONTROL_HEADER_BYTES + Math.ceil(Math.ceil(pages / 8) / PAGE_BYTES) * PAGE_BYTES;
}

/** Word index (into an Int32Array over the control area) of a slot's field. */
export function slotWord(slot: number, field: number): number {
  return (64 + slot * MAPPER_SLOT_BYTES) / 4 + field;
}

export function slotByteOffset(slot: number): number {
  return 64 + slot * MAPPER_SLOT_BYTES;
}

/** Byte offset of the dirty bitmap in the control area. */
export const BITMAP_OFFSET = CONTROL_HEADER_BYTES;

/** Sets bits [first, end) of the shared bitmap atomically (any process may set bits at any time). */
export function markBits(words: Int32Array, first: number, end: number): void {
  const base = BITMAP_OFFSET / 4;
  for (let p = first; p < end; p++) Atomics.or(words, base + (p >> 5), 1 << (p & 31));
}

/**
 * Takes (reads and clears) the bitmap word by word: bits set meanwhile are never lost. Words
 * are first read plainly: Atomics.load is a call per word (about 8 ns), which made this loop
 * 66 µs per pmsync of a 1 GiB region; a plain read is a load. It sees every bit set before
 * the caller synchronized with the setters (the shootdown's atomics, or the same thread), as
 * the atomic read did, and a bit set after it is taken by the next pmsync either way; only
 * the exchange, which clears, must be atomic.
 */
export function takeBits(words: Int32Array, pages: number): number[] {
  const base = BITMAP_OFFSET / 4;
  const out: number[] = [];
  for (let w = 0; w < Math.ceil(pages / 32); w++) {
    if (words[base + w] === 0) continue;
    const bits = Atomics.exchange(words, base + w, 0);
    for (let b = 0; b < 32; b++) if (bits & (1 << b)) out.push(w * 32 + b);
  }
  return out;
}

/** What regiond tells a client about a shared working copy (the map reply). */
export interface SharedCopyDescription {
  regionName: string;
  sizeBytes: number;
  pages: number;
  controlBytes: number;
  signal: number;
}
