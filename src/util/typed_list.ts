// An append-only list of numbers in a typed array that doubles when full: per-item data of a
// hot path (a commit's pages and entries) without an object or a boxed number per item.

import { assert } from './assert.js';

type NumberArray = Float64Array | Uint32Array;

export class TypedList<T extends NumberArray> {
  #items: T;
  #length = 0;

  constructor(private readonly make: new (length: number) => T, capacity = 16) {
    assert(Number.isInteger(capacity) && capacity > 0, 'typed list: a positive capacity', capacity);
    this.#items = new make(capacity);
  }

  get length(): number {
    return this.#length;
  }

  push(value: number): void {
    if (this.#length === this.#items.length) {
      const grown = new this.make(2 * this.#items.length);
      grown.set(this.#items);
      this.#items = grown;
    }
    this.#items[this.#length++] = value;
  }

  get(index: number): number {
    assert(index >= 0 && index < this.#length, 'typed list: an index inside the list', index);
    return this.#items[index] as number;
  }

  put(index: number, value: number): void {
    assert(index >= 0 && index < this.#length, 'typed list: an index inside the list', index);
    this.#items[index] = value;
  }

  /** The items, without a copy: valid until the next push. */
  view(): T {
    return this.#items.subarray(0, this.#length) as T;
  }
}
