// Shrinking a region across a page-table level: the tree loses the levels its new size does
// not need in the same journal record (mount refuses a slot whose levels disagree with its
// size), and fsck --repair mends pools that a shrink which did not lower the tree left behind.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FIXED_NOW, type CrashScenario } from '../src/crashtest/harness.js';
import { pattern } from '../src/crashtest/scenarios.js';
import { isRegionError } from '../src/errors.js';
import { RECORD_KIND } from '../src/format/journal_record.js';
import { Allocator } from '../src/kernel/allocator.js';
import { inspectPool } from '../src/kernel/check.js';
import type { Journal } from '../src/kernel/journal.js';
import * as pageTable from '../src/kernel/page_table.js';
import { type RegionRef, RegionManager } from '../src/kernel/region_manager.js';
import type { RegionTable } from '../src/kernel/region_table.js';
import { Transaction } from '../src/kernel/transaction.js';
import { FileDevice } from '../src/pm/file_device.js';
import { SimDevice } from '../src/pm/sim_device.js';
import { checkPool, openPool } from '../src/index.js';
import { testScenarios } from './fixtures/crash-scenarios.js';

const OWNER = { mode: 0o600, uid: 1, gid: 1 };
const MiB = 1024 * 1024;

function fresh(bytes = 8 * MiB): { device: SimDevice; kernel: RegionManager } {
  const device = new SimDevice({ sizeBytes: bytes });
  RegionManager.format(device, 1);
  return { device, kernel: RegionManager.mount(device, 'pool', { checkInvariants: true }) };
}

function remount(device: SimDevice): RegionManager {
  return RegionManager.mount(SimDevice.fromImage(device.read(0, device.sizeBytes)), 'pool', { checkInvariants: true });
}

function write(kernel: RegionManager, ref: RegionRef, tag: number, pages: number[]): void {
  kernel.commitPages(ref, pages.map((page) => ({ page, bytes: pattern(tag, page) })), FIXED_NOW);
}

/** The first `bytes` of the region, page by page. */
function contents(kernel: RegionManager, name: string, bytes: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(bytes / 4096) * 4096);
  const ref = kernel.lookup(name);
  for (let p = 0; p * 4096 < bytes; p++) kernel.readPage(ref, p, out.subarray(p * 4096, (p + 1) * 4096));
  return out.subarray(0, bytes);
}

test('a shrink across a level lowers the tree, keeps the pages below the size and frees the rest', () => {
  for (const { size, keeps } of [
    { size: 4096, keeps: [] as number[] }, // the reproduction: data only at page 488, the root becomes a hole
    { size: 4096 * 6 + 10, keeps: [0, 5] },
    { size: 2_000_000, keeps: [0, 5, 488] }, // the tail of page 488 past the size reads as zeros
  ]) {
    const { device, kernel } = fresh();
    const ref = kernel.lookup(kernel.create('r', 3 * MiB, OWNER, FIXED_NOW).name); // 768 pages: 2 levels
    const baseline = kernel.poolCounts().usedBytes;
    write(kernel, ref, 1, [...keeps, 488, 600, 700].filter((p, i, all) => all.indexOf(p) === i));
    const before = contents(kernel, 'r', size);
    kernel.resize(ref, size, FIXED_NOW);
    assert.equal(kernel.slot(ref).levels, 1, `size ${size}: one level`);
    assert.ok(kernel.check().ok, `size ${size}: the mounted kernel's check`);
    const again = remount(device);
    assert.ok(again.check().ok, `size ${size}: check after remount`);
    assert.deepEqual(contents(again, 'r', size), before, `size ${size}: pages below the size survive`);
    const pages = keeps.length;
    const tables = pages > 0 ? 1 : 0;
    const used = baseline + (pages + tables) * 4096;
    assert.equal(again.poolCounts().usedBytes, used, `size ${size}: every other block freed`);
    assert.equal(again.info(again.lookup('r')).allocatedBytes, pages * 4096);
    again.resize(again.lookup('r'), 3 * MiB, FIXED_NOW); // and it grows back, sparse
    assert.ok(again.check().ok);
  }
});

