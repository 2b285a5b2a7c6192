// Quarantine: damage stays local. When fsck finds a region's page table damaged (a bad check
// code, a zeroed block, a block referenced twice, an entry into the journal, a depth its size
// does not explain), `--repair` marks the region's slot damaged (slot state 3) instead of
// leaving the whole pool unmountable. A damaged region keeps its name and is listed as such;
// it is never written again; its readable pages can be read (`regions read`), and removing it
// frees what it held.
//
// At mount a damaged tree is walked leniently, after every live region has claimed its blocks:
// an entry that fails its check code, points beyond the pool or into the journal, or reaches
// a block that something else already owns is unreadable and not followed. Only blocks the
// region owns are ever read through it, so a damaged region can never show another region's
// data, and what it owns cannot be handed out again while it exists.

import { BLOCK_BYTES, ENTRIES_PER_BLOCK, PAGE_BYTES, REGION_LEVELS_MAX } from '../constants.js';
import { decodeEntry, ENTRY_CORRUPT } from '../format/entry.js';
import { RegionError } from '../errors.js';
import type { Slot } from '../format/slot.js';
import type { PmDevice } from '../pm/device.js';

/** What a damaged region owns: its readable tree blocks and data blocks. */
export interface DamagedTree {
  blocks: Set<number>;
  /** Data pages readable through the tree. */
  pages: number;
}

function childAt(device: PmDevice, table: number, index: number, poolBlocks: number): number {
  const position = table * BLOCK_BYTES + index * 8;
  const block = decodeEntry(device.readU32(position), device.readU32(position + 4), position);
  return block === ENTRY_CORRUPT || block >= poolBlocks ? ENTRY_CORRUPT : block;
}

/**
 * The lenient walk: `claim(block)` returns false when the block is not the region's to take
 * (fixed area, journal, owned by another); such a block and everything below it is unreadable.
 */
export function salvageTree(
  device: PmDevice,
  slot: Slot,
  poolBlocks: number,
  claim: (block: number) => boolean,
): DamagedTree {
  const tree: DamagedTree = { blocks: new Set(), pages: 0 };
  const take = (block: number): boolean => {
    if (block >= poolBlocks || tree.blocks.has(block) || !claim(block)) return false;
    tree.blocks.add(block);
    return true;
  };
  const descend = (table: number, level: number): void => {
    for (let i = 0; i < ENTRIES_PER_BLOCK; i++) {
      const child = childAt(device, table, i, poolBlocks);
      if (child === 0 || child === ENTRY_CORRUPT || !take(child)) continue;
      if (level === 1) tree.pages++;
      else descend(child, level - 1);
    }
  };
  const levels = slot.levels;
  if (slot.root !== 0 && levels >= 1 && levels <= REGION_LEVELS_MAX && take(slot.root)) descend(slot.root, levels);
  return tree;
}

/**
 * The block holding `page` of a damaged region: 0 for a hole, or CORRUPT if the way to it is
 * damaged (the page cannot be salvaged).
 */
export function salvagePage(
  device: PmDevice,
  slot: Slot,
  owned: DamagedTree,
  page: number,
  poolBlocks: number,
  name: string,
): number {
  let block = owned.blocks.has(slot.root) ? slot.root : 0;
  if (slot.root !== 0 && block === 0) throw unreadable(name, page);
  for (let level = slot.levels; level >= 1 && block !== 0; level--) {
    const index = Math.floor(page / ENTRIES_PER_BLOCK ** (level - 1)) % ENTRIES_PER_BLOCK;
    const child = childAt(device, block, index, poolBlocks);
    if (child === ENTRY_CORRUPT || (child !== 0 && !owned.blocks.has(child))) throw unreadable(name, page);
    block = child;
  }
  return block;
}

/** Calls visit(page, view) for every readable data page of a damaged region, in page order. */
export function forEachSalvagedPage(
  device: PmDevice,
  slot: Slot,
  owned: DamagedTree,
  poolBlocks: number,
  visit: (page: number, view: Uint8Array) => void,
): void {
  const descend = (table: number, level: number, first: number): void => {
    const span = ENTRIES_PER_BLOCK ** (level - 1);
    for (let i = 0; i < ENTRIES_PER_BLOCK; i++) {
      const child = childAt(device, table, i, poolBlocks);
      if (child === 0 || child === ENTRY_CORRUPT || !owned.blocks.has(child)) continue;
      if (level === 1) visit(first + i, device.view(child * BLOCK_BYTES, PAGE_BYTES));
      else descend(child, level - 1, first + i * span);
    }
  };
  if (slot.root !== 0 && owned.blocks.has(slot.root)) descend(slot.root, slot.levels, 0);
}

function unreadable(name: string, page: number): RegionError {
  return new RegionError('CORRUPT', `region "${name}" is damaged and page ${page} cannot be read: the page table `
    + 'on the way to it is damaged; its other pages may still be read');
}

export function damagedRegion(name: string): RegionError {
  return new RegionError('CORRUPT', `region "${name}" is damaged: fsck --repair quarantined it after finding its page `
    + 'table damaged; it cannot be mapped or written: read its readable pages with `regions read`, then remove it');
}
