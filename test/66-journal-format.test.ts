// What format (and the journal's move at growth) writes of the journal: the commit line and
// the header line of each half, nothing more, so its cost does not grow with the pool; and
// that this is enough whatever the device held before (garbage, or an old pool whose halves
// hold committed records at the very offsets the new journal uses).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BLOCK_BYTES, journalBlocksFor, JOURNAL_START_BLOCK_INITIAL, MAX_POOL_BLOCKS } from '../src/constants.js';
import { FIXED_NOW, logicalState } from '../src/crashtest/harness.js';
import { METADATA_SCENARIOS, pattern, PMSYNC_SCENARIOS } from '../src/crashtest/scenarios.js';
import { encodeRecord, noWords, RECORD_BODY_OFFSET, RECORD_KIND } from '../src/format/journal_record.js';
import { writeU64 } from '../src/format/le.js';
import { inspectPool } from '../src/kernel/check.js';
import { type HalfState, Journal } from '../src/kernel/journal.js';
import { RegionManager } from '../src/kernel/region_manager.js';
import { readSuperblocks } from '../src/kernel/superblock_store.js';
import type { PmDevice } from '../src/pm/device.js';
import { SimDevice } from '../src/pm/sim_device.js';
import { SimPrng } from '../src/pm/sim_prng.js';
import { testScenarios } from './fixtures/crash-scenarios.js';
import { SparseDevice } from './fixtures/sparse-device.js';

const OWNER = { mode: 0o600, uid: 1, gid: 1 };
const POOL_BYTES = 256 * 1024;
const seed = Number(process.env.REGIONS_SEED ?? 66);

/** Bytes no pool writes: 0xA5 everywhere, or seeded random bytes. */
function garbage(sizeBytes: number, kind: 'a5' | 'random'): Uint8Array {
  const bytes = new Uint8Array(sizeBytes).fill(0xa5);
  if (kind === 'random') {
    const prng = new SimPrng(seed);
    const view = new DataView(bytes.buffer);
    for (let at = 0; at < sizeBytes; at += 4) view.setUint32(at, prng.nextU32(), true);
  }
  return bytes;
}

/** A pool used until both journal halves hold committed records, long ones and short ones. */
function oldPool(sizeBytes: number): Uint8Array {
  const device = new SimDevice({ sizeBytes });
  RegionManager.format(device, FIXED_NOW);
  const kernel = RegionManager.mount(device, 'old');
  kernel.create('old', 64 * 4096, OWNER, FIXED_NOW);
  const write = (tag: number, pages: number[]): void => {
    kernel.commitPages(kernel.lookup('old'), pages.map((page) => ({ page, bytes: pattern(tag, page) })), FIXED_NOW);
  };
  write(1, Array.from({ length: 24 }, (_, i) => i));
  write(2, Array.from({ length: 20 }, (_, i) => 2 * i));
  write(3, [5]);
  const halves = journalHalves(device);
  const committed = halves.every((h) => h.record && h.commitWord === h.record.sequence);
  assert.ok(committed, 'both old halves hold committed records');
  return device.read(0, sizeBytes);
}

function journalHalves(device: PmDevice): [HalfState, HalfState] {
  const sb = readSuperblocks(device, 'pool').chosen;
  return new Journal(device, sb.journalStart, sb.journalBlocks, 0).halves();
}

function assertEmpty(halves: HalfState[], what: string): void {
  for (const half of halves) {
    assert.equal(half.commitWord, 0, `${what}: half ${half.half} has no commit word`);
    assert.equal(half.record, null, `${what}: half ${half.half} holds no record`);
  }
}

/** Regions made, written, renamed, removed and reopened: the logical state at the end. */
function exercise(device: SimDevice): string {
  const kernel = RegionManager.mount(device, 'pool');
  assert.equal(kernel.mountReport.replayedSequence, null, 'a new pool has nothing to replay');
  assert.deepEqual(kernel.list(), [], 'a new pool has no regions');
  kernel.create('a', 32 * 4096, OWNER, FIXED_NOW);
  kernel.create('b', 8 * 4096, OWNER, FIXED_NOW);
  for (let tag = 1; tag <= 5; tag++) {
    const pages = Array.from({ length: 1 + ((tag * 7) % 13) }, (_, i) => (i * tag) % 32);
    const bytes = [...new Set(pages)].map((page) => ({ page, bytes: pattern(tag, page) }));
    kernel.commitPages(kernel.lookup('a'), bytes, FIXED_NOW);
  }
  kernel.commitPages(kernel.lookup('b'), [{ page: 3, bytes: pattern(9, 3) }], FIXED_NOW);
  kernel.rename(kernel.lookup('b'), 'c', FIXED_NOW);
  kernel.create('d', 4096, OWNER, FIXED_NOW);
  kernel.remove(kernel.lookup('d'));
  assert.ok(kernel.check().ok, 'check after the updates');
  const state = logicalState(kernel);
  const again = RegionManager.mount(SimDevice.fromImage(device.read(0, device.sizeBytes)), 'pool');
  assert.equal(logicalState(again), state, 'reopened, the pool is as it was left');
  assert.ok(inspectPool(device, 'pool', false).ok, 'fsck finds nothing');
  return state;
}

