// A region's page table: a radix tree of 4 KiB blocks of 512 entries, like x86-64's.
// `levels` levels map 512^levels pages; a hole (block 0, check-coded) at any level reads as zeros and owns
// no block, so regions are sparse. The root lives in the region's slot.

import { BLOCK_BYTES, ENTRIES_PER_BLOCK, PAGE_BYTES, REGION_LEVELS_MAX } from '../constants.js';
import { decodeEntry, ENTRY_CORRUPT, isZeroWord } from '../format/entry.js';
import type { RegionError } from '../errors.js';
import type { PmDevice } from '../pm/device.js';
import { assert } from '../util/assert.js';
import { type Invariant, InvariantViolation } from './invariants.js';
import type { Transaction } from './transaction.js';

export interface TreeRoot {
  root: number;
  levels: number;
}

/**
 * The leaf table setPage reached last, for one update that only sets pages (a pmsync):
 * pages in order share leaves, so the walk above the leaf is done once per leaf. Valid while
 * the same root stays and nothing but setPage changes the tree, which creates the tables it
 * caches itself; a new root (a first page, deepen) makes it miss.
 */
export interface LeafCache {
  root: number;
  /** page / 512 of the cached leaf; -1 for none. */
  leafIndex: number;
  leaf: number;
}

export function emptyLeafCache(): LeafCache {
  return { root: 0, leafIndex: -1, leaf: 0 };
}

/** Levels needed to map `pages` pages (at least 1). */
export function levelsFor(pages: number): number {
  let levels = 1;
  while (ENTRIES_PER_BLOCK ** levels < pages) levels++;
  assert(levels <= REGION_LEVELS_MAX, `page table: ${pages} pages need at most ${REGION_LEVELS_MAX} levels`);
  return levels;
}

function entryIndex(page: number, level: number): number {
  // level 1 = leaf; index bits of the page number for that level
  return Math.floor(page / ENTRIES_PER_BLOCK ** (level - 1)) % ENTRIES_PER_BLOCK;
}

function corrupt(rule: Invariant, what: string, offset: number, detail: string): RegionError {
  return new InvariantViolation(rule, `${what} at offset ${offset}: ${detail}; run \`regions fsck\``);
}

/** Reads the entry at pool offset `position`; validates its check code and bounds. */
export function readEntryAt(device: PmDevice, position: number, poolBlocks: number, tx?: Transaction): number {
  const staged = tx === undefined ? -1 : tx.words.find(position); // a walk inside an update sees its staged words
  const lo = staged < 0 ? device.readU32(position) : (tx as Transaction).words.lo(staged);
  const hi = staged < 0 ? device.readU32(position + 4) : (tx as Transaction).words.hi(staged);
  const block = decodeEntry(lo, hi, position);
  if (block === ENTRY_CORRUPT) {
    const detail = isZeroWord(lo, hi) ? 'all zero (a hole carries a check code too)' : 'check code mismatch';
    throw corrupt('entry-code', 'page-table entry', position, detail);
  }
  if (block !== 0 && block >= poolBlocks) {
    const detail = `block ${block} beyond the pool (${poolBlocks} blocks)`;
    throw corrupt('entry-target', 'page-table entry', position, detail);
  }
  return block;
}

/** The block holding `page`, or 0 for a hole. */
export function lookupPage(
  device: PmDevice,
  tree: TreeRoot,
  page: number,
  poolBlocks: number,
  tx?: Transaction,
): number {
  let block = tree.root;
  for (let level = tree.levels; level >= 1 && block !== 0; level--) {
    block = readEntryAt(device, block * BLOCK_BYTES + entryIndex(page, level) * 8, poolBlocks, tx);
  }
  return block;
}

/**
 * Points `page` at `block` (0 punches a hole) inside tx; creates missing interior blocks.
 * Returns the block previously mapped (the caller releases it). tree.root may change.
 */
