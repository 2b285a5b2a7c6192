// The heap's segregated free lists (heap_layout.ts): one doubly linked list of free blocks per
// size class, its head in the heap header, and a bit per class saying the list is not empty,
// so the next class with a block is found with one count of trailing zeros.

import { CLASSES, classOf, HEADER, HEAP_START, SIZE_MASK } from './heap_layout.js';
import type { HeapRegion } from './heap_region.js';

export class FreeLists {
  constructor(private readonly memory: HeapRegion) {}

  head(cls: number): number {
    return this.memory.u32(HEAP_START + HEADER.heads + cls * 4);
  }

  /** The block after `block` on its list (0 at the end). */
  next(block: number): number {
    return this.memory.u32(block + 8);
  }

  /** The first non-empty class at or above `from`, or -1. */
  nextNonEmpty(from: number): number {
    for (let cls = from; cls < CLASSES; ) {
      const bits = this.memory.u32(HEAP_START + HEADER.nonEmpty + (cls >>> 5) * 4) >>> (cls & 31);
      if (bits !== 0) return cls + (31 - Math.clz32(bits & -bits));
      cls = (cls | 31) + 1;
    }
    return -1;
  }

  /** Puts a free block of `size` bytes at the head of its class's list. */
  link(block: number, size: number): void {
    const cls = classOf(size);
    const head = this.head(cls);
    this.memory.setU32(block + 8, head);
    this.memory.setU32(block + 12, 0);
    if (head !== 0) this.memory.setU32(head + 12, block);
    this.setHead(cls, block);
  }

  /** Takes a free block off its list (its size word says which). */
  unlink(block: number): void {
    const next = this.memory.u32(block + 8);
    const previous = this.memory.u32(block + 12);
    if (previous !== 0) this.memory.setU32(previous + 8, next);
    else this.setHead(classOf((this.memory.u32(block) & SIZE_MASK) >>> 0), next);
    if (next !== 0) this.memory.setU32(next + 12, previous);
  }

  private setHead(cls: number, block: number): void {
    this.memory.setU32(HEAP_START + HEADER.heads + cls * 4, block);
    const word = HEAP_START + HEADER.nonEmpty + (cls >>> 5) * 4;
    const bits = this.memory.u32(word);
    const bit = 1 << (cls & 31);
    this.memory.setU32(word, (block === 0 ? bits & ~bit : bits | bit) >>> 0);
  }
}
