// The on-PM invariants: every rule docs/format.md states, by name, in one place. Each problem
// mount, fsck (check.ts, scan.ts, recovery.ts) or the mounted kernel's check reports names the
// rule it breaks; docs/format.md lists the same rules word for word (a test compares them);
// and with `checkInvariants` (mount option, `REGIONS_CHECK_INVARIANTS=1` in the client and in
// regiond) the kernel re-checks all of them after every commit and stops at the first
// violation, which the simulator and the kernel tests turn on.

import { RegionError } from '../errors.js';

export const INVARIANTS = {
  'superblock-copies': 'Both superblock copies are valid (magic, version, checksum, geometry, access fields) and hold '
    + 'the same sequence; mount rewrites a stale or torn copy from the valid copy with the highest sequence.',
  'format-version': 'The pool is format version 2: holes and never-used slots carry check codes, so no metadata is '
    + 'valid as zeros (mount upgrades version 1).',
  'entry-code': 'Every entry of the region table and of every page table passes its check code, computed from its '
    + 'block number and its own pool position; the zero word is never an entry.',
  'entry-target': 'An entry maps a block inside the pool and outside the journal.',
  'slot-valid': 'Every slot of every slot block passes its checksum and its root entry\'s check code and has a known '
    + 'state; a live or damaged slot has a name and a size; a never-used slot holds nothing but its root hole and '
    + 'checksum.',
  'removed-slot-empty': 'A removed slot has no page table.',
  'unique-names': 'No two live or damaged slots share a name.',
  'tree-depth': 'A live slot\'s page-table levels are the fewest L with 512^L at least its pages.',
  'tree-pages': 'A region holds at most as many data pages as its size has pages.',
  'single-owner': 'Every block is referenced at most once: by the fixed area, the journal, the region table or one '
    + 'region\'s page table.',
  'journal-newest': 'Record N lives in half N mod 2, and the newest record that was committed or applied is intact: '
    + 'recovery never replays an older record in its place.',
  'journal-commit-word': 'A half\'s commit word equals its record\'s sequence once the record is committed, and before '
    + 'that what the half held before (the sequence two lower, or 0).',
  'journal-applied': 'The newest committed record is applied in place (mount replays it).',
  'free-map': 'A mounted pool\'s free map is exactly the blocks nothing references.',
} as const;

export type Invariant = keyof typeof INVARIANTS;

/** CORRUPT, naming the invariant a structure read from PM breaks. */
export class InvariantViolation extends RegionError {
  constructor(
    readonly rule: Invariant,
    message: string,
  ) {
    super('CORRUPT', message);
  }
}

/** The rule a CORRUPT error from a walk breaks (an entry that does not decode, if it does not say). */
export function ruleOf(error: RegionError): Invariant {
  return error instanceof InvariantViolation ? error.rule : 'entry-code';
}
