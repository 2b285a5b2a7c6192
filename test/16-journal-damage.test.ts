// A damaged newest journal record must never make recovery replay the record before it: the
// pool has applied the newer one, and going back rolls its region back under it (a mix of two
// updates). Mount gives exactly the newest state or refuses with CORRUPT naming what fsck can
// do; fsck --repair restores a record or commit word damaged by one flipped bit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FIXED_NOW, logicalState } from '../src/crashtest/harness.js';
import { pattern } from '../src/crashtest/scenarios.js';
import { isRegionError } from '../src/errors.js';
import { decodeSlot, encodeSlot } from '../src/format/slot.js';
import { inspectPool } from '../src/kernel/check.js';
import type { Journal } from '../src/kernel/journal.js';
import { RegionManager } from '../src/kernel/region_manager.js';
import { SimDevice } from '../src/pm/sim_device.js';
import { SimPrng } from '../src/pm/sim_prng.js';

const OWNER = { mode: 0o600, uid: 1, gid: 1 };
const seed = Number(process.env.REGIONS_SEED ?? 16);

interface Damageable {
  /** The pool after the last update; its newest record is the one damaged. */
  image: Uint8Array;
  /** logicalState after the last update (what mount must give, if it mounts). */
  state: string;
  /** Where the newest record's half starts and how many bytes of it are in use. */
  half: number;
  bytes: number;
}

function write(kernel: RegionManager, name: string, tag: number, pages: number[]): void {
  const bytes = pages.map((page) => ({ page, bytes: pattern(tag, page) }));
  kernel.commitPages(kernel.lookup(name), bytes, FIXED_NOW + tag);
}

/** Runs the updates; the last one's record is newest, the one before it lives in the other half. */
function build(updates: ((k: RegionManager) => void)[], overGarbage = false): Damageable {
  const device = overGarbage ? SimDevice.fromImage(randomImage(256 * 1024)) : new SimDevice({ sizeBytes: 256 * 1024 });
  RegionManager.format(device, FIXED_NOW);
  const kernel = RegionManager.mount(device, 'pool');
  kernel.create('r', 64 * 1024, OWNER, FIXED_NOW);
  kernel.create('s', 16 * 1024, OWNER, FIXED_NOW);
  for (const update of updates) update(kernel);
  const journal = (kernel as unknown as { journal: Journal }).journal;
  const half = journal.halfOffset(journal.newestSequence);
  const body = new DataView(device.read(half + 64 + 24, 4).buffer).getUint32(0, true);
  return { image: device.read(0, device.sizeBytes), state: logicalState(kernel), half, bytes: 128 + body };
}

/** Seeded random bytes: a device format does not zero (it writes two lines of each journal half). */
function randomImage(sizeBytes: number): Uint8Array {
  const prng = new SimPrng(seed);
  const bytes = new Uint8Array(sizeBytes);
  const view = new DataView(bytes.buffer);
  for (let at = 0; at < sizeBytes; at += 4) view.setUint32(at, prng.nextU32(), true);
  return bytes;
}

const CASES: { name: string; overGarbage?: boolean; updates: ((k: RegionManager) => void)[] }[] = [
  { name: 'two pmsyncs of one region', updates: [
    (k) => write(k, 'r', 1, [0, 1, 2]), (k) => write(k, 'r', 2, [1, 3]),
  ] },
  // Past each record, the half holds random bytes rather than zeros: fsck's search for the
  // flipped bit (a flip in the length field reads further) must not depend on them.
  { name: 'two pmsyncs, on a pool formatted over random bytes', overGarbage: true, updates: [
    (k) => write(k, 'r', 1, [0, 1, 2]), (k) => write(k, 'r', 2, [1, 3]),
  ] },
  { name: 'a pmsync, then a rename of the region', updates: [
    (k) => write(k, 'r', 1, [0, 1]), (k) => write(k, 'r', 2, [1, 5]),
    (k) => k.rename(k.lookup('r'), 'renamed', FIXED_NOW),
  ] },
  { name: 'pmsyncs of two regions (sequence 6: a commit word one flip from 4)', updates: [
    (k) => write(k, 'r', 1, [0]), (k) => write(k, 'r', 2, [1]),
    (k) => write(k, 'r', 3, [0, 2]), (k) => write(k, 's', 4, [1]),
  ] },
];

/** 'state' if it mounts with exactly the expected state (anything else fails), else 'corrupt'. */
function mountOutcome(bytes: Uint8Array, expected: string, what: string): 'state' | 'corrupt' {
  let kernel: RegionManager;
  try {
    kernel = RegionManager.mount(SimDevice.fromImage(bytes), 'pool');
  } catch (error) {
    if (!isRegionError(error, 'CORRUPT')) throw error;
    assert.match(error.message, /regions fsck/, `${what}: the message says what fsck can do`);
    return 'corrupt';
  }
  assert.equal(logicalState(kernel), expected, `${what}: mounted, so it must be exactly the newest state`);
  assert.ok(kernel.check().ok, `${what}: check`);
  return 'state';
}

function flipped(image: Uint8Array, flips: { at: number; bit: number }[]): Uint8Array {
  const bytes = image.slice();
  for (const { at, bit } of flips) bytes[at] = (bytes[at] ?? 0) ^ (1 << bit);
  return bytes;
}