test('shrink lowers three levels to one or two without writing a block it frees', () => {
  const device = new SimDevice({ sizeBytes: 64 * 4096 });
  const allocator = new Allocator(64);
  allocator.claimRange(0, 3);
  const tree = { root: 0, levels: 3 };
  const build = new Transaction(RECORD_KIND.pmsync, device, allocator, 0, 1, 1, 1);
  for (const page of [0, 1, 3 * 512 + 2, 512 * 512 + 7]) {
    pageTable.setPage(build, tree, page, build.allocateDataBlock(build.addBuffers([pattern(2, page)]), 0), 64);
  }
  build.finish();
  const used = allocator.usedBlocks;
  for (const { pages, levels, freed } of [
    { pages: 1, levels: 1, freed: 8 }, // old root, 2 middle blocks, 2 leaves, 3 data pages
    { pages: 513, levels: 2, freed: 6 }, // old root, the far middle block, leaf and page, page 1538 and its leaf
  ]) {
    const copy = { ...tree };
    const tx = new Transaction(RECORD_KIND.resize, device, allocator, 0, 1, 1, 2);
    assert.equal(typeof pageTable.shrink, 'function', 'page_table exports shrink');
    pageTable.shrink(tx, copy, pages, 64);
    assert.equal(copy.levels, levels);
    assert.equal(tx.released.length, freed, `${pages} pages: blocks released`);
    const released = new Set(tx.released);
    for (const offset of tx.words.list().offsets) {
      assert.ok(!released.has(Math.floor(offset / 4096)), 'no store into a freed block');
    }
    assert.equal(pageTable.lookupPage(device, copy, 0, 64, tx) !== 0, true, 'page 0 is still mapped');
    tx.abort();
    assert.equal(allocator.usedBlocks, used);
  }
});

const SCENARIO_POOL = 4 * MiB;
const withTree = (k: RegionManager): void => {
  const ref = k.lookup(k.create('a', 3 * MiB, OWNER, FIXED_NOW).name);
  write(k, ref, 1, [0, 5, 488, 600]);
  k.create('b', 8192, OWNER, FIXED_NOW);
};
const SCENARIOS: CrashScenario[] = [
  { name: 'shrink across a level, pages kept', poolBytes: SCENARIO_POOL, setup: withTree, steps: [
    (k) => k.resize(k.lookup('a'), 4096 * 6 + 100, FIXED_NOW),
    (k) => write(k, k.lookup('a'), 2, [1, 5]),
  ] },
  { name: 'shrink across a level, root becomes a hole', poolBytes: SCENARIO_POOL, setup: withTree, steps: [
    (k) => write(k, k.lookup('a'), 3, [488]),
    (k) => k.resize(k.lookup('a'), 100, FIXED_NOW),
    (k) => k.resize(k.lookup('a'), 3 * MiB, FIXED_NOW),
  ] },
];

testScenarios(SCENARIOS);

interface Internals {
  journal: Journal;
  table: RegionTable;
  allocator: Allocator;
}

/**
 * The resize of before the fix, kept here only to make damaged pools: pages past the end go
 * and the tail is zeroed, in one journal record, but the tree keeps its levels.
 */
function shrinkKeepingLevels(kernel: RegionManager, device: SimDevice | FileDevice, name: string, size: number): void {
  const { journal, table, allocator } = kernel as unknown as Internals;
  const ref = kernel.lookup(name);
  const slot = kernel.slot(ref);
  const poolBlocks = kernel.capacityBytes / 4096;
  const sequence = journal.newestSequence + 1;
  const tx = new Transaction(RECORD_KIND.resize, device, allocator, ref.index, slot.generation, slot.epoch, sequence);
  const tree = { root: slot.root, levels: slot.levels };
  pageTable.truncate(tx, tree, Math.max(1, Math.ceil(size / 4096)), poolBlocks);
  pageTable.zeroTail(device, tx, tree, size, poolBlocks);
  table.stageSlot(tx, ref.index, { ...slot, sizeBytes: size, root: tree.root, levels: tree.levels });
  journal.commit(tx);
}

