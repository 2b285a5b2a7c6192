// The 8-byte entries one transaction stages for live blocks (transaction.ts), as data: their
// pool offsets and (lo, hi) halves in typed arrays, in staging order, and an index by offset
// so that a walk inside the update finds what it has just set (readEntryAt). A pmsync stages
// one entry per page: an object per entry cost more than the rest of its bookkeeping.

import type { WordList } from '../format/journal_record.js';
import { assert } from '../util/assert.js';
import { TypedList } from '../util/typed_list.js';

export class StagedWords {
  readonly #index = new Map<number, number>();
  readonly #offsets = new TypedList(Float64Array);
  readonly #values = new TypedList(Uint32Array);

  get size(): number {
    return this.#offsets.length;
  }

  /** Stages (lo, hi) at `offset`; a second store to the same offset replaces the first. */
  set(offset: number, lo: number, hi: number): void {
    assert(offset % 8 === 0 && offset >= 0, 'staged words: an 8-aligned pool offset', offset);
    const staged = this.#index.get(offset);
    if (staged !== undefined) {
      this.#values.put(2 * staged, lo);
      this.#values.put(2 * staged + 1, hi);
      return;
    }
    this.#index.set(offset, this.#offsets.length);
    this.#offsets.push(offset);
    this.#values.push(lo);
    this.#values.push(hi);
  }

  /** The index of the entry staged at `offset`, or -1. */
  find(offset: number): number {
    return this.#index.get(offset) ?? -1;
  }

  lo(index: number): number {
    return this.#values.get(2 * index);
  }

  hi(index: number): number {
    return this.#values.get(2 * index + 1);
  }

  /** Every staged entry, in staging order, without a copy: valid until the next set. */
  list(): WordList {
    return { offsets: this.#offsets.view(), values: this.#values.view() };
  }
}