export function setPage(
  tx: Transaction,
  tree: TreeRoot,
  page: number,
  block: number,
  poolBlocks: number,
  cache?: LeafCache,
): number {
  assert(page < ENTRIES_PER_BLOCK ** tree.levels, 'page table: the page within the levels of the tree', page);
  if (tree.root === 0) {
    if (block === 0) return 0;
    tree.root = tx.allocateBlock('table');
  }
  const leafIndex = Math.floor(page / ENTRIES_PER_BLOCK);
  const cached = cache !== undefined && cache.root === tree.root && cache.leafIndex === leafIndex;
  let table = cached ? cache.leaf : tree.root;
  for (let level = cached ? 1 : tree.levels; level > 1; level--) {
    const position = table * BLOCK_BYTES + entryIndex(page, level) * 8;
    let next = readEntryAt(tx.device, position, poolBlocks, tx);
    if (next === 0) {
      if (block === 0) return 0;
      next = tx.allocateBlock('table');
      tx.setEntry(position, next);
    }
    table = next;
  }
  if (cache !== undefined) {
    cache.root = tree.root;
    cache.leafIndex = leafIndex;
    cache.leaf = table;
  }
  const position = table * BLOCK_BYTES + entryIndex(page, 1) * 8;
  const previous = readEntryAt(tx.device, position, poolBlocks, tx);
  tx.setEntry(position, block);
  return previous;
}

/** Calls visit(block, level, entryPosition) for every block the tree references (top-down). */
export function walkTree(
  device: PmDevice,
  tree: TreeRoot,
  poolBlocks: number,
  visit: (block: number, level: number, position: number) => void,
  rootPosition: number,
): void {
  if (tree.root === 0) return;
  visit(tree.root, tree.levels, rootPosition);
  walkBlock(device, tree.root, tree.levels, poolBlocks, visit);
}

function walkBlock(
  device: PmDevice,
  table: number,
  level: number,
  poolBlocks: number,
  visit: (block: number, level: number, position: number) => void,
): void {
  for (let i = 0; i < ENTRIES_PER_BLOCK; i++) {
    const position = table * BLOCK_BYTES + i * 8;
    const child = readEntryAt(device, position, poolBlocks);
    if (child === 0) continue;
    visit(child, level - 1, position);
    if (level > 1) walkBlock(device, child, level - 1, poolBlocks, visit);
  }
}

/** Calls visit(page, block) for every mapped data page, in page order. */
export function walkPages(
  device: PmDevice,
  tree: TreeRoot,
  poolBlocks: number,
  visit: (page: number, block: number) => void,
): void {
  const descend = (table: number, level: number, firstPage: number): void => {
    const span = ENTRIES_PER_BLOCK ** (level - 1);
    for (let i = 0; i < ENTRIES_PER_BLOCK; i++) {
      const child = readEntryAt(device, table * BLOCK_BYTES + i * 8, poolBlocks);
      if (child === 0) continue;
      if (level === 1) visit(firstPage + i, child);
      else descend(child, level - 1, firstPage + i * span);
    }
  };
  if (tree.root !== 0) descend(tree.root, tree.levels, 0);
}

/** Adds levels on top until the tree maps `levels` levels; the old root becomes entry 0. */
export function deepen(tx: Transaction, tree: TreeRoot, levels: number): void {
  assert(levels >= tree.levels, 'page table: deepen only adds levels');
  if (tree.root === 0) {
    tree.levels = levels;
    return;
  }
  while (tree.levels < levels) {
    const root = tx.allocateBlock('table');
    tx.setEntry(root * BLOCK_BYTES, tree.root);
    tree.root = root;
    tree.levels++;
  }
}

/**
 * A shrink: releases every page at index >= pages and lowers the tree to the levels `pages`
 * needs (the slot's levels must always equal levelsFor of its size: mount refuses anything
 * else). Only entry 0 of a root can map pages below 512^(levels-1), so each level removed
 * keeps entry 0's subtree as the new root and releases the old root with every other
 * subtree, without writing into any of them. Everything is staged in tx, one record.
 */
export function shrink(tx: Transaction, tree: TreeRoot, pages: number, poolBlocks: number): void {
  const levels = levelsFor(pages);
  assert(levels <= tree.levels, 'page table: shrink only removes levels');
  while (tree.levels > levels && tree.root !== 0) {
    const old = tree.root;
    for (let i = 1; i < ENTRIES_PER_BLOCK; i++) {
      const child = readEntryAt(tx.device, old * BLOCK_BYTES + i * 8, poolBlocks, tx);
      if (child !== 0) releaseSubtree(tx, child, tree.levels - 1, poolBlocks);
    }
    tree.root = readEntryAt(tx.device, old * BLOCK_BYTES, poolBlocks, tx);
    tx.release(old);
    tree.levels--;
  }
  tree.levels = levels; // an empty tree (root a hole) just takes the new depth
  truncate(tx, tree, pages, poolBlocks);
}

