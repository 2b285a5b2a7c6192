// fsck for a pool that may not mount: looks at every structure without trusting any, reports
// each problem with its structure and offset, and with repair fixes only what needs no
// guessing: a stale or torn superblock copy (rewritten from the valid one), a journal record
// or commit word damaged by one flipped bit (restored, see recovery.ts), a committed journal
// record not yet applied (replayed), a page table deeper than its region's size needs
// (lowered, keeping every page), a version 1 pool (upgraded), and a region whose page table
// is damaged (quarantined, quarantine.ts, so that every other region mounts). Everything else
// is reported and refused.

import type { CheckProblem, CheckReport } from './types.js';
import { BLOCK_BYTES, FORMAT_VERSION, FORMAT_VERSION_ZERO_HOLES } from '../constants.js';
import { RegionError } from '../errors.js';
import { type JournalRecord, RECORD_KIND } from '../format/journal_record.js';
import { SLOT_STATE } from '../format/slot.js';
import type { Superblock } from '../format/superblock.js';
import type { PmDevice } from '../pm/device.js';
import type { Allocator } from './allocator.js';
import { Journal } from './journal.js';
import { shrink } from './page_table.js';
import { fixAdvice, type JournalFix, planRecovery } from './recovery.js';
import { pagesFor, type ScanResult, scanPool } from './scan.js';
import {
  bothCopiesDamaged, checkReplayTarget, decodeSuperblockCopies, readSuperblocks, writeSuperblockCopy,
} from './superblock_store.js';
import { Transaction } from './transaction.js';
import { ruleOf } from './invariants.js';
import { upgradeVersion1 } from './upgrade.js';

export function inspectPool(device: PmDevice, label: string, repair: boolean): CheckReport {
  const decoded = decodeSuperblockCopies(device, label);
  if (bothCopiesDamaged(decoded)) return withoutSuperblock(decoded);
  const copies = readSuperblocks(device, label); // not a pool, or a version this build does not read
  let sb = copies.chosen;
  const problems: CheckProblem[] = [];
  if (sb.poolBlocks * BLOCK_BYTES > device.sizeBytes) {
    throw new RegionError('CORRUPT', `${label}: pool is truncated: ${device.sizeBytes} bytes, `
      + `superblock says ${sb.poolBlocks * BLOCK_BYTES}`);
  }
  for (const copy of copies.stale) {
    const result = copies.copies[copy];
    const message = result.ok
      ? `stale copy (sequence ${result.superblock.sequence}, current ${sb.sequence})`
      : result.message;
    problems.push({
      structure: `superblock copy ${copy}`,
      offset: copy * BLOCK_BYTES,
      message,
      rule: 'superblock-copies',
      repairable: true,
      repaired: repair,
    });
    if (repair) writeSuperblockCopy(device, copy, sb);
  }
  const journal = new Journal(device, sb.journalStart, sb.journalBlocks, 0);
  const sound = checkJournal(device, sb, label, journal, repair, problems);
  if (sb.version === FORMAT_VERSION_ZERO_HOLES) {
    const upgraded = upgrade(device, sb, label, journal, repair && sound, problems);
    if (!upgraded) return { ok: false, problems, regionsChecked: 0, blocksReferenced: 0, blocksFree: 0 };
    sb = upgraded;
  }
  let scan = scanPool(device, sb);
  journal.noteApplied(scan.newestSlotSequence); // a repair's records must outnumber every slot's stamp
  if (repair && sound && (scan.deep.length > 0 || scan.quarantine.length > 0)) {
    lowerTrees(device, sb, scan, journal);
    quarantineRegions(device, scan, journal);
    problems.push(...scan.problems.filter((p) => p.repairable).map((p) => ({ ...p, repaired: true })));
    scan = scanPool(device, sb);
  }
  problems.push(...scan.problems);
  return {
    ok: problems.every((p) => p.repaired === true),
    problems,
    regionsChecked: scan.pages.size,
    blocksReferenced: scan.allocator.usedBlocks,
    blocksFree: scan.allocator.freeBlocks,
  };
}

