// Format version 2 (check-coded holes and never-used slots) and the upgrade of version 1 pools.
// fixtures/images/version1-pool.img.gz was written by the version 1 code: regions "a" (two
// levels, pages 0, 511, 512), "b" (page 2), "empty" (no page: a zero root in its slot), "t"
// (shrunk from 3 pages to 1: the journal's newest record stores zero words), "gone" (removed).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { BLOCK_BYTES, FORMAT_VERSION } from '../src/constants.js';
import { isRegionError } from '../src/errors.js';
import { inspectPool } from '../src/kernel/check.js';
import { RegionManager } from '../src/kernel/region_manager.js';
import { SimDevice } from '../src/pm/sim_device.js';

const IMAGE = gunzipSync(readFileSync(new URL('../../test/fixtures/images/version1-pool.img.gz', import.meta.url)));
const NOW = 1_700_000_000_000;

function page(tag: number, p: number): Uint8Array {
  const bytes = new Uint8Array(BLOCK_BYTES);
  for (let i = 0; i < BLOCK_BYTES; i++) bytes[i] = (tag * 31 + p * 7 + i) & 0xff;
  return bytes;
}

const EXPECTED: Record<string, { size: number; pages: Map<number, Uint8Array> }> = {
  a: { size: 2 * 1024 * 1024 + 4096, pages: new Map([0, 511, 512].map((p) => [p, page(1, p)])) },
  b: { size: 40_000, pages: new Map([[2, page(2, 2)]]) },
  empty: { size: 8192, pages: new Map() },
  t: { size: 4096, pages: new Map([[0, page(3, 0)]]) },
};

/** What is wrong with a mounted kernel's regions against EXPECTED, or null. */
function difference(kernel: RegionManager): string | null {
  const names = kernel.list().map((r) => r.name);
  if (names.join() !== Object.keys(EXPECTED).sort().join()) return `regions ${names.join()}`;
  for (const [name, want] of Object.entries(EXPECTED)) {
    const ref = kernel.lookup(name);
    if (kernel.info(ref).sizeBytes !== want.size) return `${name}: size ${kernel.info(ref).sizeBytes}`;
    const seen = new Set<number>();
    let wrong: string | null = null;
    kernel.forEachCommittedPage(ref, (p, view) => {
      seen.add(p);
      const bytes = want.pages.get(p);
      if (!bytes || !bytes.every((b, i) => b === view[i])) wrong ??= `${name}: page ${p} differs`;
    });
    if (wrong) return wrong;
    if (seen.size !== want.pages.size) return `${name}: ${seen.size} pages, expected ${want.pages.size}`;
  }
  const report = kernel.check();
  return report.ok ? null : `check: ${report.problems.map((p) => p.message).join('; ')}`;
}

test('a version 1 pool is upgraded at mount and keeps every region and page', () => {
  assert.equal(new DataView(IMAGE.buffer, IMAGE.byteOffset).getUint32(8, true), 1, 'the fixture is version 1');
  const device = SimDevice.fromImage(IMAGE);
  const kernel = RegionManager.mount(device, 'v1');
  assert.equal(kernel.mountReport.upgradedFrom, 1);
  assert.equal(difference(kernel), null);
  kernel.create('new', 3 * 4096, { mode: 0o600, uid: 0, gid: 0 }, NOW);
  kernel.commitPages(kernel.lookup('new'), [{ page: 1, bytes: page(9, 1) }], NOW);
  const again = RegionManager.mount(SimDevice.fromImage(device.read(0, device.sizeBytes)), 'v2');
  assert.equal(again.mountReport.upgradedFrom, null);
  assert.equal(again.committedPage(again.lookup('new'), 1)?.[5], page(9, 1)[5]);
  assert.equal(new DataView(device.read(0, 16).buffer).getUint32(8, true), FORMAT_VERSION);
});

test('a crash at any fence of the upgrade leaves a pool that mounts with every region intact', () => {
  const device = SimDevice.fromImage(IMAGE);
  let images = 0;
  const failures: string[] = [];
  device.onFence((d) => {
    for (const bytes of d.crashImages({ unitsMax: 6, samples: 6, seed: images + 1 })) {
      images++;
      try {
        const wrong = difference(RegionManager.mount(SimDevice.fromImage(bytes), 'crash image'));
        if (wrong) failures.push(`image ${images}: ${wrong}`);
      } catch (error) {
        failures.push(`image ${images}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  });
  RegionManager.mount(device, 'v1');
  device.onFence(null);
  assert.ok(images > 20, `${images} crash images`);
  assert.deepEqual(failures, []);
});

test('fsck of a version 1 pool reports the upgrade and changes nothing; --repair upgrades it', () => {
  const device = SimDevice.fromImage(IMAGE);
  const report = inspectPool(device, 'v1', false);
  assert.equal(report.ok, false);
  assert.match(report.problems[0]?.message ?? '', /format version 1 .*upgrades it to version 2/);
  assert.ok(report.problems.every((p) => p.repairable));
  assert.ok(device.read(0, device.sizeBytes).every((b, i) => b === IMAGE[i]), 'fsck without --repair wrote nothing');
  const repaired = inspectPool(device, 'v1', true);
  assert.ok(repaired.ok, JSON.stringify(repaired.problems));
  assert.equal(difference(RegionManager.mount(device, 'v2')), null);
});

test('a zeroed table, slot or page-table block is damage, not emptiness (version 2)', () => {
  const device = SimDevice.fromImage(IMAGE);
  const kernel = RegionManager.mount(device, 'v1');
  const clean = device.read(0, device.sizeBytes);
  const leaf = kernel.pageTableBlocks(kernel.lookup('a')).at(-1) as number;
  const slotBlock = Math.floor(kernel.slotPosition(kernel.lookup('b')) / BLOCK_BYTES);
  for (const [what, block] of [['table root', 2], ['slot block', slotBlock], ['page-table block', leaf]] as const) {
    const damaged = SimDevice.fromImage(clean);
    damaged.fill(block * BLOCK_BYTES, BLOCK_BYTES, 0);
    assert.throws(
      () => RegionManager.mount(damaged, 'pool'),
      (e) => isRegionError(e, 'CORRUPT') && /all zero/.test(e.message),
      what,
    );
  }
});

test('a damaged version 1 pool is refused, not half upgraded', () => {
  const device = SimDevice.fromImage(IMAGE);
  const table = new DataView(IMAGE.buffer, IMAGE.byteOffset + 2 * BLOCK_BYTES, BLOCK_BYTES);
  const used = Array.from({ length: 512 }, (_, i) => i).find((i) => table.getUint32(i * 8, true) !== 0) as number;
  const position = 2 * BLOCK_BYTES + used * 8;
  device.write(position, Uint8Array.of((IMAGE[position] as number) ^ 4));
  const before = device.read(0, device.sizeBytes);
  assert.throws(
    () => RegionManager.mount(device, 'v1'),
    (e) => isRegionError(e, 'CORRUPT') && /cannot be upgraded/.test(e.message),
  );
  assert.ok(device.read(0, device.sizeBytes).every((b, i) => b === before[i]), 'nothing was rewritten');
});
