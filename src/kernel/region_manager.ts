// The region manager: the pool's kernel. It owns the device, the free map, the journal and
// the region table, and turns every namespace operation and every pmsync into one journal
// commit. It never touches a file descriptor; it sees only a PmDevice. Its state and the
// commit path (with fail-stop on a failed commit) are in kernel_state.ts; every entry point
// here first checks that the kernel has not stopped.

import { randomBytes } from 'node:crypto';
import type { CheckReport, RegionInfo } from './types.js';
import type { PoolAccess } from '../format/superblock.js';
import {
  BLOCK_BYTES, FORMAT_VERSION, FORMAT_VERSION_ZERO_HOLES, journalBlocksFor,
  JOURNAL_START_BLOCK_INITIAL, MAX_POOL_BLOCKS, MAX_SLOTS, PAGE_BYTES, POOL_BLOCKS_MIN, TABLE_ROOT_BLOCK,
} from '../constants.js';
import { RegionError } from '../errors.js';
import { holeBlock } from '../format/entry.js';
import { RECORD_KIND } from '../format/journal_record.js';
import { emptySlot, type Slot, SLOT_STATE } from '../format/slot.js';
import type { PmDevice } from '../pm/device.js';
import { assert } from '../util/assert.js';
import { checkMounted } from './check.js';
import { InvariantViolation } from './invariants.js';
import { Journal } from './journal.js';
import { checkRegionSize } from './names.js';
import type { KernelOptions, RegionRef } from './kernel_state.js';
import { isPageBatch, pageBatch, type PageBatch, type PageBytes } from './page_batch.js';
import { PoolUpdates } from './pool_updates.js';
import {
  countPages, deepen, emptyLeafCache, levelsFor, lookupPage, releaseTree, setPage, shrink, walkPages, walkTree, zeroTail,
} from './page_table.js';
import { damagedRegion, forEachSalvagedPage, salvagePage } from './quarantine.js';
import { recoverJournal } from './recovery.js';
import { pagesFor, scanPool } from './scan.js';
import { readSuperblocks, writeSuperblockCopy, writeSuperblocks } from './superblock_store.js';
import { upgradeVersion1 } from './upgrade.js';

export type { KernelOptions, MountReport, RegionRef } from './kernel_state.js';

export interface Owner {
  mode: number;
  uid: number;
  gid: number;
}

export interface CommitResult {
  epoch: number;
  pages: number;
}

export class RegionManager extends PoolUpdates {
  /** Writes an empty pool onto the device (mkfs); access null leaves the default. */
  static format(device: PmDevice, now = Date.now(), access: PoolAccess | null = null): void {
    const poolBlocks = device.sizeBytes / BLOCK_BYTES;
    if (poolBlocks < POOL_BLOCKS_MIN) throw new RegionError('INVALID', `a pool needs at least ${POOL_BLOCKS_MIN * BLOCK_BYTES} bytes; got ${device.sizeBytes}`);
    if (poolBlocks > MAX_POOL_BLOCKS) throw new RegionError('INVALID', `a pool holds at most ${MAX_POOL_BLOCKS} blocks`);
    const journalBlocks = journalBlocksFor(poolBlocks);
    if (JOURNAL_START_BLOCK_INITIAL + journalBlocks + 4 > poolBlocks) {
      throw new RegionError('INVALID', `a pool of ${device.sizeBytes} bytes is too small for its journal of ${journalBlocks} blocks`);
    }
    device.write(TABLE_ROOT_BLOCK * BLOCK_BYTES, holeBlock(TABLE_ROOT_BLOCK)); // holes carry check codes too
    device.flush(TABLE_ROOT_BLOCK * BLOCK_BYTES, BLOCK_BYTES);
    // Two lines per half, not the whole journal: the rest is never trusted (Journal.clearHalves).
    Journal.clearHalves(device, JOURNAL_START_BLOCK_INITIAL, journalBlocks);
    device.fence(); // the table root and the empty journal are durable before a superblock names them
    writeSuperblocks(device, {
      version: FORMAT_VERSION,
      blockBytes: BLOCK_BYTES,
      sequence: 1,
      poolBlocks,
      journalStart: JOURNAL_START_BLOCK_INITIAL,
      journalBlocks,
      tableRoot: TABLE_ROOT_BLOCK,
      createdAt: now,
      uuid: randomBytes(16),
      access,
    });
  }

