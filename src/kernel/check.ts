// fsck for a pool that may not mount: looks at every structure without trusting any, reports
// each problem with its structure and offset, and with repair fixes only what needs no
// guessing: a stale or torn superblock copy (rewritten from the valid one) and a committed
// journal record not yet applied (replayed). Everything else is reported and refused.

import type { CheckProblem, CheckReport } from '../api.js';
import { BLOCK_BYTES } from '../constants.js';
import { RegionError } from '../errors.js';
import type { JournalRecord } from '../format/journal_record.js';
import type { PmDevice } from '../pm/device.js';
import { Journal } from './journal.js';
import { scanPool } from './scan.js';
import { checkReplayTarget, readSuperblocks, writeSuperblockCopy } from './superblock_store.js';

export function inspectPool(device: PmDevice, label: string, repair: boolean): CheckReport {
  const copies = readSuperblocks(device, label); // no valid copy at all: nothing to check against
  const sb = copies.chosen;
  const problems: CheckProblem[] = [];
  if (sb.poolBlocks * BLOCK_BYTES > device.sizeBytes) {
    throw new RegionError('CORRUPT', `${label}: pool is truncated: ${device.sizeBytes} bytes, superblock says ${sb.poolBlocks * BLOCK_BYTES}`);
  }
  for (const copy of copies.stale) {
    const result = copies.copies[copy];
    const message = result.ok ? `stale copy (sequence ${result.superblock.sequence}, current ${sb.sequence})` : result.message;
    problems.push({ structure: `superblock copy ${copy}`, offset: copy * BLOCK_BYTES, message, repairable: true, repaired: repair });
    if (repair) writeSuperblockCopy(device, copy, sb);
  }
  const journal = new Journal(device, sb.journalStart, sb.journalBlocks, 0);
  const newest = journal.newestCommitted();
  if (newest && !isApplied(device, newest)) {
    const offset = journal.halfOffset(newest.sequence);
    problems.push({ structure: `journal record ${newest.sequence}`, offset, message: 'committed but not fully applied', repairable: true, repaired: repair });
    if (repair) journal.replay(newest, (offset, length) => checkReplayTarget(sb, label, offset, length));
  }
  const scan = scanPool(device, sb);
  problems.push(...scan.problems);
  return {
    ok: problems.every((p) => p.repaired === true),
    problems,
    regionsChecked: scan.pages.size,
    blocksReferenced: scan.allocator.usedBlocks,
    blocksFree: scan.allocator.freeBlocks,
  };
}

function isApplied(device: PmDevice, record: JournalRecord): boolean {
  for (const word of record.words) {
    if (word.offset + 8 > device.sizeBytes) return false;
    const view = new DataView(device.read(word.offset, 8).buffer);
    if (view.getUint32(0, true) !== word.lo || view.getUint32(4, true) !== word.hi) return false;
  }
  for (const range of record.ranges) {
    if (range.offset + range.bytes.length > device.sizeBytes) return false;
    const bytes = device.read(range.offset, range.bytes.length);
    if (!bytes.every((b, i) => b === range.bytes[i])) return false;
  }
  return true;
}
