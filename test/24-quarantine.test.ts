// Damage stays local: fsck --repair quarantines a region whose page table is damaged, so every
// other region mounts; the damaged one is listed, its readable pages can be read, it is never
// written, and removing it frees what it held (src/kernel/quarantine.ts).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { BLOCK_BYTES } from '../src/constants.js';
import { isRegionError } from '../src/errors.js';
import { encodeEntry } from '../src/format/entry.js';
import { checkPool, createPool, FileDevice, openPool } from '../src/index.js';
import { inspectPool } from '../src/kernel/check.js';
import { RegionManager } from '../src/kernel/region_manager.js';
import { SimDevice } from '../src/pm/sim_device.js';

const NOW = 1_700_000_000_000;
const OWNER = { mode: 0o600, uid: 0, gid: 0 };

/** assert.throws' check: CORRUPT, with a message that matches. */
function corrupt(message: RegExp): (error: unknown) => boolean {
  return (e) => isRegionError(e, 'CORRUPT') && message.test(e.message);
}

function page(tag: number, p: number): Uint8Array {
  return new Uint8Array(BLOCK_BYTES).fill((tag * 16 + p) & 0xff);
}

/** Regions a (two levels: pages 0, 511, 512), b (page 2), c (pages 0..3), committed. */
function build(): { image: Uint8Array; kernel: RegionManager } {
  const device = new SimDevice({ sizeBytes: 4 * 1024 * 1024 });
  RegionManager.format(device, NOW);
  const kernel = RegionManager.mount(device, 'pool');
  const write = (name: string, size: number, tag: number, pages: number[]): void => {
    kernel.create(name, size, OWNER, NOW);
    kernel.commitPages(kernel.lookup(name), pages.map((p) => ({ page: p, bytes: page(tag, p) })), NOW);
  };
  write('a', 2 * 1024 * 1024 + BLOCK_BYTES, 1, [0, 511, 512]);
  write('b', 3 * BLOCK_BYTES, 2, [2]);
  write('c', 4 * BLOCK_BYTES, 3, [0, 1, 2, 3]);
  return { image: device.read(0, device.sizeBytes), kernel };
}

/** Pool offset of the leaf entry mapping `p` in a region whose tree `blocks` lists (root first). */
function leafEntry(kernel: RegionManager, name: string, p: number): number {
  const blocks = kernel.pageTableBlocks(kernel.lookup(name));
  const levels = blocks.length === 1 ? 1 : 2;
  const leaf = levels === 1 ? blocks[0] : blocks[1 + Math.floor(p / 512)];
  return (leaf as number) * BLOCK_BYTES + (p % 512) * 8;
}

function same(kernel: RegionManager, name: string, tag: number, pages: number[]): void {
  const ref = kernel.lookup(name);
  for (const p of pages) assert.deepEqual(kernel.committedPage(ref, p), page(tag, p), `${name} page ${p}`);
}

/** Mount refuses and names the quarantine; fsck --repair quarantines; the pool mounts. */
function repairAndMount(device: SimDevice): RegionManager {
  assert.throws(() => RegionManager.mount(SimDevice.fromImage(device.read(0, device.sizeBytes)), 'pool'),
    corrupt(/repair quarantines the region/));
  const check = inspectPool(device, 'pool', false);
  assert.ok(!check.ok && check.problems.every((p) => p.repairable), JSON.stringify(check.problems));
  const repaired = inspectPool(device, 'pool', true);
  assert.ok(repaired.ok, JSON.stringify(repaired.problems));
  return RegionManager.mount(device, 'pool');
}

test('a bad check code in one page table: the region is quarantined and every other region mounts', () => {
  const { image, kernel: clean } = build();
  const device = SimDevice.fromImage(image);
  const entry = leafEntry(clean, 'a', 511);
  device.write(entry + 6, Uint8Array.of((image[entry + 6] as number) ^ 0x10));
  const kernel = repairAndMount(device);
  assert.deepEqual(kernel.list().map((r) => [r.name, r.damaged]), [['a', true], ['b', false], ['c', false]]);
  same(kernel, 'b', 2, [2]);
  same(kernel, 'c', 3, [0, 1, 2, 3]);
  same(kernel, 'a', 1, [0, 512]); // the readable pages of the damaged region
  assert.equal(kernel.committedPage(kernel.lookup('a'), 7), null, 'a hole of a damaged region is a hole');
  assert.throws(() => kernel.committedPage(kernel.lookup('a'), 511), corrupt(/page 511 cannot be read/));
  const a = kernel.lookup('a');
  assert.throws(() => kernel.commitPages(a, [{ page: 0, bytes: page(9, 0) }], NOW), corrupt(/is damaged/));
  assert.throws(() => kernel.resize(a, BLOCK_BYTES, NOW), /is damaged/);
  assert.throws(() => kernel.rename(a, 'z', NOW), /is damaged/);
  const exists = (e: unknown): boolean => isRegionError(e, 'EXISTS');
  assert.throws(() => kernel.create('a', BLOCK_BYTES, OWNER, NOW), exists, 'the damaged region keeps its name');
  assert.ok(kernel.check().ok, 'the free map agrees with the lenient walk');
  kernel.commitPages(kernel.lookup('c'), [{ page: 1, bytes: page(4, 1) }], NOW); // the rest of the pool is writable
  const used = kernel.poolCounts().usedBytes;
  kernel.remove(a);
  assert.ok(kernel.poolCounts().usedBytes <= used - 4 * BLOCK_BYTES, 'removing it frees its readable blocks');
  const again = RegionManager.mount(SimDevice.fromImage(device.read(0, device.sizeBytes)), 'pool');
  assert.ok(again.check().ok);
  assert.deepEqual(again.list().map((r) => r.name), ['b', 'c']);
  assert.deepEqual(again.poolCounts().usedBytes, kernel.poolCounts().usedBytes, 'nothing leaked or kept');
});