/**
 * Both superblock copies damaged: what each copy's problem is. Everything else is found
 * through the superblock (the journal, the region table, the pool's size), so it cannot be
 * checked, nor can the pool be mounted; nothing is repaired by guessing.
 */
function withoutSuperblock(decoded: ReturnType<typeof decodeSuperblockCopies>): CheckReport {
  const problems = decoded.map((result, copy): CheckProblem => ({
    structure: `superblock copy ${copy}`,
    offset: copy * BLOCK_BYTES,
    message: `${result.ok ? 'valid' : result.message}; with no valid copy the pool cannot be mounted, and `
      + 'the journal and the region table, found through the superblock, cannot be checked',
    rule: 'superblock-copies',
    repairable: false,
  }));
  return { ok: false, problems, regionsChecked: 0, blocksReferenced: 0, blocksFree: 0 };
}

/** fsck of a mounted pool: the walk, and the DRAM free map compared with it. */
export function checkMounted(device: PmDevice, sb: Superblock, allocator: Allocator): CheckReport {
  const scan = scanPool(device, sb);
  const problems = [...scan.problems];
  for (let b = 0; b < sb.poolBlocks; b++) {
    if (scan.allocator.isUsed(b) === allocator.isUsed(b)) continue;
    const state = allocator.isUsed(b) ? 'in use in DRAM but unreferenced' : 'referenced but free in DRAM';
    const message = `block ${b} is ${state}`;
    problems.push({ structure: 'free map', offset: b * BLOCK_BYTES, message, rule: 'free-map', repairable: false });
  }
  const counts = {
    regionsChecked: scan.pages.size,
    blocksReferenced: scan.allocator.usedBlocks,
    blocksFree: scan.allocator.freeBlocks,
  };
  return { ok: problems.length === 0, problems, ...counts };
}

/**
 * The journal's part: what recovery would do (recovery.ts), reported, and with repair done.
 * Returns false if the journal is left damaged: then nothing may be committed through it.
 */
function checkJournal(
  device: PmDevice,
  sb: Superblock,
  label: string,
  journal: Journal,
  repair: boolean,
  problems: CheckProblem[],
): boolean {
  let plan = planRecovery(journal, device, sb);
  if (plan.kind === 'damaged') {
    const fix = plan.fix;
    const structure = `journal half ${plan.half.half}`;
    const message = `${plan.problem}; ${fixAdvice(plan)}`;
    const repairable = fix !== null;
    const repaired = repair && repairable;
    problems.push({ structure, offset: plan.half.offset, message, rule: plan.rule, repairable, repaired });
    if (!repair || fix === null) return false;
    restore(device, journal, fix);
    plan = planRecovery(journal, device, sb);
    if (plan.kind === 'damaged') {
      problems.push({ structure, offset: plan.half.offset, message: plan.problem, rule: plan.rule, repairable: false });
      return false;
    }
  }
  const stale = plan.staleCommitWord;
  if (plan.record && stale) {
    const message = `commit word ${stale.commitWord} does not commit record ${plan.record.sequence}, `
      + 'which the pool has applied (its slot says so)';
    const structure = `journal half ${stale.half}`;
    const rule = 'journal-commit-word';
    problems.push({ structure, offset: stale.offset, message, rule, repairable: true, repaired: repair });
    if (repair) journal.restoreCommitWord(stale.half, plan.record.sequence);
  }
  const newest = plan.record;
  if (newest && !isApplied(device, newest)) {
    const offset = journal.halfOffset(newest.sequence);
    problems.push({
      structure: `journal record ${newest.sequence}`,
      offset,
      message: 'committed but not fully applied',
      rule: 'journal-applied',
      repairable: true,
      repaired: repair,
    });
    if (repair) journal.replay(newest, (offset, length) => checkReplayTarget(sb, label, offset, length));
  }
  return true;
}