for (const { name, overGarbage, updates } of CASES) {
  test(`every single flipped bit of the newest record (${name}): never the record before it; fsck restores it`, (t) => {
    if (overGarbage) t.diagnostic(`seed ${seed} (replay with REGIONS_SEED=${seed})`);
    const pool = build(updates, overGarbage);
    const counts = { state: 0, corrupt: 0 };
    for (let at = pool.half; at < pool.half + pool.bytes; at++) {
      for (let bit = 0; bit < 8; bit++) {
        const what = `byte ${at - pool.half} of the half, bit ${bit}`;
        const bytes = flipped(pool.image, [{ at, bit }]);
        counts[mountOutcome(bytes, pool.state, what)]++;
        const device = SimDevice.fromImage(bytes);
        const padding = at - pool.half >= 8 && at - pool.half < 64; // the commit line's unused bytes
        assert.equal(inspectPool(device, 'pool', false).ok, padding, `${what}: fsck reports it`);
        const repaired = inspectPool(device, 'pool', true);
        assert.ok(repaired.ok, `${what}: repaired: ${JSON.stringify(repaired.problems)}`);
        assert.ok(inspectPool(device, 'pool', false).ok, `${what}: clean after repair`);
        const after = mountOutcome(device.read(0, device.sizeBytes), pool.state, what);
        assert.equal(after, 'state', `${what}: mounts after repair`);
      }
    }
    t.diagnostic(`${counts.state} flips mount the newest state, ${counts.corrupt} are refused until fsck --repair`);
    assert.ok(counts.corrupt > 0);
  });
}

test('random multi-bit damage of the newest record: the newest state or CORRUPT, also after fsck --repair', (t) => {
  t.diagnostic(`seed ${seed} (replay with REGIONS_SEED=${seed})`);
  const prng = new SimPrng(seed);
  for (const { name, overGarbage, updates } of CASES) {
    const pool = build(updates, overGarbage);
    for (let trial = 0; trial < 150; trial++) {
      const count = 2 + prng.nextBelow(3);
      const flips = Array.from({ length: count }, () => ({ at: pool.half + prng.nextBelow(pool.bytes), bit: 0 }));
      for (const flip of flips) flip.bit = prng.nextBelow(8);
      const what = `${name}, trial ${trial}: ${flips.map((f) => `${f.at - pool.half}.${f.bit}`).join(' ')}`;
      const bytes = flipped(pool.image, flips);
      mountOutcome(bytes, pool.state, what);
      const device = SimDevice.fromImage(bytes);
      inspectPool(device, 'pool', true);
      mountOutcome(device.read(0, device.sizeBytes), pool.state, `${what}, after repair`);
    }
  }
});

test('a newer record lost from the journal but stamped in its slot is CORRUPT, not a reason to go back', () => {
  // Two flips: the newest record's commit word reads as "never used" (sequence 4 -> 0) and its
  // body is damaged, so the journal alone shows record 3 as newest; the slot says 4.
  const pool = build(CASES[0]?.updates ?? []);
  assert.equal(new DataView(pool.image.buffer).getUint32(pool.half, true), 4, 'the newest record is 4');
  const bytes = flipped(pool.image, [{ at: pool.half, bit: 2 }, { at: pool.half + 130, bit: 0 }]);
  assert.throws(() => RegionManager.mount(SimDevice.fromImage(bytes), 'pool'),
    (e) => isRegionError(e, 'CORRUPT') && /newer than the newest intact record, 3 here/.test(e.message)
      && /copy/.test(e.message));
  const report = inspectPool(SimDevice.fromImage(bytes), 'pool', true);
  assert.equal(report.ok, false, 'fsck cannot restore two flips either, and says so');
});

test('pools whose slots carry no journal sequence (made before the field) mount and keep working', () => {
  const pool = build(CASES[0]?.updates ?? []);
  const bytes = pool.image.slice();
  const kernel = RegionManager.mount(SimDevice.fromImage(bytes), 'pool');
  for (const name of ['r', 's']) {
    const position = kernel.slotPosition(kernel.lookup(name));
    const decoded = decodeSlot(bytes.subarray(position, position + 512), position);
    assert.ok(decoded.ok && decoded.slot.journalSequence > 0, 'slots are stamped');
    bytes.set(encodeSlot({ ...decoded.slot, journalSequence: 0 }, position), position);
  }
  const old = SimDevice.fromImage(bytes);
  const again = RegionManager.mount(old, 'pool');
  assert.equal(logicalState(again), pool.state);
  write(again, 'r', 9, [4]);
  assert.ok(RegionManager.mount(SimDevice.fromImage(old.read(0, old.sizeBytes)), 'pool').check().ok);
});

test('after the journal moves and the pool is remounted, new records outnumber every slot stamp', () => {
  const device = new SimDevice({ sizeBytes: 256 * 1024 });
  RegionManager.format(device, FIXED_NOW);
  let kernel = RegionManager.mount(device, 'pool');
  kernel.create('r', 16 * 1024, OWNER, FIXED_NOW);
  write(kernel, 'r', 1, [0]);
  write(kernel, 'r', 2, [1]);
  const stamped = kernel.slot(kernel.lookup('r')).journalSequence;
  kernel.grow(8 * 256 * 1024); // a new, empty journal
  kernel = RegionManager.mount(device, 'pool');
  write(kernel, 'r', 3, [2]);
  assert.ok(kernel.slot(kernel.lookup('r')).journalSequence > stamped);
  const again = RegionManager.mount(SimDevice.fromImage(device.read(0, device.sizeBytes)), 'pool');
  assert.equal(logicalState(again), logicalState(kernel));
});
