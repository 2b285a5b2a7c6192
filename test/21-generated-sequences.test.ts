// Generated operation sequences (src/sim): random sequences of every kernel operation, with
// crashes at random fences into random crash images, each mounted, fsck'ed and compared with
// a reference model. REGIONS_SIM_SEED=N runs only the sequence of seed N (a failure prints
// it, with a shortened sequence). `npm run sim` runs long campaigns.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatFailure, formatSummary, policyFor, runCampaign } from '../src/sim/campaign.js';
import { RECORD_KIND } from '../src/format/journal_record.js';
import { Journal } from '../src/kernel/journal.js';
import { truncate, zeroTail } from '../src/kernel/page_table.js';
import { type RegionRef, RegionManager } from '../src/kernel/region_manager.js';
import { pagesFor } from '../src/kernel/scan.js';
import type { Op, Sequence } from '../src/sim/ops.js';
import { runSequence, shortenSequence, thoroughPolicy } from '../src/sim/sequence.js';

const replay = process.env['REGIONS_SIM_SEED'];
const seed = Number(replay ?? 2_024);
const SEQUENCES = replay === undefined ? 200 : 1;
const MiB = 1024 * 1024;

test('generated sequences: every crash image is the state before or after the operation in progress', (t) => {
  t.diagnostic(`seed ${seed} (replay one sequence with REGIONS_SIM_SEED=N, N = the failing sequence's seed)`);
  const summary = runCampaign({ seed, sequences: SEQUENCES, length: 12, per1024: 256, images: 2, shorten: true });
  t.diagnostic(formatSummary(summary));
  for (const failure of summary.failures) t.diagnostic(formatFailure(failure));
  assert.ok(summary.images > 0);
  assert.deepEqual(summary.failures.map((f) => `seed ${f.seed}: ${f.failure.message}`), []);
});

/** A whole-page write of `pages` with tag `tag`. */
function write(name: string, tag: number, pages: number[]): Op {
  return { kind: 'write', name, pages: pages.map((page) => ({ page, from: 0, to: 4096, tag })) };
}

const OWNER = { mode: 0o600, uid: 1, gid: 1 };
/** The reproduction of the shrink bug, padded with operations that do not matter to it. */
const SHRINK_ACROSS_LEVELS: Sequence = {
  poolBytes: 8 * MiB,
  ops: [
    { kind: 'create', name: 'x', sizeBytes: 4096, ...OWNER },
    write('x', 1, [0]),
    { kind: 'create', name: 'r', sizeBytes: 3 * MiB, ...OWNER },
    { kind: 'chown', name: 'x', mode: 0o644, uid: 2, gid: 2 },
    write('r', 2, [0, 488, 700]),
    { kind: 'rename', name: 'x', to: 'y' },
    { kind: 'resize', name: 'r', sizeBytes: 4096 },
    write('y', 3, [0]),
  ],
};

test('the simulator catches a shrink that does not lower the tree, and shortens the sequence', (t) => {
  const original = RegionManager.prototype.resize;
  // The shrink before the fix: pages past the end freed, the levels left as they were.
  RegionManager.prototype.resize = function oldShrink(this: RegionManager, ref: RegionRef, sizeBytes: number, now) {
    const slot = this.slot(ref);
    if (sizeBytes >= slot.sizeBytes) return original.call(this, ref, sizeBytes, now);
    const self = this as unknown as { sb: { poolBlocks: number }; commitSlot: CommitSlot };
    const tree = { root: slot.root, levels: slot.levels };
    self.commitSlot.call(this, RECORD_KIND.resize, ref, slot, (tx, updated) => {
      truncate(tx, tree, pagesFor(sizeBytes), self.sb.poolBlocks);
      zeroTail(this.device, tx, tree, sizeBytes, self.sb.poolBlocks);
      Object.assign(updated, { sizeBytes, root: tree.root, levels: tree.levels });
    });
  };
  try {
    const policy = policyFor(seed, { per1024: 256, images: 2 });
    const result = runSequence(SHRINK_ACROSS_LEVELS, policy);
    t.diagnostic(`expected: the old shrink, put back on purpose, is caught: ${result.failure?.message.slice(0, 160)}`);
    assert.ok(result.failure, 'the old shrink must be caught');
    const shortened = shortenSequence(SHRINK_ACROSS_LEVELS, policy);
    t.diagnostic(`shortened to: ${JSON.stringify(shortened.ops)}`);
    assert.deepEqual(shortened.ops.map((op) => op.kind), ['create', 'resize'], 'create the region, shrink it');
  } finally {
    RegionManager.prototype.resize = original;
  }
  assert.equal(runSequence(SHRINK_ACROSS_LEVELS, thoroughPolicy(seed)).failure, null, 'the real shrink passes');
});

type CommitSlot = (kind: number, ref: RegionRef, slot: object, stage: (tx: never, updated: object) => void) => void;

// Crash images must be able to fail a sequence: a journal whose commit word can persist
// before its record (one fence instead of two) is caught at some crash point.
test('the simulator catches a commit word written before the record is fenced', (t) => {
  const original = Journal.prototype.commit;
  Journal.prototype.commit = function broken(this: Journal, tx) {
    const device = (this as unknown as { device: { fence(): void } }).device;
    const fence = device.fence;
    let skipped = false;
    device.fence = function skipFirst(this: unknown) {
      if (skipped) return fence.call(this);
      skipped = true;
    };
    try {
      return original.call(this, tx);
    } finally {
      device.fence = fence;
    }
  };
  try {
    const sequence: Sequence = {
      poolBytes: 256 * 1024,
      ops: [
        { kind: 'create', name: 'r', sizeBytes: 64 * 1024, ...OWNER }, write('r', 1, [0, 1]), write('r', 2, [1, 5]),
      ],
    };
    const result = runSequence(sequence, thoroughPolicy(seed));
    const why = result.failure?.message.slice(0, 160);
    t.diagnostic(`expected: a journal broken on purpose is caught (${result.images} images): ${why}`);
    assert.ok(result.failure, 'the broken journal must be caught');
  } finally {
    Journal.prototype.commit = original;
  }
});
