// Which journal record recovery replays, and when it must refuse instead.
//
// Only the newest committed record can be unapplied, so mount replays it. Taking "the
// newest record whose commit word and checksum hold" is not enough: if the newest record is
// damaged (a flipped bit in PM), the other half still holds the record before it, intact and
// committed, and replaying that one would roll its region back under the newer record's
// applied stores: a mix of two pmsyncs. So recovery never goes back past evidence that a
// newer record was committed or applied:
//
// - A commit word is stored only after its record was flushed and fenced, so in any crash
//   state the half with the highest commit word holds an intact record with that sequence.
//   A commit word above the newest intact committed record, in a half that does not hold
//   an intact older record, means that newer record was committed and is now damaged.
// - Every record writes its region's slot, stamped with the record's sequence, and only
//   when it is applied (after its commit point; a slot block the record creates is written
//   before, but is reachable only once the record's table entry is applied). An intact
//   record newer than the newest committed one whose slot already carries its sequence was
//   therefore committed, whatever its commit word says now; and a slot stamped with the
//   sequence after the record about to be replayed means the pool applied a record the
//   journal no longer holds.
// - An intact record with a commit word that is neither its own sequence nor what the half
//   held before it (its sequence - 2, or 0) has a damaged commit word.
// Each of these is CORRUPT at mount. fsck can restore a record or a commit word damaged by
// one flipped bit (record_repair.ts), which is what its messages offer.

import { type JournalRecord, RECORD_HEADER_OFFSET } from '../format/journal_record.js';
import { correctOneBit, CORRECTABLE_RECORD_BYTES_MAX } from '../format/record_repair.js';
import { SLOT_SEQUENCE_MODULUS } from '../format/slot.js';
import type { Superblock } from '../format/superblock.js';
import type { PmDevice } from '../pm/device.js';
import { type Invariant, InvariantViolation } from './invariants.js';
import { type HalfState, Journal } from './journal.js';
import { readSlotFromPm } from './region_table.js';
import { checkReplayTarget } from './superblock_store.js';

/** What fsck can write to undo one flipped bit: a record unit, or a commit word. */
export type JournalFix =
  | { kind: 'record'; offset: number; unit: Uint8Array; sequence: number }
  | { kind: 'commit word'; half: 0 | 1; sequence: number };

export type RecoveryPlan =
  | {
      kind: 'replay';
      /** The newest committed record (null: none), replayed whether or not it was applied. */
      record: JournalRecord | null;
      /** Set when the record's commit word is damaged but its slot proves it was applied. */
      staleCommitWord: HalfState | null;
    }
  | {
      kind: 'damaged';
      /** The half the problem is in (fsck reports it as the structure and offset). */
      half: HalfState;
      /** What is wrong, without the half's name and offset. */
      problem: string;
      rule: Invariant;
      fix: JournalFix | null;
    };

/** Decides what recovery may replay; reads only (fsck and mount act on the plan). */
export function planRecovery(journal: Journal, device: PmDevice, sb: Superblock): RecoveryPlan {
  const halves = journal.halves();
  const committed = halves.filter((h) => h.record !== null && h.commitWord === h.record.sequence);
  const newest = committed.reduce<HalfState | null>((a, h) => (a && seq(a) >= seq(h) ? a : h), null);
  const floor = newest ? seq(newest) : 0;
  const slotSequence = (record: JournalRecord): number | null =>
    readSlotFromPm(device, sb.tableRoot, sb.poolBlocks, record.slot)?.journalSequence ?? null;
  for (const half of halves) {
    if (half === newest) continue;
    const record = half.record;
    if (record && record.sequence > floor) {
      // Written after the newest committed record, but its commit word does not say committed.
      if (slotSequence(record) === record.sequence % SLOT_SEQUENCE_MODULUS) {
        return { kind: 'replay', record, staleCommitWord: half }; // applied, so committed
      }
      if (half.commitWord === record.sequence - 2 || half.commitWord === 0) continue; // not committed
      return damagedCommitWord(half, record, device);
    }
    // An intact older record cannot have been overwritten by a newer one: only its commit word
    // could be wrong, and it is older than the newest anyway.
    const newerCommitted = half.commitWord === -1 || half.commitWord > floor;
    if (newerCommitted && record === null) return damagedRecord(journal, device, half);
  }
  // Only the record right after the newest intact one can have been applied and lost (a later
  // one would have overwritten the newest's half), so only that stamp is evidence.
  const stamped = newest?.record ? slotSequence(newest.record) : null;
  if (newest?.record && stamped === (newest.record.sequence + 1) % SLOT_SEQUENCE_MODULUS) {
    const problem = `region slot ${newest.record.slot} was last written by journal record ${stamped}, newer than the `
      + `newest intact record, ${newest.record.sequence} here: the journal lost the record the pool applied last`;
    return { kind: 'damaged', half: newest, problem, rule: 'journal-newest', fix: null };
  }
  return { kind: 'replay', record: newest?.record ?? null, staleCommitWord: null };
}

