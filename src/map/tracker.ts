// Dirty tracking (DESIGN.md section 6): every tracker yields the pages of its mapping stored
// to since the last pmsync. The pmsync freezes every mapping of the region first, so no store
// lands between collect() and the copy.

/**
 * What a mapping's dirty tracking runs on: 'userfaultfd' (async write-protect + PAGEMAP_SCAN)
 * or 'mprotect' (SIGSEGV) for tracking 'fault', 'compare' for 'scan', 'manual' for 'manual'.
 */
export type Mechanism = 'userfaultfd' | 'mprotect' | 'compare' | 'manual';

export interface DirtyTracker {
  readonly mechanism: Mechanism;
  /** Pages (indexes within the mapping) stored to since the last rearm(); mapping is frozen. */
  collect(): Iterable<number>;
  /** After the copy: forget what was collected and watch again; thaws the mapping if frozen. */
  rearm(frozen: boolean): void;
  /** The kernel (read(2) etc.) will write [firstPage, endPage): make that possible and count it. */
  prepareWrite(firstPage: number, endPage: number): void;
  /** The application says it wrote [firstPage, endPage). */
  markDirty(firstPage: number, endPage: number): void;
  /** Stop tracking (before unmap). */
  close(): void;
}

/** A bitmap of pages, one bit each, little-endian bit order within bytes. */
export class PageBitmap {
  readonly bytes: Uint8Array;
  constructor(readonly pages: number) {
    this.bytes = new Uint8Array(Math.ceil(pages / 32) * 4); // whole 32-bit words
  }
  set(first: number, end: number): void {
    for (let p = first; p < end; p++) this.bytes[p >> 3] = (this.bytes[p >> 3] ?? 0) | (1 << (p & 7));
  }
  /** The set pages in ascending order; skips clear 32-bit words at once. */
  pagesSet(): number[] {
    const pages: number[] = [];
    const whole = this.bytes.length >> 2;
    const words = new Uint32Array(this.bytes.buffer, this.bytes.byteOffset, whole);
    for (let w = 0; w < whole; w++) {
      const word = words[w] ?? 0;
      if (word === 0) continue;
      for (let bit = 0; bit < 32; bit++) if (word & (1 << bit)) pages.push(w * 32 + bit);
    }
    for (let i = whole * 4; i < this.bytes.length; i++) {
      const byte = this.bytes[i] ?? 0;
      for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) pages.push(i * 8 + bit);
    }
    return pages;
  }
  clear(): void {
    this.bytes.fill(0);
  }
}
