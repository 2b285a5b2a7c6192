// discard: the opposite of pmsync. Every page stored to since the last pmsync, through any
// mapping in any process, goes back to its committed bytes; nothing reaches PM; the next
// pmsync commits only what is stored after. The repair after a writer died inside an update.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createPool, type Pool, type PoolMode, type Tracking } from '../src/index.js';
import { runClient } from './fixtures/regiond-harness.js';

process.env['REGIONS_QUIET'] = '1';
delete process.env['REGIONS_POOL'];

type Body = (pool: Pool, file: string) => Promise<void> | void;

async function withPool(mode: Exclude<PoolMode, 'auto'>, body: Body): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regions-discard-'));
  const file = path.join(dir, 'discard.pool');
  const pool = createPool(file, { size: '16MiB', mode });
  const regiond = pool.server?.pid;
  try {
    pool.create('r', { size: '64KiB' });
    pool.open('r').write(0, new Uint8Array(4096).fill(7)); // page 0 committed; the rest are holes
    await body(pool, file);
  } finally {
    pool.close();
    if (regiond !== undefined) process.kill(regiond, 'SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

for (const mode of ['exclusive', 'shared'] as const) {
  for (const tracking of ['manual', 'fault'] as Tracking[]) {
    test(`${mode}, ${tracking}: discard puts dirty pages back everywhere; pmsync then commits only later stores`, () =>
      withPool(mode, (pool) => {
        const region = pool.open('r');
        const mapping = region.map({ tracking });
        const other = region.map({ tracking: 'manual', offset: 8192, length: 8192 }); // pages 2 and 3
        const bytes = new Uint8Array(mapping.buffer);
        bytes.fill(1, 0, 100); // page 0 (committed 7s)
        bytes.fill(2, 3 * 4096, 3 * 4096 + 50); // page 3 (a hole)
        if (tracking === 'manual') {
          mapping.markDirty(0, 100);
          mapping.markDirty(3 * 4096, 50);
        }
        assert.equal(new Uint8Array(other.buffer)[4096], 2, 'the other mapping sees the store');
        const stats = mapping.discard();
        assert.equal(stats.pages, 2);
        assert.equal(stats.fences, 0, 'nothing reaches PM');
        assert.deepEqual(bytes.subarray(0, 4096), new Uint8Array(4096).fill(7));
        assert.ok(bytes.subarray(3 * 4096, 4 * 4096).every((b) => b === 0), 'a hole reads as zeros again');
        assert.equal(new Uint8Array(other.buffer)[4096], 0, 'in every mapping');
        assert.equal(mapping.pmsync().pages, 0, 'nothing dirty is left');
        bytes[5 * 4096] = 9;
        if (tracking === 'manual') mapping.markDirty(5 * 4096, 1);
        assert.equal(mapping.pmsync().pages, 1, 'stores after the discard are tracked as before');
        assert.equal(region.read(5 * 4096, 1)[0], 9);
        assert.deepEqual(region.read(0, 4096), new Uint8Array(4096).fill(7));
        other.unmap();
        mapping.unmap();
      }));
  }

  test(`${mode}: discard with no mapping, or read-only, is refused or does nothing`, () =>
    withPool(mode, (pool) => {
      assert.equal(pool.open('r').discard().pages, 0, 'no working copy: nothing to put back');
      assert.throws(() => pool.open('r', { access: 'ro' }).discard(), /read-only/);
    }));
}

test('shared: a writer killed before its pmsync leaves its stores in the copy; discard takes them out', () =>
  withPool('shared', async (pool, file) => {
    const region = pool.open('r');
    const mapping = region.map({ tracking: 'fault' });
    await runClient(file, [['map-keep', 'r', 8192, 5], ['exit-now']]); // stores page 2, dies holding the mapping
    assert.equal(new Uint8Array(mapping.buffer)[8192], 5, 'the dead writer\'s store is in the working copy');
    const stats = region.discard();
    assert.ok(stats.pages >= 1, `pages put back: ${stats.pages}`);
    assert.equal(new Uint8Array(mapping.buffer)[8192], 0);
    assert.equal(region.pmsync().pages, 0, 'the next pmsync commits nothing of it');
    assert.equal(region.read(8192, 1)[0], 0);
    mapping.unmap();
  }));