function seq(half: HalfState): number {
  return half.record?.sequence ?? 0;
}

function damagedRecord(journal: Journal, device: PmDevice, half: HalfState): RecoveryPlan {
  const sequence = half.commitWord;
  const damaged = 'the record fails its checksum or structure';
  if (sequence === -1) {
    const problem = `the commit word is larger than any sequence and ${damaged}`;
    return { kind: 'damaged', half, problem, rule: 'journal-newest', fix: null };
  }
  const problem = `commit word ${sequence} says record ${sequence} was committed here, but ${damaged}`;
  const room = Math.min(journal.recordRoom, CORRECTABLE_RECORD_BYTES_MAX);
  const area = device.read(half.offset + RECORD_HEADER_OFFSET, room);
  const fits = (r: JournalRecord): boolean => r.sequence === sequence && journal.halfOffset(r.sequence) === half.offset;
  const correction = correctOneBit(area, fits);
  if (!correction) return { kind: 'damaged', half, problem, rule: 'journal-newest', fix: null };
  const offset = half.offset + RECORD_HEADER_OFFSET + correction.unitOffset;
  const fix: JournalFix = { kind: 'record', offset, unit: correction.unit, sequence };
  return { kind: 'damaged', half, problem, rule: 'journal-newest', fix };
}

/** An intact record whose commit word is neither committed nor the half's previous one. */
function damagedCommitWord(half: HalfState, record: JournalRecord, device: PmDevice): RecoveryPlan {
  const view = new DataView(device.read(half.offset, 8).buffer);
  const raw = (BigInt(view.getUint32(4, true)) << 32n) | BigInt(view.getUint32(0, true));
  const flips = (value: number): number => [...(raw ^ BigInt(value)).toString(2)].filter((c) => c === '1').length;
  // What the word may have been before one bit flipped: committed, or what the half held before.
  const options = [...new Set([record.sequence, record.sequence - 2, 0])].filter((v) => v >= 0 && flips(v) === 1);
  const problem = `the commit word (0x${raw.toString(16)}) is damaged, so whether the intact record `
    + `${record.sequence} here was committed cannot be told`;
  const only = options.length === 1 ? options[0] : undefined;
  const fix: JournalFix | null = only === undefined ? null : { kind: 'commit word', half: half.half, sequence: only };
  return { kind: 'damaged', half, problem, rule: 'journal-commit-word', fix };
}

/** What fsck can do about a damaged journal, for the messages of mount and fsck. */
export function fixAdvice(plan: Extract<RecoveryPlan, { kind: 'damaged' }>): string {
  const repair = '`regions fsck --repair`';
  if (plan.fix?.kind === 'record') return `one bit of the record flipped: ${repair} restores the record and replays it`;
  if (plan.fix) return `one bit of the commit word flipped: ${repair} restores it`;
  return 'more than one bit is damaged, which `regions fsck` cannot restore: restore the pool from a copy';
}

export interface Recovered {
  journal: Journal;
  /** The sequence of the record replayed, or null. */
  replayed: number | null;
}

/** Mount's recovery: the plan carried out, or CORRUPT without touching the pool. */
export function recoverJournal(device: PmDevice, sb: Superblock, label: string): Recovered {
  const journal = new Journal(device, sb.journalStart, sb.journalBlocks, 0);
  const plan = planRecovery(journal, device, sb);
  if (plan.kind === 'damaged') {
    // Going back to the record before a damaged one would roll its region back under newer
    // applied stores: refuse, and say what fsck can do.
    const where = `journal half ${plan.half.half} at offset ${plan.half.offset}`;
    throw new InvariantViolation(plan.rule, `${label}: ${where}: ${plan.problem}; recovery does not replay `
      + `an older record in its place (that would mix two updates); ${fixAdvice(plan)}`);
  }
  if (plan.record) journal.replay(plan.record, (offset, length) => checkReplayTarget(sb, label, offset, length));
  return { journal, replayed: plan.record?.sequence ?? null };
}
