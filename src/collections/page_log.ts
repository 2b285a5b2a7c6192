// Which pages of a heap's region were written since the last commit (or rollback): each is
// reported to the mapping's tracker once (markDirty, which tracking 'manual' needs), and the
// list is what a rollback puts back. No object per page: a stamp per page says whether it is
// on the list of the current interval.

import { PAGE_BYTES } from '../constants.js';

export class PageLog {
  private stamps: Uint32Array;
  private stamp = 1;
  private readonly list: number[] = [];

  constructor(
    pages: number,
    private readonly mark: (offset: number, length: number) => void,
  ) {
    this.stamps = new Uint32Array(pages);
  }

  /** [offset, offset + length) was written. */
  touch(offset: number, length: number): void {
    const last = Math.floor((offset + length - 1) / PAGE_BYTES);
    for (let page = Math.floor(offset / PAGE_BYTES); page <= last; page++) {
      if (this.stamps[page] === this.stamp) continue;
      this.stamps[page] = this.stamp;
      this.list.push(page);
      this.mark(page * PAGE_BYTES, PAGE_BYTES);
    }
  }

  /** Pages written in this interval, in the order first written. */
  get pages(): readonly number[] {
    return this.list;
  }

  /** A commit or rollback ended the interval. */
  clear(): void {
    this.list.length = 0;
    this.stamp = (this.stamp + 1) >>> 0;
    if (this.stamp === 0) {
      this.stamps.fill(0);
      this.stamp = 1;
    }
  }

  /** The region now has `pages` pages (after a growth, which starts a clean interval). */
  resize(pages: number): void {
    this.stamps = new Uint32Array(pages);
    this.list.length = 0;
    this.stamp = 1;
  }
}
