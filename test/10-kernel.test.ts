import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RegionManager } from '../src/kernel/region_manager.js';
import { SimDevice } from '../src/pm/sim_device.js';
import { isRegionError } from '../src/errors.js';
import { pattern } from '../src/crashtest/scenarios.js';

const OWNER = { mode: 0o600, uid: 1, gid: 1 };

function fresh(bytes = 1024 * 1024): { device: SimDevice; kernel: RegionManager } {
  const device = new SimDevice({ sizeBytes: bytes });
  RegionManager.format(device);
  return { device, kernel: RegionManager.mount(device, 'test pool', { checkInvariants: true }) };
}

function remount(device: SimDevice): RegionManager {
  const image = SimDevice.fromImage(device.read(0, device.sizeBytes));
  return RegionManager.mount(image, 'test pool', { checkInvariants: true });
}

test('create, list, stat, rename, remove survive a remount', () => {
  const { device, kernel } = fresh();
  kernel.create('one', 5000, OWNER);
  kernel.create('two', 1, OWNER);
  kernel.rename(kernel.lookup('two'), 'deux');
  let again = remount(device);
  assert.deepEqual(again.list().map((r) => r.name), ['deux', 'one']);
  assert.equal(again.info(again.lookup('one')).sizeBytes, 5000);
  kernel.remove(kernel.lookup('one'));
  again = remount(device);
  assert.deepEqual(again.list().map((r) => r.name), ['deux']);
  assert.ok(again.check().ok);
});

test('pages written read back; holes read as zeros; blocks are reclaimed', () => {
  const { device, kernel } = fresh(4 * 1024 * 1024);
  const ref = kernel.create('r', 3 * 1024 * 1024, OWNER);
  const handle = kernel.lookup('r');
  const usedBefore = kernel.poolCounts().usedBytes;
  kernel.commitPages(handle, [{ page: 0, bytes: pattern(1, 0) }, { page: 600, bytes: pattern(1, 600) }]);
  const again = remount(device);
  const page = new Uint8Array(4096);
  again.readPage(again.lookup('r'), 600, page);
  assert.deepEqual(page, pattern(1, 600));
  again.readPage(again.lookup('r'), 5, page);
  assert.ok(page.every((b) => b === 0));
  assert.equal(again.info(again.lookup('r')).allocatedBytes, 2 * 4096);
  assert.equal(again.info(again.lookup('r')).epoch, 1);
  kernel.commitPages(handle, [{ page: 0, bytes: pattern(2, 0) }]);
  assert.equal(kernel.poolCounts().usedBytes, usedBefore + (2 + 3) * 4096, 'two data pages, root + two leaves');
  kernel.remove(handle);
  assert.equal(kernel.poolCounts().usedBytes, usedBefore);
  assert.ok(kernel.check().ok);
  assert.equal(ref.epoch, 0);
});

test('a commit uses two fences whatever its size, and an empty one none', () => {
  const { device, kernel } = fresh(4 * 1024 * 1024);
  const ref = kernel.lookup(kernel.create('r', 2 * 1024 * 1024, OWNER).name);
  for (const k of [1, 16, 256]) {
    device.counters.reset();
    kernel.commitPages(ref, Array.from({ length: k }, (_, i) => ({ page: i * 2, bytes: pattern(k, i) })));
    assert.equal(device.counters.fences, 2, `k=${k}`);
  }
  device.counters.reset();
  const epoch = kernel.info(ref).epoch;
  assert.equal(kernel.commitPages(ref, []).epoch, epoch);
  assert.equal(device.counters.fences, 0, 'an empty commit is nothing: no record, no fence, the same epoch');
});

test('resize shrink zeroes the tail and frees pages; grow stays sparse', () => {
  const { device, kernel } = fresh();
  const ref = kernel.lookup(kernel.create('r', 40960, OWNER).name);
  kernel.commitPages(ref, [0, 1, 2, 9].map((page) => ({ page, bytes: pattern(3, page) })));
  kernel.resize(ref, 4096 + 10);
  kernel.resize(ref, 40960);
  const again = remount(device);
  const page = new Uint8Array(4096);
  again.readPage(again.lookup('r'), 1, page);
  assert.deepEqual(page.subarray(0, 10), pattern(3, 1).subarray(0, 10));
  assert.ok(page.subarray(10).every((b) => b === 0));
  again.readPage(again.lookup('r'), 9, page);
  assert.ok(page.every((b) => b === 0));
  assert.equal(again.info(again.lookup('r')).allocatedBytes, 2 * 4096);
  assert.ok(again.check().ok);
});

test('errors: duplicate names, unknown names, full pool', () => {
  const { kernel } = fresh(128 * 1024);
  kernel.create('x', 4096, OWNER);
  assert.throws(() => kernel.create('x', 4096, OWNER), (e) => isRegionError(e, 'EXISTS'));
  assert.throws(() => kernel.lookup('nope'), (e) => isRegionError(e, 'NOT_FOUND'));
  const ref = kernel.lookup(kernel.create('fill', 128 * 1024, OWNER).name);
  const pages = Array.from({ length: 32 }, (_, i) => ({ page: i, bytes: pattern(1, i) }));
  assert.throws(() => kernel.commitPages(ref, pages), (e) => isRegionError(e, 'NO_SPACE'));
  assert.ok(kernel.check().ok, 'a failed commit leaks nothing');
});
