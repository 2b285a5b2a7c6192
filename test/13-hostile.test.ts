// Hostile input: damaged pools must give a clear CORRUPT error naming the structure and
// offset, or be repaired by check({ repair: true }); never a crash, a hang or wrong data.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRegionError, RegionError } from '../src/errors.js';
import { inspectPool } from '../src/kernel/check.js';
import { RegionManager } from '../src/kernel/region_manager.js';
import { SimDevice } from '../src/pm/sim_device.js';
import { pattern } from '../src/crashtest/scenarios.js';
import { SimPrng } from '../src/pm/sim_prng.js';
import { decodeSuperblock, encodeSuperblock } from '../src/format/superblock.js';

const OWNER = { mode: 0o600, uid: 1, gid: 1 };
const seed = Number(process.env.REGIONS_SEED ?? 7);

function healthyImage(): Uint8Array {
  const device = new SimDevice({ sizeBytes: 3 * 1024 * 1024 });
  RegionManager.format(device, 1);
  const kernel = RegionManager.mount(device, 'pool');
  const a = kernel.lookup(kernel.create('alpha', 600 * 4096, OWNER, 1).name);
  kernel.create('beta', 4096, OWNER, 1);
  kernel.commitPages(a, [0, 1, 511, 599].map((page) => ({ page, bytes: pattern(1, page) })), 2);
  return device.read(0, device.sizeBytes);
}

function contents(kernel: RegionManager): string {
  const page = new Uint8Array(4096);
  const ref = kernel.lookup('alpha');
  const parts: number[] = [];
  for (const p of [0, 1, 511, 599, 5]) {
    kernel.readPage(ref, p, page);
    parts.push(page.reduce((a, b) => (a * 31 + b) >>> 0, 0));
  }
  return parts.join(',');
}

/** Mount the damaged image: CORRUPT, or a mount whose data is exactly the healthy data. */
function mountOrCorrupt(bytes: Uint8Array, expected: string): 'corrupt' | 'intact' {
  try {
    const kernel = RegionManager.mount(SimDevice.fromImage(bytes), 'pool');
    assert.equal(contents(kernel), expected, 'a damaged pool that mounts must give back the right data');
    return 'intact';
  } catch (error) {
    if (isRegionError(error, 'CORRUPT')) {
      assert.match(error.message, /offset|magic|superblock|truncated/);
      return 'corrupt';
    }
    throw error;
  }
}

test('every byte of superblock copy 0 flipped: mount uses copy 1 and check repairs copy 0', () => {
  const healthy = healthyImage();
  const expected = contents(RegionManager.mount(SimDevice.fromImage(healthy), 'pool'));
  for (let i = 0; i < 128; i++) {
    const bytes = healthy.slice();
    bytes[i] = (bytes[i] ?? 0) ^ 0xff;
    const device = SimDevice.fromImage(bytes);
    const report = inspectPool(device, 'pool', false);
    assert.ok(report.problems.some((p) => p.structure === 'superblock copy 0' && p.repairable), `byte ${i}: reported`);
    const repaired = inspectPool(device, 'pool', true);
    assert.ok(repaired.ok, `byte ${i}: repaired`);
    assert.ok(inspectPool(device, 'pool', false).ok, `byte ${i}: clean after repair`);
    assert.equal(mountOrCorrupt(device.read(0, device.sizeBytes), expected), 'intact');
  }
});

test('both superblock copies damaged, zero-length, truncated, foreign and future-version files are refused', () => {
  const healthy = healthyImage();
  const both = healthy.slice();
  both[30] = (both[30] ?? 0) ^ 1;
  both[4096 + 30] = (both[4096 + 30] ?? 0) ^ 1;
  assert.throws(() => RegionManager.mount(SimDevice.fromImage(both), 'pool'), (e) => isRegionError(e, 'CORRUPT') && /no valid copy/.test(e.message));
  assert.throws(() => RegionManager.mount(new SimDevice({ sizeBytes: 4096 }), 'tiny'), (e) => isRegionError(e, 'CORRUPT'));
  assert.throws(() => RegionManager.mount(new SimDevice({ sizeBytes: 65536 }), 'zeros'), (e) => isRegionError(e, 'CORRUPT') && /not a region pool/.test(e.message));
  const truncated = SimDevice.fromImage(healthy.slice(0, 512 * 1024));
  assert.throws(() => RegionManager.mount(truncated, 'pool'), (e) => isRegionError(e, 'CORRUPT') && /truncated/.test(e.message));
  const future = healthy.slice();
  for (const base of [0, 4096]) {
    const decoded = decodeSuperblock(future.subarray(base, base + 128));
    assert.ok(decoded.ok);
    future.set(encodeSuperblock({ ...decoded.superblock, version: 99 }), base);
  }
  assert.throws(() => RegionManager.mount(SimDevice.fromImage(future), 'pool'), (e) => isRegionError(e, 'CORRUPT') && /version 99/.test(e.message));
});

