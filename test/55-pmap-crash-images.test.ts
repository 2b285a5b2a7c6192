// SimDevice crash images of a PMap batch commit. A PMap runs in a real pool (exclusive mode):
// puts, then one batch of puts and deletes; check() is clean after each. The region's bytes
// before and after the batch are the two states a crash may leave. The batch's pmsync is one
// commit of the pages that differ: replayed on a SimDevice (the crash harness), every crash
// image of it, and of its recovery, must hold exactly one of the two states.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FIXED_NOW, runScenario } from '../src/crashtest/harness.js';
import { createPool, PMap } from '../src/index.js';
import type { RegionManager } from '../src/kernel/region_manager.js';
import { crashSeed } from './fixtures/crash-scenarios.js';

const PAGE = 4096;
const REGION_BYTES = 512 * 1024;
const OWNER = { mode: 0o600, uid: 1000, gid: 1000 };

/** The region's committed bytes before and after one batch, from a real PMap. */
function batchStates(): { before: Uint8Array; after: Uint8Array } {
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regions-pmap-crash-'));
  try {
    const pool = createPool(path.join(dir, 'p.pool'), { size: '8MiB', mode: 'exclusive' });
    const map = PMap.open(pool, 'm', { create: true, size: REGION_BYTES });
    for (let i = 0; i < 200; i++) map.put(`key ${i}`, { i, text: 'v'.repeat(i % 50) });
    assert.equal(map.check().ok, true, 'the map before the batch checks out');
    const before = pool.open('m').read();
    map.batch(() => {
      for (let i = 0; i < 60; i++) map.put(`new ${i}`, i);
      for (let i = 0; i < 200; i += 7) map.delete(`key ${i}`);
    });
    assert.equal(map.check().ok, true, 'the map after the batch checks out');
    const after = pool.open('m').read();
    map.close();
    pool.close();
    return { before, after };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function pagesOf(bytes: Uint8Array, which: (page: number) => boolean): { page: number; bytes: Uint8Array }[] {
  const pages = [];
  for (let page = 0; page * PAGE < bytes.length; page++) {
    if (which(page)) pages.push({ page, bytes: bytes.slice(page * PAGE, (page + 1) * PAGE) });
  }
  return pages;
}

test('crash images of a PMap batch commit: the map before the batch or after it, never between', (t) => {
  const { before, after } = batchStates();
  const page = (bytes: Uint8Array, p: number): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset + p * PAGE, PAGE);
  const written = pagesOf(before, (p) => page(before, p).some((b) => b !== 0));
  const changed = pagesOf(after, (p) => !page(before, p).equals(page(after, p)));
  t.diagnostic(`seed ${crashSeed} (replay with REGIONS_SEED=${crashSeed})`);
  t.diagnostic(`${written.length} pages before, ${changed.length} changed by the batch`);
  assert.ok(changed.length > 1, 'the batch changes several pages: one commit must switch them together');
  const result = runScenario(
    {
      name: 'PMap batch',
      poolBytes: 4 * 1024 * 1024,
      setup: (k: RegionManager) => {
        k.create('m', REGION_BYTES, OWNER, FIXED_NOW);
        k.commitPages(k.lookup('m'), written, FIXED_NOW);
      },
      steps: [(k: RegionManager) => void k.commitPages(k.lookup('m'), changed, FIXED_NOW + 1)],
    },
    { unitsMax: 10, samples: 24, seed: crashSeed, recoveryCrashes: 2 },
  );
  t.diagnostic(`${result.points} fence points, ${result.images} images, ${result.failures.length} failures`);
  assert.ok(result.images > 0);
  assert.deepEqual(result.failures.slice(0, 3), []);
});
