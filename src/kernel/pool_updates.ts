// The pool-wide updates of a mounted pool's kernel: growth (with the journal's move when the
// bigger pool needs a bigger one) and the access setting. Each is one superblock update whose
// commit point is copy 0 being durable (superblock_store.ts). RegionManager adds the namespace
// and the data on top; the state and the commit path are kernel_state.ts's.

import { BLOCK_BYTES, journalBlocksFor, MAX_POOL_BLOCKS, SOCKET_MODE_DEFAULT } from '../constants.js';
import { RegionError } from '../errors.js';
import type { PoolAccess, Superblock } from '../format/superblock.js';
import { Journal } from './journal.js';
import { KernelState } from './kernel_state.js';
import { writeSuperblocks } from './superblock_store.js';

export abstract class PoolUpdates extends KernelState {
  get capacityBytes(): number {
    this.usable();
    return this.sb.poolBlocks * BLOCK_BYTES;
  }

  /**
   * Online growth: the device grows first, then the superblock (the commit point is copy 0);
   * the journal moves to the new space when the bigger pool needs a bigger one. A device that
   * cannot grow (NO_SPACE: the file system is full) changes nothing: the pool stays usable at
   * its old size. A failure after that stops the kernel (fail-stop).
   */
  grow(sizeBytes: number): void {
    this.usable();
    const invalid = (message: string): RegionError => new RegionError('INVALID', message);
    const capacity = this.capacityBytes;
    const whole = Number.isSafeInteger(sizeBytes) && sizeBytes % BLOCK_BYTES === 0;
    if (!whole) throw invalid(`pool size ${sizeBytes} is not a multiple of ${BLOCK_BYTES}`);
    if (sizeBytes < capacity) throw invalid(`pools only grow: ${sizeBytes} is less than the current ${capacity} bytes`);
    if (sizeBytes === this.capacityBytes) return;
    const poolBlocks = sizeBytes / BLOCK_BYTES;
    if (poolBlocks > MAX_POOL_BLOCKS) throw invalid(`a pool holds at most ${MAX_POOL_BLOCKS} blocks`);
    const oldBlocks = this.sb.poolBlocks;
    const relocate = journalBlocksFor(poolBlocks) > this.sb.journalBlocks;
    // A moved journal is sized for twice the new pool when that fits, so growing in small
    // steps does not move it every time.
    const roomy = journalBlocksFor(2 * poolBlocks);
    const journalBlocks = oldBlocks + roomy <= poolBlocks ? roomy : journalBlocksFor(poolBlocks);
    if (relocate && oldBlocks + journalBlocks > poolBlocks) {
      throw invalid(`growing to ${sizeBytes} bytes leaves no room for the larger journal; grow by more`);
    }
    if (this.device.sizeBytes < sizeBytes) this.device.resize(sizeBytes); // reserves the space, or throws
    const next: Superblock = { ...this.sb, sequence: this.sb.sequence + 1, poolBlocks };
    this.failStop('a pool growth', () => this.switchSuperblock(next, relocate ? journalBlocks : 0));
    this.verify('a pool growth');
  }

  /** grow's commit: the new journal's commit words, the superblock, then the DRAM state. */
  private switchSuperblock(next: Superblock, journalBlocks: number): void {
    const relocate = journalBlocks > 0;
    const oldBlocks = this.sb.poolBlocks;
    if (relocate) {
      // As at format: each half's commit and header lines, whatever the new space held before.
      Journal.clearHalves(this.device, oldBlocks, journalBlocks);
      Object.assign(next, { journalStart: oldBlocks, journalBlocks });
      // The new journal reads empty, and the last commit's in-place applies are durable, before
      // the superblock switches journals.
      this.device.fence();
    }
    writeSuperblocks(this.device, next); // commit point: copy 0 durable
    const old = this.sb;
    this.sb = next;
    this.allocator.grow(next.poolBlocks);
    this.table.setPoolBlocks(next.poolBlocks);
    if (relocate) {
      this.allocator.claimRange(next.journalStart, next.journalBlocks);
      for (let b = old.journalStart; b < old.journalStart + old.journalBlocks; b++) this.allocator.release(b);
      this.journal.relocate(next.journalStart, next.journalBlocks);
    }
  }

  /** Who may connect to regiond: the pool's setting, or the default (owner only) if it never set one. */
  get access(): PoolAccess {
    this.usable();
    return this.sb.access ?? { socketMode: SOCKET_MODE_DEFAULT, group: null };
  }

  /** One superblock update (commit point: copy 0 durable), as grow; the caller has checked access. */
  setAccess(access: PoolAccess): void {
    this.usable();
    if (this.sb.access?.socketMode === access.socketMode && this.sb.access.group === access.group) return;
    const next: Superblock = { ...this.sb, sequence: this.sb.sequence + 1, access: { ...access } };
    this.failStop('a pool access update', () => writeSuperblocks(this.device, next));
    this.sb = next;
    this.verify('a pool access update');
  }
}