/**
 * A version 1 pool reads zero as a hole, so its walk cannot tell damage from emptiness: it is
 * upgraded first (with repair, as mount does), or reported as needing it.
 */
function upgrade(
  device: PmDevice,
  sb: Superblock,
  label: string,
  journal: Journal,
  repair: boolean,
  problems: CheckProblem[],
): Superblock | null {
  const structure = 'superblock';
  const message = `format version ${sb.version} stores holes as zeros, which cannot be told from a zeroed block; `
    + `mount or \`regions fsck --repair\` upgrades it to version ${FORMAT_VERSION} (then fsck checks it)`;
  if (!repair) {
    problems.push({ structure, offset: 0, message, rule: 'format-version', repairable: true });
    return null;
  }
  try {
    const upgraded = upgradeVersion1(device, sb, journal, label);
    problems.push({ structure, offset: 0, message, rule: 'format-version', repairable: true, repaired: true });
    return upgraded;
  } catch (error) {
    if (!(error instanceof RegionError) || error.code !== 'CORRUPT') throw error;
    problems.push({ structure, offset: 0, message: error.message, rule: ruleOf(error), repairable: false });
    return null;
  }
}

/** Undoes one flipped bit: one aligned 8-byte unit, so a crash leaves it either damaged or restored. */
function restore(device: PmDevice, journal: Journal, fix: JournalFix): void {
  if (fix.kind === 'commit word') {
    journal.restoreCommitWord(fix.half, fix.sequence);
    return;
  }
  device.write(fix.offset, fix.unit);
  device.persist(fix.offset, fix.unit.length);
}

/**
 * Lowers each too-deep tree to the depth its size needs: per region one journal record that
 * rewrites the slot and frees the levels removed, as a shrink does now (page_table.ts shrink).
 */
function lowerTrees(device: PmDevice, sb: Superblock, scan: ScanResult, journal: Journal): void {
  const kind = RECORD_KIND.resize;
  for (const { index, slot } of scan.deep) {
    const sequence = journal.newestSequence + 1;
    const tx = new Transaction(kind, device, scan.allocator, index, slot.generation, slot.epoch, sequence);
    const tree = { root: slot.root, levels: slot.levels };
    shrink(tx, tree, pagesFor(slot.sizeBytes), sb.poolBlocks);
    scan.table.stageSlot(tx, index, { ...slot, root: tree.root, levels: tree.levels });
    journal.commit(tx);
  }
  device.fence(); // the last record's in-place applies are flushed; make them durable before reporting
}

/** Marks each region with a damaged page table damaged: one record per region, its slot only. */
function quarantineRegions(device: PmDevice, scan: ScanResult, journal: Journal): void {
  const kind = RECORD_KIND.attributes;
  for (const { index, slot } of scan.quarantine) {
    const sequence = journal.newestSequence + 1;
    const tx = new Transaction(kind, device, scan.allocator, index, slot.generation, slot.epoch, sequence);
    scan.table.stageSlot(tx, index, { ...slot, state: SLOT_STATE.damaged });
    journal.commit(tx);
  }
  device.fence(); // the last record's in-place stores are durable before fsck reports
}

function isApplied(device: PmDevice, record: JournalRecord): boolean {
  const { offsets, values } = record.words;
  for (let i = 0; i < offsets.length; i++) {
    const offset = offsets[i] as number;
    if (offset < 0 || offset + 8 > device.sizeBytes) return false;
    const view = new DataView(device.read(offset, 8).buffer);
    if (view.getUint32(0, true) !== values[2 * i] || view.getUint32(4, true) !== values[2 * i + 1]) return false;
  }
  for (const range of record.ranges) {
    if (range.offset + range.bytes.length > device.sizeBytes) return false;
    const bytes = device.read(range.offset, range.bytes.length);
    if (!bytes.every((b, i) => b === range.bytes[i])) return false;
  }
  return true;
}
