// A full file system is NO_SPACE when a pool is created or grown, and nothing else changes: a
// pool file's blocks are reserved up front, so no store into the mapping can find the file
// system full later (that is SIGBUS). Uses a small tmpfs when this process may mount one.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { FIXED_NOW } from '../src/crashtest/harness.js';
import { pattern } from '../src/crashtest/scenarios.js';
import { isRegionError, RegionError } from '../src/errors.js';
import { RegionManager } from '../src/kernel/region_manager.js';
import { FileDevice } from '../src/pm/file_device.js';
import { SimDevice } from '../src/pm/sim_device.js';

const MiB = 1024 * 1024;
const OWNER = { mode: 0o600, uid: 1, gid: 1 };

/** Runs body in a fresh tmpfs of `sizeBytes`; skips the test where mounting is not allowed. */
function withSmallTmpfs(t: TestContext, sizeBytes: number, body: (dir: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-full-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (mounted.status !== 0) {
    fs.rmdirSync(dir);
    t.skip(`cannot mount a small tmpfs here (${(mounted.stderr || String(mounted.error)).trim()})`);
    return;
  }
  try {
    body(dir);
  } finally {
    spawnSync('umount', ['--lazy', dir]); // lazy: a descriptor a failed test left open must not keep it mounted
    fs.rmdirSync(dir);
  }
}

test('a pool file is created with every block allocated, not sparse', () => {
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-reserve-'));
  try {
    const file = path.join(dir, 'p.pool');
    const device = FileDevice.create(file, { sizeBytes: 4 * MiB, persistence: 'pmem' });
    device.resize(6 * MiB);
    device.close();
    assert.ok(fs.statSync(file).blocks * 512 >= 6 * MiB, 'the blocks are allocated');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('creating a pool larger than the free space is NO_SPACE and leaves no file', (t) => {
  withSmallTmpfs(t, 8 * MiB, (dir) => {
    const file = path.join(dir, 'p.pool');
    assert.throws(() => FileDevice.create(file, { sizeBytes: 16 * MiB, persistence: 'pmem' }),
      (e) => isRegionError(e, 'NO_SPACE') && /full/.test(e.message));
    assert.deepEqual(fs.readdirSync(dir), []);
    const stats = fs.statfsSync(dir);
    assert.equal(stats.bfree, stats.blocks, 'the space went back');
  });
});

test('growing a pool past the free space is NO_SPACE; the pool stays intact and usable at its size', (t) => {
  withSmallTmpfs(t, 8 * MiB, (dir) => {
    const file = path.join(dir, 'p.pool');
    const device = FileDevice.create(file, { sizeBytes: 4 * MiB, persistence: 'pmem' });
    t.after(() => device.close());
    RegionManager.format(device, FIXED_NOW);
    const kernel = RegionManager.mount(device, file);
    const ref = kernel.lookup(kernel.create('r', 2 * MiB, OWNER, FIXED_NOW).name);
    kernel.commitPages(ref, [{ page: 0, bytes: pattern(1, 0) }], FIXED_NOW);
    assert.throws(() => kernel.grow(64 * MiB), (e) => isRegionError(e, 'NO_SPACE'));
    assert.ok(!kernel.failure, 'the kernel goes on');
    assert.equal(kernel.capacityBytes, 4 * MiB);
    assert.equal(device.sizeBytes, 4 * MiB);
    assert.equal(fs.statSync(file).size, 4 * MiB, 'the file is as it was');
    kernel.commitPages(ref, [{ page: 1, bytes: pattern(1, 1) }], FIXED_NOW);
    kernel.grow(6 * MiB); // what fits still grows
    // Fill what is left of the file system, then store into every page of the pool's new
    // space: the blocks were reserved, so no store can find the file system full.
    fillUp(path.join(dir, 'filler'));
    const pages = Array.from({ length: 400 }, (_, i) => ({ page: 2 + i, bytes: pattern(2, 2 + i) }));
    kernel.commitPages(ref, pages, FIXED_NOW);
    assert.ok(kernel.check().ok);
    device.close();
    const again = new FileDevice(file, { persistence: 'pmem' });
    try {
      const mounted = RegionManager.mount(again, file);
      const page = new Uint8Array(4096);
      mounted.readPage(mounted.lookup('r'), 401, page);
      assert.deepEqual(page, pattern(2, 401));
    } finally {
      again.close();
    }
  });
});

/** Writes zeros into `file` until the file system is full. */
function fillUp(file: string): void {
  const fd = fs.openSync(file, 'w');
  const chunk = new Uint8Array(64 * 1024);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (error) {
    if ((error as { code?: string }).code !== 'ENOSPC') throw error;
  } finally {
    fs.closeSync(fd);
  }
}

/** Simulated PM on a file system that is full: it cannot grow. */
class FullDevice extends SimDevice {
  override resize(): void {
    throw new RegionError('NO_SPACE', 'cannot reserve the space: the file system is full (ENOSPC); nothing changed');
  }
}

test('a device that cannot grow changes nothing: the kernel goes on at its old size', () => {
  const device = new FullDevice({ sizeBytes: 256 * 1024 });
  RegionManager.format(device, FIXED_NOW);
  const kernel = RegionManager.mount(device, 'pool');
  const ref = kernel.lookup(kernel.create('r', 16 * 4096, OWNER, FIXED_NOW).name);
  for (const size of [512 * 1024, 8 * 256 * 1024]) { // the same journal, then a moved one
    assert.throws(() => kernel.grow(size), (e) => isRegionError(e, 'NO_SPACE'));
    assert.ok(!kernel.failure, 'the kernel goes on');
    assert.equal(kernel.capacityBytes, 256 * 1024);
  }
  kernel.commitPages(ref, [{ page: 3, bytes: pattern(3, 3) }], FIXED_NOW);
  assert.ok(kernel.check().ok);
  assert.ok(RegionManager.mount(SimDevice.fromImage(device.read(0, device.sizeBytes)), 'pool').check().ok);
});