test('every byte of a region-table block flipped: CORRUPT naming the slot, never wrong data', (t) => {
  const healthy = healthyImage();
  const expected = contents(RegionManager.mount(SimDevice.fromImage(healthy), 'pool'));
  const kernel = RegionManager.mount(SimDevice.fromImage(healthy), 'pool');
  const slotBlock = Math.floor(kernel.slotPosition(kernel.lookup('alpha')) / 4096);
  let corrupt = 0;
  for (let i = 0; i < 4096; i++) {
    const bytes = healthy.slice();
    const at = slotBlock * 4096 + i;
    bytes[at] = (bytes[at] ?? 0) ^ (1 << (i % 8));
    if (mountOrCorrupt(bytes, expected) === 'corrupt') corrupt++;
  }
  // A flip inside a slot that the newest journal record rewrites is healed by its replay at
  // mount (mountOrCorrupt has checked the data); every other flip must be caught.
  t.diagnostic(`${corrupt} of 4096 flips refused as CORRUPT, ${4096 - corrupt} healed by journal replay`);
  assert.ok(corrupt >= 4096 - 512, 'only the slot rewritten by the newest record can be healed');
});

test('random flips in page-table blocks are detected or harmless', (t) => {
  t.diagnostic(`seed ${seed} (replay with REGIONS_SEED=${seed})`);
  const healthy = healthyImage();
  const expected = contents(RegionManager.mount(SimDevice.fromImage(healthy), 'pool'));
  const kernel = RegionManager.mount(SimDevice.fromImage(healthy), 'pool');
  const tables = kernel.pageTableBlocks(kernel.lookup('alpha'));
  assert.ok(tables.length >= 2);
  const prng = new SimPrng(seed);
  let corrupt = 0;
  for (let n = 0; n < 2000; n++) {
    const block = tables[prng.nextBelow(tables.length)] ?? 0;
    const at = block * 4096 + prng.nextBelow(4096);
    const bytes = healthy.slice();
    bytes[at] = (bytes[at] ?? 0) ^ (1 << prng.nextBelow(8));
    if (mountOrCorrupt(bytes, expected) === 'corrupt') corrupt++;
  }
  t.diagnostic(`${corrupt} of 2000 flips refused at mount; any other left the data intact (checked)`);
  assert.ok(corrupt > 0);
});

test('a committed but unapplied journal record is reported and replayed by repair', () => {
  const device = new SimDevice({ sizeBytes: 1024 * 1024 });
  RegionManager.format(device, 1);
  const kernel = RegionManager.mount(device, 'pool');
  const ref = kernel.lookup(kernel.create('r', 8192, OWNER, 1).name);
  kernel.commitPages(ref, [{ page: 0, bytes: pattern(5, 0) }], 3);
  // The next commit's first fence is where the previous record's in-place applies become
  // durable; the oldest crash image just before it has the record committed, applies missing.
  let oldest: Uint8Array | null = null;
  device.onFence((dev) => {
    oldest ??= dev.crashImages({ unitsMax: 0, samples: 0 })[Symbol.iterator]().next().value ?? null;
  });
  kernel.commitPages(ref, [{ page: 1, bytes: pattern(5, 1) }], 4);
  device.onFence(null);
  assert.ok(oldest);
  const damaged = SimDevice.fromImage(oldest);
  const report = inspectPool(damaged, 'pool', false);
  assert.ok(report.problems.some((p) => /journal record/.test(p.structure) && p.repairable), 'unapplied record reported');
  assert.equal(report.ok, false);
  assert.ok(inspectPool(damaged, 'pool', true).ok, 'repair replays it');
  assert.ok(inspectPool(damaged, 'pool', false).ok, 'clean afterwards');
  const again = RegionManager.mount(damaged, 'pool');
  const page = new Uint8Array(4096);
  again.readPage(again.lookup('r'), 0, page);
  assert.deepEqual(page, pattern(5, 0));
});

test('RegionError carries its code', () => {
  const e = new RegionError('CORRUPT', 'x');
  assert.equal(e.code, 'CORRUPT');
});
