// The pool walk shared by mount and check: visits the region table and every page table,
// claims each referenced block in a fresh free map, and collects every problem found
// (structure + offset) instead of stopping at the first, so fsck can report them all.

import { BLOCK_BYTES, PAGE_BYTES, REGION_LEVELS_MAX, SUPERBLOCK_BLOCKS } from '../constants.js';
import { RegionError } from '../errors.js';
import type { Superblock } from '../format/superblock.js';
import { SLOT_STATE, type Slot } from '../format/slot.js';
import type { CheckProblem } from './types.js';
import type { PmDevice } from '../pm/device.js';
import { Allocator } from './allocator.js';
import { levelsFor, walkTree } from './page_table.js';
import { type Invariant, ruleOf } from './invariants.js';
import { type DamagedTree, salvageTree } from './quarantine.js';
import { RegionTable } from './region_table.js';

export interface ScanResult {
  allocator: Allocator;
  table: RegionTable;
  /** Data pages held by each live slot. */
  pages: Map<number, number>;
  problems: CheckProblem[];
  /** The highest journal sequence stamped in a slot: the newest record the pool has applied. */
  newestSlotSequence: number;
  /**
   * Live slots whose tree is deeper than their size needs (left by a shrink that did not lower
   * it), walked and claimed at their depth, otherwise sound: fsck --repair lowers them.
   */
  deep: { index: number; slot: Slot }[];
  /** Live slots whose page table is damaged otherwise: fsck --repair quarantines them (quarantine.ts). */
  quarantine: { index: number; slot: Slot }[];
  /** Damaged (quarantined) slots and what each owns, walked leniently after every live slot. */
  damaged: Map<number, DamagedTree>;
}

const QUARANTINE = '; repair quarantines the region (kept, listed as damaged, its readable pages readable)';

/** Marks the problems from `first` on as repairable by quarantine. */
function quarantinable(problems: CheckProblem[], first: number): void {
  for (let i = first; i < problems.length; i++) {
    const p = problems[i] as CheckProblem;
    problems[i] = { ...p, message: p.message + QUARANTINE, repairable: true };
  }
}

export function pagesFor(sizeBytes: number): number {
  return Math.max(1, Math.ceil(sizeBytes / PAGE_BYTES));
}

type Claim = (block: number, owner: string, position: number) => void;

/** A slot as the region table holds it (live, removed or damaged), with its pool offset. */
interface TableSlot {
  index: number;
  slot: Slot;
  position: number;
}

/** A problem no repair fixes (quarantinable may mark it repairable afterwards). */
function problem(structure: string, offset: number, message: string, rule: Invariant): CheckProblem {
  return { structure, offset, message, rule, repairable: false };
}

export function scanPool(device: PmDevice, sb: Superblock): ScanResult {
  const problems: CheckProblem[] = [];
  const allocator = new Allocator(sb.poolBlocks);
  const claim = claimer(allocator, problems);
  for (const b of SUPERBLOCK_BLOCKS) claim(b, 'superblock', b * BLOCK_BYTES);
  claim(sb.tableRoot, 'region table root', 48);
  for (let b = sb.journalStart; b < sb.journalStart + sb.journalBlocks; b++) claim(b, 'journal', 32);

  const { table, live } = loadTable(device, sb, claim, problems);
  const newestSlotSequence = live.reduce((newest, { slot }) => Math.max(newest, slot.journalSequence), 0);
  const result: ScanResult = {
    allocator,
    table,
    pages: new Map<number, number>(),
    problems,
    newestSlotSequence,
    deep: [],
    quarantine: [],
    damaged: new Map<number, DamagedTree>(),
  };
  const seen = new Map<string, number>();
  const damagedSlots: { index: number; slot: Slot }[] = [];
  for (const entry of live) {
    const { index, slot, position } = entry;
    if (slot.state === SLOT_STATE.removed) {
      if (slot.root !== 0) {
        const message = 'removed slot still has a page table';
        problems.push(problem(`region table slot ${index}`, position, message, 'removed-slot-empty'));
      }
      continue;
    }
    const label = `region "${slot.name}" (slot ${index})`;
    if (seen.has(slot.name)) {
      problems.push(problem(label, position, `name also used by slot ${seen.get(slot.name)}`, 'unique-names'));
    }
    seen.set(slot.name, index);
    if (slot.state === SLOT_STATE.damaged) damagedSlots.push({ index, slot });
    else scanLiveSlot(device, sb, entry, label, claim, result);
  }
  // Damaged regions come last, so they take only blocks no live region holds.
  for (const { index, slot } of damagedSlots) {
    const tree = salvageTree(device, slot, sb.poolBlocks, (block) => allocator.claim(block));
    result.damaged.set(index, tree);
    result.pages.set(index, tree.pages);
  }
  return result;
}