  /** Validates the pool, replays the journal and rebuilds the free map. */
  static mount(device: PmDevice, label: string, options: KernelOptions = {}): RegionManager {
    const copies = readSuperblocks(device, label);
    let sb = copies.chosen;
    if (sb.poolBlocks * BLOCK_BYTES > device.sizeBytes) {
      throw new RegionError('CORRUPT', `${label}: pool is truncated: ${device.sizeBytes} bytes, superblock says ${sb.poolBlocks * BLOCK_BYTES}`);
    }
    for (const copy of copies.stale) writeSuperblockCopy(device, copy, sb); // finish an interrupted update
    const { journal, replayed } = recoverJournal(device, sb, label); // CORRUPT rather than go back
    const version = sb.version;
    if (version === FORMAT_VERSION_ZERO_HOLES) sb = upgradeVersion1(device, sb, journal, label);
    const scan = scanPool(device, sb);
    const first = scan.problems[0];
    if (first) {
      const more = scan.problems.length > 1 ? ` (and ${scan.problems.length - 1} more problems)` : '';
      const fsck = scan.problems.every((p) => p.repairable) ? '`regions fsck --repair` repairs it' : 'run `regions fsck`';
      throw new InvariantViolation(first.rule, `${label}: ${first.structure} at offset ${first.offset}: `
        + `${first.message} (rule ${first.rule})${more}; ${fsck}`);
    }
    journal.noteApplied(scan.newestSlotSequence); // new records must outnumber every stamp in a slot
    const upgradedFrom = version === sb.version ? null : version;
    const report = { replayedSequence: replayed, superblockCopiesRewritten: copies.stale, upgradedFrom };
    return new RegionManager(device, sb, scan.allocator, journal, scan.table, scan.pages, scan.damaged, label, report, options);
  }

  // ---- namespace -------------------------------------------------------------------------

  lookup(name: string): RegionRef {
    this.usable();
    const index = this.table.lookup(name);
    if (index === undefined) throw new RegionError('NOT_FOUND', `no region named "${name}" in ${this.label}`);
    return { index, generation: this.table.get(index).generation };
  }

  /** The live slot behind ref, to write; NOT_FOUND if the region was removed since, CORRUPT if it is damaged. */
  slot(ref: RegionRef): Slot {
    const slot = this.visible(ref);
    if (slot.state === SLOT_STATE.damaged) throw damagedRegion(slot.name);
    return slot;
  }

  /** The slot behind ref, live or damaged (quarantined: readable and removable only). */
  private visible(ref: RegionRef): Slot {
    this.usable();
    const slot = this.table.slots.get(ref.index);
    if (!slot || (slot.state !== SLOT_STATE.live && slot.state !== SLOT_STATE.damaged) || slot.generation !== ref.generation) {
      throw new RegionError('NOT_FOUND', `the region (slot ${ref.index}) was removed`);
    }
    return slot;
  }

  info(ref: RegionRef): RegionInfo {
    const slot = this.visible(ref);
    return {
      name: slot.name,
      id: ref.index,
      generation: slot.generation,
      sizeBytes: slot.sizeBytes,
      damaged: slot.state === SLOT_STATE.damaged,
      allocatedBytes: (this.pageCounts.get(ref.index) ?? 0) * PAGE_BYTES,
      mode: slot.mode,
      uid: slot.uid,
      gid: slot.gid,
      createdAt: slot.createdAt,
      modifiedAt: slot.modifiedAt,
      epoch: slot.epoch,
    };
  }