test('format writes two lines of each journal half, whatever the pool size', (t) => {
  const sizes = [16 * BLOCK_BYTES, 64 << 20, 2 ** 40, MAX_POOL_BLOCKS * BLOCK_BYTES];
  const costs = sizes.map((sizeBytes) => {
    const device = new SparseDevice(sizeBytes);
    RegionManager.format(device, FIXED_NOW);
    const start = JOURNAL_START_BLOCK_INITIAL * BLOCK_BYTES;
    const end = start + journalBlocksFor(sizeBytes / BLOCK_BYTES) * BLOCK_BYTES;
    const journalBytes = device.bytesStoredIn(start, end);
    const cost = { journalBytes, blocks: device.blocksHeld, ...device.counters.snapshot() };
    t.diagnostic(`${sizeBytes} bytes: ${JSON.stringify(cost)} (journal ${end - start} bytes)`);
    return cost;
  });
  assert.equal(costs[0]?.journalBytes, 2 * RECORD_BODY_OFFSET, 'the commit and header lines of two halves');
  for (const cost of costs) assert.deepEqual(cost, costs[0], 'the same stores, flushes and fences at every size');
});

test('a 1 TiB pool formatted without its journal mounts, commits and reopens', () => {
  const device = new SparseDevice(2 ** 40);
  RegionManager.format(device, FIXED_NOW);
  assertEmpty(journalHalves(device), '1 TiB pool');
  const kernel = RegionManager.mount(device, 'pool');
  kernel.create('r', 2 ** 30, OWNER, FIXED_NOW);
  kernel.commitPages(kernel.lookup('r'), [{ page: 7, bytes: pattern(1, 7) }], FIXED_NOW);
  const again = RegionManager.mount(device, 'pool');
  const page = new Uint8Array(4096);
  again.readPage(again.lookup('r'), 7, page);
  assert.deepEqual(page, pattern(1, 7));
  assert.ok(device.blocksHeld < 64, `a few blocks hold anything: ${device.blocksHeld}`);
});

test('format over an old pool: its committed records stay unread, and the new pool works', () => {
  const old = oldPool(POOL_BYTES);
  const device = SimDevice.fromImage(old);
  RegionManager.format(device, FIXED_NOW);
  const halves = journalHalves(device);
  assertEmpty(halves, 'formatted over an old pool');
  const bodies = halves.map((h) => device.read(h.offset + RECORD_BODY_OFFSET, 256));
  assert.ok(bodies.every((b) => b.some((x) => x !== 0)), 'the old records\' bodies are still there, unwritten');
  const reference = new SimDevice({ sizeBytes: POOL_BYTES });
  RegionManager.format(reference, FIXED_NOW);
  assert.equal(exercise(device), exercise(reference), 'as on a zeroed device');
});

for (const kind of ['a5', 'random'] as const) {
  test(`format over garbage (${kind}): a new pool that works as on zeros`, (t) => {
    t.diagnostic(`seed ${seed} (replay with REGIONS_SEED=${seed})`);
    const device = SimDevice.fromImage(garbage(POOL_BYTES, kind));
    RegionManager.format(device, FIXED_NOW);
    assertEmpty(journalHalves(device), `formatted over ${kind}`);
    const reference = new SimDevice({ sizeBytes: POOL_BYTES });
    RegionManager.format(reference, FIXED_NOW);
    assert.equal(exercise(device), exercise(reference));
  });
}

test('the journal moves at growth into space holding committed-looking records: both halves read empty', () => {
  const pool = new SimDevice({ sizeBytes: POOL_BYTES });
  RegionManager.format(pool, FIXED_NOW);
  const grown = 8 * POOL_BYTES;
  const bytes = garbage(grown, 'a5');
  bytes.set(pool.read(0, POOL_BYTES));
  // Where the moved journal's halves will be (grow: at the old end, sized for twice the pool),
  // records whose checksums hold, each with its commit word set.
  const start = POOL_BYTES;
  const halfBytes = (journalBlocksFor((2 * grown) / BLOCK_BYTES) / 2) * BLOCK_BYTES;
  for (const sequence of [1000, 1001]) {
    const at = start + (sequence % 2) * halfBytes;
    const words = noWords();
    const record = { kind: RECORD_KIND.pmsync, sequence, slot: 0, generation: 1, epoch: 1, words, ranges: [] };
    bytes.set(encodeRecord(record), at + 64);
    writeU64(new DataView(bytes.buffer), at, sequence);
  }
  const device = SimDevice.fromImage(bytes);
  const kernel = RegionManager.mount(device, 'pool');
  kernel.grow(grown);
  const sb = readSuperblocks(device, 'pool').chosen;
  assert.equal(sb.journalStart * BLOCK_BYTES, start, 'the journal moved where the records are');
  assertEmpty(journalHalves(device), 'after the move');
  const reference = new SimDevice({ sizeBytes: POOL_BYTES });
  RegionManager.format(reference, FIXED_NOW);
  RegionManager.mount(reference, 'pool').grow(grown);
  assert.equal(exercise(device), exercise(reference), 'as a pool grown over zeros');
});

// Every crash image of updates on pools formatted over garbage and over an old pool.
const over = (name: string, formatOver: (size: number) => Uint8Array) => (s: (typeof METADATA_SCENARIOS)[number]) =>
  ({ ...s, name: `${s.name}, formatted over ${name}`, formatOver: () => formatOver(s.poolBytes) });
const picked = [
  ...METADATA_SCENARIOS.filter((s) => /first region|journal moves/.test(s.name)),
  ...PMSYNC_SCENARIOS.filter((s) => /both journal halves|new page table/.test(s.name)),
];
assert.equal(picked.length, 4, 'the scenarios this file reuses still exist');
testScenarios(picked.map(over('random bytes', (size) => garbage(size, 'random'))));
testScenarios(picked.map(over('an old pool', oldPool)));