test('fsck --repair mends a pool a shrink left deeper than its size: pages below survive', () => {
  for (const { size, pages } of [
    { size: 4096, pages: [488] }, // the reproduction: root a hole, 2 levels
    { size: 4096 * 6 + 10, pages: [0, 5, 488, 600] }, // root kept with one leaf
  ]) {
    const damaged = fresh();
    const healthy = fresh();
    for (const { device, kernel } of [damaged, healthy]) {
      const ref = kernel.lookup(kernel.create('a', 3 * MiB, OWNER, FIXED_NOW).name);
      write(kernel, ref, 4, pages);
      if (device === damaged.device) shrinkKeepingLevels(kernel, device, 'a', size);
      else kernel.resize(ref, size, FIXED_NOW);
    }
    const image = SimDevice.fromImage(damaged.device.read(0, damaged.device.sizeBytes));
    assert.throws(() => RegionManager.mount(SimDevice.fromImage(image.read(0, image.sizeBytes)), 'pool'),
      (e) => isRegionError(e, 'CORRUPT') && /levels/.test(e.message) && /fsck --repair/.test(e.message));
    const report = inspectPool(image, 'pool', false);
    assert.equal(report.ok, false);
    assert.ok(report.problems.every((p) => p.repairable), JSON.stringify(report.problems));
    const repaired = inspectPool(image, 'pool', true);
    assert.ok(repaired.ok, JSON.stringify(repaired.problems));
    assert.ok(inspectPool(image, 'pool', false).ok, `size ${size}: clean after repair`);
    const mounted = RegionManager.mount(image, 'pool');
    const expected = remount(healthy.device);
    assert.deepEqual(contents(mounted, 'a', size), contents(expected, 'a', size));
    assert.equal(mounted.poolCounts().usedBytes, expected.poolCounts().usedBytes, 'the removed levels are free');
    assert.ok(mounted.check().ok);
    write(mounted, mounted.lookup('a'), 5, [0]); // and it works on
    assert.ok(remount(image).check().ok);
  }
});

test('the reproduction on a pool file: checkPool repairs it and the region reads back', () => {
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-shrink-'));
  const file = path.join(dir, 'p.pool');
  try {
    const device = FileDevice.create(file, { sizeBytes: 64 * MiB, persistence: 'pmem' });
    RegionManager.format(device);
    const kernel = RegionManager.mount(device, file);
    const ref = kernel.lookup(kernel.create('a', 3 * MiB, OWNER).name);
    const bytes = new Uint8Array(4096);
    bytes.set(new TextEncoder().encode('hi\n'), 2_000_000 % 4096);
    kernel.commitPages(ref, [{ page: Math.floor(2_000_000 / 4096), bytes }]);
    shrinkKeepingLevels(kernel, device, 'a', 4096);
    device.close();
    assert.throws(() => openPool(file, { mode: 'exclusive', persistence: 'pmem' }), (e) => isRegionError(e, 'CORRUPT'));
    assert.equal(checkPool(file, { persistence: 'pmem' }).ok, false);
    assert.ok(checkPool(file, { repair: true, persistence: 'pmem' }).ok);
    const pool = openPool(file, { mode: 'exclusive', persistence: 'pmem' });
    try {
      assert.deepEqual(pool.list().map((r) => [r.name, r.sizeBytes]), [['a', 4096]]);
      assert.ok(pool.open('a').read(0, 4096).every((b) => b === 0));
      assert.ok(pool.check().ok);
    } finally {
      pool.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