  list(): RegionInfo[] {
    this.usable();
    return [...this.table.names.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, index]) => this.info({ index, generation: this.table.get(index).generation }));
  }

  /** At most `count` regions of the sorted list after the name `after`, and whether more follow. */
  listPage(after: string | undefined, count: number): { regions: RegionInfo[]; more: boolean } {
    const all = this.list();
    let start = 0;
    if (after !== undefined) {
      let high = all.length;
      while (start < high) {
        const middle = (start + high) >>> 1;
        if ((all[middle]?.name ?? '') <= after) start = middle + 1;
        else high = middle;
      }
    }
    return { regions: all.slice(start, start + count), more: start + count < all.length };
  }

  create(name: string, sizeBytes: number, owner: Owner, now = Date.now()): RegionInfo {
    this.usable();
    checkRegionSize(sizeBytes, this.capacityBytes); // a slot larger than the pool would not mount again
    if (this.table.lookup(name) !== undefined) throw new RegionError('EXISTS', `a region named "${name}" already exists in ${this.label}`);
    const index = this.table.chooseFree();
    const previous = this.table.slots.get(index);
    const slot: Slot = {
      state: SLOT_STATE.live,
      generation: (previous?.generation ?? 0) + 1,
      sizeBytes,
      root: 0,
      levels: levelsFor(pagesFor(sizeBytes)),
      name,
      modifiedAt: now,
      epoch: 0,
      mode: owner.mode,
      uid: owner.uid,
      gid: owner.gid,
      createdAt: now,
      journalSequence: 0, // stamped when staged
    };
    const tx = this.begin(RECORD_KIND.create, index, slot.generation, 0);
    const position = this.transact(tx, () => this.table.stageSlot(tx, index, slot));
    this.table.noteLeaf(index, position);
    this.table.remember(index, slot);
    this.pageCounts.set(index, 0);
    return this.info({ index, generation: slot.generation });
  }

  remove(ref: RegionRef): void {
    const slot = this.visible(ref);
    const removed: Slot = { ...emptySlot(), state: SLOT_STATE.removed, generation: slot.generation };
    const tx = this.begin(RECORD_KIND.remove, ref.index, slot.generation, slot.epoch);
    const damaged = this.damaged.get(ref.index);
    this.transact(tx, () => {
      // A damaged tree cannot be walked: it frees exactly what the mount's lenient walk gave it.
      if (damaged) for (const block of damaged.blocks) tx.release(block);
      else releaseTree(tx, { root: slot.root, levels: slot.levels }, this.sb.poolBlocks);
      this.table.stageSlot(tx, ref.index, removed);
    });
    this.table.remember(ref.index, removed);
    this.pageCounts.delete(ref.index);
    this.damaged.delete(ref.index);
  }

  rename(ref: RegionRef, name: string, now = Date.now()): void {
    this.usable();
    const slot = this.slot(ref);
    if (slot.name === name) return;
    if (this.table.lookup(name) !== undefined) throw new RegionError('EXISTS', `a region named "${name}" already exists in ${this.label}`);
    const renamed: Slot = { ...slot, name, modifiedAt: now };
    this.commitSlot(RECORD_KIND.rename, ref, renamed, () => {});
  }

  setOwner(ref: RegionRef, owner: Owner, now = Date.now()): void {
    this.usable();
    const slot = this.slot(ref);
    this.commitSlot(RECORD_KIND.attributes, ref, { ...slot, ...owner, modifiedAt: now }, () => {});
  }

  /**
   * Grow stays sparse (deeper tree); shrink frees the pages past the end, lowers the tree to
   * the depth the new size needs and zeroes the tail of the last page: one record either way.
   */
  resize(ref: RegionRef, sizeBytes: number, now = Date.now()): void {
    this.usable();
    const slot = this.slot(ref);
    if (sizeBytes === slot.sizeBytes) return;
    checkRegionSize(sizeBytes, this.capacityBytes);
    const tree = { root: slot.root, levels: slot.levels };
    const next = this.commitSlot(RECORD_KIND.resize, ref, slot, (tx, updated) => {
      if (sizeBytes > slot.sizeBytes) {
        deepen(tx, tree, levelsFor(pagesFor(sizeBytes)));
      } else {
        shrink(tx, tree, pagesFor(sizeBytes), this.sb.poolBlocks);
        zeroTail(this.device, tx, tree, sizeBytes, this.sb.poolBlocks);
      }
      Object.assign(updated, { sizeBytes, root: tree.root, levels: tree.levels, modifiedAt: now });
    });
    if (sizeBytes < slot.sizeBytes) this.pageCounts.set(ref.index, countPages(this.device, next, this.sb.poolBlocks));
  }

  /** Pool byte offset of the region's slot (fsck and tests). */
  slotPosition(ref: RegionRef): number {
    this.visible(ref);
    return this.table.position(ref.index);
  }

  /** The region's page-table blocks (fsck and tests). */
  pageTableBlocks(ref: RegionRef): number[] {
    this.usable();
    const blocks: number[] = [];
    walkTree(this.device, this.slot(ref), this.sb.poolBlocks, (block, level) => void (level > 0 && blocks.push(block)), 0);
    return blocks;
  }

  // ---- data ------------------------------------------------------------------------------

  /** Copies page `page` of the region into target (zeros for a hole). */
  readPage(ref: RegionRef, page: number, target: Uint8Array): void {
    const block = this.pageBlock(ref, page);
    if (block === 0) target.fill(0, 0, PAGE_BYTES);
    else target.set(this.device.view(block * BLOCK_BYTES, PAGE_BYTES));
  }

  /** Calls visit(page, view) for every committed (non-hole) page; views are valid during the call. */
  forEachCommittedPage(ref: RegionRef, visit: (page: number, view: Uint8Array) => void): void {
    const slot = this.visible(ref);
    const damaged = this.damaged.get(ref.index);
    if (damaged) return forEachSalvagedPage(this.device, slot, damaged, this.sb.poolBlocks, visit);
    walkPages(this.device, slot, this.sb.poolBlocks, (page, block) => visit(page, this.device.view(block * BLOCK_BYTES, PAGE_BYTES)));
  }

  /** A zero-copy view of the committed page (valid until the next commit), or null for a hole. */
  committedPage(ref: RegionRef, page: number): Uint8Array | null {
    const block = this.pageBlock(ref, page);
    return block === 0 ? null : this.device.view(block * BLOCK_BYTES, PAGE_BYTES);
  }

  /** The block of a committed page, 0 for a hole; of a damaged region, CORRUPT if unreadable. */
  private pageBlock(ref: RegionRef, page: number): number {
    const slot = this.visible(ref);
    const damaged = this.damaged.get(ref.index);
    if (damaged) return salvagePage(this.device, slot, damaged, page, this.sb.poolBlocks, slot.name);
    return lookupPage(this.device, slot, page, this.sb.poolBlocks);
  }

  /**
   * The pmsync commit: every given page gets a new block holding its bytes; one journal record
   * switches them all at once, with the slot's new epoch. Pages must be distinct and inside
   * the region. A working copy passes a batch (no object per page); a list is for callers
   * with a few pages in hand.
   */
  commitPages(ref: RegionRef, pages: PageBatch | readonly PageBytes[], now = Date.now()): CommitResult {
    this.usable();
    const batch = isPageBatch(pages) ? pages : pageBatch(pages);
    const count = batch.pages.length;
    assert(batch.buffer.length === count && batch.offset.length === count, 'pmsync: a buffer and an offset per page');
    const slot = this.slot(ref);
    if (count === 0) return { epoch: slot.epoch, pages: 0 }; // nothing to make durable: no record, no fence
    const free = this.allocator.freeBlocks;
    if (count > free) {
      throw new RegionError('NO_SPACE', `pmsync of region "${slot.name}": its ${count} dirty pages need ${count} `
        + `new blocks and the pool has ${free} free (of ${this.sb.poolBlocks}); grow the pool or remove regions; nothing was committed`);
    }
    const regionPages = pagesFor(slot.sizeBytes);
    const tree = { root: slot.root, levels: slot.levels };
    const tx = this.begin(RECORD_KIND.pmsync, ref.index, slot.generation, slot.epoch + 1);
    let delta = 0;
    const next: Slot = { ...slot, epoch: slot.epoch + 1, modifiedAt: now };
    const leaves = emptyLeafCache(); // only setPage changes the tree in this update
    this.transact(tx, () => {
      const first = tx.addBuffers(batch.buffers);
      for (let i = 0; i < count; i++) {
        const page = batch.pages[i] as number;
        assert(Number.isInteger(page) && page >= 0 && page < regionPages, 'pmsync: a page inside the region', page);
        const block = tx.allocateDataBlock(first + (batch.buffer[i] as number), batch.offset[i] as number);
        const old = setPage(tx, tree, page, block, this.sb.poolBlocks, leaves);
        if (old !== 0) tx.release(old);
        else delta++;
      }
      next.root = tree.root;
      if (tree.root !== slot.root) this.table.stageSlot(tx, ref.index, next);
      else this.table.stageSlotHead(tx, ref.index, next);
    });
    this.table.remember(ref.index, next);
    this.pageCounts.set(ref.index, (this.pageCounts.get(ref.index) ?? 0) + delta);
    return { epoch: next.epoch, pages: count };
  }

  // ---- pool ------------------------------------------------------------------------------

  poolCounts(): { capacityBytes: number; usedBytes: number; freeBytes: number; regions: number; slotsAllocated: number; slotsMax: number; journalBytes: number } {
    this.usable();
    return {
      capacityBytes: this.capacityBytes,
      usedBytes: this.allocator.usedBlocks * BLOCK_BYTES,
      freeBytes: this.allocator.freeBlocks * BLOCK_BYTES,
      regions: this.table.liveCount,
      slotsAllocated: this.table.allocatedSlots,
      slotsMax: MAX_SLOTS,
      journalBytes: this.journal.blockCount * BLOCK_BYTES,
    };
  }

  /** Re-walks the pool from PM and compares with the DRAM state (fsck of a mounted pool). */
  check(): CheckReport {
    this.usable();
    return checkMounted(this.device, this.sb, this.allocator);
  }
}