/** Claims in a fresh free map: a block's first owner takes it, a second one is a problem. */
function claimer(allocator: Allocator, problems: CheckProblem[]): Claim {
  const owners = new Map<number, string>();
  return (block, owner, position) => {
    if (allocator.claim(block)) {
      owners.set(block, owner);
      return;
    }
    const message = `block ${block} is referenced twice (also by ${owners.get(block) ?? 'the fixed area'})`;
    problems.push(problem(owner, position, message, 'single-owner'));
  };
}

/** Reads the region table, claiming its blocks: every slot it holds, in table order. */
function loadTable(
  device: PmDevice,
  sb: Superblock,
  claim: Claim,
  problems: CheckProblem[],
): { table: RegionTable; live: TableSlot[] } {
  const table = new RegionTable(device, sb.tableRoot, sb.poolBlocks);
  const live: TableSlot[] = [];
  guard(problems, 'region table', sb.tableRoot * BLOCK_BYTES, () =>
    table.load({
      block: (block, position) => claim(block, 'region table', position),
      slot: (index, slot, position) => live.push({ index, slot, position }),
      corruptSlot: (index, position, message) => {
        problems.push(problem(`region table slot ${index}`, position, message, 'slot-valid'));
      },
    }),
  );
  return { table, live };
}

/**
 * A live slot: its size and depth checked, its tree walked and claimed. A tree deeper than its
 * size needs but otherwise sound goes to `deep`; a slot damaged in any other way to `quarantine`.
 */
function scanLiveSlot(
  device: PmDevice,
  sb: Superblock,
  { index, slot, position }: TableSlot,
  label: string,
  claim: Claim,
  result: ScanResult,
): void {
  const { problems } = result;
  const oversize = slot.sizeBytes > sb.poolBlocks * BLOCK_BYTES;
  const needed = oversize ? 0 : levelsFor(pagesFor(slot.sizeBytes));
  const tooDeep = !oversize && slot.levels > needed && slot.levels <= REGION_LEVELS_MAX;
  const before = problems.length;
  if (oversize || (slot.levels !== needed && !tooDeep)) {
    const message = `size ${slot.sizeBytes} and ${slot.levels} page-table levels disagree`;
    problems.push(problem(label, position, message, 'tree-depth'));
    quarantinable(problems, before);
    result.quarantine.push({ index, slot });
    return;
  }
  result.pages.set(index, scanRegion(device, sb, slot, position, label, claim, problems));
  const sound = problems.length === before;
  if (!tooDeep) {
    if (!sound) result.quarantine.push({ index, slot });
    quarantinable(problems, before);
    return;
  }
  // The tree walked cleanly at its depth: lowering it (shrink, which also drops any page
  // past the size, unreadable anyway) keeps every page the region can read.
  const message = `size ${slot.sizeBytes} needs ${needed} page-table levels, the slot says ${slot.levels} `
    + `(a shrink that did not lower the tree)${sound ? '; repair lowers the tree and keeps every page' : ''}`;
  problems.push({ structure: label, offset: position, message, rule: 'tree-depth', repairable: sound });
  if (sound) result.deep.push({ index, slot });
  else result.quarantine.push({ index, slot });
  if (!sound) quarantinable(problems, before);
}

function scanRegion(
  device: PmDevice,
  sb: Superblock,
  slot: Slot,
  position: number,
  label: string,
  claim: Claim,
  problems: CheckProblem[],
): number {
  let dataPages = 0;
  const regionPages = pagesFor(slot.sizeBytes);
  guard(problems, `${label} page table`, position + 16, () =>
    walkTree(
      device,
      { root: slot.root, levels: slot.levels },
      sb.poolBlocks,
      (block, level, entryPosition) => {
        if (block < sb.journalStart + sb.journalBlocks && block >= sb.journalStart) {
          const message = `entry points into the journal (block ${block})`;
          problems.push(problem(`${label} page table`, entryPosition, message, 'entry-target'));
          return;
        }
        claim(block, `${label} ${level === 0 ? 'data' : 'page table'}`, entryPosition);
        if (level === 0) dataPages++;
      },
      position + 16,
    ),
  );
  if (dataPages > regionPages) {
    const message = `${dataPages} data pages for a region of ${regionPages} pages`;
    problems.push(problem(label, position, message, 'tree-pages'));
  }
  return dataPages;
}

function guard(problems: CheckProblem[], structure: string, offset: number, body: () => void): void {
  try {
    body();
  } catch (error) {
    if (!(error instanceof RegionError) || error.code !== 'CORRUPT') throw error;
    problems.push(problem(structure, offset, error.message, ruleOf(error)));
  }
}