/**
 * Releases every page at index >= pages (and interior blocks left empty), inside tx.
 * Levels stay as they are (shrink lowers them); an emptied root becomes a hole. A block that
 * is released is never also written: a journal record must not target a block it frees.
 */
export function truncate(tx: Transaction, tree: TreeRoot, pages: number, poolBlocks: number): void {
  if (tree.root === 0) return;
  if (keepsPages(tx, tree.root, tree.levels, 0, pages, poolBlocks)) {
    truncateBlock(tx, tree.root, tree.levels, 0, pages, poolBlocks);
  } else {
    releaseTree(tx, tree, poolBlocks);
  }
}

/** Releases the whole tree (region removal) without writing into it. */
export function releaseTree(tx: Transaction, tree: TreeRoot, poolBlocks: number): void {
  if (tree.root !== 0) releaseSubtree(tx, tree.root, tree.levels, poolBlocks);
  tree.root = 0;
}

/** Does the block map any page below `pages`? */
function keepsPages(
  tx: Transaction,
  table: number,
  level: number,
  firstPage: number,
  pages: number,
  poolBlocks: number,
): boolean {
  const span = ENTRIES_PER_BLOCK ** (level - 1);
  for (let i = 0; i < ENTRIES_PER_BLOCK && firstPage + i * span < pages; i++) {
    const child = readEntryAt(tx.device, table * BLOCK_BYTES + i * 8, poolBlocks, tx);
    if (child === 0) continue;
    const childFirst = firstPage + i * span;
    if (level === 1 || childFirst + span <= pages) return true;
    if (keepsPages(tx, child, level - 1, childFirst, pages, poolBlocks)) return true;
  }
  return false;
}

/** Precondition: keepsPages(table); the block survives, so writing its entries is safe. */
function truncateBlock(
  tx: Transaction,
  table: number,
  level: number,
  firstPage: number,
  pages: number,
  poolBlocks: number,
): void {
  const span = ENTRIES_PER_BLOCK ** (level - 1);
  for (let i = 0; i < ENTRIES_PER_BLOCK; i++) {
    const position = table * BLOCK_BYTES + i * 8;
    const childFirst = firstPage + i * span;
    if (childFirst + span <= pages) continue;
    const child = readEntryAt(tx.device, position, poolBlocks, tx);
    if (child === 0) continue;
    if (childFirst < pages && level > 1 && keepsPages(tx, child, level - 1, childFirst, pages, poolBlocks)) {
      truncateBlock(tx, child, level - 1, childFirst, pages, poolBlocks);
      continue;
    }
    releaseSubtree(tx, child, level - 1, poolBlocks);
    tx.setEntry(position, 0);
  }
}

function releaseSubtree(tx: Transaction, block: number, level: number, poolBlocks: number): void {
  if (level > 0) {
    for (let i = 0; i < ENTRIES_PER_BLOCK; i++) {
      const child = readEntryAt(tx.device, block * BLOCK_BYTES + i * 8, poolBlocks, tx);
      if (child !== 0) releaseSubtree(tx, child, level - 1, poolBlocks);
    }
  }
  tx.release(block);
}

/** Bytes of the last page past a new, smaller size must read as zero if the region grows again. */
export function zeroTail(
  device: PmDevice,
  tx: Transaction,
  tree: TreeRoot,
  sizeBytes: number,
  poolBlocks: number,
): void {
  const within = sizeBytes % PAGE_BYTES;
  if (within === 0) return;
  const page = Math.floor(sizeBytes / PAGE_BYTES);
  const block = lookupPage(device, tree, page, poolBlocks, tx);
  if (block === 0) return;
  const bytes = device.read(block * BLOCK_BYTES, BLOCK_BYTES);
  bytes.fill(0, within);
  const copy = tx.allocateDataBlock(tx.addBuffers([bytes]), 0);
  const old = setPage(tx, tree, page, copy, poolBlocks);
  assert(old === block, 'resize: tail page replaced in place');
  tx.release(old);
}

/** Data pages (non-hole leaves) of a region's tree. */
export function countPages(device: PmDevice, tree: TreeRoot, poolBlocks: number): number {
  let count = 0;
  walkTree(device, tree, poolBlocks, (_block, level) => void (level === 0 && count++), 0);
  return count;
}
