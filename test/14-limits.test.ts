// Limits: 100,000 regions in one pool, a full region table, a full pool (NO_SPACE at pmsync), bad names and sizes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { MAX_SLOTS } from '../src/constants.js';
import { isRegionError } from '../src/errors.js';
import { RegionManager } from '../src/kernel/region_manager.js';
import { RegionTable } from '../src/kernel/region_table.js';
import { checkName, checkRegionSize } from '../src/kernel/names.js';
import { FileDevice } from '../src/pm/file_device.js';
import { SimDevice } from '../src/pm/sim_device.js';

const OWNER = { mode: 0o600, uid: 1, gid: 1 };

test('100,000 regions in one pool: create, remount, look up, check', (t) => {
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-limits-'));
  const file = path.join(dir, 'many.pool');
  try {
    const device = FileDevice.create(file, { sizeBytes: 128 * 1024 * 1024, persistence: 'pmem' });
    RegionManager.format(device);
    const kernel = RegionManager.mount(device, file);
    const started = Date.now();
    for (let i = 0; i < 100_000; i++) kernel.create(`region-${i}`, 4096 * (1 + (i % 7)), OWNER);
    t.diagnostic(`created 100,000 regions in ${Date.now() - started} ms`);
    device.close();
    const again = new FileDevice(file, { persistence: 'pmem' });
    const mountStart = Date.now();
    const mounted = RegionManager.mount(again, file);
    t.diagnostic(`mounted in ${Date.now() - mountStart} ms`);
    assert.equal(mounted.poolCounts().regions, 100_000);
    assert.equal(mounted.info(mounted.lookup('region-99999')).sizeBytes, 4096 * (1 + (99_999 % 7)));
    assert.ok(mounted.check().ok);
    again.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a full region table is NO_SPACE', () => {
  const device = new SimDevice({ sizeBytes: 256 * 1024 });
  RegionManager.format(device);
  const table = new RegionTable(device, 2, 64);
  (table as unknown as { nextUnused: number }).nextUnused = MAX_SLOTS;
  assert.throws(() => table.chooseFree(), (e) => isRegionError(e, 'NO_SPACE') && /region table is full/.test(e.message));
});

test('names and sizes are validated', () => {
  assert.throws(() => checkName(''), (e) => isRegionError(e, 'INVALID'));
  assert.throws(() => checkName('x'.repeat(256)), (e) => isRegionError(e, 'INVALID') && /255/.test(e.message));
  assert.equal(checkName('é'.repeat(127)), 'é'.repeat(127)); // 254 bytes
  assert.throws(() => checkName('é'.repeat(128)), (e) => isRegionError(e, 'INVALID'));
  assert.throws(() => checkName('a\0b'), (e) => isRegionError(e, 'INVALID'));
  assert.throws(() => checkName('\ud800'), (e) => isRegionError(e, 'INVALID'));
  assert.throws(() => checkName(42 as unknown as string), (e) => isRegionError(e, 'INVALID'));
  assert.throws(() => checkRegionSize(0, 1 << 20), (e) => isRegionError(e, 'INVALID'));
  assert.throws(() => checkRegionSize(1.5, 1 << 20), (e) => isRegionError(e, 'INVALID'));
  assert.throws(() => checkRegionSize((1 << 20) + 1, 1 << 20), (e) => isRegionError(e, 'INVALID') && /capacity/.test(e.message));
  assert.equal(checkRegionSize(1, 1 << 20), 1);
  assert.equal(checkRegionSize(1 << 20, 1 << 20), 1 << 20);
});

test('a pool too small for its journal is refused', () => {
  assert.throws(() => RegionManager.format(new SimDevice({ sizeBytes: 8 * 4096 })), (e) => isRegionError(e, 'INVALID'));
});

test('a full pool is NO_SPACE at pmsync, saying the blocks it needed and those free; nothing changes', () => {
  const device = new SimDevice({ sizeBytes: 64 * 4096 });
  RegionManager.format(device);
  const kernel = RegionManager.mount(device, 'small');
  kernel.create('r', 64 * 4096, OWNER); // as large as the pool: more pages than it has free blocks
  const ref = kernel.lookup('r');
  const page = (p: number): { page: number; bytes: Uint8Array } => ({ page: p, bytes: new Uint8Array(4096).fill(p) });
  const free = kernel.poolCounts().freeBytes / 4096;
  const many = Array.from({ length: free + 5 }, (_, p) => page(p));
  const says = `need ${free + 5} new blocks and the pool has ${free} free`;
  assert.throws(() => kernel.commitPages(ref, many), (e) => isRegionError(e, 'NO_SPACE') && e.message.includes(says));
  assert.equal(kernel.info(ref).epoch, 0, 'nothing was committed');
  assert.ok(kernel.check().ok);
  kernel.commitPages(ref, [page(3)]); // and the pool goes on
  assert.equal(kernel.committedPage(ref, 3)?.[0], 3);
});

test('the kernel itself refuses a region larger than the pool (it would not mount again)', () => {
  const device = new SimDevice({ sizeBytes: 64 * 4096 });
  RegionManager.format(device);
  const kernel = RegionManager.mount(device, 'small');
  const capacity = (e: unknown): boolean => isRegionError(e, 'INVALID') && /capacity/.test(e.message);
  assert.throws(() => kernel.create('big', 65 * 4096, OWNER), capacity);
  kernel.create('r', 4096, OWNER);
  assert.throws(() => kernel.resize(kernel.lookup('r'), 65 * 4096), capacity);
  assert.ok(RegionManager.mount(SimDevice.fromImage(device.read(0, device.sizeBytes)), 'again').check().ok);
});
