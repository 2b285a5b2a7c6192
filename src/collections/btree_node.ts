// The blocks a PMap's B+tree is made of, each one heap allocation (offsets are payload
// offsets; little-endian):
//
//   leaf      +0 u16 kind (1)  +2 u16 entries n  +4 next leaf  +8 previous leaf (0 = none)
//             +12 n record offsets, in key order (room for LEAF_CAPACITY + 1: a full leaf
//             takes one more entry, then splits)
//   inner     +0 u16 kind (2)  +2 u16 keys n  +4 n + 1 child offsets  then n separator
//             offsets (room for INNER_CAPACITY + 1 keys). Child i holds the keys k with
//             separator i - 1 <= k < separator i.
//   record    +0 u32 key bytes  +4 u32 value bytes  +8 the encoded key, then the value
//   separator +0 u32 key bytes  +4 the encoded key (a copy: records come and go)
//
// Reads go through `guard`, which refuses (CORRUPT) an offset outside the heap or a count
// past capacity: a reader racing a writer in another process may see a torn node, and must
// get an exception it can retry on, never a wild read or an endless loop.

import { RegionError } from '../errors.js';
import { FIRST_BLOCK } from './heap_layout.js';
import type { HeapRegion } from './heap_region.js';
import { KEY_BYTES_MAX } from './key_codec.js';

export const LEAF = 1;
export const INNER = 2;
export const LEAF_CAPACITY = 64;
export const INNER_CAPACITY = 64;
export const LEAF_BYTES = 12 + 4 * (LEAF_CAPACITY + 1);
export const INNER_BYTES = 4 + 4 * (INNER_CAPACITY + 2) + 4 * (INNER_CAPACITY + 1);
const INNER_KEYS = 4 + 4 * (INNER_CAPACITY + 2);
/** A tree deeper than this is damage (64 levels of fan-out 2 would exceed the heap). */
export const HEIGHT_MAX = 40;

/** Node, record and separator access over the heap's region. */
export class NodeAccess {
  constructor(private readonly memory: HeapRegion) {}

  /** Throws CORRUPT unless [offset, offset + length) lies inside the heap's blocks. */
  guard(offset: number, length: number): void {
    if (offset < FIRST_BLOCK || offset + length > this.memory.end) {
      throw new RegionError('CORRUPT', `PMap: a pointer ${offset} (+${length}) leads outside the heap`);
    }
  }

  kind(node: number): number {
    this.guard(node, 12);
    return this.memory.view.getUint16(node, true);
  }

  count(node: number): number {
    const count = this.memory.view.getUint16(node + 2, true);
    const kind = this.memory.view.getUint16(node, true);
    if ((kind !== LEAF && kind !== INNER) || count > (kind === LEAF ? LEAF_CAPACITY : INNER_CAPACITY) + 1) {
      throw new RegionError('CORRUPT', `PMap: node ${node} has kind ${kind} and ${count} entries`);
    }
    return count;
  }

  setCount(node: number, count: number): void {
    this.memory.view.setUint16(node + 2, count, true);
    this.memory.log.touch(node + 2, 2);
  }

  init(node: number, kind: number): void {
    this.memory.view.setUint16(node, kind, true);
    this.memory.view.setUint16(node + 2, 0, true);
    this.memory.log.touch(node, 4);
    if (kind === LEAF) {
      this.memory.setU32(node + 4, 0);
      this.memory.setU32(node + 8, 0);
    }
  }

  next(leaf: number): number {
    return this.memory.u32(leaf + 4);
  }

  previous(leaf: number): number {
    return this.memory.u32(leaf + 8);
  }

  setNext(leaf: number, next: number): void {
    this.memory.setU32(leaf + 4, next);
  }

  setPrevious(leaf: number, previous: number): void {
    this.memory.setU32(leaf + 8, previous);
  }

  /** Record i of a leaf. */
  record(leaf: number, i: number): number {
    return this.memory.u32(leaf + 12 + 4 * i);
  }

  setRecord(leaf: number, i: number, record: number): void {
    this.memory.setU32(leaf + 12 + 4 * i, record);
  }

  child(inner: number, i: number): number {
    return this.memory.u32(inner + 4 + 4 * i);
  }

  setChild(inner: number, i: number, child: number): void {
    this.memory.setU32(inner + 4 + 4 * i, child);
  }

  separator(inner: number, i: number): number {
    return this.memory.u32(inner + INNER_KEYS + 4 * i);
  }

  setSeparator(inner: number, i: number, separator: number): void {
    this.memory.setU32(inner + INNER_KEYS + 4 * i, separator);
  }

  /** Opens a gap at slot i of a u32 array at `base` holding `used` words. */
  openGap(base: number, i: number, used: number): void {
    this.memory.move(base + 4 * (i + 1), base + 4 * i, 4 * (used - i));
  }

  /** Closes slot i of a u32 array at `base` holding `used` words. */
  closeGap(base: number, i: number, used: number): void {
    this.memory.move(base + 4 * i, base + 4 * (i + 1), 4 * (used - i - 1));
  }

  recordsBase(leaf: number): number {
    return leaf + 12;
  }

  childrenBase(inner: number): number {
    return inner + 4;
  }

  separatorsBase(inner: number): number {
    return inner + INNER_KEYS;
  }

  // ---- keys --------------------------------------------------------------------------------

  /** Length of the key of a record (header +0) or separator (+0). */
  keyLength(block: number): number {
    this.guard(block, 8);
    const length = this.memory.u32(block);
    if (length === 0 || length > KEY_BYTES_MAX) {
      throw new RegionError('CORRUPT', `PMap: key at ${block} claims ${length} bytes`);
    }
    return length;
  }

  /** Where a record's key starts. */
  recordKey(record: number): number {
    return record + 8;
  }

  /** Where a separator's key starts. */
  separatorKey(separator: number): number {
    return separator + 4;
  }

  valueLength(record: number): number {
    const length = this.memory.u32(record + 4);
    this.guard(record + 8, this.memory.u32(record) + length);
    return length;
  }

  /** Compares an encoded key with the stored key at [at, at + length): <0, 0, >0. */
  compare(key: Buffer, at: number, length: number): number {
    this.guard(at, length);
    // A loop, not Buffer.compare: keys are short, and the native call's checks cost more.
    const memory = this.memory.bytes;
    const common = Math.min(key.length, length);
    for (let i = 0; i < common; i++) {
      const difference = (key[i] as number) - (memory[at + i] as number);
      if (difference !== 0) return difference;
    }
    return key.length - length;
  }

  /** Compares `key` with record r's key. */
  compareRecord(key: Buffer, record: number): number {
    return this.compare(key, record + 8, this.keyLength(record));
  }

  /** Compares `key` with separator s's key. */
  compareSeparator(key: Buffer, separator: number): number {
    return this.compare(key, separator + 4, this.keyLength(separator));
  }

  /** A copy of the bytes [at, at + length). */
  copy(at: number, length: number): Buffer {
    this.guard(at, length);
    return Buffer.from(this.memory.buf.subarray(at, at + length));
  }
}