test('a zeroed page-table block is quarantined with the pages above it readable', () => {
  const { image, kernel: clean } = build();
  const device = SimDevice.fromImage(image);
  const leaf = Math.floor(leafEntry(clean, 'a', 512) / BLOCK_BYTES);
  device.fill(leaf * BLOCK_BYTES, BLOCK_BYTES, 0);
  const kernel = repairAndMount(device);
  same(kernel, 'a', 1, [0, 511]);
  assert.throws(() => kernel.committedPage(kernel.lookup('a'), 512), /cannot be read/);
  same(kernel, 'c', 3, [0, 1, 2, 3]);
});

test('an entry pointing at another region\'s block never shows that block through the damaged region', () => {
  const { image, kernel: clean } = build();
  const device = SimDevice.fromImage(image);
  const cLeaf = clean.pageTableBlocks(clean.lookup('c'))[0] as number;
  const cPage2 = new DataView(image.buffer, image.byteOffset + cLeaf * BLOCK_BYTES + 2 * 8, 8).getUint32(0, true);
  const entry = leafEntry(clean, 'b', 0); // b's page 0 is a hole: make it map c's page 2 with a valid check code
  const [lo, hi] = encodeEntry(cPage2, entry);
  const word = new DataView(new ArrayBuffer(8));
  word.setUint32(0, lo, true);
  word.setUint32(4, hi, true);
  device.write(entry, new Uint8Array(word.buffer));
  const kernel = repairAndMount(device);
  const damaged = kernel.list().filter((r) => r.damaged).map((r) => r.name);
  assert.equal(damaged.length, 1, `one region quarantined: ${damaged}`);
  const other = damaged[0] === 'b' ? 'c' : 'b';
  if (other === 'c') same(kernel, 'c', 3, [0, 1, 2, 3]);
  else same(kernel, 'b', 2, [2]);
  // Whichever is damaged, c's page 2 block is read only through c, never through b's page 0.
  const b0 = (() => {
    try {
      return kernel.committedPage(kernel.lookup('b'), 0);
    } catch {
      return 'unreadable';
    }
  })();
  assert.ok(b0 === 'unreadable' || (damaged[0] === 'c' && b0 !== null), `b page 0: ${String(b0)}`);
  assert.ok(kernel.check().ok);
});

test('through the API: a damaged region is listed, read page by page, never mapped', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-quarantine-'));
  const file = path.join(dir, 'q.pool');
  try {
    const pool = createPool(file, { size: '16MiB', mode: 'exclusive' });
    pool.create('a', { size: '16KiB' });
    pool.create('ok', { size: '4KiB' });
    pool.open('a').write(0, new Uint8Array(16384).fill(5));
    pool.open('ok').write(0, new Uint8Array(4096).fill(6));
    pool.close();
    const look = new FileDevice(file);
    const kernel = RegionManager.mount(look, file);
    const entry = (kernel.pageTableBlocks(kernel.lookup('a'))[0] as number) * BLOCK_BYTES + 3 * 8; // page 3
    look.close();
    const fd = fs.openSync(file, 'r+');
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, entry + 7);
    fs.writeSync(fd, Uint8Array.of((byte[0] as number) ^ 0x40), 0, 1, entry + 7);
    fs.closeSync(fd);
    assert.throws(() => openPool(file, { mode: 'exclusive' }), corrupt(/quarantines/));
    assert.ok(checkPool(file, { repair: true }).ok);
    const reopened = openPool(file, { mode: 'exclusive' });
    try {
      assert.deepEqual(reopened.list().map((r) => [r.name, r.damaged]), [['a', true], ['ok', false]]);
      const a = reopened.open('a', { access: 'ro' });
      assert.deepEqual(a.read(0, 3 * 4096), new Uint8Array(3 * 4096).fill(5));
      assert.throws(() => a.read(3 * 4096, 4096), corrupt(/page 3 cannot be read/));
      assert.throws(() => a.map(), corrupt(/is damaged/));
      assert.deepEqual(reopened.open('ok').read(), new Uint8Array(4096).fill(6));
      reopened.remove('a');
      assert.deepEqual(reopened.list().map((r) => r.name), ['ok']);
    } finally {
      reopened.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
