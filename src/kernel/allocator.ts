// The free-block map: DRAM only, rebuilt at every mount by walking the page tables (nothing
// on PM records which blocks are free: it is derived, so it cannot disagree with them).
// A bit set means the block is in use (fixed area, journal, a table or page-table block, data).

import { RegionError } from '../errors.js';
import { assert } from '../util/assert.js';

/** Released blocks remembered for reuse first (LIFO): they are hot in the page cache and TLB. */
export const RECENT_BLOCKS_MAX = 65_536;

export class Allocator {
  private bits: Uint32Array;
  private readonly recent: number[] = [];
  private blocks: number;
  private used = 0;
  private cursor = 0;

  constructor(poolBlocks: number) {
    assert(Number.isSafeInteger(poolBlocks) && poolBlocks > 0, 'allocator: pool has blocks');
    this.blocks = poolBlocks;
    this.bits = new Uint32Array(Math.ceil(poolBlocks / 32));
  }

  get poolBlocks(): number {
    return this.blocks;
  }
  get usedBlocks(): number {
    return this.used;
  }
  get freeBlocks(): number {
    return this.blocks - this.used;
  }

  isUsed(block: number): boolean {
    assert(block >= 0 && block < this.blocks, 'allocator: a block inside the pool', block);
    return ((this.bits[block >>> 5] ?? 0) & (1 << (block & 31))) !== 0;
  }

  /** Marks a block in use; returns false if it already was (a second reference). */
  claim(block: number): boolean {
    if (this.isUsed(block)) return false;
    this.bits[block >>> 5] = (this.bits[block >>> 5] ?? 0) | (1 << (block & 31));
    this.used++;
    return true;
  }

  claimRange(start: number, count: number): void {
    for (let b = start; b < start + count; b++) assert(this.claim(b), 'allocator: a reserved block claimed once', b);
  }

  /**
   * One free block: the most recently released one if any (a pmsync that rewrites the same
   * pages then reuses the blocks the previous one freed, which are already populated), else
   * next-fit.
   */
  allocate(): number {
    if (this.used >= this.blocks) throw new RegionError('NO_SPACE', `pool is full: all ${this.blocks} blocks are in use`);
    while (this.recent.length > 0) {
      const block = this.recent.pop() as number;
      if (this.claim(block)) return block;
    }
    for (let scanned = 0; scanned <= this.bits.length; scanned++) {
      const wordIndex = (this.cursor >>> 5) % this.bits.length;
      const word = this.bits[wordIndex] ?? 0;
      if (word !== 0xffffffff) {
        for (let bit = 0; bit < 32; bit++) {
          const block = wordIndex * 32 + bit;
          if (block >= this.blocks) break;
          if ((word & (1 << bit)) === 0) {
            assert(this.claim(block), 'allocator: free bit claimable');
            this.cursor = block + 1;
            return block;
          }
        }
      }
      this.cursor = (wordIndex + 1) * 32;
    }
    throw new RegionError('NO_SPACE', `pool is full: no free block among ${this.blocks}`);
  }

  release(block: number): void {
    assert(this.isUsed(block), 'allocator: a released block was in use', block);
    this.bits[block >>> 5] = (this.bits[block >>> 5] ?? 0) & ~(1 << (block & 31));
    this.used--;
    if (this.recent.length < RECENT_BLOCKS_MAX) this.recent.push(block);
  }

  grow(poolBlocks: number): void {
    assert(poolBlocks >= this.blocks, 'allocator: pools only grow');
    const bits = new Uint32Array(Math.ceil(poolBlocks / 32));
    bits.set(this.bits);
    this.bits = bits;
    this.blocks = poolBlocks;
  }
}
